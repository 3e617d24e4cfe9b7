"""The whole system on the suite's own broker and database, started the way `make run`
starts it (``python -m mercato_devrun``), with what a fault needs: each process's pid,
SIGKILL or SIGSTOP of one, and a note of every process that died without being killed.

When `make run` itself exits (it stopped all seven because one died), the system is
started again on the same databases and broker, as an operator would, so that the
purchases of the test can still be counted; the exit is recorded (``system_stops``).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from mercato.topology import BY_NAME, GATEWAY, PROCESSES
from mercato_devrun import listening_on, start, wait_until_ready
from mercato_testing import free_ports, with_database

READY_TIMEOUT = 150.0
# the subscriber's queue, declared by make run before anything publishes
SUBSCRIBER_QUEUE = "faults.orders"


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (pid -> command line), read from /proc."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # the command name in stat may hold spaces and parentheses: split after the last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
        commands[int(entry.name)] = command
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


class FaultySystem:
    """All seven processes, the demo seller's application and the simulated cloud, on
    ``rabbit`` and ``postgres`` (the suite's own), in ``workdir``."""

    def __init__(self, workdir: Path, rabbit, postgres, extra_env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.rabbit = rabbit
        self.postgres = postgres
        *process_ports, seller_port, cloud_port, payments_port = free_ports(len(PROCESSES) + 3)
        self.ports = {p.name: port for p, port in zip(PROCESSES, process_ports, strict=True)}
        self.seller_address = f"127.0.0.1:{seller_port}"
        self.payments_address = f"127.0.0.1:{payments_port}"
        env = {
            **os.environ,
            "AMQP_URI": rabbit.amqp_uri,
            "OUTBOX_SWEEP_SECONDS": "0.5",
            "MERCATO_CLOCK": "controllable",
            "LOG_FORMAT": "json",
            **listening_on(self.ports),
            "DEMO_SELLER_SAAS_ADDRESS": self.seller_address,
            "DEMO_SELLER_SAAS_DB": str(workdir / "seller-saas.sqlite3"),
            "CLOUD_SIMULATOR_ADDRESS": f"127.0.0.1:{cloud_port}",
            "CLOUD_SIMULATOR_DB": str(workdir / "cloud-simulator.sqlite3"),
            "CLOUD_ACCOUNTS_FILE": str(workdir / "cloud-accounts.json"),
            "CLOUD_SIMULATOR_STEP_SECONDS": "0.05",
            # the card provider's simulator (simulators/payments) on a port of its own
            "CARD_GATEWAY_URL": f"http://{self.payments_address}",
            "PAYMENTS_SIMULATOR_ADDRESS": self.payments_address,
            "PAYMENTS_SIMULATOR_HOST": "127.0.0.1",
            "PAYMENTS_SIMULATOR_PORT": str(payments_port),
            "PAYMENTS_SIMULATOR_DB": str(workdir / "payments-simulator.sqlite3"),
            "PROVISIONING_DELIVERY_SWEEP_SECONDS": "0.3",
            "PROVISIONING_DELIVERY_RETRY_MAX_SECONDS": "2",
            # a delivery whose process was killed is taken up again within seconds
            "PROVISIONING_DELIVERY_LEASE_SECONDS": "15",
            # a seller that never answers fails its orders once the test clock is moved
            # past this (never by waiting)
            "PROVISIONING_DELIVERY_WINDOW_SECONDS": "600",
            "PROVISIONING_SELLER_TIMEOUT_SECONDS": "3",
            # the suite signs up a handful of buyers a minute from one address
            "GATEWAY_SIGN_UP_LIMIT_PER_ADDRESS": "100000/3600",
            "GATEWAY_SIGN_IN_LIMIT_PER_ADDRESS": "100000/60",
            "EVENT_SUBSCRIBER_QUEUES": json.dumps(
                [
                    {
                        "queue": SUBSCRIBER_QUEUE,
                        "bindings": [
                            {"exchange": "orders.events", "routing_key": "orders.order.*"},
                            {"exchange": "orders.events", "routing_key": "orders.subscription.*"},
                        ],
                        "quorum": True,
                    }
                ]
            ),
        }
        for process in PROCESSES:
            env[f"{process.env_prefix}_DATABASE_URL"] = with_database(
                postgres.url, f"mercato_{process.name}"
            )
        env.update(extra_env)
        self.env = env
        self.log_path = workdir / "make-run.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.system_stops = 0  # times make run exited while a test ran
        self.killed_names: list[str] = []  # processes the suite killed on purpose
        self.log_offset = 0
        self.dead_letters_before: dict[str, int] = {}
        self._pids: dict[str, int] = {}
        self.provider = None  # the card provider's simulator, when the suite runs it
        self.uses_provider = False  # billing charges cards at a provider (CARD_GATEWAY_URL)

    # -- starting and stopping -------------------------------------------------------

    def create_databases(self) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(
            with_database(self.postgres.url, "postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            for process in PROCESSES:
                connection.execute(sa.text(f'CREATE DATABASE "mercato_{process.name}"'))
        admin.dispose()

    def start(self) -> FaultySystem:
        if self.starts == 0:
            self.create_databases()
            self.start_provider()
        with open(self.log_path, "ab") as log:
            self.process = start(self.env, log)
        self.starts += 1
        self.wait_ready()
        self._pids = self.pids()
        return self

    def start_provider(self) -> None:
        """Billing charges cards at a provider (``CARD_GATEWAY_URL``): the simulated one,
        started here when `make run` does not start it itself."""
        import mercato_devrun

        billing = BY_NAME["billing"].config_path.read_text()
        self.uses_provider = "CARD_GATEWAY_URL" in billing
        if not self.uses_provider:
            return  # billing charges through its embedded simulation
        devrun = Path(mercato_devrun.__file__).parent
        if any("payments_simulator" in f.read_text() for f in devrun.glob("*.py")):
            return  # make run starts it, on the address the environment gives
        from mercato_testing.payments import start_payments_simulator

        self.provider = start_payments_simulator(self.workdir / "payments")
        self.payments_address = f"127.0.0.1:{self.provider.port}"
        self.env["CARD_GATEWAY_URL"] = self.provider.url

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        not_ready = wait_until_ready(
            time.monotonic() + timeout,
            {process.name: self.url(process.name) for process in PROCESSES},
            running=self.running,
        )
        assert self.running(), f"make run exited:\n{self.log()[-5000:]}"
        assert not not_ready, f"not ready: {not_ready}\n{self.log()[-5000:]}"
        # the demo data (products, the seller's application) follows readiness
        deadline = time.monotonic() + timeout
        while "Ctrl-C stops everything" not in self.log()[-20000:]:
            assert time.monotonic() < deadline, f"no demo data:\n{self.log()[-5000:]}"
            assert self.running(), f"make run exited:\n{self.log()[-5000:]}"
            time.sleep(0.5)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.running():
            return
        assert self.process is not None
        left = self.pids()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # honcho starts each process in a session of its own: one left behind goes too
        for pid in left.values():
            if self._ours(pid):
                os.kill(pid, signal.SIGKILL)

    def shut_down(self) -> None:
        self.stop()
        if self.provider is not None:
            self.provider.stop()

    def _ours(self, pid: int) -> bool:
        """Whether ``pid`` is still one of this system's processes (not a reused pid)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"AMQP_URI={self.rabbit.amqp_uri}".encode() in environ

    def ensure_running(self) -> None:
        """Start the system again if `make run` exited (counted once per exit)."""
        if self.running():
            return
        self.system_stops += 1
        self.stop()
        self.start()

    # -- the processes ----------------------------------------------------------------

    @property
    def payments_url(self) -> str:
        return f"http://{self.payments_address}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def gateway(self) -> str:
        return self.url(GATEWAY.name)

    def pids(self) -> dict[str, int]:
        """Each of the seven processes' pid now (absent: not running)."""
        if self.process is None:
            return {}
        found = {}
        for pid, command in descendants(self.process.pid).items():
            for process in PROCESSES:
                if "nameko" in command and str(process.config_path) in command:
                    found[process.name] = pid
        return found

    def begin(self) -> None:
        """A test starts: deaths, stops and dead letters are counted from here."""
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.killed_names: list[str] = []
        self.system_stops = 0
        self.dead_letters_before = self.dead_letters()

    def dead_letters(self) -> dict[str, int]:
        """Messages waiting in each dead-letter queue (``<queue>.dead-letters``), from
        the broker's management API."""
        answer = requests.get(
            f"{self.rabbit.management_uri}/api/queues/%2F",
            params={"columns": "name,messages"},
            timeout=10,
        )
        answer.raise_for_status()
        return {
            queue["name"]: queue.get("messages") or 0
            for queue in answer.json()
            if queue["name"].endswith("dead-letters")
        }

    def new_dead_letters(self) -> dict[str, int]:
        now = self.dead_letters()
        grown = {q: n - self.dead_letters_before.get(q, 0) for q, n in now.items()}
        return {q: n for q, n in grown.items() if n > 0}

    def deaths(self) -> list[str]:
        """Processes that exited since ``begin`` without the suite killing them and
        without `make run` stopping them (the one that died first, when `make run` then
        stopped the others): read from `make run`'s own lines."""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            lines = log.read().decode(errors="replace").splitlines()
        killed = collections.Counter(self.killed_names)
        stopping = False
        sent: set[str] = set()
        died = []
        for line in lines:
            if re.search(r"\| (SIGINT|SIGTERM) received", line):
                stopping = True
            elif re.search(r"mercato \| migrated", line):
                stopping = False  # make run started again
            elif match := re.search(r"\| sending SIG\w+ to (\w+)", line):
                sent.add(match.group(1))
            elif match := re.search(r"\| (\w+) started \(pid", line):
                sent.discard(match.group(1))
            elif match := re.search(r"\| (\w+) stopped \(rc=(-?\d+)\)", line):
                name = match.group(1)
                if stopping or name in sent:
                    continue
                if killed[name] > 0:
                    killed[name] -= 1
                    continue
                died.append(f"{name} (rc={match.group(2)})")
        return died

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        pid = self.pids()[name]
        if sig == signal.SIGKILL:
            self.killed_names.append(name)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 90.0) -> bool:
        """True once `make run` runs ``name`` again (a new pid answering /readyz);
        False if `make run` exited instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            pid = self.pids().get(name)
            if pid and pid != old_pid:
                try:
                    if requests.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                        self._pids[name] = pid
                        return True
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        return False

    def all_ready(self) -> bool:
        return not wait_until_ready(
            time.monotonic() + 1,
            {process.name: self.url(process.name) for process in PROCESSES},
            running=self.running,
        )

    # -- what it says ------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self, process_name: str) -> list[dict]:
        records = []
        pattern = re.compile(rf"^\S+\s+{re.escape(process_name)}\s*\| (\{{.*\}})\s*$")
        for line in self.log().splitlines():
            match = pattern.match(line)
            if match:
                try:
                    records.append(json.loads(match.group(1)))
                except ValueError:
                    pass
        return records
