"""Consuming events exactly once in effect: the inbox, retries through the broker,
dead-letter queues.

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
and skips an event it has seen.

A failure holds nothing in the process. A transient one (database or broker away, a
timeout) sends the message, headers and all, to the broker's delay queue for its
attempt (``EVENT_RETRY_DELAYS_SECONDS``: 1 s, 10 s, 1 min, 5 min, 15 min), whose TTL
returns it to the handler's own queue when it is due: a database failover of minutes
is outlasted, and the worker is free meanwhile. A permanent failure (an invalid event,
a bug), or a transient one after the last delay, goes to the handler's dead-letter
queue (``<handler queue>.dead-letters``) with its original headers and the error;
``mercato-replay-dead-letters`` (``mercato.replay``) sends them back. The message is
acknowledged only once the broker has confirmed its copy in the delay or dead-letter
queue; if the broker does not take the copy, the message goes back to its queue
(``requeue_on_error``): a failure never silently drops an event.

The topology (a delay exchange and queue per delay, a dead-letter queue per handler)
is declared by ``declare_retry_topology`` from ``mercato-migrate`` and again by each
handler as its container starts; declaring is idempotent.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import amqp
import eventlet
import kombu
import sqlalchemy as sa
from marshmallow import EXCLUDE
from marshmallow import ValidationError as SchemaError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mercato import metrics
from mercato.contracts import Envelope, contract_for
from mercato.db import cached_insert
from mercato.errors import MercatoError, ServiceUnavailable
from mercato.tables import INBOX
from mercato.transport.channels import BrokerChannels

_log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    PoolTimeout,
    ServiceUnavailable,
    ConnectionError,
    socket.timeout,
    eventlet.Timeout,
)


# config: the delays of the attempts after the first, in seconds, comma-separated
EVENT_RETRY_DELAYS_SECONDS = "EVENT_RETRY_DELAYS_SECONDS"
DEFAULT_RETRY_DELAYS_SECONDS: tuple[float, ...] = (1, 10, 60, 300, 900)

# headers Mercato adds to a message it sends on (the original ``nameko.*`` ones stay)
ATTEMPT_HEADER = "x-mercato-attempt"  # the attempt the message is on its way to (2, 3, ...)
QUEUE_HEADER = "x-mercato-queue"  # the handler queue it belongs to
HANDLER_HEADER = "x-mercato-handler"  # <service>.<method>
ERROR_HEADER = "x-mercato-error"  # why it was dead-lettered (the last error)
DEAD_LETTERED_AT_HEADER = "x-mercato-dead-lettered-at"  # RFC 3339
DEAD_LETTER_SUFFIX = ".dead-letters"
ERROR_HEADER_LIMIT = 4000  # characters of the error kept (the traceback's end)

# message properties a copy keeps (user_id would have to match the sender's broker user)
_KEPT_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "message_id",
    "timestamp",
    "type",
    "app_id",
)


def retry_delays(config: dict) -> tuple[float, ...]:
    """``EVENT_RETRY_DELAYS_SECONDS`` from a container's config (``"1,10,60"``)."""
    raw = config.get(EVENT_RETRY_DELAYS_SECONDS)
    if raw in (None, ""):
        # a service's config.yaml need not name it: the environment may set it
        raw = os.environ.get(EVENT_RETRY_DELAYS_SECONDS)
    if raw in (None, ""):
        return DEFAULT_RETRY_DELAYS_SECONDS
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    delays = tuple(float(item) for item in items if str(item).strip())
    if any(delay <= 0 for delay in delays):
        raise ValueError(f"{EVENT_RETRY_DELAYS_SECONDS}: every delay must be above 0: {raw!r}")
    return delays


def delay_name(delay: float) -> str:
    """The exchange and queue of one delay: ``mercato.retry.10000ms``."""
    return f"mercato.retry.{int(delay * 1000)}ms"


def delay_exchange(delay: float) -> kombu.Exchange:
    return kombu.Exchange(delay_name(delay), type="fanout", durable=True)


def delay_queue(delay: float) -> kombu.Queue:
    """Holds each message ``delay`` seconds, then dead-letters it to the default
    exchange under its own routing key, the handler queue's name: back to its queue."""
    return kombu.Queue(
        delay_name(delay),
        exchange=delay_exchange(delay),
        durable=True,
        queue_arguments={"x-message-ttl": int(delay * 1000), "x-dead-letter-exchange": ""},
    )


def dead_letter_queue_name(handler_queue: str) -> str:
    return f"{handler_queue}{DEAD_LETTER_SUFFIX}"


def handler_queue_name(source: str, event_type: str, service: str, method: str) -> str:
    """nameko's queue of a service-pool ``@event_handler``."""
    return f"evt-{source}-{event_type}--{service}.{method}"


def declare_retry_topology(
    channel, delays: Iterable[float], handler_queues: Iterable[str] = ()
) -> None:
    """Declare the delay exchanges and queues and each handler queue's dead-letter
    queue (durable; idempotent)."""
    for delay in delays:
        delay_queue(delay)(channel).declare()
    for name in handler_queues:
        kombu.Queue(dead_letter_queue_name(name), durable=True)(channel).declare()


@dataclass(frozen=True)
class _Retry:
    """A handler's answer: try the event again later (a transient failure)."""

    error: str  # the traceback
    summary: str = ""  # the exception, one line


@dataclass(frozen=True)
class _DeadLetter:
    """A handler's answer: no attempt will do (an invalid event, a bug)."""

    error: str
    invalid: bool = False


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


class RetryingEventHandler(EventHandler):
    """nameko's ``@event_handler`` (service pool, durable queue), with Mercato's
    retries: a worker that answers ``_Retry`` or ``_DeadLetter`` has its message sent
    on, with the broker's confirm, to its delay queue or its dead-letter queue, and
    only then acknowledged. Anything else is nameko's: acknowledged, or requeued when
    the worker raised."""

    channels = BrokerChannels()

    def setup(self) -> None:
        super().setup()
        self._delays = retry_delays(self.container.config)
        self.dead_letter_queue = dead_letter_queue_name(self.queue.name)
        self._handler = f"{self.container.service_name}.{self.method_name}"
        with kombu.Connection(self.container.config[AMQP_URI_CONFIG_KEY]) as connection:
            declare_retry_topology(connection.channel(), self._delays, [self.queue.name])

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None and isinstance(result, (_Retry, _DeadLetter)):
            try:
                self._send_on(message, result)
            except Exception:
                # the broker did not confirm the copy: keep the original (redelivered
                # at once, or when the consumer reconnects)
                _log.exception("%s: could not hand the event on; requeued", self._handler)
                self.queue_consumer.requeue_message(message)
                return result, exc_info
        return super().handle_result(message, worker_ctx, result, exc_info)

    def _send_on(self, message, result: _Retry | _DeadLetter) -> None:
        headers = dict(message.headers or {})
        attempt = headers.get(ATTEMPT_HEADER, 1)
        attempt = attempt if isinstance(attempt, int) and attempt > 0 else 1
        service = self.container.service_name
        if isinstance(result, _Retry) and attempt <= len(self._delays):
            delay = self._delays[attempt - 1]
            headers.update({ATTEMPT_HEADER: attempt + 1, QUEUE_HEADER: self.queue.name})
            self._publish(message, headers, delay_exchange(delay), self.queue.name)
            metrics.EVENT_RETRIES.labels(service, self._handler, self.event_type).inc()
            _log.warning(
                "%s failed on attempt %d of %d; retrying in %gs: %s",
                self._handler,
                attempt,
                len(self._delays) + 1,
                delay,
                result.summary,
            )
            return
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                QUEUE_HEADER: self.queue.name,
                HANDLER_HEADER: self._handler,
                ERROR_HEADER: result.error[-ERROR_HEADER_LIMIT:],
                DEAD_LETTERED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        self._publish(message, headers, kombu.Exchange(""), self.dead_letter_queue)
        event_type = self.event_type
        if isinstance(result, _DeadLetter) and result.invalid:
            # counted under the type the message says it has, as it was never loaded
            event_type = _field(_safe_body(message), "type", 128) or "?"
        metrics.EVENTS_CONSUMED.labels(service, self._handler, event_type, "dead_lettered").inc()
        _log.error(
            "%s gave up on an event after %d attempt(s); it waits in %s: %s",
            self._handler,
            attempt,
            self.dead_letter_queue,
            result.error[-ERROR_HEADER_LIMIT:],
        )

    def _publish(self, message, headers, exchange: kombu.Exchange, routing_key: str) -> None:
        properties = {
            key: message.properties[key] for key in _KEPT_PROPERTIES if key in message.properties
        }
        copy = amqp.Message(
            message.body, application_headers=headers, delivery_mode=2, **properties
        )
        self.channels.confirming.publish(copy, exchange=exchange, routing_key=routing_key)


def _safe_body(message) -> Any:
    try:
        return message.decode()
    except Exception:
        return None


def handles_event(
    event_type: str,
    *,
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
        def wrapper(service, payload: dict[str, Any]) -> _Retry | _DeadLetter | None:
            uow = getattr(service, db_attr)
            handler = f"{type(service).name}.{method.__name__}"
            service_name = type(service).name
            try:
                event = load_event(payload)
            except (SchemaError, MercatoError, TypeError) as exc:
                return _DeadLetter(f"invalid event: {exc}", invalid=True)

            if concerns is not None and not concerns(event):
                metrics.EVENTS_CONSUMED.labels(service_name, handler, event.type, "ignored").inc()
                return None

            try:
                if already_applied is not None and already_applied(service, event):
                    uow.rollback()  # ends the read
                    metrics.EVENTS_CONSUMED.labels(
                        service_name, handler, event.type, "duplicate"
                    ).inc()
                    return None
                if not _record_in_inbox(uow, handler, event):
                    metrics.EVENTS_CONSUMED.labels(
                        service_name, handler, event.type, "duplicate"
                    ).inc()
                    return None
                method(service, event)
                uow.commit()
            except (Exception, eventlet.Timeout) as exc:  # Timeout is a BaseException
                _rollback_quietly(uow)
                error = "".join(traceback.format_exception(exc))
                if is_transient(exc):
                    return _Retry(error, repr(exc)[:500])
                return _DeadLetter(error)
            metrics.EVENTS_CONSUMED.labels(service_name, handler, event.type, "processed").inc()
            return None

        return RetryingEventHandler.decorator(source, event_type, requeue_on_error=True)(wrapper)

    return decorator


def _rollback_quietly(uow) -> None:
    try:
        uow.rollback()
    except Exception:  # the database is away: the session is discarded with the worker
        _log.debug("rollback failed", exc_info=True)


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
