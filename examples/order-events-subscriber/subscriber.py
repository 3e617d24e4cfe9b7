#!/usr/bin/env python3
"""Receive Mercato's order events exactly once in effect: a standalone pika program.

::

    AMQP_URI=amqp://guest:guest@localhost:5672/ python subscriber.py \\
        --queue reports.orders --schemas ../../docs/asyncapi.yaml --db reports.sqlite3
    python subscriber.py --db reports.sqlite3 --dump          # what it has processed

It needs only pika, jsonschema and PyYAML: no nameko, no Mercato code. It

- binds its own durable queue to the ``orders.events`` topic exchange with the routing
  keys ``orders.order.*`` and ``orders.subscription.*`` (a queue declared ahead by
  ``mercato-declare-subscriber-queues`` is used as it is, quorum or classic);
- validates every message against the JSON Schema of its type and version, read from
  the published AsyncAPI document; a message that fails is parked (kept in the
  ``parked`` table with the reason, and logged), never retried forever;
- deduplicates by the envelope ``id``: the id and the work (here, appending the event
  to the ``order_events`` table) are committed in one SQLite transaction, and only then
  is the message acknowledged. A crash between the commit and the ack redelivers the
  message, which is then recognised as a duplicate and acknowledged without work;
- prints one JSON line per processed event on stdout (``id``, ``type``, ``version``,
  ``subject``, ``occurred_at``); logs are JSON lines on stderr;
- stops gracefully on SIGTERM or SIGINT: the message in hand is finished, the ones
  prefetched but not started go back to the queue.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pika
import yaml
from jsonschema import Draft7Validator
from pika.exceptions import (
    AMQPConnectionError,
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
)

EXCHANGE = "orders.events"
ROUTING_KEYS = ("orders.order.*", "orders.subscription.*")
DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
RECONNECT_MAX_SECONDS = 30.0
# broker replies after which retrying cannot help: wrong settings, not a passing outage
FATAL_REPLY_CODES = {403, 404, 406, 530}

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (   -- the dedupe record: one row per event id
    event_id TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_events (       -- the work: no unique key on purpose
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    envelope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parked (             -- messages that broke the contract
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    routing_key TEXT NOT NULL,
    message_id TEXT,
    reason TEXT NOT NULL,
    body BLOB NOT NULL,
    parked_at TEXT NOT NULL
);
"""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()  # noqa: UP017 - also runs on Python < 3.11


def log(level: str, message: str, **fields: Any) -> None:
    record = {"time": _now(), "level": level, "message": message, **fields}
    print(json.dumps(record, default=str), file=sys.stderr, flush=True)


# -- the contract --------------------------------------------------------------------


def load_schemas(path: Path) -> dict[tuple[Any, Any], Draft7Validator]:
    """One validator per (type, version), from the AsyncAPI document's messages."""
    document = yaml.safe_load(path.read_text())
    validators = {}
    for message in document["components"]["messages"].values():
        payload = message["payload"]
        key = (payload["properties"]["type"]["const"], payload["properties"]["version"]["const"])
        Draft7Validator.check_schema(payload)
        validators[key] = Draft7Validator(payload, format_checker=Draft7Validator.FORMAT_CHECKER)
    return validators


def contract_errors(validator: Draft7Validator, envelope: dict[str, Any]) -> str | None:
    """What breaks the contract, one clause per error with the field's path; None if
    nothing does."""
    errors = sorted(validator.iter_errors(envelope), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "; ".join(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(envelope)'}: {error.message}"
        for error in errors[:5]
    )


# -- the local store -----------------------------------------------------------------


class Store:
    def __init__(self, path: Path) -> None:
        # autocommit mode: every transaction below is an explicit BEGIN … COMMIT
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # committed means on disk
        self.db.executescript(SCHEMA)

    def process(self, envelope: dict[str, Any]) -> bool:
        """Record the event id and do the work in one transaction; False (and no work)
        when the id was recorded before: a duplicate."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            new = self.db.execute(
                "INSERT OR IGNORE INTO processed_events (event_id, processed_at) VALUES (?, ?)",
                (envelope["id"], _now()),
            ).rowcount
            if new:
                self.db.execute(
                    "INSERT INTO order_events "
                    "(event_id, type, version, subject, occurred_at, envelope) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        envelope["id"],
                        envelope["type"],
                        envelope["version"],
                        envelope["subject"],
                        envelope["occurred_at"],
                        json.dumps(envelope, sort_keys=True),
                    ),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return bool(new)

    def park(self, routing_key: str, message_id: str | None, reason: str, body: bytes) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO parked (routing_key, message_id, reason, body, parked_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (routing_key, message_id, reason, body, _now()),
            )

    def dump(self, table: str) -> list[dict[str, Any]]:
        self.db.row_factory = sqlite3.Row
        if table == "parked":
            rows = self.db.execute("SELECT * FROM parked ORDER BY seq").fetchall()
            return [{**dict(row), "body": row["body"].decode(errors="replace")} for row in rows]
        rows = self.db.execute(
            "SELECT seq, event_id AS id, type, version, subject, occurred_at, envelope "
            "FROM order_events ORDER BY seq"
        ).fetchall()
        return [{**dict(row), "envelope": json.loads(row["envelope"])} for row in rows]


# -- consuming -----------------------------------------------------------------------


class Subscriber:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.validators = load_schemas(args.schemas)
        self.known_types = {type_ for type_, _version in self.validators}
        self.store = Store(args.db)
        self.stopping = False
        self.processed = 0

    def stop(self, signum: int, _frame: Any) -> None:
        log("info", "stopping", signal=signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        delay = 1.0
        while not self.stopping:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.args.amqp_uri))
            except (ProbableAuthenticationError, ProbableAccessDeniedError) as exc:
                log("error", "the broker refused the credentials or the vhost", error=repr(exc))
                return 1
            except AMQPConnectionError as exc:
                if getattr(exc, "reply_code", None) in FATAL_REPLY_CODES:
                    log("error", "the broker refused the connection", error=repr(exc))
                    return 1
                log("warning", "broker not reachable; retrying", error=repr(exc), delay=delay)
                self._sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = 1.0
            try:
                self._consume(connection)
            except (ChannelClosedByBroker, ConnectionClosedByBroker) as exc:
                if exc.reply_code in FATAL_REPLY_CODES:
                    log("error", "the broker refused", code=exc.reply_code, error=exc.reply_text)
                    return 1
                log("warning", "lost the broker; reconnecting", error=repr(exc))
            except AMQPConnectionError as exc:
                log("warning", "lost the broker; reconnecting", error=repr(exc))
            finally:
                if connection.is_open:
                    connection.close()  # unacknowledged messages go back to the queue
        log("info", "stopped", processed=self.processed)
        return 0

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _declare(self, connection: pika.BlockingConnection):
        """The queue (durable; kept as it is when it was declared ahead), the exchange
        (Mercato's, checked) and the bindings."""
        channel = connection.channel()
        try:
            channel.queue_declare(self.args.queue, passive=True)
        except ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            channel = connection.channel()  # a refused passive declare closed the channel
            arguments = {"x-queue-type": "quorum"} if self.args.quorum else None
            channel.queue_declare(self.args.queue, durable=True, arguments=arguments)
            log(
                "warning",
                "declared the queue now: events published before were lost to it",
                queue=self.args.queue,
            )
        # Mercato declares its exchanges; a subscriber's own broker user may only check
        # that this one is there (mercato-create-subscriber, docs/events.md)
        channel.exchange_declare(EXCHANGE, exchange_type="topic", passive=True)
        for routing_key in self.args.routing_key or ROUTING_KEYS:
            channel.queue_bind(self.args.queue, EXCHANGE, routing_key=routing_key)
        channel.basic_qos(prefetch_count=self.args.prefetch)
        return channel

    def _consume(self, connection: pika.BlockingConnection) -> None:
        channel = self._declare(connection)
        log("info", "consuming", queue=self.args.queue, prefetch=self.args.prefetch)
        for method, properties, body in channel.consume(self.args.queue, inactivity_timeout=0.5):
            if self.stopping:
                break  # a message in hand but not started stays unacknowledged: requeued
            if method is None:
                continue
            self.handle(channel, method, properties, body)
        channel.cancel()

    def handle(self, channel, method, properties, body: bytes) -> None:
        message_id = properties.message_id
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            return self._park(channel, method, message_id, f"not JSON: {exc}", body)
        if not isinstance(envelope, dict):
            return self._park(channel, method, message_id, "not a JSON object", body)
        key = (envelope.get("type"), envelope.get("version"))
        validator = self.validators.get(key)
        if validator is None:
            if key[0] in self.known_types:
                # a version this program was not written for, published alongside one it
                # was: the one it knows carries the same fact
                log(
                    "warning",
                    "ignored: version not handled",
                    type=key[0],
                    version=key[1],
                    id=envelope.get("id"),
                )
                channel.basic_ack(method.delivery_tag)
                return None
            reason = f"unknown event type {key[0]!r} v{key[1]!r}: update --schemas?"
            return self._park(channel, method, message_id, reason, body)
        errors = contract_errors(validator, envelope)
        if errors:
            return self._park(channel, method, message_id, f"breaks its schema: {errors}", body)

        if self.store.process(envelope):
            self.processed += 1
            fields = ("id", "type", "version", "subject", "occurred_at")
            print(json.dumps({field: envelope[field] for field in fields}), flush=True)
            if self.processed == self.args.crash_before_ack:
                log("warning", "crashing before the ack, as asked", id=envelope["id"])
                os._exit(70)  # no cleanup, no ack: as if the process were killed here
        else:
            log(
                "info",
                "duplicate",
                id=envelope["id"],
                type=envelope["type"],
                redelivered=method.redelivered,
            )
        channel.basic_ack(method.delivery_tag)
        return None

    def _park(self, channel, method, message_id, reason: str, body: bytes) -> None:
        self.store.park(method.routing_key, message_id, reason, body)
        log(
            "error",
            "parked an invalid message",
            routing_key=method.routing_key,
            message_id=message_id,
            reason=reason,
        )
        channel.basic_ack(method.delivery_tag)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", help="your queue's name, e.g. reports.orders")
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file")
    parser.add_argument(
        "--schemas",
        type=Path,
        default=here.parents[1] / "docs" / "asyncapi.yaml",
        help="Mercato's AsyncAPI document (default: %(default)s)",
    )
    parser.add_argument(
        "--amqp-uri",
        default=os.environ.get("AMQP_URI", DEFAULT_AMQP_URI),
        help="the broker, vhost included (default: $AMQP_URI)",
    )
    parser.add_argument("--prefetch", type=int, default=20, help="default: %(default)s")
    parser.add_argument(
        "--routing-key",
        action="append",
        help=f"bind to this key on {EXCHANGE}; repeat it (default: {' and '.join(ROUTING_KEYS)})",
    )
    parser.add_argument(
        "--quorum",
        action="store_true",
        help="declare the queue as a quorum queue if it does not exist yet",
    )
    parser.add_argument(
        "--dump",
        nargs="?",
        const="events",
        choices=("events", "parked"),
        help="print the processed events (or the parked messages) as JSON lines and exit",
    )
    parser.add_argument(
        "--crash-before-ack",
        type=int,
        default=0,
        metavar="N",
        help="(for tests) exit abruptly after committing the Nth new event, before its ack",
    )
    args = parser.parse_args(argv)
    if args.dump is None and not args.queue:
        parser.error("--queue is required (unless --dump)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dump:
        for row in Store(args.db).dump(args.dump):
            print(json.dumps(row))
        return 0
    subscriber = Subscriber(args)
    signal.signal(signal.SIGTERM, subscriber.stop)
    signal.signal(signal.SIGINT, subscriber.stop)
    return subscriber.run()


if __name__ == "__main__":
    sys.exit(main())
