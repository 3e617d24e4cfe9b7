"""The transactional outbox, the inbox and the dead-letter table, and the relay.

Every service's metadata gets three tables from ``add_messaging_tables``:

- ``outbox_messages``: events committed with the state change they announce;
- ``inbox_messages``: (handler, event id) of every event a handler has applied;
- ``dead_letters``: events a handler gave up on before dead letters moved to the
  broker's dead-letter queues (``mercato.inbox``); kept for the rows it may hold.

``OutboxRelay`` publishes the outbox to the source's nameko event exchange
(``<source>.events``, routing key = event type) with publisher confirms, so nameko
``@event_handler`` and plain AMQP subscribers both receive it. It runs right after a
commit that emitted events (``wake``) and sweeps every few seconds for what a crash
left behind. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
replicas never publish the same row at the same time; a crash between publish and
mark publishes again (delivery is at least once, consumers deduplicate by event id).
Published rows are kept for a retention period, then deleted.

Events are published ``mandatory``, so the broker says when no queue took one
(``mercato_events_unroutable_total``). An event type no Mercato service handles may
go unrouted (outside subscribers bind what they want): its row is marked published.
One a Mercato service handles (``mercato.topology.EVENT_HANDLERS``) must not: its
handlers' queues were not declared (``mercato-declare-event-queues`` did not run). The
relay then declares them itself, leaves the row unpublished and publishes it again at
once, into the queue that now waits for the handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import eventlet
import kombu
import sqlalchemy as sa
from eventlet.queue import Empty, LightQueue
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.standalone.events import get_event_exchange
from sqlalchemy.engine import Engine

from mercato import metrics
from mercato.clock import utc
from mercato.contracts import Envelope
from mercato.tables import OUTBOX
from mercato.topology import CONSUMED_EVENT_TYPES, EVENT_HANDLERS
from mercato.transport import ConfirmedPublisher, OutgoingMessage, event_message

_log = logging.getLogger(__name__)

BATCH_SIZE = 200
RETENTION = dt.timedelta(days=7)
PURGE_EVERY_SECONDS = 600.0
OBSERVE_EVERY_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 10.0


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
        self.service_name = service_name
        self.sweep_seconds = sweep_seconds
        self._config = container_config
        self._amqp_uri = amqp_uri
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

    def add_many(self, session, items: list[tuple[Envelope, dict[str, Any]]]) -> None:
        """Many events with one statement (a sweep's batch): the driver sends their rows
        together instead of one round trip each."""
        session.execute(
            self._insert,
            [
                {
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "payload": envelope.dump(),
                    "headers": headers,
                    "created_at": envelope.occurred_at,
                }
                for envelope, headers in items
            ],
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
        retried = False
        while not self._stopping:
            count, held = self._publish_batch()
            published += count
            if held and not retried:
                retried = True  # their queues are declared now: publish them again at once
                continue
            if count < BATCH_SIZE:
                break
        return published

    def _publish_batch(self) -> tuple[int, int]:
        """Publish one batch. On PostgreSQL the rows stay locked while they are
        published, so another replica's relay skips them. A SQLite file has one
        process, so nothing competes for its rows, and the process's one connection is
        handed back to the workers while the broker confirms."""
        hold_lock = self.engine.dialect.name != "sqlite"
        with self.engine.begin() as connection:
            rows = connection.execute(self._select_pending).all()
            if hold_lock:
                published = self._publish_rows(rows)
                self._mark_published(connection, published)
        if rows and not hold_lock:
            published = self._publish_rows(rows)
            with self.engine.begin() as connection:
                self._mark_published(connection, published)
        if not rows:
            return 0, 0
        for row in published:
            metrics.EVENTS_PUBLISHED.labels(self.service_name, row.event_type).inc()
        return len(published), len(rows) - len(published)

    def _publish_rows(self, rows) -> list:
        """Publish ``rows``; return those that may be marked published (all but the
        unrouted ones a Mercato handler must receive)."""
        if not rows:
            return []
        returned = self._broker.publish_confirmed([self._message(row) for row in rows])
        if not returned:
            return list(rows)
        lost_types = set()
        for row in rows:
            if row.payload["id"] in returned:
                metrics.EVENTS_UNROUTABLE.labels(self.service_name, row.event_type).inc()
                if row.event_type in CONSUMED_EVENT_TYPES:
                    lost_types.add(row.event_type)
        if lost_types:
            _log.error(
                "no queue took %s, which Mercato services handle: declaring their queues "
                "and publishing again (run mercato-declare-event-queues before the services)",
                ", ".join(sorted(lost_types)),
            )
            self._declare_handler_queues(lost_types)
        return [
            row
            for row in rows
            if not (row.payload["id"] in returned and row.event_type in lost_types)
        ]

    def _declare_handler_queues(self, event_types: set[str]) -> None:
        with kombu.Connection(self._amqp_uri) as connection:
            channel = connection.channel()
            for handler in EVENT_HANDLERS:
                if handler.event_type in event_types:
                    exchange = kombu.Exchange(handler.exchange, type="topic", durable=True)
                    kombu.Queue(
                        handler.queue,
                        exchange=exchange,
                        routing_key=handler.event_type,
                        durable=True,
                    )(channel).declare()

    def _mark_published(self, connection, rows) -> None:
        if rows:
            connection.execute(
                self._mark, {"ids": [row.id for row in rows], "published_at": _now()}
            )

    def _message(self, row) -> OutgoingMessage:
        source = row.payload["source"]
        exchange = self._exchanges.get(source)
        if exchange is None:
            exchange = get_event_exchange(source, self._config)
            self._exchanges[source] = exchange
        return event_message(exchange, row.event_type, row.payload, row.headers)

    def _observe_if_due(self) -> None:
        # every commit wakes the relay: counting the backlog each time would double
        # the database work of a busy service for gauges scraped every few seconds
        if time.monotonic() - self._last_observed >= OBSERVE_EVERY_SECONDS:
            self._last_observed = time.monotonic()
            self.observe()

    def observe(self) -> None:
        """Refresh the backlog and oldest-age gauges."""
        table = self.table
        with self.engine.connect() as connection:
            backlog, oldest = connection.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
                    table.c.published_at.is_(None)
                )
            ).one()
        metrics.OUTBOX_BACKLOG.labels(self.service_name).set(backlog)
        age = 0.0
        if oldest is not None:
            age = max(0.0, (_now() - utc(oldest)).total_seconds())
        metrics.OUTBOX_OLDEST_AGE.labels(self.service_name).set(age)

    def _purge_if_due(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = time.monotonic()
        with self.engine.begin() as connection:
            connection.execute(
                self.table.delete().where(self.table.c.published_at < _now() - RETENTION)
            )
