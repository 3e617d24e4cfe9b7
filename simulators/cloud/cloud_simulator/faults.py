"""Injected faults: the next ``count`` calls of an IAM action misbehave.

Modes: ``fail`` answers an error (``status``, default 500; ``error_code``, default
``SIM.0500``), ``delay`` sleeps ``delay_seconds`` before answering, ``job_error`` lets
the call succeed but ends its asynchronous job in error (servers, volumes). Faults
apply to calls over HTTP and to the calls the stack service makes while deploying.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import CloudError, style_of
from .store import Store

MODES = ("fail", "delay", "job_error")


@dataclass(frozen=True)
class FaultOutcome:
    job_error: bool = False


def add_fault(store: Store, spec: dict) -> dict:
    action = spec.get("action")
    mode = spec.get("mode")
    if not isinstance(action, str) or not action or mode not in MODES:
        raise ValueError(f"a fault needs an action and a mode among {', '.join(MODES)}")
    count = int(spec.get("count", 1))
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT INTO faults (action, mode, remaining, status, error_code, delay_seconds)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                action,
                mode,
                count,
                spec.get("status"),
                spec.get("error_code"),
                spec.get("delay_seconds"),
            ),
        )
        seq = cursor.lastrowid
    return fault_dict(store.one("SELECT * FROM faults WHERE seq = ?", seq))


def list_faults(store: Store) -> list[dict]:
    return [fault_dict(row) for row in store.all("SELECT * FROM faults ORDER BY seq")]


def clear_faults(store: Store) -> None:
    store.run("DELETE FROM faults")


def fault_dict(row) -> dict:
    return {
        "id": row["seq"],
        "action": row["action"],
        "mode": row["mode"],
        "remaining": row["remaining"],
        "status": row["status"],
        "error_code": row["error_code"],
        "delay_seconds": row["delay_seconds"],
    }


def apply_faults(store: Store, action: str) -> FaultOutcome:
    """Consume the oldest pending fault of ``action`` (case-insensitive) and act on it."""
    with store.transaction() as db:
        row = db.execute(
            "SELECT * FROM faults WHERE lower(action) = lower(?) AND remaining > 0"
            " ORDER BY seq LIMIT 1",
            (action,),
        ).fetchone()
        if row is None:
            return FaultOutcome()
        db.execute("UPDATE faults SET remaining = remaining - 1 WHERE seq = ?", (row["seq"],))
        db.execute("DELETE FROM faults WHERE remaining <= 0")
    if row["mode"] == "delay":
        time.sleep(float(row["delay_seconds"] or 1.0))
        return FaultOutcome()
    if row["mode"] == "job_error":
        return FaultOutcome(job_error=True)
    raise CloudError(
        int(row["status"] or 500),
        style_of(action),
        row["error_code"] or "SIM.0500",
        f"Injected fault: {action} failed.",
    )
