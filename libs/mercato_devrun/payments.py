"""``make run``'s card provider: the simulated one (``simulators/payments``) beside the
services, on ``PAYMENTS_SIMULATOR_ADDRESS`` (default ``127.0.0.1:8500``), its state in
``var/payments-simulator.sqlite3`` (or ``PAYMENTS_SIMULATOR_DB``). Billing is told where
it is (``CARD_GATEWAY_URL``) unless the environment names another provider."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import requests

from mercato_devrun.children import ChildProcess

DATABASE = Path("var") / "payments-simulator.sqlite3"
READY_SECONDS = 20


def address() -> str:
    """Where the simulated provider listens (``PAYMENTS_SIMULATOR_ADDRESS``)."""
    return os.environ.get("PAYMENTS_SIMULATOR_ADDRESS", "127.0.0.1:8500")


def endpoint() -> str:
    return f"http://{address()}"


class SimulatedPayments(ChildProcess):
    """The simulated card provider as a child process of ``make run``."""

    def __init__(self) -> None:
        super().__init__("payments")

    def start(self) -> None:
        """Start it and wait until it answers (RuntimeError if it does not)."""
        host, _, port = address().rpartition(":")
        self.spawn(
            [
                sys.executable,
                "-m",
                "payments_simulator",
                f"--host={host}",
                f"--port={port}",
                f"--db={os.environ.get('PAYMENTS_SIMULATOR_DB', str(DATABASE))}",
            ]
        )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and self.running():
            try:
                requests.get(f"{endpoint()}/sim/health", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the simulated card provider did not answer at {endpoint()}")
