"""A payment that lands on an order orders cancelled unpaid is refunded, once; such an
order is charged no more. Billing's use cases on the in-memory fakes, as in
``test_usecases.py``; the books are audited after every test."""

from __future__ import annotations

import pytest

from billing import domain, usecases
from billing.tests.support import BUYER, RESELLER, Books, usd
from billing.tests.test_refunds import books  # noqa: F401  (the books on PostgreSQL)
from billing.tests.test_usecases import COMPLETED, Billing
from mercato.errors import Conflict

WINDOW_PASSED = "the payment window passed before the order was paid"


@pytest.fixture
def billing():
    billing = Billing()
    yield billing
    audit = usecases.audit_ledger(billing.uow)
    assert audit["balanced"], audit


def cancelled_unpaid(on: Books, order_id: str) -> None:
    """orders' ``orders.order.cancelled`` of an unpaid order, as billing's handler runs
    it (its inbox wrapper commits)."""
    usecases.order_cancelled_unpaid(
        on.uow, on.clock, on.gateway, order_id=order_id, account_id=BUYER, reason=WINDOW_PASSED
    )
    on.uow.commit()


def refund_of_or_none(on: Books, order_id: str) -> dict | None:
    refund = on.uow.billing.refund_of_order(order_id)
    return None if refund is None else usecases.refund_view(refund)


def refund_late_payments(on: Books) -> int:
    return usecases.refund_late_payments(on.uow, on.clock, on.gateway)


def test_an_order_cancelled_unpaid_is_charged_no_more(billing):
    billing.top_up(10_000)
    cancelled_unpaid(billing, "ord_1")

    with pytest.raises(Conflict) as refused:
        billing.pay("ord_1", 5_000)

    assert refused.value.code == "ORDER_CANCELLED"
    assert billing.figures()["balance"] == 10_000
    assert billing.events("billing.payment.succeeded") == []


def test_a_balance_payment_that_won_the_race_with_the_cancellation_is_refunded_once(billing):
    """Two balance pays racing the deadline: the one that got in is taken back when the
    order's cancellation reaches billing, however often it is delivered."""
    billing.top_up(10_000)
    payment = billing.pay("ord_1", 4_000)

    cancelled_unpaid(billing, "ord_1")
    cancelled_unpaid(billing, "ord_1")
    assert refund_late_payments(billing) == 0

    refund = billing.refund_of("ord_1")
    assert (refund["payment_id"], refund["status"], refund["amount"]) == (
        payment["id"],
        "succeeded",
        usd(4_000),
    )
    assert refund["reason"] == WINDOW_PASSED
    assert billing.figures()["balance"] == 10_000
    assert len(billing.events(COMPLETED)) == 1


def test_a_card_payment_settled_after_the_cancellation_is_refunded_once(billing):
    """The card gateway answered nothing before the order was cancelled; recovery
    finds the charge made, and the money goes back to the card."""
    billing.gateway.silent_charges = 1
    pending = billing.pay("ord_1", 7_500, domain.CREDIT_CARD)
    assert pending["status"] == "pending"
    cancelled_unpaid(billing, "ord_1")
    assert refund_of_or_none(billing, "ord_1") is None  # nothing settled yet

    billing.clock.advance(minutes=5)
    billing.recover()
    assert billing.payment("ord_1")["status"] == "succeeded"
    assert refund_late_payments(billing) == 1
    assert refund_late_payments(billing) == 0

    refund = billing.refund_of("ord_1")
    assert (refund["status"], refund["payment_method"], refund["amount"]) == (
        "succeeded",
        "credit_card",
        usd(7_500),
    )
    assert len(billing.gateway.refunds) == 1
    assert len(billing.events(COMPLETED)) == 1


def test_a_card_payment_that_fails_after_the_cancellation_is_not_refunded(billing):
    billing.gateway.unreachable = True
    billing.pay("ord_1", 7_500, domain.CREDIT_CARD)
    cancelled_unpaid(billing, "ord_1")
    billing.gateway.unreachable = False

    billing.clock.advance(minutes=5)
    billing.recover()  # the gateway never took the charge: the attempt fails

    assert billing.payment("ord_1")["status"] == "failed"
    assert refund_late_payments(billing) == 0
    assert refund_of_or_none(billing, "ord_1") is None


def test_a_reseller_payment_of_a_cancelled_order_goes_back_to_the_reseller(billing):
    billing.grant_credit(9_000, account_id=RESELLER)
    billing.pay("ord_r", 9_000, domain.RESELLER, payer=RESELLER)

    cancelled_unpaid(billing, "ord_r")

    assert billing.figures(RESELLER)["balance"] == 0
    assert billing.refund_of("ord_r")["payer_account_id"] == RESELLER


def test_ledger_transaction_ids_are_opaque(billing):
    billing.top_up(10_000)
    billing.pay("ord_1", 1_000)
    page = usecases.list_transactions(billing.uow, account_id=BUYER, page=1, page_size=20)
    ids = [item["id"] for item in page["items"]]
    assert len(ids) == 2 and len(set(ids)) == 2
    for txn_id in ids:
        assert txn_id.startswith("txn_") and len(txn_id) == len("txn_") + 32
        assert not txn_id.removeprefix("txn_").isdigit()


# -- on PostgreSQL ----------------------------------------------------------------------


def test_on_postgresql_late_payments_are_found_and_refunded_once(books):  # noqa: F811
    """The repository's reads and the cancelled orders' table, on a real database: a
    balance payment that got in beside the cancellation is found by the sweep and
    refunded once; the order is refused afterwards."""
    books.pay("ord_late", 3_000)
    books.uow.billing.add_cancelled_order("ord_late", BUYER, WINDOW_PASSED, books.clock.now())
    books.uow.commit()

    assert refund_late_payments(books) == 1
    assert refund_late_payments(books) == 0
    assert books.refund_of("ord_late")["status"] == "succeeded"
    assert len(books.of_type(COMPLETED)) == 1
    with pytest.raises(Conflict):
        Books.pay(books, "ord_late", 3_000)
    txn_ids = books.scalar("SELECT count(DISTINCT txn_id) FROM journal_entries")
    assert txn_ids == books.scalar("SELECT count(*) FROM journal_entries")
