"""What the interface tests of every service do again and again, against the real
RabbitMQ and PostgreSQL the harness provides: call as someone, publish an event the way
its producer would, read what a service published, count a table's rows, read the
event-consumption counter, and wait for something to become true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY

from mercato.contracts import new_envelope

T = TypeVar("T")

WAIT_SECONDS = 20.0


def caller(account_id: str, account_type: str, **extra: Any) -> dict[str, Any]:
    """The context data the gateway passes for a caller of ``account_id`` in the role of
    its type, as user ``usr_<name>`` of account ``acc_<name>``; ``extra`` adds to it
    (``reseller_account_id`` for a reseller's customer)."""
    return {
        "account_id": account_id,
        "user_id": f"usr_{account_id.removeprefix('acc_')}",
        "account_type": account_type,
        "roles": [account_type],
        **extra,
    }


def wait_for(
    predicate: Callable[[], T | None],
    what: str = "the condition",
    timeout: float = WAIT_SECONDS,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it answers something truthy, and answer that. A
    deadline, not a timing assertion: it only bounds how long a broken test hangs.
    ``context`` says what else a failure should show (a log, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = f"\n{context()}" if context else ""
            raise AssertionError(f"gave up after {timeout}s waiting for {what}{shown}")
        time.sleep(interval)


def count_rows(config: Mapping[str, Any], table: str) -> int:
    """Rows of ``table`` in the database of the service ``config`` configures."""
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(sa.table(table))
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()


def event_exchange(source: str) -> Exchange:
    """The topic exchange ``source`` publishes its events on (nameko's, as the outbox
    relay declares it)."""
    return Exchange(f"{source}.events", type="topic", durable=True)


def publish_event(
    amqp_uri: str,
    event_type: str,
    data: dict[str, Any],
    *,
    subject: str,
    times: int = 1,
    event_id: str | None = None,
) -> str:
    """Publish ``data`` as an ``event_type`` event in its envelope, on its source's
    exchange and routed by its type, the way the producer does; ``times`` > 1 delivers
    the same envelope again, as a redelivery would. Answers the envelope's id."""
    envelope = new_envelope(
        event_type,
        subject=subject,
        data=data,
        account_id=data.get("account_id"),
        correlation_id="test",
        causation_id=None,
        id=event_id,
    ).dump()
    exchange = event_exchange(envelope["source"])
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        for _ in range(times):
            producer.publish(
                envelope,
                exchange=exchange,
                routing_key=event_type,
                declare=[exchange],
                serializer="json",
            )
    return envelope["id"]


class EventQueue:
    """A subscriber's own queue on ``source``'s event exchange, bound before the
    service publishes (an event published while no queue is bound is dropped).
    ``read()`` answers every event it received so far, in the order they came."""

    def __init__(
        self, amqp_uri: str, source: str, routing_key: str = "#", name: str | None = None
    ) -> None:
        self.name = name or f"test-{source}-{uuid.uuid4().hex[:8]}"
        self.queue = Queue(self.name, event_exchange(source), routing_key=routing_key)
        self.connection = Connection(amqp_uri)
        self.queue(self.connection.channel()).declare()
        self.received: list[dict[str, Any]] = []

    def _take(self) -> dict[str, Any] | None:
        message = self.queue(self.connection.channel()).get(accept=["json"], no_ack=True)
        if message is None:
            return None
        self.received.append(message.payload)
        return message.payload

    def read(self) -> list[dict[str, Any]]:
        while self._take() is not None:
            pass
        return list(self.received)

    def next(self, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The next event to arrive."""
        return wait_for(self._take, f"an event on {self.name}", timeout)

    def close(self) -> None:
        self.connection.release()


def sample(name: str, **labels: str) -> float:
    """A metric's value with these labels in this process so far (0 before any)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def events_consumed(handler: str, event_type: str, outcome: str) -> float:
    """How many ``event_type`` events ``handler`` (``<service>.<method>``) has finished
    with ``outcome`` (processed, duplicate, …) in this process so far."""
    return sample(
        "mercato_events_consumed_total",
        service=handler.split(".", 1)[0],
        handler=handler,
        event_type=event_type,
        outcome=outcome,
    )
