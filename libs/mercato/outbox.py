"""The transactional outbox, the inbox and the dead-letter table, and the relay.

Every service's metadata gets three tables from ``add_messaging_tables``:

- ``outbox_messages``: events committed with the state change they announce;
- ``inbox_messages``: (handler, event id) of every event a handler has applied;
- ``dead_letters``: events a handler gave up on, kept for an operator.

``OutboxRelay`` publishes the outbox to the source's nameko event exchange
(``<source>.events``, routing key = event type) with publisher confirms, so nameko
``@event_handler`` and plain AMQP subscribers both receive it. It runs right after a
commit that emitted events (``wake``) and sweeps every few seconds for what a crash
left behind. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
replicas never publish the same row at the same time; a crash between publish and
mark publishes again (delivery is at least once, consumers deduplicate by event id).
Published rows are kept for a retention period, then deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import amqp
import eventlet
import kombu
import sqlalchemy as sa
from eventlet.queue import Empty, LightQueue
from kombu.utils.json import dumps as json_dumps
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY, PERSISTENT
from nameko.standalone.events import get_event_exchange
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from mercato import metrics
from mercato.channels import BrokerChannel
from mercato.contracts import Envelope

_log = logging.getLogger(__name__)

OUTBOX = "outbox_messages"
INBOX = "inbox_messages"
DEAD_LETTERS = "dead_letters"

BATCH_SIZE = 200
RETENTION = dt.timedelta(days=7)
PURGE_EVERY_SECONDS = 600.0
OBSERVE_EVERY_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 10.0
CONFIRM_TIMEOUT_SECONDS = 10.0
HEADER_PREFIX = "nameko"

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_Json = sa.JSON().with_variant(JSONB(), "postgresql")


def add_messaging_tables(metadata: sa.MetaData) -> None:
    """Declare the outbox, inbox and dead-letter tables in a service's metadata."""
    from mercato.db import UTCDateTime

    sa.Table(
        OUTBOX,
        metadata,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("headers", _Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Index("ix_outbox_messages_published_at_id", "published_at", "id"),
    )
    sa.Table(
        INBOX,
        metadata,
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        DEAD_LETTERS,
        metadata,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Index("ix_dead_letters_handler_event_id", "handler", "event_id"),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: Engine,
        metadata: sa.MetaData,
        service_name: str,
        amqp_uri: str,
        container_config: dict[str, Any],
        sweep_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self.table = metadata.tables[OUTBOX]
        # the relay's statements, built once (see mercato.db)
        self._insert = self.table.insert()
        self._select_pending = (
            sa.select(
                self.table.c.id, self.table.c.event_type, self.table.c.payload, self.table.c.headers
            )
            .where(self.table.c.published_at.is_(None))
            .order_by(self.table.c.id)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        )
        self._mark = (
            self.table.update()
            .where(self.table.c.id.in_(sa.bindparam("ids", expanding=True)))
            .values(published_at=sa.bindparam("published_at"))
        )
        self.dead_letters = metadata.tables[DEAD_LETTERS]
        self.service_name = service_name
        self.sweep_seconds = sweep_seconds
        self._config = container_config
        self._broker = ConfirmedPublisher(
            amqp_uri,
            ssl=container_config.get(AMQP_SSL_CONFIG_KEY),
            login_method=container_config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        self._exchanges: dict[str, kombu.Exchange] = {}
        self._wakeups: LightQueue = LightQueue()
        self._gt = None
        self._stopping = False
        self._last_purge = -PURGE_EVERY_SECONDS  # the first pass purges
        self._last_observed = -OBSERVE_EVERY_SECONDS  # the first pass observes

    # -- writing -----------------------------------------------------------------

    def add(self, session, envelope: Envelope, headers: dict[str, Any]) -> None:
        # one INSERT statement for every event, its values passed as parameters:
        # ``insert().values(...)`` built a new statement per event, whose cache key
        # SQLAlchemy then had to compute from the values each time
        session.execute(
            self._insert,
            {
                "event_id": envelope.id,
                "event_type": envelope.type,
                "payload": envelope.dump(),
                "headers": headers,
                "created_at": envelope.occurred_at,
            },
        )

    # -- the loop ----------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._gt = eventlet.spawn(self._run)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """End the loop once the batch in progress is published and marked (a batch
        cut short is published again by the next relay: at least once)."""
        gt, self._gt = self._gt, None
        if gt is None:
            self._broker.close()
            return
        self._stopping = True
        self.wake()
        try:
            with eventlet.Timeout(timeout):
                gt.wait()
        except eventlet.Timeout:
            _log.warning("outbox relay did not stop within %ss; killing it", timeout)
            gt.kill()
        self._broker.close()

    def kill(self) -> None:
        gt, self._gt = self._gt, None
        if gt is not None:
            gt.kill()
        self._broker.close()

    def wake(self) -> None:
        self._wakeups.put(None)

    def _run(self) -> None:
        self.wake()  # first pass at once: publish what a crash left behind
        while not self._stopping:
            try:
                self._wakeups.get(timeout=self.sweep_seconds)
            except Empty:
                pass
            while not self._wakeups.empty():  # one pass serves every wake so far
                self._wakeups.get_nowait()
            if self._stopping:
                return
            try:
                self.publish_pending()
            except Exception:
                # broker or database away: the rows stay, the next sweep retries them
                metrics.EVENT_PUBLISH_FAILURES.labels(self.service_name).inc()
                _log.exception("outbox relay pass failed; retrying in %ss", self.sweep_seconds)
            try:
                # after a failed pass too: a growing backlog is what the gauges are for
                self._observe_if_due()
                self._purge_if_due()
            except Exception:
                _log.exception("outbox gauges or purge failed; retrying in %ss", self.sweep_seconds)

    def publish_pending(self) -> int:
        """Publish unpublished rows in batches; return how many were published."""
        published = 0
        while not self._stopping:
            count = self._publish_batch()
            published += count
            if count < BATCH_SIZE:
                break
        return published

    def _publish_batch(self) -> int:
        """Publish one batch. On PostgreSQL the rows stay locked while they are
        published, so another replica's relay skips them. A SQLite file has one
        process, so nothing competes for its rows, and the process's one connection is
        handed back to the workers while the broker confirms."""
        hold_lock = self.engine.dialect.name != "sqlite"
        with self.engine.begin() as connection:
            rows = connection.execute(self._select_pending).all()
            if hold_lock:
                self._publish_rows(rows)
                self._mark_published(connection, rows)
        if rows and not hold_lock:
            self._publish_rows(rows)
            with self.engine.begin() as connection:
                self._mark_published(connection, rows)
        for row in rows:
            metrics.EVENTS_PUBLISHED.labels(self.service_name, row.event_type).inc()
        return len(rows)

    def _publish_rows(self, rows) -> None:
        self._broker.publish_confirmed([self._message(row) for row in rows])

    def _mark_published(self, connection, rows) -> None:
        if rows:
            connection.execute(
                self._mark, {"ids": [row.id for row in rows], "published_at": _now()}
            )

    def _message(self, row) -> OutgoingMessage:
        """The AMQP message nameko's event dispatcher would send for ``row``: a JSON
        body, the context in ``nameko.*`` headers, persistent."""
        payload = row.payload
        exchange = self._exchanges.get(payload["source"])
        if exchange is None:
            exchange = get_event_exchange(payload["source"], self._config)
            self._exchanges[payload["source"]] = exchange
        return OutgoingMessage(
            exchange=exchange,
            routing_key=row.event_type,
            message=amqp.Message(
                json_dumps(payload).encode(),
                content_type="application/json",
                content_encoding="utf-8",
                application_headers={
                    f"{HEADER_PREFIX}.{key}": value for key, value in row.headers.items()
                },
                delivery_mode=PERSISTENT,
                message_id=payload["id"],
                timestamp=int(time.time()),
                type=row.event_type,
            ),
        )

    def _observe_if_due(self) -> None:
        # every commit wakes the relay: counting the backlog each time would double
        # the database work of a busy service for gauges scraped every few seconds
        if time.monotonic() - self._last_observed >= OBSERVE_EVERY_SECONDS:
            self._last_observed = time.monotonic()
            self.observe()

    def observe(self) -> None:
        """Refresh the backlog, oldest-age and dead-letter gauges."""
        table = self.table
        with self.engine.connect() as connection:
            backlog, oldest = connection.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
                    table.c.published_at.is_(None)
                )
            ).one()
            dead = connection.execute(
                sa.select(sa.func.count()).select_from(self.dead_letters)
            ).scalar_one()
        metrics.OUTBOX_BACKLOG.labels(self.service_name).set(backlog)
        age = 0.0
        if oldest is not None:
            from mercato.clock import utc

            age = max(0.0, (_now() - utc(oldest)).total_seconds())
        metrics.OUTBOX_OLDEST_AGE.labels(self.service_name).set(age)
        metrics.DEAD_LETTERS.labels(self.service_name).set(dead)

    def _purge_if_due(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = time.monotonic()
        with self.engine.begin() as connection:
            connection.execute(
                self.table.delete().where(self.table.c.published_at < _now() - RETENTION)
            )


class OutgoingMessage:
    __slots__ = ("exchange", "message", "routing_key")

    def __init__(self, *, exchange: kombu.Exchange, routing_key: str, message: amqp.Message):
        self.exchange = exchange
        self.routing_key = routing_key
        self.message = message


class ConfirmedPublisher:
    """The relay's own broker channel, in confirm mode: a batch is published at once,
    then the broker's confirms for all of it are awaited together.

    nameko's ``Publisher`` waits for each message's confirm before sending the next,
    a round trip per event, and goes through kombu's producer pool and retry wrapper
    on every message. The relay is one green thread per process, so a connection it
    alone uses needs neither. A failure drops the connection; when a fresh one does
    not cure it (``publish_confirmed``), the rows stay unpublished and a later pass
    publishes them again.
    """

    def __init__(self, amqp_uri: str, *, ssl: Any = None, login_method: str | None = None):
        self._amqp_uri = amqp_uri
        self._ssl = ssl
        self._login_method = login_method
        self._channel: BrokerChannel | None = None
        self._next_tag = 1  # the broker numbers a confirm-mode channel's messages from 1
        self._unconfirmed: set[int] = set()
        self._refused: list[int] = []

    def publish_confirmed(self, messages: list[OutgoingMessage]) -> None:
        """Return once the broker has confirmed every message; raise otherwise.

        A connection kept since the last batch may have been cut meanwhile (a broker
        restart, a proxy's idle timeout) without a word; that shows only when it is
        used, so a batch that fails on a kept connection is sent once more on a fresh
        one rather than left for the next sweep. (Messages the broken connection did
        deliver go out twice: delivery is at least once.) A refusal is not retried.
        """
        if not messages:
            return
        kept = self._channel is not None
        try:
            self._publish_all(messages)
        except amqp.exceptions.MessageNacked:
            raise
        except Exception:
            if not kept:
                raise
            _log.info("outbox relay's broker connection was broken; publishing on a new one")
            self._publish_all(messages)

    def _publish_all(self, messages: list[OutgoingMessage]) -> None:
        try:
            broker = self._open_channel()
            for outgoing in messages:
                broker.declare(outgoing.exchange)
                self._unconfirmed.add(self._next_tag)
                self._next_tag += 1
                broker.channel.basic_publish(
                    outgoing.message,
                    exchange=outgoing.exchange.name,
                    routing_key=outgoing.routing_key,
                )
            while self._unconfirmed and not self._refused:
                broker.connection.drain_events(timeout=CONFIRM_TIMEOUT_SECONDS)
            if self._refused:
                raise amqp.exceptions.MessageNacked(
                    f"the broker refused {len(self._refused)} of {len(messages)} messages"
                )
        except BaseException:
            self.close()
            raise

    # The channel's confirm listeners see every ack and nack, including one that
    # arrives while the channel waits for something else (an exchange being declared).
    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed.difference_update(
                [tag for tag in self._unconfirmed if tag <= delivery_tag]
            )
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._refused.append(delivery_tag)

    def _open_channel(self) -> BrokerChannel:
        if self._channel is None:
            broker = BrokerChannel(
                self._amqp_uri, confirms=True, ssl=self._ssl, login_method=self._login_method
            )
            broker.channel.events["basic_ack"].add(self._on_ack)
            broker.channel.events["basic_nack"].add(self._on_nack)
            self._channel = broker
            self._unconfirmed.clear()
            self._refused.clear()
            self._next_tag = 1
        return self._channel

    def close(self) -> None:
        broker, self._channel = self._channel, None
        if broker is not None:
            broker.close()
