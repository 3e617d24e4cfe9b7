"""orders' money rules on the in-memory fakes (as ``test_usecases.py``): a payment in
progress holds its order whatever the clock says and billing's answer decides it; a
reseller payment refused leaves nothing; one currency; a retry under the same
downstream key answers the first result."""

from __future__ import annotations

import datetime as dt

import pytest

from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    PaymentRequired,
    ServiceUnavailable,
    ValidationError,
)
from orders import usecases
from orders.tests import fakes
from orders.tests.test_usecases import BUYER, CARD, CUSTOMER, ORDER_REQUEST, WINDOW, World

BUDGET = dt.timedelta(seconds=30)


@pytest.fixture
def world() -> World:
    return World()


def place(world: World, key: str, buyer=BUYER) -> dict:
    return usecases.place_order(
        world.uow,
        world.clock,
        buyer=buyer,
        request=dict(ORDER_REQUEST),
        catalog=fakes.Catalog(),
        iam=fakes.Iam(),
        billing=world.billing,
        payment_window=WINDOW,
        request_key=key,
    )


def pay(world: World, order_id: str, key: str | None = None, method: str = "balance") -> dict:
    request: dict = {"payment_method": method}
    if method == "credit_card":
        request["card"] = CARD
    return usecases.pay_order(
        world.uow,
        world.clock,
        buyer=BUYER,
        order_id=order_id,
        request=request,
        billing=world.billing,
        request_key=key,
        attempt_budget=BUDGET,
    )


def cancel(world: World, order_id: str, key: str | None = None) -> dict:
    return usecases.cancel_order(
        world.uow,
        world.clock,
        buyer=BUYER,
        order_id=order_id,
        billing=world.billing,
        request_key=key,
        attempt_budget=BUDGET,
    )


def sweep(world: World) -> None:
    """The expiry sweep as the service's timer runs it."""
    usecases.cancel_expired_orders(world.uow, world.clock)
    usecases.settle_expired_attempts(
        world.uow,
        world.clock,
        payment_of=lambda order: world.billing.payments.get(order.id),
        budget=BUDGET,
    )


def status_of(world: World, order_id: str) -> str:
    return world.repository.get(order_id).status


# -- a payment in progress ----------------------------------------------------------


def test_a_card_that_times_out_just_before_the_window_ends_holds_its_order(world):
    order = world.place()
    world.clock.advance(WINDOW - dt.timedelta(seconds=5))
    world.billing.next_status = "pending"  # the card gateway did not answer in time
    assert pay(world, order["id"], method="credit_card")["payment_pending"] is True

    world.clock.advance(hours=3)  # far past the window, and past any fixed grace
    sweep(world)
    assert status_of(world, order["id"]) == "unpaid"
    with pytest.raises(Conflict, match="in progress"):
        cancel(world, order["id"])

    # billing's recovery settles the charge: the order is paid, not cancelled
    world.billing.payments[order["id"]]["status"] = "succeeded"
    sweep(world)
    assert status_of(world, order["id"]) == "paid"
    assert world.events("orders.order.cancelled") == []
    assert len(world.events("orders.order.paid")) == 1


def test_a_pending_card_payment_that_failed_past_the_window_cancels_its_order(world):
    order = world.place()
    world.clock.advance(WINDOW - dt.timedelta(seconds=5))
    world.billing.next_status = "pending"
    pay(world, order["id"], method="credit_card")
    world.billing.payments[order["id"]]["status"] = "failed"
    world.clock.advance(minutes=1)

    sweep(world)

    assert status_of(world, order["id"]) == "cancelled"
    (cancelled,) = world.events("orders.order.cancelled")
    assert cancelled.data["refund"] is None


def test_an_attempt_billing_never_received_frees_its_order_once_it_cannot_arrive(world):
    order = world.place()
    world.clock.advance(WINDOW - dt.timedelta(seconds=5))
    world.billing.refuse = ServiceUnavailable("billing did not answer")
    with pytest.raises(ServiceUnavailable):
        pay(world, order["id"])
    world.billing.refuse = None
    world.clock.advance(seconds=10)

    sweep(world)  # the request may still be on its way: the order waits
    assert status_of(world, order["id"]) == "unpaid"

    world.clock.advance(BUDGET)
    sweep(world)  # billing has no payment and the request can no longer arrive
    assert status_of(world, order["id"]) == "cancelled"


def test_a_pay_after_the_window_answers_what_became_of_the_attempt(world):
    order = world.place()
    world.clock.advance(WINDOW - dt.timedelta(seconds=5))
    world.billing.next_status = "pending"
    pay(world, order["id"], method="credit_card")
    world.clock.advance(minutes=10)

    again = pay(world, order["id"], method="credit_card")  # still pending
    assert (again["status"], again["payment_pending"]) == ("unpaid", True)
    world.billing.payments[order["id"]]["status"] = "succeeded"
    assert pay(world, order["id"], method="credit_card")["status"] == "paid"
    assert len(world.billing.calls) == 1  # asked, never charged again


def test_the_buyer_may_cancel_once_billing_says_the_attempt_failed(world):
    order = world.place()
    world.billing.next_status = "pending"
    pay(world, order["id"], method="credit_card")
    world.billing.payments[order["id"]]["status"] = "failed"

    assert cancel(world, order["id"])["status"] == "cancelled"


# -- a reseller's refusal ------------------------------------------------------------


def test_a_reseller_payment_refused_leaves_no_order_and_no_event(world):
    world.billing.refuse = PaymentRequired(
        "the reseller's credit limit is exceeded", code="RESELLER_CREDIT_LIMIT_EXCEEDED"
    )
    with pytest.raises(PaymentRequired) as refused:
        world.place(buyer=CUSTOMER)

    assert refused.value.code == "RESELLER_CREDIT_LIMIT_EXCEEDED"
    assert world.repository._committed.get("orders", {}) == {}
    assert world.uow.committed == []


def test_a_reseller_customers_order_announces_its_creation_before_its_payment(world):
    order = world.place(buyer=CUSTOMER)
    assert order["status"] == "paid"
    types = [event.type for event in world.uow.committed if event.type.startswith("orders.order")]
    assert types == ["orders.order.created", "orders.order.paid"]


# -- one currency --------------------------------------------------------------------


class EuroCatalog(fakes.Catalog):
    def quote(self, payload):
        quote = super().quote(payload)
        for key in ("unit_price", "amount"):
            quote[key] = {**quote[key], "currency": "EUR"}
        return quote


def test_an_order_priced_in_another_currency_is_refused_naming_the_field(world):
    with pytest.raises(ValidationError) as refused:
        usecases.place_order(
            world.uow,
            world.clock,
            buyer=BUYER,
            request=dict(ORDER_REQUEST),
            catalog=EuroCatalog(),
            iam=fakes.Iam(),
            billing=world.billing,
            payment_window=WINDOW,
        )
    assert refused.value.fields == {"product_id": ["must be USD, the marketplace currency"]}
    assert world.repository._committed.get("orders", {}) == {}
    assert world.uow.committed == []


# -- the same request again ----------------------------------------------------------


def test_the_same_place_twice_places_one_order(world):
    first = place(world, "key-1")
    again = place(world, "key-1")
    other = place(world, "key-2")

    assert again["id"] == first["id"] != other["id"]
    assert len(world.events("orders.order.created")) == 2


def test_a_pay_retried_after_it_succeeded_answers_the_paid_order_and_charges_once(world):
    order = world.place()
    paid = pay(world, order["id"], key="pay-1")
    again = pay(world, order["id"], key="pay-1")

    assert again["id"] == paid["id"] and again["status"] == "paid"
    assert len(world.billing.calls) == 1
    with pytest.raises(Conflict):  # another request to pay it is still a conflict
        pay(world, order["id"], key="pay-2")


def test_the_same_cancel_twice_answers_the_cancelled_order(world):
    order = world.place()
    first = cancel(world, order["id"], key="cancel-1")
    again = cancel(world, order["id"], key="cancel-1")

    assert first["status"] == again["status"] == "cancelled"
    assert len(world.events("orders.order.cancelled")) == 1


def test_a_key_used_for_another_request_is_a_conflict(world):
    order = place(world, "key-1")
    with pytest.raises(BusinessRuleViolation) as refused:
        pay(world, order["id"], key="key-1")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    other = world.place()
    pay(world, order["id"], key="pay-1")
    with pytest.raises(BusinessRuleViolation):  # the key paid another order
        pay(world, other["id"], key="pay-1")
    assert len(world.billing.calls) == 1
