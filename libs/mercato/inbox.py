"""Consuming events exactly once in effect: the inbox, bounded retries, dead letters.

::

    class OrdersService:
        name = "orders"
        db = Database(Base.metadata)

        @handles_event("billing.payment.succeeded")
        def on_payment_succeeded(self, event: Envelope) -> None:
            order = ...                   # apply the effect with self.db.session
            # no commit here: the wrapper commits the effect and the inbox row together

The wrapper loads the envelope and its ``data`` against the contract, records
``(handler, event id)`` in the inbox in the same transaction as the handler's effect,
and skips an event it has seen. A transient failure (database or broker away, a
timeout) is retried with exponential backoff, holding the message unacknowledged; a
permanent one, or the last attempt, writes a dead-letter row (and counts it) and
acknowledges. Only if even the dead letter cannot be written does the message go back
to the queue (``requeue_on_error``): a failure never silently drops an event.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import eventlet
import sqlalchemy as sa
from marshmallow import EXCLUDE
from marshmallow import ValidationError as SchemaError
from nameko.events import event_handler
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mercato import metrics
from mercato.contracts import Envelope, contract_for
from mercato.db import cached_insert
from mercato.errors import MercatoError, ServiceUnavailable
from mercato.tables import DEAD_LETTERS, INBOX

_log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    PoolTimeout,
    ServiceUnavailable,
    ConnectionError,
    socket.timeout,
    eventlet.Timeout,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def load_event(payload: dict[str, Any]) -> Envelope:
    """The envelope with its ``data`` loaded by the contract of its type and version.

    A consumer is a tolerant reader: a top-level field it does not know is ignored, so a
    producer may add an optional field within a version (docs/asyncapi.yaml says so).
    """
    envelope = Envelope.load(payload)
    contract = contract_for(envelope.type, envelope.version)
    data = contract.instance.load(envelope.data, unknown=EXCLUDE)
    return Envelope(**{**envelope.__dict__, "data": data})


def handles_event(
    event_type: str,
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 0.5,
    db_attr: str = "db",
    already_applied: Callable[[Any, Envelope], bool] | None = None,
    concerns: Callable[[Envelope], bool] | None = None,
) -> Callable:
    """Subscribe a service method to ``event_type`` (``<source>.<entity>.<fact>``).

    ``concerns(event)``, when given, is asked of the event alone: False means it is
    none of this handler's business (an order with nothing supervised, say), so it is
    acknowledged without an inbox row or a transaction and counted as ``ignored``.

    ``already_applied(service, event)``, when given, is asked first: True means the
    service's own state already shows the event's effect (another path applied it), so
    the event is acknowledged as a repeat without an inbox row or a write transaction.
    It must read only, and answer True only for an effect that cannot be undone
    before the event arrives again.
    """
    source = event_type.split(".", 1)[0]

    def decorator(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(service, payload: dict[str, Any]) -> None:
            uow = getattr(service, db_attr)
            handler = f"{type(service).name}.{method.__name__}"
            service_name = type(service).name
            try:
                event = load_event(payload)
            except (SchemaError, MercatoError, TypeError) as exc:
                _dead_letter(uow, handler, payload, f"invalid event: {exc}", attempts=1)
                metrics.EVENTS_CONSUMED.labels(
                    service_name, handler, _field(payload, "type", 128) or "?", "dead_lettered"
                ).inc()
                return

            if concerns is not None and not concerns(event):
                metrics.EVENTS_CONSUMED.labels(service_name, handler, event.type, "ignored").inc()
                return

            for attempt in range(1, max_attempts + 1):
                try:
                    if already_applied is not None and already_applied(service, event):
                        uow.rollback()  # ends the read
                        metrics.EVENTS_CONSUMED.labels(
                            service_name, handler, event.type, "duplicate"
                        ).inc()
                        return
                    if not _record_in_inbox(uow, handler, event):
                        metrics.EVENTS_CONSUMED.labels(
                            service_name, handler, event.type, "duplicate"
                        ).inc()
                        return
                    method(service, event)
                    uow.commit()
                    metrics.EVENTS_CONSUMED.labels(
                        service_name, handler, event.type, "processed"
                    ).inc()
                    return
                except (Exception, eventlet.Timeout) as exc:  # Timeout is a BaseException
                    uow.rollback()
                    if is_transient(exc) and attempt < max_attempts:
                        metrics.EVENT_RETRIES.labels(service_name, handler, event.type).inc()
                        delay = backoff_seconds * 2 ** (attempt - 1)
                        _log.warning(
                            "%s failed on %s (attempt %d of %d), retrying in %.1fs: %r",
                            handler,
                            event.id,
                            attempt,
                            max_attempts,
                            delay,
                            exc,
                        )
                        time.sleep(delay)
                        continue
                    _log.exception("%s gave up on event %s", handler, event.id)
                    _dead_letter(
                        uow,
                        handler,
                        payload,
                        "".join(traceback.format_exception(exc)),
                        attempts=attempt,
                    )
                    metrics.EVENTS_CONSUMED.labels(
                        service_name, handler, event.type, "dead_lettered"
                    ).inc()
                    return

        return event_handler(source, event_type, requeue_on_error=True)(wrapper)

    return decorator


def _record_in_inbox(uow, handler: str, event: Envelope) -> bool:
    """Insert (handler, event id); False, rolled back, when it is already there (a repeat).

    The inbox row is the transaction's first statement, so a unique violation can roll
    the whole transaction back. On PostgreSQL a concurrent delivery of the same event
    waits on the first one's index entry and fails here once that one commits.
    """
    table = uow.table(INBOX)
    try:
        uow.session.execute(
            cached_insert(table),
            {
                "handler": handler,
                "event_id": event.id,
                "event_type": event.type,
                "processed_at": dt.datetime.now(dt.UTC),
            },
        )
        uow.session.flush()
    except IntegrityError:
        uow.rollback()
        # only a row that is really there makes this a repeat: any other integrity
        # error must not pass for one, or the event would be dropped without a trace
        seen = uow.session.execute(
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.handler == handler, table.c.event_id == event.id)
        ).scalar_one()
        uow.rollback()
        if not seen:
            raise
        return False
    return True


def _field(payload: Any, key: str, limit: int) -> str | None:
    """``payload[key]`` as a bounded string, or None (a payload may be anything)."""
    if not isinstance(payload, dict) or payload.get(key) is None:
        return None
    return str(payload[key])[:limit]


def _dead_letter(uow, handler: str, payload: Any, error: str, attempts: int) -> None:
    table = uow.table(DEAD_LETTERS)
    uow.rollback()
    uow.session.execute(
        table.insert().values(
            handler=handler,
            event_id=_field(payload, "id", 64),
            event_type=_field(payload, "type", 128),
            payload=payload if isinstance(payload, dict) else {"raw": repr(payload)[:8000]},
            error=error[-8000:],
            attempts=attempts,
            created_at=dt.datetime.now(dt.UTC),
        )
    )
    uow.commit()


def dead_letter_count(uow) -> int:
    table = uow.table(DEAD_LETTERS)
    return int(uow.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
