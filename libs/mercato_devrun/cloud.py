"""``make run``'s cloud: the simulated cloud (``simulators/cloud``) beside the services,
with Mercato's own cloud account and a demo buyer's.

The simulator keeps its state in ``var/cloud-simulator.sqlite3``; the two accounts are
made once and their keys kept in ``var/cloud-accounts.json`` (mode 0600), as a
platform team would keep Mercato's keys in a Secret. Mercato's services only get
Mercato's own keys (``MERCATO_CLOUD_*``); the demo buyer's admin keys are
what the buyer types once into ``POST /v1/agencies/authorization``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from mercato_devrun.children import ChildProcess

ACCOUNTS_FILE = Path("var") / "cloud-accounts.json"  # or CLOUD_ACCOUNTS_FILE
DATABASE = Path("var") / "cloud-simulator.sqlite3"  # or CLOUD_SIMULATOR_DB
MERCATO_ACCOUNT = "mercato"
DEMO_BUYER_ACCOUNT = "demo-buyer"
# what the demo image product deploys (catalog.demo.DEMO_IMAGE names the same id)
DEMO_IMAGE = {
    "image_id": "mkp-demo-ubuntu-22.04",
    "name": "Helix CMS on Ubuntu 22.04",
    "min_disk": 40,
    "os": "Ubuntu 22.04",
}
READY_SECONDS = 20


def address() -> str:
    """Where the simulated cloud listens (``CLOUD_SIMULATOR_ADDRESS``)."""
    return os.environ.get("CLOUD_SIMULATOR_ADDRESS", "127.0.0.1:8400")


def endpoint() -> str:
    return f"http://{address()}"


class SimulatedCloud(ChildProcess):
    """The simulator as a child process of ``make run``."""

    def __init__(self) -> None:
        super().__init__("cloud")

    def start(self) -> None:
        """Start it and wait until it answers (RuntimeError if it does not)."""
        host, _, port = address().rpartition(":")
        self.spawn(
            [
                sys.executable,
                "-m",
                "cloud_simulator",
                f"--host={host}",
                f"--port={port}",
                f"--db={os.environ.get('CLOUD_SIMULATOR_DB', str(DATABASE))}",
            ]
        )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and self.running():
            try:
                requests.get(f"{endpoint()}/sim/accounts", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the simulated cloud did not answer at {endpoint()}")


def ensure_accounts() -> dict[str, dict[str, Any]]:
    """Mercato's and the demo buyer's cloud accounts, made at the first run; the demo
    image registered in the cloud's image service."""
    path = Path(os.environ.get("CLOUD_ACCOUNTS_FILE", str(ACCOUNTS_FILE)))
    accounts: dict[str, dict[str, Any]] = {}
    if path.exists():
        accounts = json.loads(path.read_text())
    known = {
        item["domain_id"]
        for item in requests.get(f"{endpoint()}/sim/accounts", timeout=5).json()["accounts"]
    }
    changed = False
    for name in (MERCATO_ACCOUNT, DEMO_BUYER_ACCOUNT):
        if name in accounts and accounts[name]["domain_id"] in known:
            continue
        created = requests.post(f"{endpoint()}/sim/accounts", json={"name": name}, timeout=5)
        created.raise_for_status()
        accounts[name] = created.json()
        changed = True
    if changed:
        path.touch(mode=0o600)
        path.write_text(json.dumps(accounts, indent=2) + "\n")
    image = requests.post(f"{endpoint()}/sim/images", json=DEMO_IMAGE, timeout=5)
    if image.status_code not in (200, 201, 409):
        image.raise_for_status()
    return accounts


def service_environment(accounts: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What iam-agency and provisioning are told of the cloud: where it is, and
    Mercato's own account (the delegate of every buyer's ``mkp_agency_trust``)."""
    mercato = accounts[MERCATO_ACCOUNT]
    return {
        "CLOUD_ENDPOINT": endpoint(),
        "CLOUD_REGION": mercato["region"],
        "MERCATO_CLOUD_DOMAIN_ID": mercato["domain_id"],
        "MERCATO_CLOUD_DOMAIN_NAME": mercato["domain_name"],
        "MERCATO_CLOUD_ACCESS_KEY": mercato["access_key"],
        "MERCATO_CLOUD_SECRET_KEY": mercato["secret_key"],
    }


def demo_buyer_cloud_account(accounts: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The body of the demo buyer's ``PUT /v1/cloud-account``."""
    buyer = accounts[DEMO_BUYER_ACCOUNT]
    return {
        "provider": "simulated",
        "region": buyer["region"],
        "domain_id": buyer["domain_id"],
        "project_id": buyer["project_id"],
    }
