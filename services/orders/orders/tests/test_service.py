"""orders in a real container on PostgreSQL and RabbitMQ, its neighbours (catalog,
iam-agency, billing) replaced by small nameko services that answer like them."""

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook, replace_dependencies

from mercato.clock import ManualClock
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    Unauthenticated,
    ValidationError,
)
from mercato.identity import service_identity
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import (
    EventQueue,
    caller,
    count_rows,
    events_consumed,
    publish_event,
    wait_for,
)
from orders.domain import add_months
from orders.service import OrdersService
from orders.tests import fakes

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
PRICE = fakes.PRICE  # per month


class FakeCatalog:
    name = "catalog"

    @rpc
    def quote(self, payload):
        return fakes.quote_for(payload)


class FakeIam:
    name = "iam_agency"

    @rpc
    def get_enterprise_project(self, project_id):
        return fakes.enterprise_project(project_id)


class FakeBilling:
    """Charges each order at most once, like billing. Cards are tokens named for the
    provider's test cards (``tok_…0002`` is declined, ``tok_…0119`` left pending)."""

    name = "billing"
    charges: dict = {}
    calls: list = []
    lock = threading.Lock()

    @rpc
    def get_payment(self, order_id):
        """The order's payment: a charge made, or the last attempt's as its pay answered
        it (a pending card is still pending)."""
        if order_id in FakeBilling.charges:
            return FakeBilling.charges[order_id]
        for payload in reversed(FakeBilling.calls):
            card = payload.get("card") or {}
            if payload["order_id"] == order_id and card.get("token", "").endswith("0119"):
                return fakes.payment_answer(payload, "pending", payment_id="pay_pending")
        raise NotFound(f"no payment for order {order_id}")

    @rpc
    def pay_order(self, payload):
        FakeBilling.calls.append(payload)
        card = payload.get("card") or {}
        if card.get("token", "").endswith("0119"):  # the gateway has not answered yet
            return fakes.payment_answer(payload, "pending", payment_id="pay_pending")
        if card.get("token", "").endswith("0002"):
            return fakes.payment_answer(payload, "failed", failure_reason="card declined")
        if payload["payment_method"] == "credit":
            raise PaymentRequired("credit limit exceeded")
        if card.get("token", "").endswith("4444"):
            return FakeBilling.announce_before_answering(payload)
        with FakeBilling.lock:
            payment = FakeBilling.charges.setdefault(
                payload["order_id"], fakes.payment_answer(payload, "succeeded")
            )
        return payment

    @staticmethod
    def announce_before_answering(payload):
        """Billing's event overtakes its RPC answer: orders hears of the payment (and
        marks the order paid) before pay_order returns to it."""
        payment = fakes.payment_answer(payload, "succeeded", payment_id="pay_fast_event")
        publish_event(
            FakeBilling.config["AMQP_URI"],
            "billing.payment.succeeded",
            {
                "payment_id": payment["id"],
                "order_id": payload["order_id"],
                "account_id": payload["account_id"],
                "payer_account_id": payload["payer_account_id"],
                "payment_method": "credit_card",
                "amount": payload["amount"],
                "enterprise_project_id": payload["enterprise_project_id"],
            },
            subject=payment["id"],
        )
        wait_for(
            lambda: count_rows(FakeBilling.config, "subscriptions"),
            "orders to hear of the payment",
            timeout=15,
        )
        return payment


BUYER = caller("acc_buyer", "buyer")
OTHER = caller("acc_other", "buyer")
CUSTOMER = caller("acc_customer", "buyer", reseller_account_id="acc_reseller")
SELLER = caller("acc_seller", "seller")

ORDER = fakes.ORDER_REQUEST


@pytest.fixture
def orders(container_factory, make_service_config):
    FakeBilling.charges, FakeBilling.calls = {}, []
    config = make_service_config("orders")
    FakeBilling.config = config
    for fake in (FakeCatalog, FakeIam, FakeBilling):
        container_factory(fake, config).start()
    container = container_factory(OrdersService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    return config, clock, container


def as_caller(config, caller):
    return ServiceRpcProxy("orders", config, timeout=20, context_data=signed_context(dict(caller)))


def test_placed_order_fixes_the_quoted_price_and_waits_for_payment(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
    assert order["status"] == "unpaid"
    assert order["amount_due"] == {"amount": PRICE * 2 * 3, "currency": "USD"}
    assert order["enterprise_project_id"] == "default"
    assert order["payment_deadline"] == (START + dt.timedelta(hours=24)).isoformat()
    [line] = order["lines"]
    assert line["unit_price"] == {"amount": PRICE, "currency": "USD"}
    assert line["period"] == {"unit": "month", "count": 2}


@pytest.mark.parametrize(
    ("change", "error", "marker"),
    [
        ({"accept_terms": False}, BusinessRuleViolation, "TERMS_NOT_ACCEPTED"),
        ({"product_id": "prd_unknown"}, NotFound, "NOT_FOUND"),
        ({"billing_mode": "one_time"}, ValidationError, "period"),
        ({"enterprise_project_id": "proj_missing"}, ValidationError, "enterprise_project_id"),
        ({"quantity": -1}, ValidationError, "quantity"),
    ],
)
def test_rejected_order_stores_nothing(orders, change, error, marker):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service, pytest.raises(error) as raised:
        service.place_order({**ORDER, **change})
    assert marker in (raised.value.code, *raised.value.fields)
    assert count_rows(config, "orders") == 0
    assert count_rows(config, "outbox_messages") == 0


def test_only_buyers_place_orders(orders):
    config, _clock, _ = orders
    with as_caller(config, SELLER) as service, pytest.raises(Forbidden):
        service.place_order(ORDER)


def test_paid_order_gets_one_subscription_expiring_after_the_period(orders):
    config, clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order({**ORDER, "enterprise_project_id": "proj_a"})
        clock.advance(hours=1)
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
        apps = service.list_purchased_apps({})
    assert paid["status"] == "paid" and paid["payment_method"] == "balance"
    assert apps["total"] == 1
    [app] = apps["items"]
    assert app["status"] == "enabling"
    assert app["order_id"] == order["id"]
    assert app["enterprise_project_id"] == "proj_a"
    # paid 2026-11-27 10:00 UTC for 2 months: 23:59:59 of the day before 2027-01-27
    assert app["expires_at"] == dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC).isoformat()
    [call] = FakeBilling.calls
    assert call["amount"] == {"amount": PRICE * 6, "currency": "USD"}
    assert call["payer_account_id"] == BUYER["account_id"]


def test_paying_twice_charges_once_and_the_second_is_a_conflict(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        service.pay_order(order["id"], {"payment_method": "balance"})
        with pytest.raises(Conflict):
            service.pay_order(order["id"], {"payment_method": "balance"})
    assert len(FakeBilling.calls) == 1
    assert count_rows(config, "subscriptions") == 1


def test_ten_concurrent_pays_make_one_paid_order_and_one_subscription(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
    outcomes = []

    def pay():
        with as_caller(config, BUYER) as service:
            try:
                outcomes.append(
                    service.pay_order(order["id"], {"payment_method": "balance"})["status"]
                )
            except Conflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=pay) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "paid" in outcomes and set(outcomes) <= {"paid", "conflict"}
    assert count_rows(config, "subscriptions") == 1
    assert len(FakeBilling.charges) == 1


def test_someone_elses_order_is_not_found(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
    with as_caller(config, OTHER) as service:
        for call in (
            lambda: service.get_order(order["id"]),
            lambda: service.pay_order(order["id"], {"payment_method": "balance"}),
            lambda: service.cancel_order(order["id"]),
        ):
            with pytest.raises(NotFound):
                call()
    assert FakeBilling.calls == []


def test_declined_card_leaves_the_order_unpaid_to_try_again(orders):
    config, _clock, _ = orders
    card = {"token": "tok_4000000000000002"}
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        with pytest.raises(PaymentRequired) as raised:
            service.pay_order(order["id"], {"payment_method": "credit_card", "card": card})
        assert raised.value.code == "PAYMENT_DECLINED"
        assert service.get_order(order["id"])["status"] == "unpaid"
        # short credit also leaves it unpaid, and cancellable at once
        with pytest.raises(PaymentRequired):
            service.pay_order(order["id"], {"payment_method": "credit"})
        assert service.cancel_order(order["id"])["status"] == "cancelled"


def test_buyer_cancels_an_unpaid_order_but_not_a_paid_one(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        first = service.place_order(ORDER)
        cancelled = service.cancel_order(first["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == "cancelled by the buyer"
        with pytest.raises(Conflict):
            service.pay_order(first["id"], {"payment_method": "balance"})
        second = service.place_order(ORDER)
        service.pay_order(second["id"], {"payment_method": "balance"})
        with pytest.raises(Conflict):
            service.cancel_order(second["id"])
        listed = service.list_orders({"status": "cancelled"})
    assert [o["id"] for o in listed["items"]] == [first["id"]]


def test_unpaid_order_is_cancelled_when_its_payment_window_passes(orders):
    config, clock, container = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
    clock.advance(hours=23, minutes=59)
    with entrypoint_hook(container, "cancel_expired_orders") as sweep:
        sweep()
    with as_caller(config, BUYER) as service:
        assert service.get_order(order["id"])["status"] == "unpaid"
    clock.advance(minutes=1)
    with entrypoint_hook(container, "cancel_expired_orders") as sweep:
        sweep()
    with as_caller(config, BUYER) as service:
        expired = service.get_order(order["id"])
        assert expired["status"] == "cancelled"
        assert "payment window" in expired["cancel_reason"]
        with pytest.raises(Conflict):
            service.pay_order(order["id"], {"payment_method": "balance"})


def test_reseller_customer_order_is_paid_by_the_reseller_when_placed(orders):
    config, _clock, _ = orders
    with as_caller(config, CUSTOMER) as service:
        order = service.place_order(ORDER)
    assert order["status"] == "paid"
    assert order["paid_by_reseller"] is True
    assert order["amount_due"] == {"amount": PRICE * 6, "currency": "USD"}
    [call] = FakeBilling.calls
    assert call["payment_method"] == "reseller"
    assert call["payer_account_id"] == "acc_reseller"


def test_order_events_carry_the_whole_purchase(orders):
    config, _clock, _ = orders
    queue = EventQueue(config["AMQP_URI"], "orders", "orders.#")
    try:
        with as_caller(config, BUYER) as service:
            order = service.place_order(ORDER)
            service.pay_order(order["id"], {"payment_method": "balance"})
        wait_for(lambda: len(queue.read()) >= 3, "three events", timeout=15)
        received = queue.read()
    finally:
        queue.close()
    assert [event["type"] for event in received] == [
        "orders.order.created",
        "orders.order.paid",
        "orders.subscription.created",
    ]
    assert {event["subject"] for event in received[:2]} == {order["id"]}
    assert all(event["account_id"] == BUYER["account_id"] for event in received)


def test_order_facts_answer_another_service_what_order_created_said(orders):
    config, _clock, _ = orders
    queue = EventQueue(config["AMQP_URI"], "orders", "orders.order.created")
    try:
        with as_caller(config, BUYER) as service:
            order = service.place_order(ORDER)
        wait_for(lambda: len(queue.read()) >= 1, "orders.order.created", timeout=15)
        (created,) = queue.read()
    finally:
        queue.close()

    with as_caller(config, service_identity("billing").to_context()) as service:
        answer = service.order_facts([order["id"], "ord_unknown", order["id"]])
        with pytest.raises(ValidationError) as refused:
            service.order_facts([])

    (facts,) = answer["orders"]  # an unknown id is left out, a repeated one answered once
    assert {key: value for key, value in facts.items() if key != "created_at"} == created["data"]
    assert facts["created_at"] == order["created_at"]
    assert "order_ids" in refused.value.fields
    for person in (BUYER, SELLER, caller("acc_ops", "operator")):
        with as_caller(config, person) as service, pytest.raises(Forbidden):
            service.order_facts([order["id"]])


def publish_payment_event(config, event_type, data, *, times=1):
    publish_event(config["AMQP_URI"], event_type, data, subject=data["payment_id"], times=times)


def duplicates() -> float:
    return events_consumed("orders.on_payment_succeeded", "billing.payment.succeeded", "duplicate")


def wait_for_status(config, order_id, status):
    with as_caller(config, BUYER) as service:
        return wait_for(
            lambda: (order := service.get_order(order_id))["status"] == status and order,
            f"the order to be {status}",
            timeout=15,
        )


def test_pending_card_payment_completes_when_billing_announces_it_once(orders):
    config, _clock, _ = orders
    card = {"token": "tok_4000000000000119"}
    duplicates_before = duplicates()
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        pending = service.pay_order(order["id"], {"payment_method": "credit_card", "card": card})
        assert pending["status"] == "unpaid" and pending["payment_pending"] is True
        # a payment in progress keeps the buyer from cancelling under it
        with pytest.raises(Conflict):
            service.cancel_order(order["id"])
    publish_payment_event(
        config,
        "billing.payment.succeeded",
        {
            "payment_id": "pay_pending",
            "order_id": order["id"],
            "account_id": BUYER["account_id"],
            "payer_account_id": BUYER["account_id"],
            "payment_method": "credit_card",
            "amount": {"amount": PRICE * 6, "currency": "USD"},
            "enterprise_project_id": "default",
        },
        times=3,  # redelivered: applied once
    )
    paid = wait_for_status(config, order["id"], "paid")
    assert paid["status"] == "paid" and paid["payment_pending"] is False
    # the two redeliveries are counted as duplicates once they have been handled
    wait_for(lambda: duplicates() >= duplicates_before + 2, "two duplicates", timeout=15)
    assert duplicates() == duplicates_before + 2
    assert count_rows(config, "subscriptions") == 1
    assert count_rows(config, "inbox_messages") == 1


def test_pending_card_payment_that_fails_frees_the_order(orders):
    config, _clock, _ = orders
    card = {"token": "tok_4000000000000119"}
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        service.pay_order(order["id"], {"payment_method": "credit_card", "card": card})
    publish_payment_event(
        config,
        "billing.payment.failed",
        {
            "payment_id": "pay_pending",
            "order_id": order["id"],
            "account_id": BUYER["account_id"],
            "payment_method": "credit_card",
            "reason": "declined",
            "failure_code": "card_declined",
        },
    )
    with as_caller(config, BUYER) as service:
        wait_for(
            lambda: not service.get_order(order["id"])["payment_pending"],
            "the payment to be over",
            timeout=15,
        )
        assert service.cancel_order(order["id"])["status"] == "cancelled"


def test_payment_event_overtaking_the_rpc_answer_pays_the_order_once(orders):
    config, _clock, _ = orders
    card = {"token": "tok_5555555555554444"}
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        paid = service.pay_order(order["id"], {"payment_method": "credit_card", "card": card})
    assert paid["status"] == "paid"
    assert count_rows(config, "subscriptions") == 1


def test_the_event_of_a_payment_the_pay_request_recorded_writes_nothing(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
    assert paid["status"] == "paid"
    payment = FakeBilling.charges[order["id"]]
    duplicates_before = duplicates()
    publish_payment_event(
        config,
        "billing.payment.succeeded",
        {
            "payment_id": payment["id"],
            "order_id": order["id"],
            "account_id": BUYER["account_id"],
            "payer_account_id": BUYER["account_id"],
            "payment_method": "balance",
            "amount": {"amount": PRICE * 6, "currency": "USD"},
            "enterprise_project_id": "default",
        },
    )
    wait_for(lambda: duplicates() >= duplicates_before + 1, "the duplicate", timeout=15)
    # counted as the repeat it is, with no inbox row and nothing else changed
    assert duplicates() == duplicates_before + 1
    assert count_rows(config, "inbox_messages") == 0
    assert count_rows(config, "subscriptions") == 1
    assert wait_for_status(config, order["id"], "paid")["status"] == "paid"


# -- the seller's orders ----------------------------------------------------------------

OTHER_SELLER = caller("acc_other_seller", "seller")


def test_a_seller_sees_the_orders_of_its_products_and_who_shared_their_contact(orders):
    config, clock, _ = orders
    with as_caller(config, BUYER) as service:
        shared = service.place_order({**ORDER, "share_contact": True})
        assert shared["share_contact"] is True
    clock.advance(minutes=1)
    with as_caller(config, OTHER) as service:
        private = service.place_order(ORDER)
        assert private["share_contact"] is False
        service.pay_order(private["id"], {"payment_method": "balance"})

    with as_caller(config, SELLER) as service:
        page = service.list_seller_orders({"page": "1", "page_size": "10"})
        paid = service.list_seller_orders({"status": "paid"})
        one = service.get_seller_order(shared["id"])

    assert page["total"] == 2 and [order["id"] for order in page["items"]] == [
        private["id"],
        shared["id"],
    ]
    assert page["items"][0]["buyer"] == {
        "account_id": OTHER["account_id"],
        "shared_contact": False,
    }
    assert one == page["items"][1]
    assert one["buyer"] == {"account_id": BUYER["account_id"], "shared_contact": True}
    assert one["status"] == "unpaid" and one["amount"] == shared["amount_due"]
    assert [line["id"] for line in one["lines"]] == [shared["lines"][0]["id"]]
    assert [order["id"] for order in paid["items"]] == [private["id"]]


def test_another_sellers_order_is_not_found_to_a_seller(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
    with as_caller(config, OTHER_SELLER) as service:
        assert service.list_seller_orders({})["total"] == 0
        with pytest.raises(NotFound):
            service.get_seller_order(order["id"])
    with as_caller(config, SELLER) as service, pytest.raises(NotFound):
        service.get_seller_order("ord_missing")


def test_only_sellers_read_the_seller_orders(orders):
    config, _clock, _ = orders
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        with pytest.raises(Forbidden):
            service.list_seller_orders({})
        with pytest.raises(Forbidden):
            service.get_seller_order(order["id"])
    with ServiceRpcProxy("orders", config, timeout=20) as anonymous:
        with pytest.raises(Unauthenticated):
            anonymous.list_seller_orders({})
        with pytest.raises(Unauthenticated):
            anonymous.get_seller_order(order["id"])


def test_a_bad_seller_orders_query_is_refused_naming_the_field(orders):
    config, _clock, _ = orders
    with as_caller(config, SELLER) as service, pytest.raises(ValidationError) as raised:
        service.list_seller_orders({"status": "lost", "page_size": 500, "colour": "red"})
    assert set(raised.value.fields) == {"status", "page_size", "colour"}


# -- delivery ------------------------------------------------------------------------


def paid_with_subscription(config, product_id="prd_known"):
    with as_caller(config, BUYER) as service:
        order = service.place_order({**ORDER, "product_id": product_id})
        service.pay_order(order["id"], {"payment_method": "balance"})
        (subscription_id,) = subscription_ids_of(config, order["id"])
        app = service.get_purchased_app(subscription_id)
    return order, app


def subscription_ids_of(config, order_id: str) -> list[str]:
    """Read from the table: a supervised app is not listed under Purchased Apps until
    its flow completes."""
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id FROM subscriptions WHERE order_id = :order_id"),
                {"order_id": order_id},
            )
            return [row[0] for row in rows]
    finally:
        engine.dispose()


def delivery_of(order, app) -> dict:
    """Which delivery provisioning's events are about: the app of the order's line."""
    return {
        "delivery_id": "dlv_1",
        "subscription_id": app["id"],
        "order_id": order["id"],
        "order_line_id": order["lines"][0]["id"],
        "account_id": BUYER["account_id"],
        "delivery_method": "saas",
    }


def delivered(order, app, **overrides):
    return {
        **delivery_of(order, app),
        "service_supervision": False,
        "application": {
            "instance_id": "inst_1",
            "username": "admin",
            "management_url": "https://app.example.com/admin/",
            "frontend_url": "https://app.example.com/",
            "license_key": None,
            "has_password": True,
        },
        # provisioning's period: from its first attempt, half an hour after payment
        "starts_at": START + dt.timedelta(minutes=30),
        "expires_at": add_months(START + dt.timedelta(minutes=30), 2),
        "delivered_at": START,
        **overrides,
    }


@pytest.fixture
def order_events(orders):
    config, _clock, _ = orders
    queue = EventQueue(config["AMQP_URI"], "orders", "orders.#")
    yield queue
    queue.close()


def test_order_paid_lists_what_provisioning_delivers(orders, order_events):
    config, _clock, _ = orders
    order, app = paid_with_subscription(config)
    time.sleep(0.5)
    (paid,) = [e for e in order_events.read() if e["type"] == "orders.order.paid"]
    (item,) = paid["data"]["subscriptions"]
    assert item["subscription_id"] == app["id"]
    assert item["order_line_id"] == order["lines"][0]["id"]
    assert (item["delivery_method"], item["quantity"], item["period"]) == (
        "saas",
        3,
        {"unit": "month", "count": 2},
    )


def test_a_delivered_app_is_enabled_and_its_order_completed_once(orders, order_events):
    config, clock, _ = orders
    order, app = paid_with_subscription(config)
    clock.advance(dt.timedelta(hours=1))  # delivered an hour after payment
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        delivered(order, app),
        subject=app["id"],
        times=2,
    )
    completed = wait_for_status(config, order["id"], "completed")
    assert completed["status"] == "completed"
    with as_caller(config, BUYER) as service:
        enabled = service.get_purchased_app(app["id"])
    assert enabled["status"] == "enabled"
    # the period is the one provisioning told the seller, not one counted from payment
    assert enabled["activated_at"] == (START + dt.timedelta(minutes=30)).isoformat()
    assert enabled["expires_at"] == add_months(START + dt.timedelta(minutes=30), 2).isoformat()
    time.sleep(0.5)
    types = [e["type"] for e in order_events.read()]
    assert types.count("orders.subscription.activated") == 1
    assert types.count("orders.order.completed") == 1


def test_a_supervised_app_awaits_the_buyers_acceptance(orders):
    config, _clock, _ = orders
    order, app = paid_with_subscription(config, "prd_supervised")
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        delivered(order, app, service_supervision=True),
        subject=app["id"],
    )
    assert wait_for_status(config, order["id"], "awaiting_acceptance")["status"] == (
        "awaiting_acceptance"
    )
    with as_caller(config, BUYER) as service:
        assert service.get_purchased_app(app["id"])["status"] == "enabling"
        # until its supervision flow completes, it is not listed under Purchased Apps
        assert service.list_purchased_apps({})["items"] == []


def test_a_failed_delivery_cancels_the_order_once_and_asks_for_the_refund(orders, order_events):
    config, _clock, _ = orders
    order, app = paid_with_subscription(config)
    failure = {
        **delivery_of(order, app),
        "reason": "The seller's system did not deliver Known App within 3 hours.",
        "failed_at": START,
    }
    publish_event(
        config["AMQP_URI"], "provisioning.delivery.failed", failure, subject=app["id"], times=2
    )
    cancelled = wait_for_status(config, order["id"], "cancelled")
    assert cancelled["cancel_reason"] == f"Delivery failed: {failure['reason']}"
    with as_caller(config, BUYER) as service:
        assert service.get_purchased_app(app["id"])["status"] == "released"
    time.sleep(0.5)
    (event,) = [e for e in order_events.read() if e["type"] == "orders.order.cancelled"]
    assert event["data"]["payment_id"].startswith("pay_")
    assert event["data"]["refund"] == order["amount_due"]
    # a late success for a cancelled order changes nothing
    publish_event(
        config["AMQP_URI"],
        "provisioning.delivery.succeeded",
        delivered(order, app),
        subject=app["id"],
    )
    time.sleep(0.5)
    assert wait_for_status(config, order["id"], "cancelled")["status"] == "cancelled"
