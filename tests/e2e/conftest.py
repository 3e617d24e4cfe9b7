"""The whole system for end-to-end tests: all seven processes started the way `make run`
starts them (``python -m mercato_devrun``), on PostgreSQL and RabbitMQ, each module on its
own vhost, databases and ports, with the test clock (``MERCATO_CLOCK=controllable``): a
module's tests may move its system's time."""

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from mercato.topology import GATEWAY, PROCESSES, SERVICES
from mercato_devrun import GATEWAY_OPS, listening_on, start, wait_until_ready
from mercato_testing import free_ports, with_vhost

READY_TIMEOUT = 120


class System:
    def __init__(self, process: subprocess.Popen, log_path: Path, ports: dict[str, int]):
        self.process = process
        self.log_path = log_path
        self.ports = ports

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def metrics_url(self, name: str) -> str:
        """Where a process serves /metrics: a service on its port, the gateway on its
        operations port (never its public API's)."""
        return f"{self.url(GATEWAY_OPS if name == GATEWAY.name else name)}/metrics"

    @property
    def gateway(self) -> str:
        return self.url(GATEWAY.name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self, process_name: str) -> list[dict]:
        """The JSON records one process logged (honcho prefixes "HH:MM:SS name | ")."""
        records = []
        pattern = re.compile(rf"^\S+\s+{re.escape(process_name)}\s*\| (\{{.*\}})\s*$")
        for line in self.log().splitlines():
            match = pattern.match(line)
            if match:
                records.append(json.loads(match.group(1)))
        return records

    def wait_ready(self) -> float:
        started = time.monotonic()
        not_ready = wait_until_ready(
            started + READY_TIMEOUT,
            {process.name: self.url(process.name) for process in PROCESSES},
            running=lambda: self.process.poll() is None,
        )
        assert self.process.poll() is None, f"make run exited:\n{self.log()[-5000:]}"
        assert not not_ready, f"not ready: {not_ready}\n{self.log()[-5000:]}"
        return time.monotonic() - started


@pytest.fixture(scope="module")
def system(request, tmp_path_factory, infra, databases):
    """All seven processes for one test module. A module may set ``SYSTEM_ENV`` (a dict)
    to start its system with more settings, ``MERCATO_CLOCK_START`` say."""
    from nameko.testing.rabbit import Client

    vhost = f"mercato_e2e_{uuid.uuid4().hex[:8]}"
    manager = Client(infra.management_uri)
    manager.create_vhost(vhost)
    manager.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")

    # every process's port, the gateway's operations port, the seller's application's,
    # the simulated cloud's and the simulated card provider's: distinct
    *process_ports, gateway_ops_port, seller_port, cloud_port, payments_port = free_ports(
        len(PROCESSES) + 4
    )
    ports = {process.name: port for process, port in zip(PROCESSES, process_ports, strict=True)}
    ports[GATEWAY_OPS] = gateway_ops_port
    env = {
        **os.environ,
        "AMQP_URI": with_vhost(infra.amqp_uri, vhost),
        "OUTBOX_SWEEP_SECONDS": "0.5",
        # the test clock: a test may move every service's time (POST /v1/admin/clock)
        "MERCATO_CLOCK": "controllable",
        **listening_on(ports),
    }
    for process in SERVICES:  # empty databases: devrun migrates them
        env[f"{process.env_prefix}_DATABASE_URL"] = databases.empty(process.name)
    env["GATEWAY_DATABASE_URL"] = databases.empty("gateway")
    workdir = tmp_path_factory.mktemp("e2e")
    # the demo seller's SaaS application (the reference app) on a port of its own
    env["DEMO_SELLER_SAAS_ADDRESS"] = f"127.0.0.1:{seller_port}"
    env["DEMO_SELLER_SAAS_DB"] = str(workdir / "seller-saas.sqlite3")
    env["PROVISIONING_DELIVERY_SWEEP_SECONDS"] = "0.3"
    # a seller that never delivers fails its orders in seconds rather than hours
    env["PROVISIONING_DELIVERY_WINDOW_SECONDS"] = "15"
    env["PROVISIONING_DELIVERY_RETRY_MAX_SECONDS"] = "2"
    # the simulated cloud on a port, a database and accounts of its own, quick to build
    env["CLOUD_SIMULATOR_ADDRESS"] = f"127.0.0.1:{cloud_port}"
    env["CLOUD_SIMULATOR_DB"] = str(workdir / "cloud-simulator.sqlite3")
    env["CLOUD_ACCOUNTS_FILE"] = str(workdir / "cloud-accounts.json")
    env["CLOUD_SIMULATOR_STEP_SECONDS"] = "0.05"
    # the simulated card provider on a port and a database of its own
    env["PAYMENTS_SIMULATOR_ADDRESS"] = f"127.0.0.1:{payments_port}"
    env["PAYMENTS_SIMULATOR_DB"] = str(workdir / "payments-simulator.sqlite3")
    env["CARD_GATEWAY_URL"] = f"http://127.0.0.1:{payments_port}"
    env.update(getattr(request.module, "SYSTEM_ENV", {}))

    log_path = workdir / "make-run.log"
    with open(log_path, "wb") as log:
        process = start(env, log)
    running = System(process, log_path, ports)
    running.env = env
    running.amqp_uri = env["AMQP_URI"]
    running.payments_url = env["CARD_GATEWAY_URL"]  # the card provider billing charges
    running.ready_seconds = running.wait_ready()
    yield running
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    manager.delete_vhost(vhost)
