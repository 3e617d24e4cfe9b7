"""A seller's SaaS application as a real process, for tests: the reference app of
``examples/seller-saas`` (or any program with its command line), started on a free port.

Tests run under eventlet's monkey-patching, so a seller never runs inside the test
process: each is a subprocess on a free port (``--port 0``; the port is read back from
its first log line), its stdout kept in a file for assertions.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from mercato.config import ROOT
from seller_interface import SellerClient

REFERENCE_APP = Path(ROOT) / "examples" / "seller-saas" / "seller_saas.py"
START_TIMEOUT = 10.0


class Seller:
    """One seller process; ``url`` is its interface endpoint."""

    def __init__(self, args: list[str], log_path: Path, access_key: str, secret: str) -> None:
        self.args = args
        self.log_path = log_path
        self.access_key = access_key
        self.secret = secret
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/saas"

    def start(self) -> Seller:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (our own program, fixed args)
                [sys.executable, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace")[offset:].splitlines():
                if line.startswith("{") and '"listening"' in line:
                    self.port = json.loads(line)["port"]
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"seller did not start:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def set_fault(self, fault: str) -> None:
        response = requests.post(f"{self.base_url}/_faults", json={"fault": fault}, timeout=5)
        response.raise_for_status()

    def client(self, timeout: float = 5.0) -> SellerClient:
        return SellerClient(self.url, self.access_key, self.secret, timeout=timeout)


def reference_seller(
    directory: Path,
    access_key: str,
    secret: str,
    *,
    fault: str = "none",
    provision_delay: float = 0.2,
    db: Path | None = None,
) -> Seller:
    """The reference app, not yet started, keeping its files in ``directory``."""
    args = [
        str(REFERENCE_APP),
        "--host=127.0.0.1",
        "--port=0",
        f"--access-key={access_key}",
        f"--secret={secret}",
        f"--db={db or directory / 'seller.sqlite3'}",
        f"--provision-delay={provision_delay}",
        f"--fault={fault}",
    ]
    return Seller(args, directory / "stdout.log", access_key, secret)
