"""orders' money rules in a real container on PostgreSQL and RabbitMQ, billing replaced
by a small nameko service that charges each order once: a retry under the same
downstream key (the gateway's digest of the client's Idempotency-Key) answers the first
result, and a reseller payment refused leaves no order and no event."""

import datetime as dt
import threading

import pytest
from nameko.testing.services import replace_dependencies

from mercato.clock import ManualClock
from mercato.errors import Conflict, NotFound, PaymentRequired
from mercato.transport import rpc
from mercato_testing.interface import caller, count_rows
from orders.service import OrdersService
from orders.tests import fakes
from orders.tests.test_service import BUYER, ORDER, FakeCatalog, FakeIam, as_caller

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
BROKE_CUSTOMER = caller("acc_customer2", "buyer", reseller_account_id="acc_broke_reseller")


class CountingBilling:
    """Charges each order at most once and keeps its payment; a reseller without
    credit (``acc_broke_reseller``) is refused, as billing refuses it."""

    name = "billing"
    charges: dict = {}
    calls: list = []
    lock = threading.Lock()

    @rpc
    def pay_order(self, payload):
        CountingBilling.calls.append(payload)
        if payload["payer_account_id"] == "acc_broke_reseller":
            raise PaymentRequired(
                "the reseller's credit limit is exceeded", code="RESELLER_CREDIT_LIMIT_EXCEEDED"
            )
        with CountingBilling.lock:
            return CountingBilling.charges.setdefault(
                payload["order_id"], fakes.payment_answer(payload, "succeeded")
            )

    @rpc
    def get_payment(self, order_id):
        if order_id not in CountingBilling.charges:
            raise NotFound(f"no payment for order {order_id}")
        return CountingBilling.charges[order_id]


@pytest.fixture
def orders(container_factory, make_service_config):
    CountingBilling.charges, CountingBilling.calls = {}, []
    config = make_service_config("orders")
    for fake in (FakeCatalog, FakeIam, CountingBilling):
        container_factory(fake, config).start()
    container = container_factory(OrdersService, config)
    replace_dependencies(container, clock=ManualClock(START))
    container.start()
    return config


def keyed(who: dict, key: str) -> dict:
    """The caller's context with the downstream key the gateway sets."""
    return {**who, "request_key": key}


def test_placing_twice_with_the_same_key_places_one_order(orders):
    with as_caller(orders, keyed(BUYER, "k-place")) as service:
        first = service.place_order(ORDER)
        again = service.place_order(ORDER)
    with as_caller(orders, keyed(BUYER, "k-other")) as service:
        other = service.place_order(ORDER)
    assert again["id"] == first["id"] != other["id"]
    assert count_rows(orders, "orders") == 2


def test_ten_concurrent_places_with_one_key_place_one_order(orders):
    placed = []

    def place():
        with as_caller(orders, keyed(BUYER, "k-burst")) as service:
            try:
                placed.append(service.place_order(ORDER)["id"])
            except Conflict:
                placed.append("conflict")

    threads = [threading.Thread(target=place) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({order_id for order_id in placed if order_id != "conflict"}) == 1
    assert count_rows(orders, "orders") == 1


def test_a_pay_retried_with_its_key_answers_the_paid_order_and_charges_once(orders):
    with as_caller(orders, BUYER) as service:
        order = service.place_order(ORDER)
    with as_caller(orders, keyed(BUYER, "k-pay")) as service:
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
        again = service.pay_order(order["id"], {"payment_method": "balance"})
    assert again["id"] == paid["id"] and again["status"] == "paid"
    assert len(CountingBilling.calls) == 1
    assert count_rows(orders, "subscriptions") == 1
    with as_caller(orders, keyed(BUYER, "k-pay-again")) as service, pytest.raises(Conflict):
        service.pay_order(order["id"], {"payment_method": "balance"})


def test_a_cancel_retried_with_its_key_answers_the_cancelled_order(orders):
    with as_caller(orders, BUYER) as service:
        order = service.place_order(ORDER)
    with as_caller(orders, keyed(BUYER, "k-cancel")) as service:
        first = service.cancel_order(order["id"])
        again = service.cancel_order(order["id"])
    assert first["status"] == again["status"] == "cancelled"
    assert count_rows(orders, "outbox_messages") == 2  # created, cancelled once


def test_a_reseller_payment_refused_leaves_no_order_and_no_event(orders):
    with as_caller(orders, BROKE_CUSTOMER) as service, pytest.raises(PaymentRequired) as refused:
        service.place_order(ORDER)
    assert refused.value.code == "RESELLER_CREDIT_LIMIT_EXCEEDED"
    assert count_rows(orders, "orders") == 0
    assert count_rows(orders, "order_lines") == 0
    assert count_rows(orders, "outbox_messages") == 0
