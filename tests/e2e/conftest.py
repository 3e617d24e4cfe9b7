"""The whole system for end-to-end tests: all seven processes started the way `make run`
starts them (``python -m mercato_devrun``), on PostgreSQL and RabbitMQ, each module on its
own vhost, databases and ports."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from mercato.config import ROOT
from mercato.topology import GATEWAY, PROCESSES, SERVICES

READY_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class System:
    def __init__(self, process: subprocess.Popen, log_path: Path, ports: dict[str, int]):
        self.process = process
        self.log_path = log_path
        self.ports = ports

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

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
        pending = {p.name for p in PROCESSES}
        while pending:
            assert self.process.poll() is None, f"make run exited:\n{self.log()[-5000:]}"
            assert time.monotonic() - started < READY_TIMEOUT, (
                f"not ready: {pending}\n{self.log()[-5000:]}"
            )
            for name in list(pending):
                try:
                    if requests.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                        pending.discard(name)
                except requests.RequestException:
                    pass
            time.sleep(0.3)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def system(tmp_path_factory, infra, databases):
    from nameko.testing.rabbit import Client

    vhost = f"mercato_e2e_{uuid.uuid4().hex[:8]}"
    manager = Client(infra.management_uri)
    manager.create_vhost(vhost)
    manager.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
    base = infra.amqp_uri.rstrip("/")
    base = base[: base.rfind("/")] if base.count("/") > 2 else base

    ports = {process.name: free_port() for process in PROCESSES}
    env = {**os.environ, "AMQP_URI": f"{base}/{vhost}", "OUTBOX_SWEEP_SECONDS": "0.5"}
    for process in SERVICES:
        prefix = process.env_prefix
        env[f"{prefix}_DATABASE_URL"] = databases.empty(process.name)  # devrun migrates it
        env[f"{prefix}_OPS_ADDRESS"] = f"127.0.0.1:{ports[process.name]}"
    env["GATEWAY_DATABASE_URL"] = databases.empty("gateway")
    env["GATEWAY_ADDRESS"] = f"127.0.0.1:{ports[GATEWAY.name]}"
    workdir = tmp_path_factory.mktemp("e2e")
    # the demo seller's SaaS application (the reference app) on a port of its own
    env["DEMO_SELLER_SAAS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    env["DEMO_SELLER_SAAS_DB"] = str(workdir / "seller-saas.sqlite3")
    env["PROVISIONING_DELIVERY_SWEEP_SECONDS"] = "0.3"
    # a seller that never delivers fails its orders in seconds rather than hours
    env["PROVISIONING_DELIVERY_WINDOW_SECONDS"] = "15"
    env["PROVISIONING_DELIVERY_RETRY_MAX_SECONDS"] = "2"

    log_path = workdir / "make-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mercato_devrun"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = System(process, log_path, ports)
    running.env = env
    running.amqp_uri = env["AMQP_URI"]
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
