"""The refund use case, one method at a time, on a real PostgreSQL database (billing's
migrated schema) with billing's own unit of work outside nameko and an in-memory card
processor: no broker, no container. After every test the books are audited."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from billing import domain, usecases
from billing.invoice_repository import InvoiceRepository
from billing.models import metadata
from billing.payment_gateway import ChargeResult
from billing.repository import BillingRepository
from billing.tests.fakes import who
from billing.tests.support import (
    BUYER,
    GOOD_CARD,
    GRACE,
    OPERATOR,
    REASON,
    RESELLER,
    START,
    Books,
    usd,
)
from mercato.errors import BusinessRuleViolation, NotFound
from mercato.identity import Identity
from mercato.money import Money
from mercato.standalone import standalone_unit_of_work
from mercato.tables import OUTBOX
from mercato_testing import interface


class PostgresBooks(Books):
    """The use cases on billing's real unit of work (its repository, its outbox) over
    a database of its own, outside nameko."""

    def pay(self, order_id: str, amount: int, method: str = domain.BALANCE, **kwargs) -> dict:
        payment = super().pay(order_id, amount, method, **kwargs)
        assert payment["status"] == "succeeded"
        return payment

    def scalar(self, sql: str, **params):
        value = self.uow.session.execute(sa.text(sql), params).scalar_one()
        self.uow.rollback()
        return value

    def figures(self, account_id: str = BUYER) -> dict[str, int]:
        figures = super().figures(account_id)
        self.uow.rollback()
        return figures

    def refund_of(self, order_id: str, caller: Identity = OPERATOR) -> dict:
        view = super().refund_of(order_id, caller)
        self.uow.rollback()
        return view

    def of_type(self, event_type: str) -> list[dict]:
        """The committed events of ``event_type``, as the outbox holds them."""
        outbox = self.uow.table(OUTBOX)
        query = sa.select(outbox.c.payload).where(outbox.c.event_type == event_type)
        events = list(self.uow.session.scalars(query.order_by(outbox.c.id)))
        self.uow.rollback()
        return events


@pytest.fixture
def books(databases):
    with standalone_unit_of_work(
        databases.fresh("billing"),
        metadata,
        service_name="billing",
        command="test",
        repositories={"billing": BillingRepository, "invoices": InvoiceRepository},
    ) as uow:
        books = PostgresBooks(uow)
        # a buyer with money on its balance and credit granted, and its reseller's credit
        books.gateway.charge("seed", books.gateway.card(GOOD_CARD["token"]), Money(100_000, "USD"))
        books.top_up(100_000)
        books.grant_credit(50_000)
        books.grant_credit(50_000, account_id=RESELLER)
        yield books
        audit = usecases.audit_ledger(uow)
        assert audit["balanced"], audit


def sample(name: str, **labels) -> float:
    return interface.sample(name, service="billing", **labels)


@pytest.mark.parametrize(
    ("method", "payer"),
    [
        (domain.BALANCE, BUYER),
        (domain.CREDIT, BUYER),
        (domain.RESELLER, RESELLER),
        (domain.CREDIT_CARD, BUYER),
    ],
)
def test_a_full_refund_puts_the_money_back_the_way_it_came(books, method, payer):
    before = books.figures(payer)
    refunded_before = sample("mercato_refund_amount_minor_total", currency="USD")
    payment = books.pay("ord_1", 12_999, method, payer=payer)
    assert books.figures(payer) != before or method == domain.CREDIT_CARD

    refund = books.refund(payment)

    assert refund["status"] == "succeeded" and refund["id"].startswith("rfd_")
    assert (refund["payment_id"], refund["order_id"], refund["amount"]) == (
        payment["id"],
        "ord_1",
        usd(12_999),
    )
    assert (refund["account_id"], refund["payer_account_id"]) == (BUYER, payer)
    assert (refund["payment_method"], refund["reason"]) == (method, REASON)
    assert refund["completed_at"] == START
    assert books.figures(payer) == before
    # the payment's and the refund's postings cancel out on every ledger account
    assert (
        books.scalar(
            "SELECT count(*) FROM (SELECT p.ledger_account, p.account_id FROM ledger_postings p "
            "JOIN journal_entries e ON e.id = p.entry_id WHERE e.order_id = 'ord_1' "
            "GROUP BY p.ledger_account, p.account_id HAVING sum(p.amount) <> 0) AS open"
        )
        == 0
    )
    (event,) = books.of_type("billing.refund.completed")
    assert event["subject"] == refund["id"]
    assert event["data"] == {
        "refund_id": refund["id"],
        "payment_id": payment["id"],
        "order_id": "ord_1",
        "account_id": BUYER,
        "payer_account_id": payer,
        "payment_method": method,
        "amount": usd(12_999),
        "reason": REASON,
        "completed_at": "2026-11-27T09:00:00+00:00",
    }
    statement = usecases.list_transactions(books.uow, account_id=payer, page=1, page_size=5)
    latest = statement["items"][0]
    assert (latest["kind"], latest["amount"], latest["refund_id"], latest["payment_id"]) == (
        "refund",
        usd(12_999),
        refund["id"],
        payment["id"],
    )
    assert (latest["order_id"], latest["buyer_account_id"]) == ("ord_1", BUYER)
    assert sample("mercato_refund_amount_minor_total", currency="USD") == (refunded_before + 12_999)


def test_a_partial_refund_returns_only_that_much(books):
    payment = books.pay("ord_part", 10_000, domain.BALANCE)

    refund = books.refund(payment, amount=usd(4_000))

    assert refund["amount"] == usd(4_000)
    assert books.figures(BUYER)["balance"] == 100_000 - 10_000 + 4_000


def test_a_payment_is_refunded_once_however_often_it_is_asked(books):
    payment = books.pay("ord_twice", 10_000, domain.BALANCE)

    first = books.refund(payment)
    again = books.refund(payment)
    other_amount = books.refund(payment, amount=usd(1))

    assert again == first and other_amount == first
    assert books.figures(BUYER)["balance"] == 100_000
    assert books.scalar("SELECT count(*) FROM refunds") == 1
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 1
    assert len(books.of_type("billing.refund.completed")) == 1


def test_a_refund_of_more_than_was_paid_is_refused_and_changes_nothing(books):
    payment = books.pay("ord_more", 10_000, domain.BALANCE)
    rejected = sample("mercato_refunds_total", method="balance", outcome="rejected")

    with pytest.raises(BusinessRuleViolation) as raised:
        books.refund(payment, amount=usd(10_001))
    books.uow.rollback()

    assert raised.value.code == "REFUND_EXCEEDS_PAYMENT"
    assert raised.value.fields == {"refund.amount": ["must be at most 10000, the amount paid"]}
    assert books.scalar("SELECT count(*) FROM refunds") == 0
    assert books.figures(BUYER)["balance"] == 90_000
    assert books.of_type("billing.refund.completed") == []
    assert sample("mercato_refunds_total", method="balance", outcome="rejected") == rejected + 1


def test_a_refund_in_another_currency_is_refused(books):
    payment = books.pay("ord_eur", 10_000, domain.BALANCE)

    with pytest.raises(BusinessRuleViolation) as raised:
        books.refund(payment, amount=usd(10_000, "EUR"))
    books.uow.rollback()

    assert raised.value.code == "REFUND_CURRENCY_MISMATCH"
    assert books.scalar("SELECT count(*) FROM refunds") == 0


@pytest.mark.parametrize(
    "mismatch", [{"order_id": "ord_other"}, {"account_id": "acc_other"}, {"id": "pay_none"}]
)
def test_a_payment_that_is_not_the_orders_is_not_refunded(books, mismatch):
    payment = books.pay("ord_mine", 10_000, domain.BALANCE)

    with pytest.raises(NotFound):
        books.refund({**payment, **mismatch})
    books.uow.rollback()

    assert books.scalar("SELECT count(*) FROM refunds") == 0


def test_a_card_refund_the_processor_does_not_answer_completes_later_once(books):
    payment = books.pay("ord_card", 7_500, domain.CREDIT_CARD)
    books.gateway.silent_refunds = 2  # the first refund and the first retry go unanswered

    pending = books.refund(payment)

    assert (pending["status"], pending["completed_at"]) == ("pending", None)
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 0
    assert books.refund(payment) == pending  # asked again: still the same refund
    assert books.recover() == 0

    books.clock.advance(GRACE * 2)
    assert books.recover() == 0
    assert books.recover() == 1
    assert books.recover() == 0

    done = books.refund_of("ord_card", who(BUYER, "buyer"))
    assert (done["id"], done["status"]) == (pending["id"], "succeeded")
    assert done["completed_at"] == START + GRACE * 2
    assert len(books.gateway.refunds) == 1
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 1
    assert len(books.of_type("billing.refund.completed")) == 1


def test_a_card_refund_the_processor_refuses_fails_and_moves_nothing(books):
    payment = books.pay("ord_refused", 7_500, domain.CREDIT_CARD)
    books.gateway.refusing = True

    failed = books.refund(payment)

    assert (failed["status"], failed["failure_code"]) == ("failed", "refund_declined")
    assert failed["failure_reason"] and failed["completed_at"] == START
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 0
    assert books.of_type("billing.refund.completed") == []
    (event,) = books.of_type("billing.refund.failed")
    assert event["data"]["failure_code"] == "refund_declined"
    assert books.refund(payment) == failed  # not tried again


def pending_card_refunds(books, *order_ids: str) -> list[dict]:
    """Card refunds of fresh card payments, oldest first, whose processor answers were
    lost: all pending, due for recovery."""
    payments = [books.pay(order_id, 7_500, domain.CREDIT_CARD) for order_id in order_ids]
    books.gateway.silent_refunds = len(payments)
    refunds = []
    for payment in payments:
        refunds.append(books.refund(payment))
        books.clock.advance(seconds=1)
    assert [refund["status"] for refund in refunds] == ["pending"] * len(refunds)
    books.clock.advance(GRACE * 2)
    return refunds


def refund_status(books, refund: dict) -> tuple[str, str | None]:
    view = books.refund_of(refund["order_id"])
    return view["status"], view["failure_code"]


def test_a_card_refund_of_another_amount_fails_once_and_does_not_block_recovery(books):
    bad, good = pending_card_refunds(books, "ord_bad", "ord_good")
    # the processor's record of the older refund is for another amount, for good
    answer = books.gateway.refunds[bad["id"]]
    books.gateway.refunds[bad["id"]] = replace(answer, amount=Money(1, "USD"))

    assert books.recover() == 2
    assert books.recover() == 0

    assert refund_status(books, bad) == ("failed", "processor_amount_mismatch")
    assert refund_status(books, good) == ("succeeded", None)
    (failed,) = books.of_type("billing.refund.failed")
    assert failed["subject"] == bad["id"]
    assert failed["data"]["failure_code"] == "processor_amount_mismatch"
    (completed,) = books.of_type("billing.refund.completed")
    assert completed["subject"] == good["id"]
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 1
    assert (
        books.scalar("SELECT count(*) FROM journal_entries WHERE refund_id = :id", id=bad["id"])
        == 0
    )


def test_a_refund_whose_recovery_raises_is_rolled_back_and_the_next_is_recovered(
    books, monkeypatch
):
    bad, good = pending_card_refunds(books, "ord_bad", "ord_good")
    complete = usecases._complete_refund

    def breaks_after_writing(uow, refund, account, now):
        complete(uow, refund, account, now)  # postings, status, event: all to roll back
        if refund.id == bad["id"]:
            raise RuntimeError("the database went away")

    monkeypatch.setattr(usecases, "_complete_refund", breaks_after_writing)
    errors = sample("mercato_recovery_errors_total", item="refund")

    assert books.recover() == 1

    assert refund_status(books, bad) == ("pending", None)
    assert refund_status(books, good) == ("succeeded", None)
    assert [event["subject"] for event in books.of_type("billing.refund.completed")] == [good["id"]]
    assert books.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 1
    assert sample("mercato_recovery_errors_total", item="refund") == errors + 1

    monkeypatch.undo()  # the fault is gone: the next run completes it
    assert books.recover() == 1
    assert refund_status(books, bad) == ("succeeded", None)
    assert len(books.of_type("billing.refund.completed")) == 2


def test_a_failed_payment_is_not_refunded(books):
    books.gateway.charges["pay_x.1"] = ChargeResult("pay_x.1", "ch_x", "declined", Money(1, "USD"))
    with books.uow.session.begin():
        books.uow.session.execute(
            sa.text(
                "INSERT INTO payments (id, order_id, account_id, payer_account_id, "
                "enterprise_project_id, payment_method, amount, currency, status, attempt, "
                "created_at, updated_at) VALUES ('pay_x', 'ord_x', :buyer, :buyer, 'default', "
                "'credit_card', 500, 'USD', 'failed', 1, :now, :now)"
            ),
            {"buyer": BUYER, "now": START},
        )

    with pytest.raises(BusinessRuleViolation) as raised:
        books.refund({"id": "pay_x", "order_id": "ord_x", "account_id": BUYER, "amount": usd(500)})
    books.uow.rollback()

    assert raised.value.code == "PAYMENT_NOT_REFUNDABLE"


def test_only_the_buyer_the_payer_or_an_operator_sees_a_refund(books):
    payment = books.pay("ord_seen", 2_000, domain.RESELLER, payer=RESELLER)
    refund = books.refund(payment)

    for caller in (who(BUYER, "buyer"), who(RESELLER, "reseller"), OPERATOR):
        assert books.refund_of("ord_seen", caller) == refund
    stranger = who("acc_stranger", "buyer")
    with pytest.raises(NotFound):
        books.refund_of("ord_seen", stranger)
    with pytest.raises(NotFound):
        books.refund_of("ord_none", stranger)
