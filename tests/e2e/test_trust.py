"""End to end: who may call whom on the broker.

Anyone who can publish to ``nameko-rpc`` can write a caller's identity into the
headers. A request whose identity is not signed with Mercato's key (or was altered, or
expired) is refused by the service and changes nothing; a subscriber's own broker user
(``mercato-create-subscriber``) may not publish at all, and still receives the order
events with the documented example program. The ``system`` fixture is in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import pytest
import requests
from pika.exceptions import ChannelClosedByBroker

from mercato.identity import CALLER_SIGNATURE, ROLES, ContextSigner, Identity, context_keys_from
from mercato_subscribers.users import ManagementApi, management_uri_for
from mercato_testing import signed_context
from tests.e2e.test_order_events_subscriber import Buyer, SubscriberProgram, wait_until

pytestmark = pytest.mark.e2e

REPLY_SECONDS = 15.0


def nameko_headers(context: dict) -> dict:
    return {f"nameko.{key}": value for key, value in context.items()}


def call_as(amqp_uri: str, routing_key: str, args: list, context: dict) -> dict:
    """Publish an RPC request straight to ``nameko-rpc`` with pika, as a program holding
    the services' broker user could, and answer the reply's body."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(reply_queue, "nameko-rpc", routing_key=reply_queue)
        correlation_id = uuid.uuid4().hex
        channel.basic_publish(
            "nameko-rpc",
            routing_key,
            json.dumps({"args": args, "kwargs": {}}).encode(),
            pika.BasicProperties(
                content_type="application/json",
                reply_to=reply_queue,
                correlation_id=correlation_id,
                headers=nameko_headers(context),
            ),
        )
        deadline = time.monotonic() + REPLY_SECONDS
        while time.monotonic() < deadline:
            method, properties, body = channel.basic_get(reply_queue, auto_ack=True)
            if method is not None and properties.correlation_id == correlation_id:
                return json.loads(body)
            connection.sleep(0.05)
        raise AssertionError(f"no reply to {routing_key} within {REPLY_SECONDS}s")
    finally:
        connection.close()


class Victim(Buyer):
    """A buyer who places orders (and cancels them), with no balance: nothing here
    needs a payment."""

    def __init__(self, system) -> None:
        self.gateway = system.gateway
        self.context = lambda: system.log()[-4000:]
        email = f"trust-e2e-{uuid.uuid4().hex[:8]}@example.com"
        password = "a long e2e password"
        created = requests.post(
            f"{self.gateway}/v1/accounts",
            json={"name": "E2E Victim", "email": email, "password": password, "type": "buyer"},
            timeout=15,
        )
        assert created.status_code == 201, created.text
        issued = requests.post(
            f"{self.gateway}/v1/auth/tokens",
            json={"email": email, "password": password},
            timeout=15,
        )
        assert issued.status_code == 201, issued.text
        self.headers = {"Authorization": f"Bearer {issued.json()['token']}"}

    def cancel(self, order: dict) -> None:
        cancelled = self.post(f"/v1/orders/{order['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text


@pytest.fixture(scope="module")
def victim(system) -> Victim:
    return Victim(system)


def _caller_of(buyer: Victim, system) -> Identity:
    """The buyer as the gateway would name it in a request's context."""
    found = requests.get(f"{system.gateway}/v1/me", headers=buyer.headers, timeout=15)
    assert found.status_code == 200, found.text
    me = found.json()
    return Identity(me["account"]["id"], me["user"]["id"], "buyer", tuple(me["roles"]))


def _forgeries(victim_identity: Identity) -> dict[str, dict]:
    operator = Identity("acc_x", "usr_x", "operator", ("operator", "buyer"))
    signed = signed_context(victim_identity)
    past = ContextSigner(context_keys_from({}), now=lambda: time.time() - 3600)
    return {
        "unsigned, as the victim": victim_identity.to_context(),
        "unsigned, as an operator": operator.to_context(),
        "signature made up": {**victim_identity.to_context(), CALLER_SIGNATURE: "ab" * 32},
        "roles added after signing": {**signed, ROLES: ["buyer", "operator"]},
        "signed an hour ago, expired": past.sign(victim_identity),
    }


def test_a_forged_rpc_published_with_pika_is_refused_and_changes_nothing(system, victim):
    order = victim.place_order()
    identity = _caller_of(victim, system)

    for what, context in _forgeries(identity).items():
        reply = call_as(system.amqp_uri, "orders.cancel_order", [order["id"]], context)
        assert reply["result"] is None, what
        assert reply["error"]["exc_type"] == "Unauthenticated", (what, reply)

    assert victim.order(order["id"])["status"] == "unpaid"


def test_a_signed_rpc_is_believed(system, victim):
    """The same request, signed with Mercato's key, is the victim's own: the refusals
    above are the signature's doing, not the message's."""
    order = victim.place_order()
    identity = _caller_of(victim, system)

    reply = call_as(system.amqp_uri, "orders.cancel_order", [order["id"]], signed_context(identity))

    assert reply["error"] is None, reply
    assert victim.order(order["id"])["status"] == "cancelled"


@pytest.fixture
def subscriber_user(system, infra):
    """A subscriber's own broker user in the system's vhost, made by the command."""
    name = f"reports{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [
            str(Path(sys.executable).with_name("mercato-create-subscriber")),
            "--name",
            name,
            "--amqp-uri",
            system.amqp_uri,
            "--management-uri",
            infra.management_uri,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MERCATO_SUBSCRIBER_PASSWORD"},
    )
    assert made.returncode == 0, made.stderr
    uri = made.stdout.strip()
    assert uri.startswith(f"amqp://{name}:")
    yield name, uri
    ManagementApi(infra.management_uri or management_uri_for(system.amqp_uri)).delete_user(name)


def test_a_subscriber_users_publish_to_nameko_rpc_is_refused_by_the_broker(
    system, victim, subscriber_user
):
    _name, uri = subscriber_user
    order = victim.place_order()
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()

    with pytest.raises(ChannelClosedByBroker) as refused:
        channel.basic_publish(
            "nameko-rpc",
            "orders.cancel_order",
            json.dumps({"args": [order["id"]], "kwargs": {}}).encode(),
            pika.BasicProperties(
                content_type="application/json",
                headers=nameko_headers(signed_context(_caller_of(victim, system))),
            ),
        )
    connection.close()

    assert refused.value.reply_code == 403
    assert "ACCESS_REFUSED" in refused.value.reply_text
    assert victim.order(order["id"])["status"] == "unpaid"


def test_the_documented_subscriber_receives_order_events_with_its_own_user(
    system, victim, subscriber_user, tmp_path
):
    name, uri = subscriber_user
    program = SubscriberProgram(tmp_path, uri, f"{name}.orders")
    program.start()
    try:
        order = victim.place_order()
        victim.cancel(order)

        wait_until(
            lambda: (
                {type_ for _id, type_, _subject in program.events_about(order)}
                >= {"orders.order.created", "orders.order.cancelled"}
            ),
            "the order's events at the subscriber",
            context=lambda: "\n".join(json.dumps(r) for r in program.logs(0)[-20:]),
        )
    finally:
        program.kill_all()
