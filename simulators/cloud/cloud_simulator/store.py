"""SQLite state of the simulated cloud: accounts, IAM, resources, jobs, stacks.

One connection shared by every request thread behind one lock: the simulator serves a
handful of callers, and a single writer keeps every read-modify-write atomic without
thinking about SQLite's locking. WAL lets an operator read the file while it runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS clock (id INTEGER PRIMARY KEY CHECK (id = 1), offset_seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    domain_id TEXT PRIMARY KEY, domain_name TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL, quotas TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_keys (
    access_key TEXT PRIMARY KEY, secret_key TEXT NOT NULL, domain_id TEXT NOT NULL,
    agency_id TEXT,                 -- NULL: the account's IAM admin user
    security_token TEXT, expires_at REAL
);
CREATE TABLE IF NOT EXISTS agencies (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    trust_domain_id TEXT, trust_domain_name TEXT, duration TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE IF NOT EXISTS roles (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, display_name TEXT NOT NULL,
    type TEXT NOT NULL, description TEXT, policy TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    agency_id TEXT NOT NULL, project_id TEXT NOT NULL, role_id TEXT NOT NULL,
    PRIMARY KEY (agency_id, project_id, role_id)
);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, type TEXT NOT NULL, name TEXT,
    status TEXT NOT NULL, data TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_domain ON resources (domain_id, type);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, job_type TEXT NOT NULL, status TEXT NOT NULL,
    resource_type TEXT NOT NULL, resource_ids TEXT NOT NULL, fail_reason TEXT,
    outcome TEXT NOT NULL, due_at REAL NOT NULL, begin_at REAL NOT NULL, end_at REAL
);
CREATE TABLE IF NOT EXISTS kms_keys (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, alias TEXT NOT NULL, description TEXT,
    master_key BLOB NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, min_disk INTEGER NOT NULL, os TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stacks (
    id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT, status TEXT NOT NULL, status_message TEXT, deployment_id TEXT NOT NULL,
    template TEXT NOT NULL, vars_structure TEXT NOT NULL, agencies TEXT NOT NULL,
    outputs TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE IF NOT EXISTS stack_resources (
    stack_id TEXT NOT NULL, position INTEGER NOT NULL, logical_type TEXT NOT NULL,
    logical_name TEXT NOT NULL, index_key TEXT, physical_id TEXT, physical_name TEXT,
    status TEXT NOT NULL, status_message TEXT, attributes TEXT NOT NULL,
    PRIMARY KEY (stack_id, position)
);
CREATE TABLE IF NOT EXISTS stack_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, stack_id TEXT NOT NULL, resource_type TEXT,
    resource_name TEXT, physical_id TEXT, event_type TEXT NOT NULL, message TEXT NOT NULL,
    at REAL NOT NULL, elapsed_seconds INTEGER
);
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, mode TEXT NOT NULL,
    remaining INTEGER NOT NULL, status INTEGER, error_code TEXT, delay_seconds REAL
);
"""


class Store:
    """The database plus the simulator's own clock (real time plus an offset)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO clock (id, offset_seconds) VALUES (1, 0)")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: the lock keeps other threads out, BEGIN/COMMIT keeps it whole."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> None:
        with self.lock:
            self.db.execute(sql, args)

    # -- the clock: credentials expire by it; jobs and deployments run in real time ------

    def now(self) -> float:
        row = self.one("SELECT offset_seconds FROM clock WHERE id = 1")
        return time.time() + (row["offset_seconds"] if row else 0.0)

    def advance_clock(self, seconds: float) -> float:
        self.run("UPDATE clock SET offset_seconds = offset_seconds + ? WHERE id = 1", seconds)
        return self.now()

    # -- resources: one table for servers, volumes, vpcs, subnets, groups, rules, eips ---

    def insert_resource(
        self, rid: str, domain_id: str, rtype: str, name: str, status: str, data: dict
    ) -> None:
        self.run(
            "INSERT INTO resources (id, domain_id, type, name, status, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rid,
            domain_id,
            rtype,
            name,
            status,
            json.dumps(data),
            time.time(),
        )

    def resource(self, domain_id: str, rtype: str, rid: str) -> dict | None:
        row = self.one(
            "SELECT * FROM resources WHERE id = ? AND domain_id = ? AND type = ?",
            rid,
            domain_id,
            rtype,
        )
        return resource_dict(row) if row else None

    def created(self, domain_id: str, rtype: str, rid: str) -> dict:
        """A resource just inserted (so certainly there)."""
        resource = self.resource(domain_id, rtype, rid)
        assert resource is not None, rid
        return resource

    def resources(self, domain_id: str, rtype: str | None = None) -> list[dict]:
        if rtype is None:
            rows = self.all(
                "SELECT * FROM resources WHERE domain_id = ? ORDER BY created_at", domain_id
            )
        else:
            rows = self.all(
                "SELECT * FROM resources WHERE domain_id = ? AND type = ? ORDER BY created_at",
                domain_id,
                rtype,
            )
        return [resource_dict(row) for row in rows]

    def update_resource(
        self, rid: str, status: str | None = None, data: dict | None = None
    ) -> None:
        if status is not None:
            self.run("UPDATE resources SET status = ? WHERE id = ?", status, rid)
        if data is not None:
            self.run("UPDATE resources SET data = ? WHERE id = ?", json.dumps(data), rid)

    def delete_resource(self, rid: str) -> None:
        self.run("DELETE FROM resources WHERE id = ?", rid)


def resource_dict(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"],
        "domain_id": row["domain_id"],
        "type": row["type"],
        "name": row["name"],
        "status": row["status"],
        "data": json.loads(row["data"]),
        "created_at": row["created_at"],
    }
