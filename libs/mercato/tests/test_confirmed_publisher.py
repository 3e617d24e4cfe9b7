"""The outbox relay's ``ConfirmedPublisher`` against the real RabbitMQ, each test on a
throw-away vhost (nameko's ``rabbit_config``; deleting it deletes the queues and
exchanges declared here). Messages are built by ``OutboxRelay._message``, as the relay
sends them."""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from types import SimpleNamespace

import amqp
import pytest
import sqlalchemy as sa
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

from mercato.outbox import OutboxRelay
from mercato.tables import add_messaging_tables
from mercato.transport import ConfirmedPublisher

pytestmark = pytest.mark.interface

REFUSE_EVERY_MESSAGE = {"x-max-length": 0, "x-overflow": "reject-publish"}
HEADERS = {"correlation_id": "corr-1", "account_id": "acc_buyer", "roles": ["buyer_admin"]}


@pytest.fixture
def amqp_uri(rabbit_config):
    return rabbit_config["AMQP_URI"]


@pytest.fixture
def relay(amqp_uri):
    """A relay only for its ``_message``; its database is never touched."""
    metadata = sa.MetaData()
    add_messaging_tables(metadata)
    engine = sa.create_engine("sqlite://")
    yield OutboxRelay(
        engine=engine,
        metadata=metadata,
        service_name="test",
        amqp_uri=amqp_uri,
        container_config={},
    )
    engine.dispose()


@pytest.fixture
def publisher(amqp_uri):
    publisher = ConfirmedPublisher(amqp_uri)
    yield publisher
    publisher.close()


def message(relay, event_type: str):
    source = event_type.split(".", 1)[0]
    payload = {"id": f"evt_{uuid.uuid4().hex}", "source": source, "type": event_type, "data": {}}
    return relay._message(SimpleNamespace(event_type=event_type, payload=payload, headers=HEADERS))


def declare(amqp_uri: str, name: str, source: str, routing_key: str = "#", arguments=None):
    """A queue bound to ``<source>.events``, the exchange declared as nameko does."""
    exchange = get_event_exchange(source, {})
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        exchange(channel).declare()
        Queue(name, exchange=exchange, routing_key=routing_key, queue_arguments=arguments)(
            channel
        ).declare()


def drain(amqp_uri: str, name: str) -> list[amqp.Message]:
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        received = []
        while (got := channel.basic_get(name, no_ack=True)) is not None:
            received.append(got)
        return received


def ids(messages) -> list[str]:
    """The message ids of received ``amqp.Message``s or of sent ``OutgoingMessage``s."""
    return [getattr(m, "message", m).properties["message_id"] for m in messages]


def test_a_batch_over_two_exchanges_is_in_the_queues_in_order_when_publish_returns(
    amqp_uri, relay, publisher
):
    declare(amqp_uri, "alpha-all", "alpha")
    declare(amqp_uri, "beta-all", "beta")
    types = ["alpha.thing.made", "beta.thing.made", "alpha.thing.changed", "beta.thing.gone"]
    batch = [message(relay, event_type) for event_type in types]

    publisher.publish_confirmed(batch)

    # no wait: the broker confirmed every message, so each is already queued
    alpha, beta = drain(amqp_uri, "alpha-all"), drain(amqp_uri, "beta-all")
    assert ids(alpha) == ids([batch[0], batch[2]])
    assert ids(beta) == ids([batch[1], batch[3]])
    for sent, got in zip([batch[0], batch[2], batch[1], batch[3]], alpha + beta, strict=True):
        assert got.delivery_info["routing_key"] == sent.routing_key
        assert got.delivery_info["exchange"] == sent.exchange.name
        assert got.properties["content_type"] == "application/json"
        assert got.properties["delivery_mode"] == 2
        assert got.properties["type"] == sent.routing_key
        assert got.headers == {f"nameko.{key}": value for key, value in HEADERS.items()}
        assert json.loads(got.body) == json.loads(sent.message.body)
        assert json.loads(got.body)["id"] == got.properties["message_id"]


def test_a_message_the_broker_refuses_raises_and_the_next_batch_goes_out_on_a_new_connection(
    amqp_uri, relay, publisher
):
    # a queue that takes no message: RabbitMQ nacks every publish routed to it
    declare(amqp_uri, "refuses", "alpha", "alpha.refused", REFUSE_EVERY_MESSAGE)
    declare(amqp_uri, "accepts", "alpha", "alpha.accepted")

    with pytest.raises(amqp.exceptions.MessageNacked):
        publisher.publish_confirmed([message(relay, "alpha.refused")])
    assert publisher._channel is None  # dropped on failure

    accepted = message(relay, "alpha.accepted")
    publisher.publish_confirmed([accepted])

    assert ids(drain(amqp_uri, "accepts")) == ids([accepted])


def closed_by_the_broker(publisher, rabbit_manager, vhost: str) -> None:
    """Force-close the connection through the management API (an operator, a broker
    shutting down) and wait until the broker's ``connection.close`` reached the socket."""
    sock = publisher._channel.connection.connection.sock
    port = sock.getsockname()[1]
    deadline = time.monotonic() + 10
    while not (
        names := [
            c["name"]
            for c in rabbit_manager.get_connections()
            if c.get("vhost") == vhost and c.get("peer_port") == port
        ]
    ):
        assert time.monotonic() < deadline, "the management API never listed the connection"
        time.sleep(0.1)
    rabbit_manager.delete_connection(names[0])
    assert select.select([sock], [], [], 10)[0], "the broker did not close the connection"


def cut_off(publisher, rabbit_manager, vhost: str) -> None:
    """The network goes: the socket can neither send nor receive any more."""
    publisher._channel.connection.connection.sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("break_connection", [closed_by_the_broker, cut_off])
def test_a_connection_broken_between_batches_is_replaced_and_the_batch_goes_out_once(
    amqp_uri, rabbit_config, rabbit_manager, relay, publisher, break_connection
):
    declare(amqp_uri, "alpha-all", "alpha")
    first = message(relay, "alpha.thing.made")
    publisher.publish_confirmed([first])
    broken = publisher._channel
    break_connection(publisher, rabbit_manager, rabbit_config["vhost"])

    batch = [message(relay, "alpha.thing.changed"), message(relay, "alpha.thing.gone")]
    # the broken connection shows only when used: the batch goes out on a new one
    publisher.publish_confirmed(batch)

    assert publisher._channel is not None and publisher._channel is not broken
    assert ids(drain(amqp_uri, "alpha-all")) == ids([first, *batch])


def test_a_new_connection_that_fails_raises_and_keeps_nothing(amqp_uri, relay):
    publisher = ConfirmedPublisher(amqp_uri.rsplit("/", 1)[0] + "/no-such-vhost")

    with pytest.raises((amqp.exceptions.AMQPError, OSError)):
        publisher.publish_confirmed([message(relay, "alpha.thing.made")])
    assert publisher._channel is None


def test_an_empty_batch_publishes_nothing_and_opens_no_connection(publisher):
    publisher.publish_confirmed([])

    assert publisher._channel is None
