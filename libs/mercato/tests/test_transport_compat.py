"""``mercato.transport`` speaks nameko 2.14's own protocol: its RPC requests and answers,
and the events the outbox relay publishes, are the messages nameko's proxies,
entrypoints and event dispatcher send, and nameko's own consumers take them. Each test
watches the exchanges with a queue of its own on a throw-away vhost and compares what
Mercato sent with what nameko sent for the same thing. The one intended difference:
Mercato's RPC messages are transient (delivery mode 1), nameko's persistent.
"""

from __future__ import annotations

import json
import time
import uuid

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.events import event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, get_rpc_exchange
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.contracts import new_envelope
from mercato.transport import ConfirmedPublisher, TimedRpcProxy, event_message, rpc
from mercato.transport.rpc import DEADLINE_HEADER

pytestmark = pytest.mark.interface

CORRELATION = "compat-check-1"


class Callee:
    name = "callee"

    @nameko_rpc
    def plain_echo(self, value):
        return value

    @rpc
    def mercato_echo(self, value):
        return value


class NamekoCaller:
    name = "nameko_caller"
    callee = RpcProxy("callee")

    @nameko_rpc
    def call(self, value):
        return self.callee.plain_echo(value)


class MercatoCaller:
    name = "mercato_caller"
    callee = TimedRpcProxy("callee", timeout=5)

    @rpc
    def call(self, value):
        return self.callee.plain_echo(value)


class _Tap:
    """A queue of the test's own, bound to an exchange, read message by message."""

    def __init__(self, uri: str, exchange: Exchange, routing_key: str = "#") -> None:
        self.connection = Connection(uri)
        self.channel = self.connection.channel()
        self.name = f"tap-{uuid.uuid4().hex[:8]}"
        Queue(self.name, exchange=exchange, routing_key=routing_key)(self.channel).declare()

    def take(self, count: int, timeout: float = 5.0) -> list:
        seen = []
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            message = self.channel.basic_get(self.name, no_ack=True)
            if message is None:
                time.sleep(0.05)
            else:
                seen.append(message)
        return seen

    def close(self) -> None:
        self.connection.release()


@pytest.fixture
def tap(rabbit_config):
    taps: list[_Tap] = []

    def make(exchange: Exchange, routing_key: str = "#") -> _Tap:
        taps.append(_Tap(rabbit_config["AMQP_URI"], exchange, routing_key))
        return taps[-1]

    yield make
    for each in taps:
        each.close()


def _call(rabbit_config, service: str, method: str, *args):
    with ServiceRpcProxy(service, rabbit_config, timeout=5) as proxy:
        return getattr(proxy, method)(*args)


def _shape(message) -> dict:
    """What a consumer relies on in a message: its properties, header names, body."""
    properties = message.properties
    return {
        "content_type": properties.get("content_type"),
        "content_encoding": properties.get("content_encoding"),
        "has_reply_to": "reply_to" in properties,
        "has_correlation_id": "correlation_id" in properties,
        "headers": sorted(properties.get("application_headers", {})),
        "body_keys": sorted(json.loads(message.body)),
    }


def test_an_rpc_request_is_the_one_a_nameko_proxy_sends(container_factory, rabbit_config, tap):
    for cls in (Callee, NamekoCaller, MercatoCaller):
        container_factory(cls, rabbit_config).start()
    watcher = tap(get_rpc_exchange(rabbit_config), "callee.plain_echo")
    assert _call(rabbit_config, "nameko_caller", "call", "a") == "a"
    assert _call(rabbit_config, "mercato_caller", "call", "b") == "b"
    nameko_request, mercato_request = watcher.take(2)
    # Mercato's request adds its deadline (a header nameko ignores) and an expiration
    mercato_shape = _shape(mercato_request)
    mercato_shape["headers"].remove(DEADLINE_HEADER)
    assert mercato_shape == _shape(nameko_request)
    assert json.loads(mercato_request.body) == {"args": ["b"], "kwargs": {}}
    assert nameko_request.properties["delivery_mode"] == 2
    assert mercato_request.properties["delivery_mode"] == 1
    assert "expiration" not in nameko_request.properties
    assert 0 < int(mercato_request.properties["expiration"]) <= 10_000


def test_an_rpc_answer_is_the_one_a_nameko_entrypoint_sends(container_factory, rabbit_config, tap):
    container_factory(Callee, rabbit_config).start()
    watcher = tap(get_rpc_exchange(rabbit_config), "#")
    # nameko's own standalone proxy calls both entrypoints and reads both answers
    assert _call(rabbit_config, "callee", "plain_echo", "x") == "x"
    assert _call(rabbit_config, "callee", "mercato_echo", "y") == "y"
    answers = [
        m for m in watcher.take(4) if not m.delivery_info["routing_key"].startswith("callee.")
    ]
    nameko_answer, mercato_answer = answers
    assert _shape(mercato_answer) == _shape(nameko_answer)
    assert json.loads(mercato_answer.body) == {"result": "y", "error": None}


def test_an_error_answer_is_rebuilt_by_a_nameko_proxy(container_factory, rabbit_config):
    container_factory(Callee, rabbit_config).start()
    with ServiceRpcProxy("callee", rabbit_config, timeout=5) as proxy:
        with pytest.raises(Exception, match="takes 2 positional arguments"):
            proxy.mercato_echo("one", "two")


def _envelope():
    return new_envelope(
        "orders.order.cancelled",
        subject="ord_compat",
        data={
            "order_id": "ord_compat",
            "account_id": "acc_1",
            "reason": "cancelled by the buyer",
            "payment_id": None,
            "refund": None,
        },
        account_id="acc_1",
        correlation_id=CORRELATION,
        causation_id=None,
    )


def publish_as_the_relay_does(rabbit_config, envelope) -> None:
    publisher = ConfirmedPublisher(rabbit_config["AMQP_URI"])
    try:
        exchange = get_event_exchange("orders", rabbit_config)
        headers = {"correlation_id": CORRELATION}
        publisher.publish_confirmed(
            [event_message(exchange, envelope.type, envelope.dump(), headers)]
        )
    finally:
        publisher.close()


def test_an_event_is_the_message_nameko_dispatches(rabbit_config, tap):
    watcher = tap(get_event_exchange("orders", rabbit_config), "orders.order.cancelled")
    envelope = _envelope()
    dispatch = event_dispatcher(rabbit_config)
    dispatch("orders", "orders.order.cancelled", envelope.dump())
    publish_as_the_relay_does(rabbit_config, envelope)
    nameko_event, mercato_event = watcher.take(2)
    assert mercato_event.delivery_info["exchange"] == nameko_event.delivery_info["exchange"]
    assert mercato_event.delivery_info["routing_key"] == "orders.order.cancelled"
    assert mercato_event.properties["content_type"] == nameko_event.properties["content_type"]
    assert mercato_event.properties["delivery_mode"] == nameko_event.properties["delivery_mode"]
    assert json.loads(mercato_event.body) == json.loads(nameko_event.body)
    assert all(k.startswith("nameko.") for k in mercato_event.properties["application_headers"])


class ContextData(DependencyProvider):
    """The worker's context data, as nameko rebuilt it from the message's headers."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data


seen: list[tuple[dict, dict]] = []


class ContextRecorder:
    name = "recorder"
    context = ContextData()

    @event_handler("orders", "orders.order.cancelled")
    def on_cancelled(self, payload):
        seen.append((payload, dict(self.context)))


def test_a_nameko_event_handler_consumes_what_the_relay_publishes(container_factory, rabbit_config):
    seen.clear()
    container_factory(ContextRecorder, rabbit_config).start()
    envelope = _envelope()
    publish_as_the_relay_does(rabbit_config, envelope)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    ((payload, context),) = seen
    assert payload == json.loads(json.dumps(envelope.dump()))
    assert context["correlation_id"] == CORRELATION
