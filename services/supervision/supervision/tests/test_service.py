"""supervision in real containers, on PostgreSQL and RabbitMQ: flows started by
orders' paid events, the steps called the way the gateway calls them, and the timers,
with two replicas sweeping at once. The clock is moved, never slept on."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from mercato.clock import ManualClock
from mercato.db import create_engine
from mercato.errors import Conflict, Forbidden, NotFound
from mercato_testing import signed_context
from mercato_testing.interface import (
    EventQueue,
    caller,
    events_consumed,
    publish_event,
    wait_for,
)
from supervision.service import SupervisionService

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
BUYER = caller("acc_buyer", "buyer")
SELLER = caller("acc_seller", "seller")
OTHER_BUYER = caller("acc_other", "buyer")
OPERATOR = caller("acc_ops", "operator")


@dataclass
class Supervision:
    config: dict
    clock: ManualClock
    engine: sa.engine.Engine

    def rpc(self, who: dict) -> ServiceRpcProxy:
        return ServiceRpcProxy(
            "supervision", self.config, timeout=30, context_data=signed_context(who)
        )

    def scalar(self, sql: str, **params):
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar_one()


def _start(container_factory, config, clock):
    container = container_factory(SupervisionService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


@pytest.fixture
def supervision(container_factory, make_service_config):
    config = make_service_config(
        "supervision", SUPERVISION_SWEEP_SECONDS=0.1, SUPERVISION_HOLIDAYS_COUNTRY="US"
    )
    clock = ManualClock(START)
    _start(container_factory, config, clock)
    engine = create_engine(config["DATABASE_URL"], pool_size=2)
    yield Supervision(config, clock, engine)
    engine.dispose()


def paid(
    supervision: Supervision,
    method: str,
    *,
    supervised: bool = True,
    paid_at: dt.datetime = START,
    times: int = 1,
) -> str:
    """Publish orders' paid event for a one-line order; its order id."""
    order_id = f"ord_{uuid.uuid4().hex}"
    line = {
        "subscription_id": f"sub_{uuid.uuid4().hex}",
        "order_line_id": f"oln_{uuid.uuid4().hex}",
        "product_id": "prd_1",
        "product_name": "Careful migration",
        "seller_account_id": SELLER["account_id"],
        "specification_id": "spc_1",
        "specification_name": "Standard",
        "delivery_method": method,
        "service_supervision": supervised,
        "billing_mode": "one_time",
        "period": None,
        "quantity": 1,
        "expires_at": None,
    }
    publish_event(
        supervision.config["AMQP_URI"],
        "orders.order.paid",
        {
            "order_id": order_id,
            "account_id": BUYER["account_id"],
            "payer_account_id": BUYER["account_id"],
            "enterprise_project_id": "default",
            "payment_id": f"pay_{uuid.uuid4().hex}",
            "payment_method": "balance",
            "amount": {"amount": 50_000, "currency": "USD"},
            "paid_at": paid_at,
            "subscriptions": [line],
        },
        subject=order_id,
        times=times,
    )
    return order_id


def flow_of(supervision: Supervision, order_id: str) -> dict:
    def found():
        with supervision.rpc(BUYER) as service:
            page = service.list_flows({"q": order_id})
        return page["items"][0] if page["total"] == 1 else None

    return wait_for(found, f"the flow of {order_id}")


def test_paid_orders_start_the_flow_of_their_kind_and_process(supervision):
    ignored_before = events_consumed("supervision.on_order_paid", "orders.order.paid", "ignored")
    license_order = paid(supervision, "license", supervised=False, times=2)
    service_order = paid(supervision, "professional_service")
    legacy_order = paid(
        supervision, "professional_service", paid_at=dt.datetime(2025, 3, 25, 23, 59, tzinfo=dt.UTC)
    )
    saas_order = paid(supervision, "saas", supervised=True)
    unsupervised = paid(supervision, "saas", supervised=False)
    image = paid(supervision, "image", supervised=False)

    assert flow_of(supervision, license_order)["step"] == "awaiting_acceptance"
    assert (
        flow_of(supervision, service_order)["step"],
        flow_of(supervision, service_order)["process"],
    ) == (
        "awaiting_request",
        "2025-03-26",
    )
    legacy = flow_of(supervision, legacy_order)
    assert (legacy["step"], legacy["process"]) == ("awaiting_confirmation", "legacy")
    assert flow_of(supervision, saas_order)["step"] == "awaiting_request"
    # a redelivered event started nothing twice; unsupervised SaaS and images have none
    assert supervision.scalar("SELECT count(*) FROM flows") == 4
    for order_id in (unsupervised, image):
        assert supervision.scalar("SELECT count(*) FROM flows WHERE order_id = :o", o=order_id) == 0
    # the orders with nothing supervised were acknowledged without an inbox row
    wait_for(
        lambda: (
            events_consumed("supervision.on_order_paid", "orders.order.paid", "ignored")
            == ignored_before + 2
        ),
        "the two orders with nothing supervised",
    )
    assert supervision.scalar("SELECT count(*) FROM inbox_messages") == 4


def test_a_saas_flow_moves_to_acceptance_when_its_tenant_is_delivered(supervision):
    order_id = paid(supervision, "saas", supervised=True)
    flow = flow_of(supervision, order_id)
    confirmed_events = EventQueue(supervision.config["AMQP_URI"], "supervision", "#")
    with supervision.rpc(BUYER) as service:
        service.submit_request(flow["id"], {"description": "Ten seats, please."})
    with supervision.rpc(SELLER) as service:
        assert service.answer_request(flow["id"], {})["step"] == "in_service"
        with pytest.raises(Conflict, match="tenant"):
            service.provide_service(flow["id"], {"description": "Done."})
    confirmed = wait_for(
        lambda: [e for e in confirmed_events.read() if e["type"] == "supervision.flow.confirmed"],
        "the confirmed event provisioning creates the tenant on",
    )
    assert confirmed[0]["data"]["subscription_id"] == flow["subscription_id"]

    publish_delivered(supervision, order_id, flow["subscription_id"])
    wait_for(lambda: flow_of(supervision, order_id)["step"] == "awaiting_acceptance", "delivery")
    with supervision.rpc(BUYER) as service:
        assert service.accept(flow["id"])["step"] == "completed"
    confirmed_events.close()


def publish_delivered(supervision: Supervision, order_id: str, subscription_id: str) -> None:
    """provisioning's event for the SaaS tenant of the order, delivered twice."""
    delivered = {
        "delivery_id": "dlv_1",
        "subscription_id": subscription_id,
        "order_id": order_id,
        "order_line_id": "oln_1",
        "account_id": BUYER["account_id"],
        "delivery_method": "saas",
        "service_supervision": True,
        "application": {
            "instance_id": "inst_1",
            "username": "ann",
            "management_url": "https://saas.example/admin",
            "frontend_url": "https://saas.example/",
            "license_key": None,
            "has_password": True,
        },
        "starts_at": START,
        "expires_at": None,
        "delivered_at": START,
    }
    publish_event(
        supervision.config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        delivered,
        subject=subscription_id,
        times=2,
    )


def test_a_tenant_delivered_while_an_appeal_freezes_the_flow_moves_it_once_resumed(supervision):
    order_id = paid(supervision, "saas", supervised=True)
    flow = flow_of(supervision, order_id)
    with supervision.rpc(BUYER) as service:
        service.submit_request(flow["id"], {"description": "Ten seats, please."})
    with supervision.rpc(SELLER) as service:
        service.answer_request(flow["id"], {})
        appeal = service.open_appeal(flow["id"], {"reason": "Scope", "description": "Unclear."})
    publish_delivered(supervision, order_id, flow["subscription_id"])
    wait_for(
        lambda: supervision.scalar(
            "SELECT count(*) FROM flow_records WHERE action = 'tenant_delivered'"
        ),
        "the delivery recorded on the frozen flow",
    )
    assert flow_of(supervision, order_id)["step"] == "in_service"
    with supervision.rpc(OPERATOR) as service:
        service.resolve_appeal(appeal["id"], {"decision": "continue", "message": "Go on."})
    resumed = flow_of(supervision, order_id)
    assert resumed["step"] == "awaiting_acceptance" and resumed["accept_by"]


def test_only_the_parties_see_a_flow_and_each_takes_only_its_steps(supervision):
    flow = flow_of(supervision, paid(supervision, "professional_service"))
    with supervision.rpc(OTHER_BUYER) as service:
        with pytest.raises(NotFound):
            service.get_flow(flow["id"])
        with pytest.raises(NotFound):
            service.submit_request(flow["id"], {"description": "mine now"})
        assert service.list_flows({})["total"] == 0
    with supervision.rpc(caller("acc_other_seller", "seller")) as service:
        with pytest.raises(NotFound):
            service.answer_request(flow["id"], {})
    with supervision.rpc(SELLER) as service:
        assert service.list_flows({})["total"] == 1
        with pytest.raises(Forbidden):
            service.submit_request(flow["id"], {"description": "the buyer's step"})
    with supervision.rpc(OPERATOR) as service:
        assert service.get_flow(flow["id"])["id"] == flow["id"]


def test_two_replicas_accept_overdue_deliveries_once_each_and_tell_the_buyer_once(
    supervision, container_factory
):
    _start(container_factory, supervision.config, supervision.clock)  # a second replica
    events = EventQueue(supervision.config["AMQP_URI"], "supervision", "supervision.flow.completed")
    orders = [paid(supervision, "license", supervised=False) for _ in range(12)]
    wait_for(lambda: supervision.scalar("SELECT count(*) FROM flows") == 12, "12 flows")

    supervision.clock.advance(days=5, minutes=1)  # within two days of the 7
    wait_for(
        lambda: supervision.scalar("SELECT count(*) FROM flows WHERE accept_notice_sent") == 12,
        "the notice two days before",
    )
    supervision.clock.advance(days=2)
    wait_for(
        lambda: supervision.scalar("SELECT count(*) FROM flows WHERE step = 'completed'") == 12,
        "every flow accepted",
    )
    wait_for(lambda: len(events.read()) >= 12, "the completed events")
    completed = events.read()
    assert sorted(e["data"]["order_id"] for e in completed) == sorted(orders)
    assert {e["data"]["accepted_by"] for e in completed} == {"system"}
    assert supervision.scalar("SELECT count(*) FROM messages WHERE kind = 'auto_accept_soon'") == 12
    assert (
        supervision.scalar(
            "SELECT count(*) FROM flow_records WHERE action = 'accepted' AND actor = 'system'"
        )
        == 12
    )
    events.close()


def test_a_seller_that_does_not_confirm_is_reminded_once_after_the_working_days(supervision):
    order_id = paid(
        supervision, "professional_service", paid_at=dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
    )
    flow = flow_of(supervision, order_id)
    assert flow["step"] == "awaiting_confirmation"
    # started Monday 09:00: three working days later is Thursday 09:00
    with supervision.rpc(BUYER) as service:
        assert service.get_flow(flow["id"])["confirm_by"] == "2026-03-05T09:00:00+00:00"
    supervision.clock.advance(days=3, seconds=1)
    wait_for(
        lambda: (
            supervision.scalar("SELECT count(*) FROM messages WHERE kind = 'confirmation_overdue'")
            == 1
        ),
        "the reminder",
    )
    with supervision.rpc(BUYER) as service:
        kinds = [m["kind"] for m in service.list_messages({})["items"]]
    assert kinds.count("may_appeal") == 1


def test_a_buyer_that_does_not_send_its_request_is_reminded_once_and_its_seller_told(
    supervision,
):
    flow = flow_of(supervision, paid(supervision, "professional_service"))
    assert flow["step"] == "awaiting_request"
    with supervision.rpc(BUYER) as service:
        assert service.get_flow(flow["id"])["request_by"] == "2026-03-05T09:00:00+00:00"
    supervision.clock.advance(days=3, seconds=1)
    wait_for(
        lambda: (
            supervision.scalar("SELECT count(*) FROM messages WHERE kind = 'request_overdue'") == 2
        ),
        "the buyer's reminder and the seller's note",
    )
    with supervision.rpc(SELLER) as service:
        (told,) = [m for m in service.list_messages({})["items"] if m["kind"] == "request_overdue"]
    assert "appeal" in told["body"]
    # the request sent back is due again in three working days, with a reminder of its own
    with supervision.rpc(BUYER) as service:
        service.submit_request(flow["id"], {"description": "At last."})
    with supervision.rpc(SELLER) as service:
        sent_back = service.answer_request(flow["id"], {"reject": True, "reason": "Which DB?"})
    assert sent_back["request_by"] == "2026-03-10T09:00:01+00:00"


def test_an_appeal_is_due_in_three_working_days_and_one_at_a_time(supervision):
    flow = flow_of(supervision, paid(supervision, "professional_service"))
    supervision.clock.set(dt.datetime(2026, 7, 2, 10, 0, tzinfo=dt.UTC))  # Thursday before the 4th
    with supervision.rpc(BUYER) as service:
        appeal = service.open_appeal(flow["id"], {"reason": "Silent", "description": "No reply."})
        with pytest.raises(Conflict):
            service.open_appeal(flow["id"], {"reason": "Again", "description": "Still."})
    # Friday 3 July is the observed US holiday: Monday, Tuesday, Wednesday
    assert appeal["due_at"] == "2026-07-08T10:00:00+00:00"
    with supervision.rpc(OPERATOR) as service:
        (listed,) = service.list_open_appeals({})["items"]
        assert listed["id"] == appeal["id"] and listed["overdue"] is False
        supervision.clock.advance(days=7)
        assert service.list_open_appeals({})["items"][0]["overdue"] is True
