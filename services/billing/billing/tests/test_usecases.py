"""billing's use cases on in-memory fakes (``fakes.py``): the rules of paying, topping
up, refunding and credit, in milliseconds. The same use cases run on PostgreSQL in
``test_refunds.py`` and in a container in ``test_service.py``. After every test the
books are audited, as there."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billing import domain, usecases
from billing.tests.fakes import (
    REFUNDS,
    FakeBillingRepository,
    started_payment,
    who,
)
from billing.tests.support import (
    BUYER,
    DECLINING_CARD,
    GOOD_CARD,
    GRACE,
    OPERATOR,
    RESELLER,
    START,
    Books,
    usd,
)
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ValidationError,
)
from mercato.money import Money
from mercato.terms import PAYER_METHODS
from mercato_testing.fakes import FakeUnitOfWork, InMemoryRepository

SUCCEEDED, FAILED = "billing.payment.succeeded", "billing.payment.failed"
COMPLETED, REFUND_FAILED = "billing.refund.completed", "billing.refund.failed"


class NoInvoices(InMemoryRepository):
    """Invoices as a refund sees them when no order is on one."""

    def lock_live_invoices_of(self, order_id: str) -> list:
        return []


class Billing(Books):
    """The use cases on a fake unit of work around billing's fake repository."""

    def __init__(self) -> None:
        self.repository = FakeBillingRepository()
        super().__init__(FakeUnitOfWork(billing=self.repository, invoices=NoInvoices()))

    def events(self, event_type: str) -> list[dict]:
        return [envelope.data for envelope in self.uow.committed_events(event_type)]


@pytest.fixture
def billing():
    billing = Billing()
    yield billing
    audit = usecases.audit_ledger(billing.uow)
    assert audit["balanced"], audit


# -- paying from an account ---------------------------------------------------------


def test_a_balance_payment_takes_the_price_from_the_balance_and_announces_it(billing):
    billing.top_up(50_000)

    payment = billing.pay("ord_1", 12_999)

    assert (payment["status"], payment["payment_method"], payment["amount"]) == (
        "succeeded",
        "balance",
        usd(12_999),
    )
    assert (payment["card"], payment["failure_code"], payment["completed_at"]) == (
        None,
        None,
        START,
    )
    assert billing.figures()["balance"] == 37_001
    assert billing.statement() == [("payment", -12_999, 37_001), ("top_up", 50_000, 50_000)]
    (envelope,) = billing.uow.committed_events(SUCCEEDED)
    assert (envelope.subject, envelope.account_id) == (payment["id"], BUYER)
    assert envelope.data == {
        "payment_id": payment["id"],
        "order_id": "ord_1",
        "account_id": BUYER,
        "payer_account_id": BUYER,
        "payment_method": "balance",
        "amount": usd(12_999),
        "enterprise_project_id": "default",
    }


def test_paying_more_than_the_balance_is_refused_and_changes_nothing(billing):
    billing.top_up(1_000)
    before, commits = billing.repository.rows(), billing.uow.commits

    with pytest.raises(PaymentRequired, match="insufficient balance"):
        billing.pay("ord_short", 5_000)

    assert billing.repository.rows() == before
    assert billing.uow.commits == commits
    assert billing.events(SUCCEEDED) == []
    with pytest.raises(NotFound):
        billing.payment("ord_short")


def test_a_refused_first_payment_does_not_even_create_the_payers_account(billing):
    with pytest.raises(PaymentRequired):
        billing.pay("ord_1", 100)

    assert billing.repository.rows() == {}


def test_credit_pays_up_to_the_granted_limit_and_not_a_cent_more(billing):
    with pytest.raises(PaymentRequired, match="credit limit exceeded"):
        billing.pay("ord_no_credit", 100, domain.CREDIT)
    billing.grant_credit(100_000)

    billing.pay("ord_c1", 60_000, domain.CREDIT)
    with pytest.raises(PaymentRequired, match="credit limit exceeded"):
        billing.pay("ord_c2", 40_001, domain.CREDIT)
    billing.pay("ord_c3", 40_000, domain.CREDIT)

    assert billing.figures() == {
        "balance": 0,
        "credit_limit": 100_000,
        "credit_used": 100_000,
        "available_credit": 0,
    }
    assert billing.repository.payment_of_order("ord_c2") is None


def test_lowering_the_credit_limit_below_what_is_used_stops_credit_payments_only(billing):
    billing.grant_credit(10_000)
    billing.pay("ord_1", 8_000, domain.CREDIT)

    view = billing.grant_credit(5_000)

    assert (view["credit_limit"], view["credit_used"], view["available_credit"]) == (
        usd(5_000),
        usd(8_000),
        usd(0),
    )
    account = billing.repository.account(BUYER)
    assert account is not None and account.credit_limit_set_by == OPERATOR.user_id
    with pytest.raises(PaymentRequired):
        billing.pay("ord_2", 1, domain.CREDIT)
    assert billing.payment("ord_1")["status"] == "succeeded"


def test_a_reseller_pays_for_its_customer_and_its_balance_goes_negative(billing):
    billing.grant_credit(25_000, account_id=RESELLER)
    payment = billing.pay("ord_r", 25_000, domain.RESELLER, payer=RESELLER)

    assert (payment["status"], payment["payer_account_id"]) == ("succeeded", RESELLER)
    assert billing.figures(RESELLER)["balance"] == -25_000
    assert billing.figures(BUYER)["balance"] == 0
    assert billing.statement(BUYER) == []
    (event,) = billing.events(SUCCEEDED)
    assert (event["account_id"], event["payer_account_id"]) == (BUYER, RESELLER)


def test_only_the_buyer_pays_and_only_through_its_own_reseller(billing):
    with pytest.raises(Forbidden):
        billing.pay("ord_1", 100, caller=who("acc_stranger", "buyer"))
    with pytest.raises(Forbidden):
        billing.pay("ord_1", 100, domain.RESELLER, payer=RESELLER, caller=who(BUYER, "buyer"))

    assert billing.repository.rows() == {}


@pytest.mark.parametrize("method", [domain.BALANCE, domain.CREDIT_CARD])
def test_a_second_pay_of_the_same_order_answers_the_first_payment_and_charges_once(billing, method):
    billing.top_up(10_000)
    charges = billing.gateway.charge_calls
    first = billing.pay("ord_again", 4_000, method)

    assert billing.pay("ord_again", 4_000) == first
    assert billing.pay("ord_again", 4_000, domain.CREDIT_CARD) == first

    assert billing.gateway.charge_calls == charges + (method == domain.CREDIT_CARD)
    assert billing.figures()["balance"] == (6_000 if method == domain.BALANCE else 10_000)
    assert len(billing.events(SUCCEEDED)) == 1
    with pytest.raises(Conflict):
        billing.pay("ord_again", 4_001)


@pytest.mark.parametrize("method", [domain.BALANCE, domain.CREDIT_CARD])
def test_a_pay_that_loses_the_race_for_the_order_answers_the_winners_payment(billing, method):
    billing.top_up(10_000)
    charges = billing.gateway.charge_calls
    card = billing.gateway.card(GOOD_CARD["token"])
    winner = started_payment("pay_winner", "ord_race", BUYER, 4_000, card, START)
    billing.repository.pay_concurrently_first(winner)

    answer = billing.pay("ord_race", 4_000, method)

    assert (answer["id"], answer["status"]) == ("pay_winner", "pending")
    assert billing.gateway.charge_calls == charges
    assert billing.figures()["balance"] == 10_000
    assert billing.events(SUCCEEDED) == []


# -- paying by card -----------------------------------------------------------------


def test_a_card_is_charged_under_the_attempts_key_after_the_attempt_is_on_record(billing):
    payment = billing.pay("ord_card", 7_500, domain.CREDIT_CARD)

    assert payment["status"] == "succeeded"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    assert list(billing.gateway.charges) == [f"{payment['id']}.1"]
    assert billing.uow.commits == 2  # the attempt, then its outcome
    assert billing.figures()["balance"] == 0
    assert billing.statement() == [("payment", -7_500, 0)]
    assert len(billing.events(SUCCEEDED)) == 1


def test_a_declined_card_fails_with_its_reason_and_the_next_attempt_may_succeed(billing):
    declined = billing.pay("ord_d", 3_000, domain.CREDIT_CARD, card=DECLINING_CARD)

    assert (declined["status"], declined["failure_code"]) == ("failed", "card_declined")
    assert declined["failure_reason"] == "The card was declined."
    assert billing.events(FAILED) == [
        {
            "payment_id": declined["id"],
            "order_id": "ord_d",
            "account_id": BUYER,
            "payment_method": "credit_card",
            "reason": "The card was declined.",
            "failure_code": "card_declined",
        }
    ]

    paid = billing.pay("ord_d", 3_000, domain.CREDIT_CARD)

    assert (paid["id"], paid["status"], paid["failure_code"]) == (declined["id"], "succeeded", None)
    assert list(billing.gateway.charges) == [f"{declined['id']}.1", f"{declined['id']}.2"]
    assert len(billing.events(SUCCEEDED)) == 1


def test_a_refused_retry_after_a_decline_leaves_the_failed_payment_as_it_was(billing):
    declined = billing.pay("ord_s", 2_000, domain.CREDIT_CARD, card=DECLINING_CARD)
    before = billing.repository.rows()

    with pytest.raises(PaymentRequired):
        billing.pay("ord_s", 2_000)

    assert billing.repository.rows() == before
    assert billing.payment("ord_s") == declined


def test_a_charge_the_gateway_does_not_answer_stays_pending_until_recovery_records_it_once(
    billing,
):
    billing.gateway.silent_charges = 1
    pending = billing.pay("ord_slow", 9_900, domain.CREDIT_CARD)

    assert (pending["status"], pending["completed_at"]) == ("pending", None)
    assert billing.pay("ord_slow", 9_900, domain.CREDIT_CARD) == pending
    assert billing.recover() == 0  # within the grace: the request may still get its answer
    billing.clock.advance(GRACE * 2)
    assert billing.recover() == 1
    assert billing.recover() == 0

    recovered = billing.payment("ord_slow")
    assert (recovered["id"], recovered["status"]) == (pending["id"], "succeeded")
    assert recovered["completed_at"] == START + GRACE * 2
    assert billing.gateway.charge_calls == 1
    assert len(billing.events(SUCCEEDED)) == 1


def test_a_charge_recovery_recorded_meanwhile_is_not_recorded_again_by_the_pay_request(
    billing,
):
    def recovery_runs_first():
        billing.gateway.on_charge = None
        billing.clock.advance(GRACE * 2)
        assert billing.recover() == 1

    billing.gateway.on_charge = recovery_runs_first

    payment = billing.pay("ord_both", 6_000, domain.CREDIT_CARD)

    assert (payment["status"], payment["completed_at"]) == ("succeeded", START + GRACE * 2)
    assert billing.statement() == [("payment", -6_000, 0)]
    assert len(billing.events(SUCCEEDED)) == 1


def test_recovery_fails_an_attempt_the_gateway_never_charged_and_the_order_may_be_paid_again(
    billing,
):
    billing.gateway.unreachable = True
    pending = billing.pay("ord_lost", 4_200, domain.CREDIT_CARD)
    billing.clock.advance(GRACE * 2)
    assert billing.recover() == 0  # still unreachable: it stays pending
    billing.gateway.unreachable = False

    assert billing.recover() == 1

    failed = billing.payment("ord_lost")
    assert (failed["id"], failed["status"], failed["failure_code"]) == (
        pending["id"],
        "failed",
        "gateway_no_charge",
    )
    assert [event["failure_code"] for event in billing.events(FAILED)] == ["gateway_no_charge"]
    assert billing.pay("ord_lost", 4_200, domain.CREDIT_CARD)["status"] == "succeeded"


# -- top-ups ------------------------------------------------------------------------


def test_a_top_up_adds_to_the_balance_once_per_idempotency_key(billing):
    first = billing.top_up(2_000, key="top-up-1")
    again = billing.top_up(2_000, key="top-up-1")
    other = billing.top_up(2_000)

    assert again == first and other["id"] != first["id"]
    assert first["status"] == "succeeded" and first["completed_at"] == START
    assert billing.figures()["balance"] == 4_000
    assert billing.gateway.charge_calls == 2
    with pytest.raises(Conflict):
        billing.top_up(2_001, key="top-up-1")
    assert usecases.get_top_up(billing.uow, account_id=BUYER, top_up_id=first["id"]) == first
    with pytest.raises(NotFound):
        usecases.get_top_up(billing.uow, account_id="acc_other", top_up_id=first["id"])


def test_a_declined_top_up_is_recorded_failed_and_adds_nothing(billing):
    record = billing.top_up(2_000, card=DECLINING_CARD)

    assert (record["status"], record["failure_code"]) == ("failed", "card_declined")
    assert billing.figures()["balance"] == 0
    assert billing.statement() == []


def test_a_top_up_the_gateway_does_not_answer_is_recorded_by_recovery(billing):
    billing.gateway.silent_charges = 1
    pending = billing.top_up(5_000)
    assert pending["status"] == "pending" and billing.figures()["balance"] == 0

    billing.clock.advance(GRACE * 2)
    assert billing.recover() == 1

    record = usecases.get_top_up(billing.uow, account_id=BUYER, top_up_id=pending["id"])
    assert record["status"] == "succeeded"
    assert billing.figures()["balance"] == 5_000


def test_money_in_another_currency_than_the_accounts_is_refused_naming_the_field(billing):
    for refused in (
        lambda: billing.pay("ord_eur", 100, currency="EUR"),
        lambda: billing.top_up(100, currency="EUR"),
        lambda: billing.grant_credit(100, currency="EUR"),
    ):
        with pytest.raises(ValidationError) as raised:
            refused()
        assert raised.value.fields == {"amount.currency": ["must be USD, the marketplace currency"]}

    assert billing.repository.rows() == {}
    assert billing.gateway.charge_calls == 0


def test_the_marketplace_currency_is_one_setting(billing, monkeypatch):
    monkeypatch.setenv("MARKETPLACE_CURRENCY", "EUR")
    with pytest.raises(ValidationError) as raised:
        billing.pay("ord_usd", 100, domain.CREDIT_CARD)
    assert raised.value.fields == {"amount.currency": ["must be EUR, the marketplace currency"]}
    assert billing.pay("ord_eur", 100, domain.CREDIT_CARD, currency="EUR")["status"] == (
        "succeeded"
    )
    assert billing.figures()["balance"] == 0


# -- refunds ------------------------------------------------------------------------


@pytest.mark.parametrize("method", PAYER_METHODS)
def test_a_refund_puts_the_money_back_the_way_it_came(billing, method):
    payer = RESELLER if method == domain.RESELLER else BUYER
    billing.top_up(20_000)
    billing.grant_credit(20_000)
    billing.grant_credit(20_000, account_id=RESELLER)
    before = billing.figures(payer)
    payment = billing.pay("ord_1", 12_999, method, payer=payer)

    refund = billing.refund(payment)

    assert (refund["status"], refund["amount"], refund["completed_at"]) == (
        "succeeded",
        usd(12_999),
        START,
    )
    assert billing.figures(payer) == before
    (event,) = billing.events(COMPLETED)
    assert (event["refund_id"], event["payment_id"], event["payer_account_id"]) == (
        refund["id"],
        payment["id"],
        payer,
    )


def test_a_refund_from_an_account_is_committed_by_the_caller_with_its_inbox_row(billing):
    billing.top_up(10_000)
    payment = billing.pay("ord_1", 4_000)
    commits = billing.uow.commits

    refund = billing.refund_without_commit(payment)

    assert refund["status"] == "succeeded"
    assert billing.uow.commits == commits
    billing.uow.rollback()  # the caller's commit failed: the refund went with it
    assert billing.figures()["balance"] == 6_000
    assert billing.repository.refund_of_order("ord_1") is None
    assert billing.events(COMPLETED) == []


def test_a_card_refund_is_committed_pending_before_the_processor_is_asked(billing):
    payment = billing.pay("ord_card", 7_500, domain.CREDIT_CARD)
    committed_when_asked = []
    billing.gateway.on_refund = lambda: committed_when_asked.extend(
        refund.status for refund in billing.repository.committed(REFUNDS).values()
    )

    refund = billing.refund(payment)

    assert committed_when_asked == ["pending"]
    assert refund["status"] == "succeeded"
    assert list(billing.gateway.refunds) == [refund["id"]]  # the refund's id is its key


def test_a_payment_is_refunded_once_however_often_it_is_asked(billing):
    billing.top_up(10_000)
    payment = billing.pay("ord_twice", 10_000)

    first = billing.refund(payment)
    again = billing.refund(payment)
    other_amount = billing.refund(payment, amount=usd(1))

    assert again == first and other_amount == first
    assert billing.figures()["balance"] == 10_000
    assert len(billing.repository.table(REFUNDS)) == 1
    assert len(billing.events(COMPLETED)) == 1


@pytest.mark.parametrize(
    ("amount", "code"),
    [(usd(10_001), "REFUND_EXCEEDS_PAYMENT"), (usd(100, "EUR"), "REFUND_CURRENCY_MISMATCH")],
)
def test_a_refund_the_payment_cannot_give_is_refused_and_changes_nothing(billing, amount, code):
    billing.top_up(10_000)
    payment = billing.pay("ord_more", 10_000)
    before = billing.repository.rows()

    with pytest.raises(BusinessRuleViolation) as raised:
        billing.refund(payment, amount=amount)
    billing.uow.rollback()  # as the inbox wrapper does

    assert raised.value.code == code
    assert billing.repository.rows() == before


def test_a_payment_that_did_not_succeed_is_not_refunded(billing):
    declined = billing.pay("ord_declined", 500, domain.CREDIT_CARD, card=DECLINING_CARD)

    with pytest.raises(BusinessRuleViolation) as raised:
        billing.refund(declined)

    assert raised.value.code == "PAYMENT_NOT_REFUNDABLE"


@pytest.mark.parametrize(
    "mismatch",
    [{"order_id": "ord_other"}, {"account_id": "acc_other"}, {"payment_id": "pay_none"}],
)
def test_a_payment_that_is_not_the_orders_is_not_refunded(billing, mismatch):
    billing.top_up(10_000)
    payment = billing.pay("ord_mine", 1_000)

    with pytest.raises(NotFound):
        billing.refund(payment, **mismatch)

    assert billing.repository.table(REFUNDS) == {}


def test_a_card_refund_the_processor_does_not_answer_is_completed_by_recovery_once(billing):
    payment = billing.pay("ord_card", 7_500, domain.CREDIT_CARD)
    billing.gateway.silent_refunds = 2  # the refund and the first retry go unanswered

    pending = billing.refund(payment)

    assert (pending["status"], pending["completed_at"]) == ("pending", None)
    assert billing.refund(payment) == pending  # asked again: the same refund
    billing.clock.advance(GRACE * 2)
    assert billing.recover() == 0
    assert billing.recover() == 1
    assert billing.recover() == 0
    done = billing.refund_of("ord_card")
    assert (done["id"], done["status"]) == (pending["id"], "succeeded")
    assert done["completed_at"] == START + GRACE * 2
    assert len(billing.gateway.refunds) == 1
    assert len(billing.events(COMPLETED)) == 1


def test_a_card_refund_the_processor_refuses_fails_moves_nothing_and_is_not_asked_again(
    billing,
):
    payment = billing.pay("ord_refused", 7_500, domain.CREDIT_CARD)
    billing.gateway.refusing = True

    failed = billing.refund(payment)

    assert (failed["status"], failed["failure_code"]) == ("failed", "refund_declined")
    assert failed["failure_reason"] and failed["completed_at"] == START
    assert billing.statement() == [("payment", -7_500, 0)]
    (event,) = billing.events(REFUND_FAILED)
    assert (event["failure_code"], event["failed_at"]) == (
        "refund_declined",
        "2026-11-27T09:00:00+00:00",
    )
    assert billing.events(COMPLETED) == []
    assert billing.refund(payment) == failed
    billing.clock.advance(GRACE * 2)
    assert billing.recover() == 0


def test_a_card_refund_the_processor_made_for_another_amount_fails_for_an_operator(billing):
    payment = billing.pay("ord_bad", 7_500, domain.CREDIT_CARD)
    billing.gateway.silent_refunds = 1
    pending = billing.refund(payment)
    answer = billing.gateway.refunds[pending["id"]]
    billing.gateway.refunds[pending["id"]] = replace(answer, amount=Money(1, "USD"))
    billing.clock.advance(GRACE * 2)

    assert billing.recover() == 1

    failed = billing.refund_of("ord_bad")
    assert (failed["status"], failed["failure_code"]) == ("failed", "processor_amount_mismatch")
    assert [event["failure_code"] for event in billing.events(REFUND_FAILED)] == [
        "processor_amount_mismatch"
    ]
    assert billing.statement() == [("payment", -7_500, 0)]


def test_a_refund_is_seen_by_its_buyer_its_payer_and_operators_only(billing):
    billing.grant_credit(2_000, account_id=RESELLER)
    payment = billing.pay("ord_seen", 2_000, domain.RESELLER, payer=RESELLER)
    refund = billing.refund(payment)

    for caller in (who(BUYER, "buyer"), who(RESELLER, "reseller"), OPERATOR):
        assert billing.refund_of("ord_seen", caller) == refund
    with pytest.raises(NotFound):
        billing.refund_of("ord_seen", who("acc_stranger", "buyer"))
    with pytest.raises(NotFound):
        billing.refund_of("ord_none")
