"""The simulated card payment provider (``simulators/payments``) as a real process, for
tests, and the test cards it knows (``simulators/payments/README.md``).

As the simulated cloud, it never runs inside the (monkey-patched) test process:
``start_payments_simulator`` starts ``python -m payments_simulator`` on a free port with
a database of its own and waits for its ``listening`` line::

    payments = start_payments_simulator(tmp_path)
    token = payments.token(DECLINING)           # what a client sends Mercato
    payments.fault(delay_seconds=5, count=1)     # the next money answer comes late
    assert len(payments.ledger()["charges"]) == 1
    payments.stop()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from mercato.config import ROOT

START_TIMEOUT = 15.0
# The test cards (payments_simulator.cards): what each does is in the simulator's README.
GOOD = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINING = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
HANGING = "4000000000000119"
SLOW = "4000000000006975"
REFUND_HANGING = "4000000000000077"
REFUND_DECLINING = "4000000000005126"
EXPIRY, CVC = "12/30", "123"


class PaymentsSimulatorHandle:
    """One simulator process; ``url`` is billing's ``CARD_GATEWAY_URL``."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.session = requests.Session()

    def call(self, method: str, path: str, body: dict | None = None, **headers: str) -> Any:
        """The answer's JSON (None when empty); raises for any status >= 400."""
        response = self.session.request(
            method, f"{self.url}{path}", json=body, headers=headers, timeout=10
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def token(self, number: str = GOOD, expiry: str = EXPIRY, cvc: str = CVC) -> str:
        """A card token, as a client gets one before paying (``POST /v1/tokens``)."""
        return self.call("POST", "/v1/tokens", {"number": number, "expiry": expiry, "cvc": cvc})[
            "token"
        ]

    def card(self, number: str = GOOD) -> dict[str, str]:
        """The ``card`` of a Mercato body paying with a new token of ``number``."""
        return {"token": self.token(number)}

    def ledger(self) -> dict[str, list[dict]]:
        """Every charge and refund the provider made: ``{charges: [...], refunds: [...]}``."""
        return self.call("GET", "/sim/ledger")

    def charges_for(self, key_prefix: str) -> list[dict]:
        return [c for c in self.ledger()["charges"] if c["idempotency_key"].startswith(key_prefix)]

    def fault(self, delay_seconds: float, count: int | None = 1) -> dict:
        """The next ``count`` answers about money (every one with None) wait
        ``delay_seconds`` more: a slow provider."""
        return self.call("POST", "/sim/faults", {"delay_seconds": delay_seconds, "count": count})

    def clear_faults(self) -> None:
        self.call("DELETE", "/sim/faults")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        self.session.close()
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_payments_simulator(
    tmp_dir: Path | str, *, hang_seconds: float = 30.0, slow_seconds: float = 6.0
) -> PaymentsSimulatorHandle:
    """Start the simulator on a free port with a database in ``tmp_dir``."""
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "payments-simulator.log"
    offset = log_path.stat().st_size if log_path.exists() else 0  # a reused tmp_dir's old lines
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
            [
                sys.executable,
                "-m",
                "payments_simulator",
                "--host=127.0.0.1",
                "--port=0",
                f"--db={tmp / 'payments-simulator.sqlite3'}",
                f"--hang-seconds={hang_seconds}",
                f"--slow-seconds={slow_seconds}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=dict(os.environ),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace")[offset:].splitlines():
            if line.startswith("{") and '"listening"' in line:
                return PaymentsSimulatorHandle(process, int(json.loads(line)["port"]), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(
        f"the payments simulator did not start:\n{log_path.read_text(errors='replace')}"
    )
