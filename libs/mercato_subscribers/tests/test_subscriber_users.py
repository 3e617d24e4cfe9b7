"""A subscriber's own broker user, against the real RabbitMQ: it reads the events, binds
and reads its own queues, and the broker refuses it everything else, publishing an RPC
request first (each test on a throw-away vhost, nameko's ``rabbit_config``; broker
users are the broker's, so each test's is named anew and deleted after)."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from kombu import Connection
from nameko.standalone.events import get_event_exchange
from pika.exceptions import ChannelClosedByBroker

from mercato_subscribers.users import (
    ManagementApi,
    SubscriberUserError,
    check_name,
    create_subscriber,
    main,
    permissions_for,
    subscriber_uri,
)

PASSWORD = "a-subscriber-password-" + uuid.uuid4().hex


@pytest.fixture
def broker(rabbit_config, infra):
    """Mercato's vhost with its order events exchange, as the services leave it."""
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        get_event_exchange("orders", {})(connection.channel()).declare()
    return rabbit_config["AMQP_URI"], infra.management_uri


@pytest.fixture
def subscriber(broker):
    amqp_uri, management_uri = broker
    name = f"reports{uuid.uuid4().hex[:8]}"
    create_subscriber(name, PASSWORD, amqp_uri=amqp_uri, management_uri=management_uri)
    yield name
    ManagementApi(management_uri).delete_user(name)


def _channel(amqp_uri: str, name: str):
    connection = pika.BlockingConnection(
        pika.URLParameters(subscriber_uri(amqp_uri, name, PASSWORD))
    )
    return connection, connection.channel()


def _publish_event(amqp_uri: str, routing_key: str, body: dict) -> None:
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        producer.publish(body, exchange="orders.events", routing_key=routing_key, serializer="json")


def test_a_subscriber_binds_its_own_queue_and_receives_order_events(broker, subscriber):
    amqp_uri, _ = broker
    connection, channel = _channel(amqp_uri, subscriber)
    queue = f"{subscriber}.orders"
    channel.exchange_declare("orders.events", exchange_type="topic", passive=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, "orders.events", routing_key="orders.order.*")

    _publish_event(amqp_uri, "orders.order.paid", {"type": "orders.order.paid", "id": "e-1"})

    for _ in range(50):
        method, _properties, body = channel.basic_get(queue)
        if method is not None:
            break
        connection.sleep(0.1)
    assert method is not None, "the event never reached the subscriber's queue"
    assert json.loads(body)["id"] == "e-1"
    channel.basic_ack(method.delivery_tag)
    connection.close()


@pytest.mark.parametrize(
    "exchange, routing_key",
    [
        ("nameko-rpc", "orders.cancel_order"),
        ("orders.events", "orders.order.paid"),
        ("", "rpc-orders"),
    ],
    ids=["nameko-rpc", "events-exchange", "default-exchange"],
)
def test_the_broker_refuses_a_subscribers_publish(broker, subscriber, exchange, routing_key):
    amqp_uri, _ = broker
    with Connection(amqp_uri) as connection:  # nameko-rpc exists while services run
        connection.channel().exchange_declare("nameko-rpc", "topic", durable=True)
    connection, channel = _channel(amqp_uri, subscriber)
    channel.confirm_delivery()
    forged = json.dumps({"args": ["ord_1"], "kwargs": {}}).encode()

    with pytest.raises(ChannelClosedByBroker) as refused:
        channel.basic_publish(
            exchange,
            routing_key,
            forged,
            pika.BasicProperties(headers={"nameko.roles": ["operator"]}),
        )
    assert refused.value.reply_code == 403
    assert "ACCESS_REFUSED" in refused.value.reply_text
    connection.close()


@pytest.mark.parametrize(
    "act",
    [
        lambda ch, name: ch.queue_declare("rpc-orders", durable=True),
        lambda ch, name: ch.queue_declare(f"x{name}.orders", durable=True),
        lambda ch, name: ch.basic_get("evt-orders"),
        lambda ch, name: ch.exchange_declare("orders.events", "topic", durable=True),
        lambda ch, name: ch.exchange_delete("orders.events"),
    ],
    ids=[
        "declare-rpc-queue",
        "declare-others-queue",
        "read-others-queue",
        "redeclare-exchange",
        "delete-exchange",
    ],
)
def test_the_broker_refuses_a_subscriber_anything_outside_its_own_queues(broker, subscriber, act):
    amqp_uri, _ = broker
    with Connection(amqp_uri) as connection:
        connection.channel().queue_declare("evt-orders", durable=True)
    connection, channel = _channel(amqp_uri, subscriber)

    with pytest.raises(ChannelClosedByBroker) as refused:
        act(channel, subscriber)
    assert refused.value.reply_code == 403
    connection.close()


def test_running_it_again_changes_the_password_and_keeps_the_rules(broker, subscriber):
    amqp_uri, management_uri = broker

    create_subscriber(
        subscriber, PASSWORD + "-new", amqp_uri=amqp_uri, management_uri=management_uri
    )

    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        _channel(amqp_uri, subscriber)
    user = ManagementApi(management_uri).user(subscriber)
    assert user is not None and user["tags"] == ["mercato-subscriber"]


def test_it_refuses_to_turn_a_services_broker_user_into_a_subscriber(broker):
    amqp_uri, management_uri = broker
    services_user = f"services{uuid.uuid4().hex[:8]}"
    api = ManagementApi(management_uri)
    api._call("PUT", f"users/{services_user}", {"password": PASSWORD, "tags": ""})
    try:
        with pytest.raises(SubscriberUserError, match="is not a subscriber's"):
            create_subscriber(
                services_user, PASSWORD, amqp_uri=amqp_uri, management_uri=management_uri
            )
        assert api.user(services_user)["tags"] == []
    finally:
        api.delete_user(services_user)


@pytest.mark.parametrize(
    "name", ["", "a", "Reports", "reports.orders", "rpc-x", "amq", "evt_y", "9lives", "x" * 64]
)
def test_a_name_that_is_no_subscribers_is_refused(name):
    with pytest.raises(SubscriberUserError, match="--name"):
        check_name(name)


def test_its_queues_are_those_named_for_it_and_it_reads_the_event_exchanges():
    rules = permissions_for("reports")

    assert rules.configure == rules.write == r"^reports(\..+)?$"
    assert rules.read == r"^(reports(\..+)?|[a-z][a-z0-9_]*\.events)$"


def test_the_command_prints_a_generated_password_once(broker, capsys, monkeypatch):
    amqp_uri, management_uri = broker
    name = f"audit{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv("MERCATO_SUBSCRIBER_PASSWORD", raising=False)
    try:
        code = main(["--name", name, "--amqp-uri", amqp_uri, "--management-uri", management_uri])
        printed = capsys.readouterr().out.strip()
        assert code == 0
        assert printed.startswith(f"amqp://{name}:")
        connection = pika.BlockingConnection(pika.URLParameters(printed))
        connection.close()
    finally:
        ManagementApi(management_uri).delete_user(name)


def test_the_command_says_what_is_wrong_with_a_bad_name(capsys):
    assert main(["--name", "rpc-orders"]) == 2
    assert "--name" in capsys.readouterr().err


def test_it_declares_the_event_exchanges_so_a_subscriber_binds_before_any_publish(
    rabbit_config, infra
):
    amqp_uri, management_uri = rabbit_config["AMQP_URI"], infra.management_uri
    name = f"early{uuid.uuid4().hex[:8]}"
    try:
        create_subscriber(name, PASSWORD, amqp_uri=amqp_uri, management_uri=management_uri)
        connection, channel = _channel(amqp_uri, name)
        channel.exchange_declare("billing.events", exchange_type="topic", passive=True)
        channel.queue_declare(f"{name}.payments", durable=True)
        channel.queue_bind(f"{name}.payments", "billing.events", routing_key="billing.#")
        connection.close()
    finally:
        ManagementApi(management_uri).delete_user(name)
