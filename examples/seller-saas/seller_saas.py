#!/usr/bin/env python3
"""A reference seller application for the Mercato SaaS seller interface v1.

Copy it, keep the protocol half (authentication, idempotency, signed answers) and
replace the tenant half with your product. Standard library only, one file, so it runs
anywhere Python 3.11 does:

    python seller_saas.py --host 127.0.0.1 --port 8300 \\
        --access-key ak_… --secret … --db var/seller-saas.sqlite3

Endpoints:

    POST /saas            the interface (see docs/seller-saas-interface.md)
    GET  /tenants/<id>/   the tenant's front end (a welcome page); /admin/ beneath it
    GET  /healthz         liveness
    GET|POST /_faults     fault injection for tests, loopback clients only

What it shows:

* every request is authenticated before anything else: HMAC-SHA256 signature over
  access key + nonce + timestamp + SHA-256 of the raw body, a timestamp within 60 s of
  our clock, and a nonce never seen in the last 5 minutes (kept in SQLite, so a restart
  does not reopen the replay window);
* newInstance is idempotent on (orderId, orderLineId) through a UNIQUE constraint, so
  retries and concurrent duplicates get the same instanceId and one tenant;
* the tenant is created in the background; queryInstance answers 000004 until it is;
* every answer, refusals included, carries a Body-Sign bound to the request's nonce;
* after the purchase: refreshInstance moves the expiry, updateInstanceStatus freezes
  (the admin page refuses sign-in, the front end says so) and unfreezes,
  upgradeInstance changes the specification and quantity, releaseInstance deletes the
  tenant; each answers 000000 again when repeated (Mercato retries), 000003 for an
  unknown or released instance (a repeated release: 000000).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ENDPOINT_PATH = "/saas"
ACCESS_KEY_HEADER = "X-Mercato-Access-Key"
TIMESTAMP_TOLERANCE_MS = 60_000
NONCE_TTL_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024
HANG_SECONDS = 3600  # "never" answers: longer than any caller's timeout

SUCCESS = "000000"
AUTHENTICATION_FAILED = "000001"
BAD_PARAMETERS = "000002"
NO_SUCH_INSTANCE = "000003"
PROCESSING = "000004"
INTERNAL_ERROR = "000005"

FAULTS = ("none", "bad-signature", "hang", "error")
CHARGING_MODES = ("yearly_monthly", "pay_per_use", "one_time")
PERIOD_UNITS = ("month", "year")
NONCE_RE = re.compile(r"[0-9a-f]{64}")
TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")
TENANT_PATH_RE = re.compile(r"^/tenants/(?P<id>[0-9a-f]{32})/(?P<admin>admin/)?$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    access_key TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    seen_at    REAL NOT NULL,
    PRIMARY KEY (access_key, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_seen_at ON nonces (seen_at);
CREATE TABLE IF NOT EXISTS instances (
    instance_id        TEXT PRIMARY KEY,
    order_id           TEXT NOT NULL,
    order_line_id      TEXT NOT NULL,
    business_id        TEXT NOT NULL,
    product_id         TEXT NOT NULL,
    specification_id   TEXT NOT NULL,
    specification_name TEXT,
    customer_id        TEXT NOT NULL,
    customer_name      TEXT,
    charging_mode      TEXT NOT NULL,
    period_unit        TEXT,
    period_count       INTEGER,
    quantity           INTEGER NOT NULL,
    expire_time        TEXT,
    test_flag          TEXT NOT NULL,
    state              TEXT NOT NULL,      -- creating | running | released
    frozen             INTEGER NOT NULL DEFAULT 0,
    ready_after        REAL NOT NULL,      -- when the background creation may finish
    user_name          TEXT,
    password           TEXT,               -- generated once when the tenant is created
    created_at         REAL NOT NULL,
    updated_at         REAL NOT NULL,
    UNIQUE (order_id, order_line_id)
);
CREATE TABLE IF NOT EXISTS operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    activity    TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          REAL NOT NULL
);
"""


# -- logs ------------------------------------------------------------------------------

_log_lock = threading.Lock()


def log(event: str, level: str = "info", **fields: Any) -> None:
    """One JSON object a line on stdout. Callers never pass a password or a secret."""
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        **fields,
    }
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# -- signing ---------------------------------------------------------------------------


def sign(secret: str, access_key: str, nonce: str, timestamp: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, access_key + nonce + timestamp + hex(SHA-256(body))))."""
    canonical = access_key + nonce + timestamp + hashlib.sha256(body).hexdigest()
    return hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def body_sign_header(secret: str, access_key: str, nonce: str, timestamp: str, body: bytes) -> str:
    return (
        f'sign_type="HMAC-SHA256", signature="{sign(secret, access_key, nonce, timestamp, body)}"'
    )


# -- storage ---------------------------------------------------------------------------


class Store:
    """SQLite, one short connection per operation; writes take the lock up front
    (BEGIN IMMEDIATE), so concurrent requests serialise instead of deadlocking."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.path.exists(path):
            # it holds tenant passwords: readable by this user only (keep the directory
            # private too, for SQLite's -wal and -shm files beside it)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = self.connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    @contextlib.contextmanager
    def transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def remember_nonce(self, access_key: str, nonce: str, now: float) -> bool:
        """Record a nonce; False if it was already seen within NONCE_TTL_SECONDS."""
        with self.transaction(write=True) as conn:
            conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_TTL_SECONDS,))
            try:
                conn.execute(
                    "INSERT INTO nonces (access_key, nonce, seen_at) VALUES (?, ?, ?)",
                    (access_key, nonce, now),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def create_instance(self, fields: dict[str, Any], ready_after: float, now: float) -> str:
        """The instance of (orderId, orderLineId), created by the first request only."""
        with self.transaction(write=True) as conn:
            conn.execute(
                """
                INSERT INTO instances (
                    instance_id, order_id, order_line_id, business_id, product_id,
                    specification_id, specification_name, customer_id, customer_name,
                    charging_mode, period_unit, period_count, quantity, expire_time,
                    test_flag, state, ready_after, created_at, updated_at
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?)
                ON CONFLICT (order_id, order_line_id) DO NOTHING
                """,
                (
                    uuid.uuid4().hex,
                    fields["orderId"],
                    fields["orderLineId"],
                    fields["businessId"],
                    fields["productId"],
                    fields["specificationId"],
                    fields.get("specificationName"),
                    fields["customerId"],
                    fields.get("customerName"),
                    fields["chargingMode"],
                    fields.get("periodUnit"),
                    fields.get("periodCount"),
                    fields["quantity"],
                    fields.get("expireTime"),
                    fields.get("testFlag") or "0",
                    ready_after,
                    now,
                    now,
                ),
            )
            row = conn.execute(
                "SELECT instance_id FROM instances WHERE order_id = ? AND order_line_id = ?",
                (fields["orderId"], fields["orderLineId"]),
            ).fetchone()
            return str(row["instance_id"])

    def get(self, instance_id: str) -> sqlite3.Row | None:
        with self.transaction() as conn:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            return row

    def update_live(
        self, instance_id: str, activity: str, detail: dict[str, Any], **columns: Any
    ) -> bool:
        """Change a live (not released) instance and record the operation; False if none."""
        assignments = ", ".join(f"{name} = ?" for name in columns)
        now = time.time()
        with self.transaction(write=True) as conn:
            cursor = conn.execute(
                f"UPDATE instances SET {assignments}, updated_at = ? "  # noqa: S608 - fixed column names
                "WHERE instance_id = ? AND state != 'released'",
                (*columns.values(), now, instance_id),
            )
            if cursor.rowcount == 0:
                return False
            conn.execute(
                "INSERT INTO operations (instance_id, activity, detail, at) VALUES (?, ?, ?, ?)",
                (instance_id, activity, json.dumps(detail, sort_keys=True), now),
            )
        return True

    def release(self, instance_id: str, detail: dict[str, Any]) -> bool | None:
        """True when released now, False when it already was, None when unknown."""
        now = time.time()
        with self.transaction(write=True) as conn:
            row = conn.execute(
                "SELECT state FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is None:
                return None
            if row["state"] == "released":
                return False
            # the tenant is deleted: its sign-in goes with it (the row stays, so that a
            # repeated release answers 000000 and a query 000003)
            conn.execute(
                "UPDATE instances SET state = 'released', password = NULL, updated_at = ? "
                "WHERE instance_id = ?",
                (now, instance_id),
            )
            conn.execute(
                "INSERT INTO operations (instance_id, activity, detail, at) VALUES (?, ?, ?, ?)",
                (instance_id, "releaseInstance", json.dumps(detail, sort_keys=True), now),
            )
        return True

    def instances_due(self, now: float) -> list[sqlite3.Row]:
        with self.transaction() as conn:
            return list(
                conn.execute(
                    "SELECT instance_id, customer_id, customer_name FROM instances "
                    "WHERE state = 'creating' AND ready_after <= ?",
                    (now,),
                )
            )

    def next_due(self) -> float | None:
        with self.transaction() as conn:
            (due,) = conn.execute(
                "SELECT min(ready_after) FROM instances WHERE state = 'creating'"
            ).fetchone()
            return None if due is None else float(due)

    def finish_creation(self, instance_id: str, user_name: str, password: str) -> bool:
        with self.transaction(write=True) as conn:
            cursor = conn.execute(
                "UPDATE instances SET state = 'running', user_name = ?, password = ?, "
                "updated_at = ? WHERE instance_id = ? AND state = 'creating'",
                (user_name, password, time.time(), instance_id),
            )
            return cursor.rowcount == 1


# -- the tenant side: replace with your product --------------------------------------


def user_name_for(customer_id: str, customer_name: str | None) -> str:
    """An administrator login derived from the buyer: ``acme_corp_admin``."""
    base = re.sub(r"[^a-z0-9]+", "_", (customer_name or customer_id).lower()).strip("_")
    return f"{(base or 'tenant')[:24]}_admin"


def new_password() -> str:
    """16 characters with every class a typical password policy asks for."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        candidate = (
            "".join(secrets.choice(alphabet) for _ in range(14)) + "#" + secrets.choice("23456789")
        )
        if any(c.islower() for c in candidate) and any(c.isupper() for c in candidate):
            return candidate


class Provisioner(threading.Thread):
    """Creates tenants in the background: the seller side of 'asynchronous creation'.

    It works from the database, so a tenant whose creation a restart interrupted is
    finished by the next process. newInstance wakes it; otherwise it sleeps until the
    next tenant is due, and looks again every few seconds for rows other replicas wrote.
    """

    idle_seconds = 5.0

    def __init__(self, store: Store, stopping: threading.Event) -> None:
        super().__init__(name="provisioner", daemon=True)
        self.store = store
        self.stopping = stopping
        self.woken = threading.Event()

    def wake(self) -> None:
        self.woken.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.woken.clear()
            wait = self.idle_seconds
            try:
                self.create_due()
                next_due = self.store.next_due()
                if next_due is not None:
                    wait = min(max(next_due - time.time(), 0.01), self.idle_seconds)
            except Exception as exc:  # try again later; the rows stay 'creating'
                log("tenant.creation_failed", level="error", error=repr(exc))
            self.woken.wait(wait)

    def create_due(self) -> None:
        for row in self.store.instances_due(time.time()):
            user_name = user_name_for(row["customer_id"], row["customer_name"])
            if self.store.finish_creation(row["instance_id"], user_name, new_password()):
                log("tenant.created", instance_id=row["instance_id"], user_name=user_name)


# -- the protocol side ---------------------------------------------------------------


class BadParameter(Exception):
    pass


def _string(
    body: dict[str, Any], name: str, required: bool = True, max_length: int = 256
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadParameter(f"{name} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadParameter(f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise BadParameter(f"{name} is longer than {max_length} characters")
    return value


def _integer(body: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadParameter(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadParameter(f"{name} must be a positive integer")
    return value


def _choice(
    body: dict[str, Any], name: str, choices: tuple[str, ...], required: bool = True
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadParameter(f"{name} is required")
        return None
    if value not in choices:
        raise BadParameter(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _time(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = _string(body, name, required=required, max_length=64)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(
            f"{name} must be an RFC 3339 time such as 2026-01-31T16:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise BadParameter(f"{name} must carry a time zone (Z)")
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _test_flag(body: dict[str, Any]) -> str:
    return _choice(body, "testFlag", ("0", "1"), required=False) or "0"


class SellerApp:
    """Everything but HTTP: authentication, the six activities, faults."""

    def __init__(
        self,
        keys: dict[str, str],
        store: Store,
        public_url: str,
        provision_delay: float,
        fault: str = "none",
    ) -> None:
        self.keys = keys  # access key -> secret; several keys allow rotation
        self.store = store
        self.public_url = public_url.rstrip("/")
        self.provision_delay = provision_delay
        self.fault = fault
        self.stopping = threading.Event()
        self.provisioner: Provisioner | None = None

    # authentication --------------------------------------------------------------

    def authenticate(self, query: dict[str, str], access_key: str, body: bytes) -> str | None:
        """None when the request is authentic, else why not (for our log, not the caller)."""
        secret = self.keys.get(access_key)
        if secret is None:
            return "unknown access key"
        signature = query.get("signature", "")
        timestamp = query.get("timestamp", "")
        nonce = query.get("nonce", "")
        if not (signature and timestamp and nonce):
            return "signature, timestamp and nonce are required"
        if not TIMESTAMP_RE.fullmatch(timestamp):
            return "timestamp is not unix milliseconds"
        if not NONCE_RE.fullmatch(nonce):
            return "nonce is not 64 lowercase hex characters"
        expected = sign(secret, access_key, nonce, timestamp, body)
        if not hmac.compare_digest(expected, signature.lower()):
            return "signature does not verify"
        now = time.time()
        if abs(now * 1000 - int(timestamp)) > TIMESTAMP_TOLERANCE_MS:
            return "timestamp outside the 60 s window"
        # last, so that forged or stale requests cannot fill the table
        if not self.store.remember_nonce(access_key, nonce, now):
            return "nonce replayed"
        return None

    def answer_secret(self, access_key: str) -> str | None:
        secret = self.keys.get(access_key)
        if secret is not None and self.fault == "bad-signature":
            return "not-" + secret
        return secret

    # activities ------------------------------------------------------------------

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        activity = body.get("activity")
        handler = {
            "newInstance": self.new_instance,
            "queryInstance": self.query_instance,
            "refreshInstance": self.refresh_instance,
            "updateInstanceStatus": self.update_instance_status,
            "upgradeInstance": self.upgrade_instance,
            "releaseInstance": self.release_instance,
        }.get(activity if isinstance(activity, str) else "")
        if handler is None:
            return result(BAD_PARAMETERS, f"activity {str(activity)[:64]!r} is not supported")
        try:
            return handler(body)
        except BadParameter as exc:
            return result(BAD_PARAMETERS, str(exc))

    def new_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = {
            "businessId": _string(body, "businessId"),
            "orderId": _string(body, "orderId"),
            "orderLineId": _string(body, "orderLineId"),
            "productId": _string(body, "productId"),
            "specificationId": _string(body, "specificationId"),
            "specificationName": _string(body, "specificationName", required=False),
            "customerId": _string(body, "customerId"),
            "customerName": _string(body, "customerName", required=False),
            "chargingMode": _choice(body, "chargingMode", CHARGING_MODES),
            "periodUnit": _choice(body, "periodUnit", PERIOD_UNITS, required=False),
            "periodCount": _integer(body, "periodCount", required=False),
            "quantity": _integer(body, "quantity"),
            "expireTime": _time(body, "expireTime", required=False),
            "testFlag": _test_flag(body),
        }
        if fields["chargingMode"] == "yearly_monthly":
            if fields["periodUnit"] is None:
                raise BadParameter("periodUnit is required when chargingMode is yearly_monthly")
            if fields["periodCount"] is None:
                raise BadParameter("periodCount is required when chargingMode is yearly_monthly")
        now = time.time()
        instance_id = self.store.create_instance(fields, now + self.provision_delay, now)
        if self.provisioner is not None:
            self.provisioner.wake()
        return result(SUCCESS, "success", instanceId=instance_id)

    def query_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = _string(body, "instanceId")
        _test_flag(body)
        row = self.store.get(str(instance_id))
        if row is None or row["state"] == "released":
            return result(NO_SUCH_INSTANCE, "no such instance")
        if row["state"] != "running":
            return result(PROCESSING, "the tenant is being created")
        front_end = f"{self.public_url}/tenants/{row['instance_id']}/"
        return result(
            SUCCESS,
            "success",
            instanceId=row["instance_id"],
            appInfo={
                "frontEndUrl": front_end,
                "adminUrl": front_end + "admin/",
                "userName": row["user_name"],
                "password": row["password"],
            },
        )

    def refresh_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = _string(body, "instanceId")
        order_id = _string(body, "orderId")
        order_line_id = _string(body, "orderLineId")
        expire_time = _time(body, "expireTime")
        detail = {"orderId": order_id, "orderLineId": order_line_id, "expireTime": expire_time}
        if not self.store.update_live(
            str(instance_id), "refreshInstance", detail, expire_time=expire_time
        ):
            return result(NO_SUCH_INSTANCE, "no such instance")
        return result(SUCCESS, "success")

    def update_instance_status(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = _string(body, "instanceId")
        status = _choice(body, "status", ("FREEZE", "UNFREEZE"))
        frozen = 1 if status == "FREEZE" else 0
        if not self.store.update_live(
            str(instance_id), "updateInstanceStatus", {"status": status}, frozen=frozen
        ):
            return result(NO_SUCH_INSTANCE, "no such instance")
        return result(SUCCESS, "success")

    def upgrade_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = _string(body, "instanceId")
        detail = {
            "orderId": _string(body, "orderId"),
            "orderLineId": _string(body, "orderLineId"),
            "specificationId": _string(body, "specificationId"),
            "quantity": _integer(body, "quantity"),
        }
        if not self.store.update_live(
            str(instance_id),
            "upgradeInstance",
            detail,
            specification_id=detail["specificationId"],
            quantity=detail["quantity"],
        ):
            return result(NO_SUCH_INSTANCE, "no such instance")
        return result(SUCCESS, "success")

    def release_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = _string(body, "instanceId")
        order_id = _string(body, "orderId", required=False)
        released = self.store.release(str(instance_id), {"orderId": order_id})
        if released is None:
            return result(NO_SUCH_INSTANCE, "no such instance")
        # releasing twice is not an error: Mercato retries when an answer is lost
        return result(SUCCESS, "success")


def result(code: str, message: str, **data: Any) -> dict[str, Any]:
    return {"resultCode": code, "resultMsg": message, **data}


# -- HTTP ------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: SellerServer
    protocol_version = "HTTP/1.1"
    server_version = "seller-saas/1"
    timeout = 30  # an idle keep-alive connection gives its thread back after this
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed ACK

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # every answer is logged once, as a "request" event, by the handler itself

    def log_message(self, format: str, *args: Any) -> None:
        log("http", level="warning", client=self.client_address[0], message=format % args)

    @property
    def app(self) -> SellerApp:
        return self.server.app

    def send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.send(status, body, "application/json;charset=utf-8", headers)

    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback
        except ValueError:
            return False

    # GET ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self.send_json(200, {"status": "ok"})
        elif path == "/_faults" and self.is_loopback():
            self.send_json(200, {"fault": self.app.fault})
        elif match := TENANT_PATH_RE.match(path):
            self.tenant_page(match.group("id"), admin=bool(match.group("admin")))
        else:
            self.send_json(404, {"error": "not found"})

    def tenant_page(self, instance_id: str, admin: bool) -> None:
        row = self.app.store.get(instance_id)
        if row is None or row["state"] != "running":
            self.send(
                404,
                b"<!doctype html><title>Not found</title><p>No such tenant.</p>\n",
                "text/html;charset=utf-8",
            )
            return
        tenant = html.escape(row["customer_name"] or row["customer_id"])
        if admin and row["frozen"]:
            # a frozen tenant keeps its data, but nobody signs in until it is unfrozen
            self.send(
                403,
                f"<!doctype html><title>Frozen</title><p>The tenant of {tenant} is frozen: "
                f"its subscription must be renewed before anyone signs in.</p>\n".encode(),
                "text/html;charset=utf-8",
            )
            return
        title = f"Administration of {tenant}" if admin else f"Welcome to {tenant}"
        notice = "<p><strong>This tenant is frozen.</strong></p>" if row["frozen"] else ""
        page = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{notice}"
            f"<p>Specification {html.escape(row['specification_id'])}, "
            f"quantity {int(row['quantity'])}, expires {html.escape(row['expire_time'] or 'never')}.</p>"
            f"</body></html>\n"
        )
        self.send(200, page.encode("utf-8"), "text/html;charset=utf-8")

    do_HEAD = do_GET

    # POST --------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_faults":
            self.set_fault()
        elif path == ENDPOINT_PATH:
            self.interface()
        else:
            self.close_connection = True  # the body was not read
            self.send_json(404, {"error": "not found"})

    def read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self.send_json(411, {"error": "Content-Length required"})
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self.send_json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(int(length))

    def set_fault(self) -> None:
        if not self.is_loopback():
            self.close_connection = True
            self.send_json(403, {"error": "fault injection is accepted from loopback only"})
            return
        raw = self.read_body()
        if raw is None:
            return
        try:
            fault = json.loads(raw).get("fault")
        except (ValueError, AttributeError):
            fault = None
        if fault not in FAULTS:
            self.send_json(400, {"error": f"fault must be one of {', '.join(FAULTS)}"})
            return
        self.app.fault = fault
        log("fault.set", fault=fault)
        self.send_json(200, {"fault": fault})

    def interface(self) -> None:
        started = time.monotonic()
        raw = self.read_body()
        if raw is None:
            return
        fault = self.app.fault
        if fault == "hang":
            log("fault.hang", client=self.client_address[0])
            self.app.stopping.wait(HANG_SECONDS)
            self.close_connection = True
            return
        query = {name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()}
        access_key = self.headers.get(ACCESS_KEY_HEADER, "")
        activity = "-"
        instance_id = None
        refused = self.app.authenticate(query, access_key, raw)
        if refused is not None:
            answer = result(AUTHENTICATION_FAILED, "authentication failed")
        elif fault == "error":
            answer = result(INTERNAL_ERROR, "internal error (injected fault)")
        else:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None
            if not isinstance(body, dict):
                answer = result(BAD_PARAMETERS, "body must be a JSON object")
            else:
                activity = str(body.get("activity"))[:64]
                try:
                    answer = self.app.handle(body)
                except Exception as exc:  # answer 000005 so Mercato retries later
                    log("activity.failed", level="error", activity=activity, error=repr(exc))
                    answer = result(INTERNAL_ERROR, "internal error")
                instance_id = answer.get("instanceId") or body.get("instanceId")
        payload = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {}
        secret = self.app.answer_secret(access_key)
        if secret is not None:  # an unknown key gets an unsigned refusal
            headers["Body-Sign"] = body_sign_header(
                secret, access_key, query.get("nonce", ""), query.get("timestamp", ""), payload
            )
        self.send(200, payload, "application/json;charset=utf-8", headers)
        log(
            "request",
            activity=activity,
            result_code=answer["resultCode"],
            instance_id=instance_id if isinstance(instance_id, str) else None,
            refused=refused,
            fault=fault if fault != "none" else None,
            client=self.client_address[0],
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )


class SellerServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging request must not keep the process alive
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SellerApp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)


# -- command line --------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reference seller application for the Mercato SaaS seller interface v1."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8300, help="port to listen on (0: any free port)"
    )
    parser.add_argument(
        "--access-key",
        default=os.environ.get("SELLER_ACCESS_KEY"),
        help="the access key Mercato issued (default: $SELLER_ACCESS_KEY)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SELLER_SECRET"),
        help="its secret (default: $SELLER_SECRET; prefer the variable, a flag shows in ps)",
    )
    parser.add_argument("--db", default="var/seller-saas.sqlite3", help="SQLite file")
    parser.add_argument(
        "--provision-delay",
        type=float,
        default=1.0,
        help="seconds a tenant takes to create (queryInstance answers 000004 meanwhile)",
    )
    parser.add_argument(
        "--public-url",
        help="base URL buyers reach this app at (default: http://<host>:<port>)",
    )
    parser.add_argument("--fault", choices=FAULTS, default="none", help="misbehave, for tests")
    args = parser.parse_args(argv)
    if not args.access_key or not args.secret:
        parser.error("an access key and a secret are required (--access-key/--secret or env)")
    if args.provision_delay < 0:
        parser.error("--provision-delay must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.db)
    app = SellerApp(
        keys={args.access_key: args.secret},
        store=store,
        public_url="",
        provision_delay=args.provision_delay,
        fault=args.fault,
    )
    server = SellerServer((args.host, args.port), app)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown_host = f"[{host}]" if ":" in host else host
    app.public_url = (args.public_url or f"http://{shown_host}:{port}").rstrip("/")
    provisioner = app.provisioner = Provisioner(store, app.stopping)
    provisioner.start()

    def stop(signum: int, _frame: Any) -> None:
        log("stopping", signal=signal.Signals(signum).name)
        app.stopping.set()
        provisioner.wake()
        # shutdown() waits for serve_forever, which runs in this (the main) thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(
        "listening",
        url=f"http://{shown_host}:{port}{ENDPOINT_PATH}",
        host=host,
        port=port,
        access_key=args.access_key,
        db=os.path.abspath(args.db),
        provision_delay=args.provision_delay,
        fault=args.fault,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.stopping.set()
        provisioner.wake()
        server.server_close()
        provisioner.join(timeout=5)
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
