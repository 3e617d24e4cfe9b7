"""A RabbitMQ node and a PostgreSQL cluster of the fault suite's own, to restart at will.

Neither is the machine's shared broker or database (other test runs use those): each
runs from a temporary directory, on ports nothing else uses, under a name of its own.
``restart()`` stops the server the way an orchestrator would (RabbitMQ: SIGTERM, a
graceful stop; PostgreSQL: ``pg_ctl stop -m fast``), keeps it down ``down_seconds``,
and starts it again on the same data and ports, so durable queues and committed rows
survive and only what was in flight is cut.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

from mercato_testing import free_ports

START_TIMEOUT = 90.0
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class InfrastructureError(RuntimeError):
    pass


def _wait(condition, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise InfrastructureError(f"{what} within {timeout:.0f}s\n{tail}")


class PrivateRabbit:
    """One RabbitMQ node (with its management plugin) run from ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.node = f"mercato-faults-{uuid.uuid4().hex[:8]}@localhost"
        self.amqp_port, self.management_port, self.dist_port = free_ports(3)
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "rabbitmq.out"
        self.restarts = 0

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def management_uri(self) -> str:
        return f"http://guest:guest@127.0.0.1:{self.management_port}"

    def _environment(self) -> dict[str, str]:
        base = self.directory
        return {
            **os.environ,
            # its own Erlang cookie, node name and distribution port: rabbitmqctl and
            # the shared node never mistake one for the other
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    def start(self) -> PrivateRabbit:
        if not Path(RABBITMQ_SERVER).exists():
            raise InfrastructureError(f"no {RABBITMQ_SERVER}: install rabbitmq-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
        )
        (self.directory / "enabled_plugins").write_text("[rabbitmq_management].\n")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [RABBITMQ_SERVER],
                env=self._environment(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(self.answers, f"RabbitMQ {self.node} did not answer", START_TIMEOUT, self.log_path)
        return self

    def answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise InfrastructureError(
                f"RabbitMQ {self.node} exited:\n{self.log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            return requests.get(f"{self.management_uri}/api/overview", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the node closes its connections and stops (its script runs
        ``rabbitmqctl stop``); SIGKILL for the whole group if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # the Erlang VM may outlive its script by a moment: wait until the port is free
        _wait(lambda: not _listening(self.amqp_port), "RabbitMQ's port stays taken", timeout)

    def crash(self) -> None:
        """SIGKILL to the node: connections cut mid-frame, nothing flushed on the way out
        (what was confirmed is on disk, and must be all that counts)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        _wait(lambda: not _listening(self.amqp_port), "RabbitMQ's port stays taken", 60)

    def restart(self, down_seconds: float = 0.0, *, crash: bool = False) -> float:
        """Answers how long the broker was unreachable (seconds). ``crash``: killed
        rather than stopped."""
        started = time.monotonic()
        if crash:
            self.crash()
        else:
            self.stop()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1
        return time.monotonic() - started

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres:
    """One PostgreSQL cluster (``initdb`` + ``pg_ctl``) in ``directory``, trust
    authentication on 127.0.0.1 only, run as the ``postgres`` user when the suite
    runs as root (PostgreSQL refuses to run as root)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        (self.port,) = free_ports(1)
        self.log_path = directory / "postgres.log"
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [_pg_binary(args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c max_connections=300 -c fsync=off -c synchronous_commit=off"
        )
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path), "-o", options)
        _wait(
            self.answers, f"PostgreSQL on {self.port} did not answer", START_TIMEOUT, self.log_path
        )
        return self

    def answers(self) -> bool:
        engine = sa.create_engine(
            self.url, connect_args={"connect_timeout": 2}, poolclass=sa.pool.NullPool
        )
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            engine.dispose()

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every session is cut and the server shuts down cleanly (a planned
        restart); ``immediate``: as a crash, recovered from the WAL at the next start."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", check=False)

    def restart(self, down_seconds: float = 0.0, mode: str = "fast") -> float:
        started = time.monotonic()
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1
        return time.monotonic() - started

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise InfrastructureError(f"no {name}: install PostgreSQL's server package")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
