"""The simulator's own routes (``/sim/...``, no signing): accounts, quotas, images,
faults, the clock, and what resources an account has left. Tests and ``make run``
use them to set the world up and to check what a flow left behind."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from . import faults, iam
from .store import Store

DEFAULT_QUOTAS = {
    "instances": 10,
    "cores": 40,
    "ram": 81920,  # MB
    "volumes": 20,
    "gigabytes": 1000,
    "vpcs": 5,
    "subnets": 20,
    "security_groups": 20,
    "public_ips": 5,
}

# The resource types GET /sim/accounts/{domain_id}/resources lists (rules go with their group).
LISTED_TYPES = ("server", "volume", "vpc", "subnet", "security_group", "eip")


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_account(store: Store, region: str, body: dict) -> dict:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AdminError(400, "name is required")
    domain_id, project_id = uuid.uuid4().hex, uuid.uuid4().hex
    access_key, secret_key = iam.new_access_key(), iam.new_secret_key()
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM accounts WHERE domain_name = ?", (name,)).fetchone():
            raise AdminError(409, f"account {name} exists")
        db.execute(
            "INSERT INTO accounts (domain_id, domain_name, project_id, region, quotas, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (domain_id, name, project_id, region, json.dumps(DEFAULT_QUOTAS), time.time()),
        )
        db.execute(
            "INSERT INTO access_keys (access_key, secret_key, domain_id) VALUES (?, ?, ?)",
            (access_key, secret_key, domain_id),
        )
    return {
        "domain_id": domain_id,
        "domain_name": name,
        "project_id": project_id,
        "region": region,
        "access_key": access_key,
        "secret_key": secret_key,
    }


def list_accounts(store: Store) -> dict:
    rows = store.all("SELECT * FROM accounts ORDER BY created_at")
    return {
        "accounts": [
            {
                "domain_id": row["domain_id"],
                "domain_name": row["domain_name"],
                "project_id": row["project_id"],
                "region": row["region"],
                "quotas": json.loads(row["quotas"]),
            }
            for row in rows
        ]
    }


def account_quotas(store: Store, domain_id: str) -> dict[str, int]:
    row = store.one("SELECT quotas FROM accounts WHERE domain_id = ?", domain_id)
    return {**DEFAULT_QUOTAS, **(json.loads(row["quotas"]) if row else {})}


def update_quotas(store: Store, domain_id: str, body: dict) -> dict:
    if store.one("SELECT 1 FROM accounts WHERE domain_id = ?", domain_id) is None:
        raise AdminError(404, "no such account")
    unknown = set(body) - set(DEFAULT_QUOTAS)
    if unknown:
        raise AdminError(400, f"unknown quotas: {', '.join(sorted(unknown))}")
    quotas = {**account_quotas(store, domain_id), **{k: int(v) for k, v in body.items()}}
    store.run("UPDATE accounts SET quotas = ? WHERE domain_id = ?", json.dumps(quotas), domain_id)
    return {"quotas": quotas}


def account_resources(store: Store, domain_id: str) -> dict:
    if store.one("SELECT 1 FROM accounts WHERE domain_id = ?", domain_id) is None:
        raise AdminError(404, "no such account")
    left: list[dict[str, Any]] = [
        {"type": r["type"], "id": r["id"], "name": r["name"], "status": r["status"]}
        for r in store.resources(domain_id)
        if r["type"] in LISTED_TYPES
    ]
    for row in store.all("SELECT * FROM stacks WHERE domain_id = ? ORDER BY created_at", domain_id):
        left.append(
            {"type": "stack", "id": row["id"], "name": row["name"], "status": row["status"]}
        )
    return {"resources": left}


def register_image(store: Store, body: dict) -> dict:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise AdminError(400, "name is required")
    image_id = body.get("image_id") or str(uuid.uuid4())
    store.run(
        "INSERT OR REPLACE INTO images (id, name, min_disk, os, created_at) VALUES (?, ?, ?, ?, ?)",
        image_id,
        name,
        int(body.get("min_disk") or 40),
        body.get("os") or "Linux",
        time.time(),
    )
    return {"image_id": image_id, "name": name}


def add_fault(store: Store, body: dict) -> dict:
    try:
        return faults.add_fault(store, body)
    except (ValueError, TypeError) as exc:
        raise AdminError(400, str(exc)) from None


def advance_clock(store: Store, body: dict) -> dict:
    try:
        seconds = float(body.get("advance_seconds", 0))
    except (TypeError, ValueError):
        raise AdminError(400, "advance_seconds must be a number") from None
    now = store.advance_clock(seconds)
    return {"now": iam.iso(now)}
