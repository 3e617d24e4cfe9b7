"""The outbox and the inbox on a real PostgreSQL and a real RabbitMQ.

docs/architecture.md promises delivery at least once and effects exactly once: a state change
and its event commit together, the relay publishes with publisher confirms (right after
the commit, and in a sweep for what a crash left behind), a consumer applies an event
once however often it arrives, and a handler's failure is retried through the broker's
delay queues or dead-lettered to its dead-letter queue, never dropped. Each test below is one of those promises, broken on purpose where it can
be (a broker that refuses a message, a row held by another relay, a database that
drops the connection).

The test services stand in for real ones: a producer and a consumer on the catalog's
migrated schema (the messaging tables every service has) plus one table each for the
state they change.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import json
import time
import uuid

import eventlet
import eventlet.event
import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue
from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy

from catalog.models import metadata as catalog_metadata
from mercato import metrics, ops, outbox, replay, tables
from mercato.contracts import new_envelope
from mercato.db import Database, create_engine, new_id
from mercato.identity import Identity
from mercato.inbox import delay_name, handles_event
from mercato.service import MercatoService
from mercato.transport import rpc
from mercato_testing import interface, signed_context
from mercato_testing.interface import events_consumed, sample

pytestmark = pytest.mark.interface

ACCOUNT_CREATED = "iam_agency.account.created"
WAIT_SECONDS = 30.0

metadata = sa.MetaData()
for _table in catalog_metadata.sorted_tables:
    _table.to_metadata(metadata)
accounts = sa.Table(
    "test_accounts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
)
account_copies = sa.Table(
    "test_account_copies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("causation_event_id", sa.String(64)),
    sa.Column("caller_account_id", sa.String(64)),
    sa.Column("caller_roles", sa.String(200)),
)
OUTBOX = metadata.tables[tables.OUTBOX]
INBOX = metadata.tables[tables.INBOX]

BUYER = Identity("acc_buyer", "usr_alice", "buyer", ("buyer_admin", "purchaser"), "ep_finance")

# What the consumer's handler did, per event id: the time of each attempt.
ATTEMPTS: dict[str, list[float]] = collections.defaultdict(list)
# Events whose handler waits, once entered, until the test lets it go.
GATES: dict[str, eventlet.event.Event] = {}
# Events whose ``bug`` has been fixed: the handler no longer raises for them.
FIXED: set[str] = set()
# Every event id the recorder received, repeats included.
DELIVERIES: list[str] = []


def _account_data(name: str, account_id: str | None = None) -> dict:
    return {
        "account_id": account_id or new_id("acc"),
        "name": name,
        "type": "buyer",
        "reseller_account_id": None,
    }


class Producer(MercatoService):
    name = "outbox_producer"

    db = Database(metadata)

    @rpc
    def open_account(self, name: str, outcome: str = "commit") -> str | None:
        data = _account_data(name)
        self.db.session.execute(accounts.insert().values(id=data["account_id"], name=name))
        envelope = self.db.emit(ACCOUNT_CREATED, subject=data["account_id"], data=data)
        if outcome == "raise":
            raise RuntimeError("crashed before commit")
        if outcome == "rollback":
            self.db.rollback()
            return None
        self.db.commit()
        return envelope.id


class ContextData(DependencyProvider):
    """The worker's nameko context data, as the message headers delivered it."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data


class Consumer(MercatoService):
    """Copies accounts; the account's name tells it how to misbehave:
    ``flaky:N`` loses its database connection on the first N attempts, ``broken`` on
    every one, ``slow:1`` times out on the first, ``bug`` raises a ValueError; an event
    with a gate waits for the test."""

    name = "inbox_consumer"

    db = Database(metadata)
    context = ContextData()

    @handles_event(ACCOUNT_CREATED)
    def copy_account(self, event):
        attempts = ATTEMPTS[event.id]
        attempts.append(time.monotonic())
        name = event.data["name"]
        flaky_for = int(name.split(":")[1]) if name.startswith("flaky:") else 0
        if name == "broken" or len(attempts) <= flaky_for:
            # a real transient failure: the server drops this worker's connection
            self.db.session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        if name == "bug" and event.id not in FIXED:
            raise ValueError("the handler has a bug")
        if name == "slow:1" and len(attempts) == 1:
            with eventlet.Timeout(0.01):  # a call that did not answer in time
                eventlet.sleep(1)
        gate = GATES.get(event.id)
        if gate is not None:
            gate.wait()
        identity = self.caller.identity
        self.db.session.execute(
            account_copies.insert().values(
                event_id=event.id,
                account_id=event.data["account_id"],
                name=name,
                correlation_id=self.caller.correlation_id,
                causation_event_id=self.context.get("causation_event_id"),
                caller_account_id=identity.account_id if identity else None,
                caller_roles=",".join(identity.roles) if identity else None,
            )
        )


class Recorder:
    """A plain nameko subscriber with no inbox: it sees every delivery, repeats too."""

    name = "delivery_recorder"

    @event_handler("iam_agency", ACCOUNT_CREATED)
    def record(self, payload):
        DELIVERIES.append(payload["id"])


# -- helpers -------------------------------------------------------------------------


wait_for = functools.partial(interface.wait_for, timeout=WAIT_SECONDS, interval=0.02)


def consumed(outcome: str) -> float:
    return events_consumed("inbox_consumer.copy_account", ACCOUNT_CREATED, outcome)


def retries() -> float:
    return sample(
        "mercato_event_retries_total",
        service="inbox_consumer",
        handler="inbox_consumer.copy_account",
        event_type=ACCOUNT_CREATED,
    )


def select(engine, query):
    with engine.connect() as connection:
        return connection.execute(query).all()


def copies_of(engine, event_id: str):
    return select(engine, account_copies.select().where(account_copies.c.event_id == event_id))


CONSUMER_QUEUE = "evt-iam_agency-iam_agency.account.created--inbox_consumer.copy_account"
DEAD_LETTER_QUEUE = CONSUMER_QUEUE + ".dead-letters"


def dead_letters_in(config) -> list:
    """The messages waiting in the consumer's dead-letter queue (left there)."""
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        taken = []
        while (message := channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)) is not None:
            taken.append(message)
        channel.basic_recover(requeue=True)
        return taken


def dead_letter_of(config, event_id: str):
    """The dead letter of ``event_id``, once it is there."""

    def find():
        found = [m for m in dead_letters_in(config) if json.loads(m.body).get("id") == event_id]
        return found[0] if found else None

    return wait_for(find, "the dead letter")


def published_at(engine, event_id: str):
    rows = select(engine, sa.select(OUTBOX.c.published_at).where(OUTBOX.c.event_id == event_id))
    assert rows, f"no outbox row for {event_id}"
    return rows[0].published_at


def envelope_for(name: str, **overrides):
    data = _account_data(name)
    return new_envelope(
        ACCOUNT_CREATED,
        subject=data["account_id"],
        data=data,
        account_id=BUYER.account_id,
        correlation_id=overrides.pop("correlation_id", uuid.uuid4().hex),
        causation_id=None,
        **overrides,
    )


def leave_in_outbox(engine, envelopes, created_at: dt.datetime | None = None) -> list[str]:
    """Commit outbox rows without waking any relay, as a crash after the commit would."""
    rows = [
        {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "payload": envelope.dump(),
            "headers": {
                "correlation_id": envelope.correlation_id,
                "causation_event_id": envelope.id,
            },
            "created_at": created_at or envelope.occurred_at,
        }
        for envelope in envelopes
    ]
    with engine.begin() as connection:
        connection.execute(OUTBOX.insert(), rows)
    return [envelope.id for envelope in envelopes]


def relay_of(container):
    return next(dep for dep in container.dependencies if dep.attr_name == "db").outbox


def context_headers(identity: Identity, correlation_id: str) -> dict:
    data = {**identity.to_context(), "correlation_id": correlation_id}
    return {f"nameko.{key}": value for key, value in data.items()}


@contextlib.contextmanager
def broker_refusing_events(amqp_uri: str):
    """Bind a queue that takes no message (max length 0, reject-publish) to the events'
    exchange: RabbitMQ then nacks every publish of the event, as it does when a queue
    is full or a node is lost. Unbinds it on leaving."""
    exchange = Exchange("iam_agency.events", type="topic", durable=True)
    queue = Queue(
        "test-refuses-every-event",
        exchange=exchange,
        routing_key=ACCOUNT_CREATED,
        queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    with Connection(amqp_uri) as connection:
        queue(connection.channel()).declare()
    try:
        yield
    finally:
        with Connection(amqp_uri) as connection:
            queue(connection.channel()).delete()


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def service_database(make_service_config):
    """``(config, engine)`` of a test service: the catalog's migrated schema on a fresh
    database, plus the test tables, on this test's vhost."""
    engines = []

    def make(**overrides):
        config = make_service_config("catalog", **overrides)
        engine = create_engine(config["DATABASE_URL"], pool_size=2)
        metadata.create_all(engine, tables=[accounts, account_copies])
        engines.append(engine)
        return config, engine

    yield make
    for engine in engines:
        engine.dispose()


# the consumer's retry delays: three attempts, 50 ms then 100 ms apart
TEST_RETRY_DELAYS = "0.05,0.1"


@pytest.fixture
def consumer(service_database, container_factory):
    config, engine = service_database(EVENT_RETRY_DELAYS_SECONDS=TEST_RETRY_DELAYS)
    container = container_factory(Consumer, config)
    container.start()
    return config, engine


@pytest.fixture
def producer(service_database, container_factory, consumer):
    """A running producer; the consumer is started first so its queue is bound."""
    config, engine = service_database()
    container = container_factory(Producer, config)
    container.start()
    return config, engine, container


def dispatch(config, payload, headers=None):
    event_dispatcher(config, headers=headers or {})("iam_agency", ACCOUNT_CREATED, payload)


# -- a state change and its event commit together -------------------------------------


def test_committed_state_change_publishes_its_event_with_its_correlation_not_its_caller(
    producer, consumer
):
    """The handler works as its own service: an event carries no caller (its roles, its
    signature) for a subscriber to read or for a handler to act on."""
    producer_config, producer_engine, _container = producer
    _consumer_config, consumer_engine = consumer
    published_before = sample(
        "mercato_events_published_total", service="outbox_producer", event_type=ACCOUNT_CREATED
    )
    context = signed_context({**BUYER.to_context(), "correlation_id": "corr-commit-1"})

    with ServiceRpcProxy("outbox_producer", producer_config, context_data=context) as proxy:
        event_id = proxy.open_account("Northwind Traders")

    (copy,) = wait_for(lambda: copies_of(consumer_engine, event_id), "the consumer's copy")
    assert copy.name == "Northwind Traders"
    assert copy.correlation_id == "corr-commit-1"
    assert copy.causation_event_id == event_id
    assert copy.caller_account_id == "svc_inbox_consumer"
    assert copy.caller_roles == "service"
    ((headers,),) = select(producer_engine, sa.select(OUTBOX.c.headers))
    assert headers == {"correlation_id": "corr-commit-1", "causation_event_id": event_id}
    assert select(producer_engine, sa.select(accounts.c.name)) == [("Northwind Traders",)]
    wait_for(lambda: published_at(producer_engine, event_id), "the row marked published")
    assert (
        sample(
            "mercato_events_published_total", service="outbox_producer", event_type=ACCOUNT_CREATED
        )
        == published_before + 1
    )


def test_commit_wakes_the_relay_without_waiting_for_a_sweep(
    service_database, container_factory, consumer
):
    """The sweep interval is an hour here: only the commit's wake-up can publish."""
    _consumer_config, consumer_engine = consumer
    config, engine = service_database(OUTBOX_SWEEP_SECONDS=3600)
    container_factory(Producer, config).start()

    with ServiceRpcProxy("outbox_producer", config) as proxy:
        event_id = proxy.open_account("Published At Once")

    wait_for(lambda: copies_of(consumer_engine, event_id), "the consumer's copy")
    wait_for(lambda: published_at(engine, event_id), "the row marked published")


@pytest.mark.parametrize("outcome", ["rollback", "raise"])
def test_rolled_back_unit_of_work_publishes_nothing(outcome, producer, consumer):
    """The rolled-back event would arrive before the next one on the same queue: once the
    next one is in, the first one is known never to have been sent."""
    producer_config, producer_engine, _container = producer
    _consumer_config, consumer_engine = consumer

    with ServiceRpcProxy("outbox_producer", producer_config, timeout=WAIT_SECONDS) as proxy:
        if outcome == "raise":
            with pytest.raises(RemoteError, match="crashed before commit"):
                proxy.open_account("Never Opened", outcome="raise")
        else:
            assert proxy.open_account("Never Opened", outcome="rollback") is None
        marker = proxy.open_account("Opened Later")

    wait_for(lambda: copies_of(consumer_engine, marker), "the later event")
    assert [row.name for row in select(consumer_engine, account_copies.select())] == [
        "Opened Later"
    ]
    assert [row.event_id for row in select(producer_engine, OUTBOX.select())] == [marker]
    assert select(producer_engine, sa.select(accounts.c.name)) == [("Opened Later",)]


# -- the relay ------------------------------------------------------------------------


CATALOG_QUEUE = "evt-iam_agency-iam_agency.account.created--catalog.on_account_created"


def unroutable(event_type: str) -> float:
    return sample(
        "mercato_events_unroutable_total", service="outbox_producer", event_type=event_type
    )


def waiting_in(config, queue: str) -> int:
    with Connection(config["AMQP_URI"]) as connection:
        return connection.channel().queue_declare(queue, passive=True)[1]


def test_an_event_a_mercato_service_handles_is_never_published_into_the_void(
    service_database, container_factory
):
    """No handler queue was declared (no mercato-declare-event-queues, no consumer ever
    started): the broker returns the event; the relay declares the queues of the
    services that handle it and publishes it again, so it waits there for catalog."""
    config, engine = service_database()
    (event_id,) = leave_in_outbox(engine, [envelope_for("Nobody Bound Yet")])
    before = unroutable(ACCOUNT_CREATED)

    container_factory(Producer, config).start()

    wait_for(lambda: published_at(engine, event_id), "the row marked published")
    assert unroutable(ACCOUNT_CREATED) == before + 1
    assert waiting_in(config, CATALOG_QUEUE) == 1


def test_an_event_no_mercato_service_handles_may_go_unrouted(service_database, container_factory):
    """Only outside subscribers may want it, and none bound a queue: it is counted as
    unroutable and marked published (nobody's queue to wait in)."""
    config, engine = service_database()
    event_type = "iam_agency.test.nobody_handles"
    envelope = envelope_for("Nobody Wants This")
    with engine.begin() as connection:
        connection.execute(
            OUTBOX.insert(),
            {
                "event_id": envelope.id,
                "event_type": event_type,
                "payload": {**envelope.dump(), "type": event_type},
                "headers": {},
                "created_at": envelope.occurred_at,
            },
        )
    before = unroutable(event_type)

    container_factory(Producer, config).start()

    wait_for(lambda: published_at(engine, envelope.id), "the row marked published")
    assert unroutable(event_type) == before + 1


def test_relay_marks_a_row_published_only_once_the_broker_confirms_it(producer, consumer):
    """Without confirms the relay would mark a row the broker refused, and the event
    would be lost; with them it keeps the row and publishes it once the broker takes
    it. The consumer may meet the event more than once meanwhile; its inbox applies it
    once."""
    producer_config, producer_engine, _container = producer
    _consumer_config, consumer_engine = consumer
    failures = lambda: sample(  # noqa: E731
        "mercato_event_publish_failures_total", service="outbox_producer"
    )
    failures_before = failures()

    with broker_refusing_events(producer_config["AMQP_URI"]):
        with ServiceRpcProxy("outbox_producer", producer_config) as proxy:
            event_id = proxy.open_account("Refused At First")
        wait_for(lambda: failures() >= failures_before + 2, "two refused relay passes")
        assert published_at(producer_engine, event_id) is None

    wait_for(lambda: published_at(producer_engine, event_id), "the row marked published")
    wait_for(lambda: copies_of(consumer_engine, event_id), "the consumer's copy")
    assert len(copies_of(consumer_engine, event_id)) == 1


def test_backlog_and_oldest_age_gauges_reflect_unpublished_rows(
    service_database, container_factory
):
    """The gauges matter most when the relay cannot publish, so they must be refreshed
    after a failed pass too."""
    config, engine = service_database()
    backlog = lambda: sample("mercato_outbox_backlog", service="outbox_producer")  # noqa: E731
    oldest = lambda: sample(  # noqa: E731
        "mercato_outbox_oldest_age_seconds", service="outbox_producer"
    )
    ten_minutes_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    metrics.OUTBOX_BACKLOG.labels("outbox_producer").set(-1)  # nothing measured yet
    metrics.OUTBOX_OLDEST_AGE.labels("outbox_producer").set(-1)

    with broker_refusing_events(config["AMQP_URI"]):
        leave_in_outbox(engine, [envelope_for(f"stuck {n}") for n in range(3)], ten_minutes_ago)
        container_factory(Producer, config).start()
        wait_for(lambda: backlog() == 3, "a backlog of 3")
        assert oldest() >= 600

    wait_for(lambda: backlog() == 0, "an empty backlog")
    assert oldest() == 0


def test_rows_a_crash_left_unpublished_are_published_when_a_container_starts(
    service_database, container_factory, consumer
):
    """The sweep interval is an hour here: only the pass a starting relay makes at once
    can publish the row."""
    _consumer_config, consumer_engine = consumer
    config, engine = service_database(OUTBOX_SWEEP_SECONDS=3600)
    (event_id,) = leave_in_outbox(engine, [envelope_for("Left Behind")])

    container_factory(Producer, config).start()

    wait_for(lambda: copies_of(consumer_engine, event_id), "the consumer's copy")
    wait_for(lambda: published_at(engine, event_id), "the row marked published")


def test_periodic_sweep_publishes_rows_no_commit_woke_the_relay_for(
    service_database, container_factory, consumer
):
    """The first row is published by the starting relay's pass; the second, committed
    after that pass, with no commit of this service to wake the relay, only by a sweep."""
    _consumer_config, consumer_engine = consumer
    config, engine = service_database()
    (first,) = leave_in_outbox(engine, [envelope_for("Published At Start")])
    container_factory(Producer, config).start()
    wait_for(lambda: published_at(engine, first), "the starting relay's pass")

    (second,) = leave_in_outbox(engine, [envelope_for("Swept Up")])

    wait_for(lambda: copies_of(consumer_engine, second), "the consumer's copy")
    assert published_at(engine, second) is not None


def test_relay_skips_rows_another_relay_holds_and_publishes_them_once_released(
    service_database, container_factory
):
    """Another replica's relay holds rows it is publishing; this one must neither wait
    for them (FOR UPDATE alone would) nor publish them too (no lock at all would)."""
    config, engine = service_database(OUTBOX_SWEEP_SECONDS=3600)
    (first,) = leave_in_outbox(engine, [envelope_for("Published At Start")])
    container = container_factory(Producer, config)
    container.start()
    relay = relay_of(container)
    wait_for(lambda: published_at(engine, first), "the starting relay's pass")
    event_ids = leave_in_outbox(engine, [envelope_for(f"row {n}") for n in range(10)])
    held, free = event_ids[:5], event_ids[5:]

    with engine.connect() as other_relay:
        other_relay.execute(
            sa.select(OUTBOX.c.id).where(OUTBOX.c.event_id.in_(held)).with_for_update()
        ).all()
        relay.wake()
        wait_for(
            lambda: all(published_at(engine, event_id) for event_id in free),
            "the rows nobody holds published",
        )
        assert [published_at(engine, event_id) for event_id in held] == [None] * 5
        other_relay.rollback()

    relay.wake()
    wait_for(
        lambda: all(published_at(engine, event_id) for event_id in held),
        "the released rows published",
    )


def test_two_relays_on_one_database_publish_each_row_exactly_once(
    service_database, container_factory, monkeypatch
):
    """Two replicas of a service start together on a backlog of 300 rows, in batches of
    20 so that their passes interleave; a subscriber without an inbox counts every
    delivery."""
    monkeypatch.setattr(outbox, "BATCH_SIZE", 20)
    config, engine = service_database()
    DELIVERIES.clear()
    container_factory(Recorder, config).start()
    event_ids = leave_in_outbox(engine, [envelope_for(f"account {n}") for n in range(300)])
    replicas = [container_factory(Producer, config) for _ in range(2)]

    pool = eventlet.GreenPool()
    for replica in replicas:
        pool.spawn(replica.start)
    pool.waitall()
    unpublished = sa.select(sa.func.count()).where(OUTBOX.c.published_at.is_(None))
    wait_for(lambda: select(engine, unpublished)[0][0] == 0, "all 300 rows published")
    for replica in replicas:
        replica.stop()  # a relay stops once its publishes are confirmed

    # every publish is confirmed, so in the queue; one more event after them all tells
    # when the subscriber has been handed everything before it
    marker = envelope_for("marker")
    dispatch(config, marker.dump())
    wait_for(lambda: marker.id in DELIVERIES, "the marker event")
    counts = collections.Counter(DELIVERIES[: DELIVERIES.index(marker.id)])
    assert set(counts) == set(event_ids)
    assert [event_id for event_id, seen in counts.items() if seen > 1] == []


# -- the consumer ---------------------------------------------------------------------


def test_redelivered_event_is_applied_once(consumer):
    config, engine = consumer
    envelope = envelope_for("Delivered Twice", correlation_id="corr-redelivered")
    headers = context_headers(BUYER, "corr-redelivered")
    processed_before, duplicates_before = consumed("processed"), consumed("duplicate")

    dispatch(config, envelope.dump(), headers)
    wait_for(lambda: consumed("processed") == processed_before + 1, "the first delivery")
    dispatch(config, envelope.dump(), headers)
    wait_for(lambda: consumed("duplicate") == duplicates_before + 1, "the repeat")

    (copy,) = copies_of(engine, envelope.id)
    # the identity in the event's headers is not believed: the handler is its own service
    assert (copy.correlation_id, copy.caller_account_id) == (
        "corr-redelivered",
        "svc_inbox_consumer",
    )
    assert len(ATTEMPTS[envelope.id]) == 1
    assert consumed("processed") == processed_before + 1
    inbox_rows = select(engine, INBOX.select().where(INBOX.c.event_id == envelope.id))
    assert [(row.handler, row.event_type) for row in inbox_rows] == [
        ("inbox_consumer.copy_account", ACCOUNT_CREATED)
    ]


def test_concurrent_duplicate_deliveries_are_applied_once(consumer):
    """The first delivery holds its transaction open inside the handler; the second must
    wait on the first's inbox row (a lock PostgreSQL shows), never enter the handler,
    and count as a duplicate once the first commits."""
    config, engine = consumer
    envelope = envelope_for("Delivered Twice At Once")
    GATES[envelope.id] = gate = eventlet.event.Event()
    processed_before, duplicates_before = consumed("processed"), consumed("duplicate")
    database = engine.url.database
    waiting_on_a_lock = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = :database AND wait_event_type = 'Lock'"
    ).bindparams(database=database)

    dispatch(config, envelope.dump())
    dispatch(config, envelope.dump())
    wait_for(lambda: ATTEMPTS[envelope.id], "the first delivery inside the handler")
    wait_for(lambda: select(engine, waiting_on_a_lock)[0][0] == 1, "the second one waiting")
    assert len(ATTEMPTS[envelope.id]) == 1
    gate.send(True)

    wait_for(lambda: consumed("duplicate") == duplicates_before + 1, "the duplicate counted")
    wait_for(lambda: consumed("processed") == processed_before + 1, "the first one counted")
    assert len(copies_of(engine, envelope.id)) == 1
    assert len(ATTEMPTS[envelope.id]) == 1


def test_transient_failure_is_retried_with_backoff_then_applied(consumer):
    config, engine = consumer
    envelope = envelope_for("flaky:2")
    retries_before, processed_before = retries(), consumed("processed")

    dispatch(config, envelope.dump())

    wait_for(lambda: consumed("processed") == processed_before + 1, "the event applied")
    assert len(copies_of(engine, envelope.id)) == 1
    first, second, third = ATTEMPTS[envelope.id]
    assert second - first >= 0.05  # the first delay queue's TTL
    assert third - second >= 0.1  # the second's
    assert retries() == retries_before + 2
    assert dead_letters_in(config) == []


def test_timed_out_handler_is_retried_like_any_transient_failure(consumer):
    """``eventlet.Timeout`` is a BaseException: a bare ``except Exception`` would let it
    escape, and the message would bounce back to the queue at once, forever."""
    config, engine = consumer
    envelope = envelope_for("slow:1")
    retries_before, processed_before = retries(), consumed("processed")

    dispatch(config, envelope.dump())

    wait_for(lambda: consumed("processed") == processed_before + 1, "the event applied")
    assert len(ATTEMPTS[envelope.id]) == 2
    assert retries() == retries_before + 1
    assert len(copies_of(engine, envelope.id)) == 1


def test_handler_that_keeps_failing_transiently_is_dead_lettered_with_its_headers(
    consumer, container_factory
):
    config, engine = consumer
    envelope = envelope_for("broken", correlation_id="corr-dead")
    dead_before, retries_before = consumed("dead_lettered"), retries()

    dispatch(config, envelope.dump(), context_headers(BUYER, "corr-dead"))

    letter = dead_letter_of(config, envelope.id)
    headers = letter.headers
    assert headers["x-mercato-attempt"] == 3
    assert headers["x-mercato-handler"] == "inbox_consumer.copy_account"
    assert headers["x-mercato-queue"] == CONSUMER_QUEUE
    assert "OperationalError" in headers["x-mercato-error"]
    # the original context travels with it, for a replay to run as the first delivery
    assert headers["nameko.correlation_id"] == "corr-dead"
    assert headers["nameko.account_id"] == BUYER.account_id
    assert letter.properties["delivery_mode"] == 2
    assert json.loads(letter.body) == envelope.dump()
    # counted once the broker confirmed the dead letter, a moment after it is visible
    wait_for(lambda: consumed("dead_lettered") == dead_before + 1, "the dead letter counted")
    assert retries() == retries_before + 2
    assert len(ATTEMPTS[envelope.id]) == 3
    assert copies_of(engine, envelope.id) == []
    # not in the inbox, so a replay of the dead letter will be applied
    assert select(engine, INBOX.select().where(INBOX.c.event_id == envelope.id)) == []


def test_the_dead_letter_gauge_counts_each_handlers_queue(service_database, container_factory):
    config, _engine = service_database(EVENT_RETRY_DELAYS_SECONDS=TEST_RETRY_DELAYS)
    container = container_factory(Consumer, config)
    container.start()
    envelope = envelope_for("bug")
    dispatch(config, envelope.dump())
    dead_letter_of(config, envelope.id)
    assert ops.check_consumers(container) is None
    assert sample("mercato_dead_letters", service="inbox_consumer", queue=DEAD_LETTER_QUEUE) == 1


def test_non_transient_failure_is_dead_lettered_without_retrying(consumer):
    config, _engine = consumer
    envelope = envelope_for("bug")
    retries_before = retries()

    dispatch(config, envelope.dump())

    letter = dead_letter_of(config, envelope.id)
    assert letter.headers["x-mercato-attempt"] == 1
    assert "ValueError: the handler has a bug" in letter.headers["x-mercato-error"]
    assert len(ATTEMPTS[envelope.id]) == 1
    assert retries() == retries_before


def _missing_name(payload):
    del payload["data"]["name"]
    return payload


def _unknown_version(payload):
    return {**payload, "version": 99}


def _not_an_envelope(_payload):
    return ["not", "an", "envelope"]


@pytest.mark.parametrize(
    "breaks_it", [_missing_name, _unknown_version, _not_an_envelope], ids=lambda f: f.__name__
)
def test_event_breaking_its_contract_is_dead_lettered(breaks_it, consumer):
    config, _engine = consumer
    envelope = envelope_for("Broken Contract")
    payload = breaks_it(envelope.dump())
    # a payload that is no envelope has no type to count it under
    label = ACCOUNT_CREATED if isinstance(payload, dict) else "?"
    dead_lettered = lambda: sample(  # noqa: E731
        "mercato_events_consumed_total",
        service="inbox_consumer",
        handler="inbox_consumer.copy_account",
        event_type=label,
        outcome="dead_lettered",
    )
    before = dead_lettered()

    dispatch(config, payload)

    (letter,) = wait_for(lambda: dead_letters_in(config), "a dead letter")
    assert letter.headers["x-mercato-error"].startswith("invalid event")
    assert letter.headers["x-mercato-attempt"] == 1
    assert json.loads(letter.body) == payload
    # counted once the broker confirmed the dead letter, a moment after it is visible
    wait_for(lambda: dead_lettered() == before + 1, "the dead letter counted")
    assert ATTEMPTS[envelope.id] == []


def test_failure_stays_in_its_queue_while_the_broker_does_not_take_its_dead_letter(consumer):
    """With nowhere to put the dead letter (its queue deleted by hand), the message
    goes back to its queue and is tried again, until the dead letter can be sent."""
    config, _engine = consumer
    envelope = envelope_for("bug")
    with Connection(config["AMQP_URI"]) as connection:
        connection.channel().queue_delete(DEAD_LETTER_QUEUE)

    dispatch(config, envelope.dump())
    wait_for(lambda: len(ATTEMPTS[envelope.id]) >= 3, "the message redelivered")
    with Connection(config["AMQP_URI"]) as connection:
        Queue(DEAD_LETTER_QUEUE, durable=True)(connection.channel()).declare()

    letter = dead_letter_of(config, envelope.id)
    assert "ValueError: the handler has a bug" in letter.headers["x-mercato-error"]


def waiting_in_delay_queues(config, delays: str) -> int:
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        return sum(
            channel.queue_declare(delay_name(float(delay)), passive=True)[1]
            for delay in delays.split(",")
        )


def test_replayed_dead_letters_are_applied_once_with_their_context(consumer, monkeypatch):
    """mercato-replay-dead-letters, once the bug is fixed: each dead letter goes back
    to its handler's queue with its original headers and is applied; the dead-letter
    queue is left empty."""
    config, engine = consumer
    envelopes = [envelope_for("bug", correlation_id=f"corr-replay-{n}") for n in range(2)]
    for envelope in envelopes:
        dispatch(config, envelope.dump(), context_headers(BUYER, envelope.correlation_id))
        dead_letter_of(config, envelope.id)
    FIXED.update(envelope.id for envelope in envelopes)
    monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])

    assert replay.main(["--queue", DEAD_LETTER_QUEUE]) == 0

    for envelope in envelopes:
        (copy,) = wait_for(lambda e=envelope: copies_of(engine, e.id), "the replayed event")
        assert copy.correlation_id == envelope.correlation_id
    assert dead_letters_in(config) == []
    assert replay.main(["--service", "catalog", "--list"]) == 0


@contextlib.contextmanager
def database_away(databases, engine):
    """The consumer's database refuses every connection (and drops the open ones)
    until the block ends: a failover, as the service sees it."""
    name = engine.url.database
    admin = sa.create_engine(
        engine.url.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
        engine.dispose()


def test_a_handler_outlasts_a_database_outage_through_the_delay_queues(
    service_database, container_factory, databases
):
    """The database is away for 2.5 s: the event waits in the broker's delay queues
    (0.5 s, 1 s, 2 s, 4 s here; minutes in production), not in a worker, and is
    applied once the database is back, without being dead-lettered."""
    config, engine = service_database(EVENT_RETRY_DELAYS_SECONDS="0.5,1,2,4")
    container_factory(Consumer, config).start()
    envelope = envelope_for("Applied After The Outage")
    retries_before, processed_before = retries(), consumed("processed")

    with database_away(databases, engine):
        dispatch(config, envelope.dump())
        wait_for(lambda: waiting_in_delay_queues(config, "0.5,1,2,4") == 1, "the event delayed")
        wait_for(lambda: retries() >= retries_before + 2, "two failed attempts")
        time.sleep(0.5)

    wait_for(lambda: consumed("processed") == processed_before + 1, "the event applied")
    assert 2 <= retries() - retries_before <= 4
    assert len(copies_of(engine, envelope.id)) == 1
    assert dead_letters_in(config) == []


def test_relay_publishes_from_the_embedded_sqlite_database_too(
    tmp_path, service_database, container_factory, consumer
):
    """``make run``'s SQLite relay hands the one connection back while the broker
    confirms: what it publishes must still be published, and marked, exactly once."""
    from mercato.migrations import upgrade
    from mercato.topology import BY_NAME

    _consumer_config, consumer_engine = consumer
    url = f"sqlite:///{tmp_path}/producer.sqlite3"
    upgrade(BY_NAME["catalog"], url)
    config, engine = service_database(database_url=url, OUTBOX_SWEEP_SECONDS=3600)
    (left_behind,) = leave_in_outbox(engine, [envelope_for("Left Behind On SQLite")])

    container_factory(Producer, config).start()
    with ServiceRpcProxy("outbox_producer", config) as proxy:
        event_id = proxy.open_account("Opened On SQLite")

    for expected in (left_behind, event_id):
        (_copy,) = wait_for(lambda e=expected: copies_of(consumer_engine, e), "the consumer's copy")
        wait_for(lambda e=expected: published_at(engine, e), "the row marked published")
    assert len(select(engine, OUTBOX.select())) == 2
