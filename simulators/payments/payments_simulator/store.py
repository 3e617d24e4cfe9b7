"""SQLite state of the simulated provider: tokens, saved cards, charges, refunds and
injected delays.

One connection shared by every request thread behind one lock, as the cloud simulator
does: a handful of callers, and one writer keeps each read-modify-write atomic. A
charge or refund is committed before its answer is delayed, so a caller that gave up
finds it by its key, and a restart keeps everything.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, number TEXT NOT NULL, brand TEXT NOT NULL, exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (
    id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, token TEXT NOT NULL, number TEXT NOT NULL,
    brand TEXT NOT NULL, exp_month INTEGER NOT NULL, exp_year INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    number TEXT NOT NULL, brand TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
    status TEXT NOT NULL, decline_code TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, charge TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, failure_code TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_charge ON refunds (charge);
CREATE TABLE IF NOT EXISTS delays (
    id INTEGER PRIMARY KEY AUTOINCREMENT, delay_seconds REAL NOT NULL, remaining INTEGER
);
"""


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Store:
    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if path != ":memory:":
                self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        with self._lock:
            row = self._connection.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._connection.execute(sql, params).fetchall()]

    # -- injected delays ----------------------------------------------------------------

    def add_delay(self, delay_seconds: float, count: int | None) -> dict[str, Any]:
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO delays (delay_seconds, remaining) VALUES (?, ?)",
                (delay_seconds, count),
            )
        return {"id": cursor.lastrowid, "delay_seconds": delay_seconds, "count": count}

    def take_delay(self) -> float:
        """How long the next answer of a charge, lookup or refund waits (0: none); a
        delay with a count is used up one call at a time."""
        with self.transaction() as connection:
            row = connection.execute(
                "SELECT id, delay_seconds, remaining FROM delays ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return 0.0
            if row["remaining"] is not None:
                if row["remaining"] <= 1:
                    connection.execute("DELETE FROM delays WHERE id = ?", (row["id"],))
                else:
                    connection.execute(
                        "UPDATE delays SET remaining = remaining - 1 WHERE id = ?", (row["id"],)
                    )
            return float(row["delay_seconds"])

    def delays(self) -> list[dict[str, Any]]:
        return [
            {"id": row["id"], "delay_seconds": row["delay_seconds"], "count": row["remaining"]}
            for row in self.all("SELECT * FROM delays ORDER BY id")
        ]

    def clear_delays(self) -> None:
        with self.transaction() as connection:
            connection.execute("DELETE FROM delays")


def now() -> float:
    return time.time()
