"""Unit tests of billing's ledger and card rules and of its RPC boundary (no broker,
no database)."""

import datetime as dt
import random

import pytest
from nameko.testing.services import worker_factory

from billing import domain
from billing.domain import AccountState, Posting
from billing.models import Payment, Refund
from billing.service import BillingService
from billing.tests.fakes import started_payment
from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, Conflict, PaymentRequired, ValidationError
from mercato.money import Money
from mercato.terms import PAYER_METHODS

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
BUYER = "acc_buyer"
RESELLER = "acc_reseller"
GOOD_CARD = {"token": "tok_4242424242424242"}
RAW_CARD = {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
CARD = domain.Card(source="tok_4242424242424242", brand="visa", last4="4242", expiry="12/30")


# -- the ledger ---------------------------------------------------------------------


@pytest.mark.parametrize("method", PAYER_METHODS)
def test_every_payment_posts_two_sides_that_sum_to_zero(method):
    postings = domain.payment_postings(method, BUYER, 12_999)

    assert domain.is_balanced(postings)
    assert Posting(domain.SALES, None, -12_999) in postings


def test_a_top_up_posts_card_clearing_against_the_customer_balance():
    postings = domain.top_up_postings(BUYER, 5_000)

    assert domain.is_balanced(postings)
    assert AccountState().apply(BUYER, postings).balance == 5_000


def test_a_single_or_lopsided_posting_is_not_balanced():
    assert not domain.is_balanced([Posting(domain.SALES, None, 0)])
    assert not domain.is_balanced(
        [Posting(domain.CARD_CLEARING, None, 10), Posting(domain.SALES, None, -9)]
    )


def test_payments_and_top_ups_refuse_a_zero_amount():
    with pytest.raises(ValueError):
        domain.payment_postings(domain.BALANCE, BUYER, 0)
    with pytest.raises(ValueError):
        domain.top_up_postings(BUYER, -1)


@pytest.mark.parametrize(
    ("method", "balance", "credit_used"),
    [
        (domain.BALANCE, 10_000 - 2_500, 0),
        (domain.CREDIT, 10_000, 2_500),
        (domain.CREDIT_CARD, 10_000, 0),
        (domain.RESELLER, 10_000 - 2_500, 0),
    ],
)
def test_each_method_moves_the_payers_figures_its_own_way(method, balance, credit_used):
    state = AccountState(balance=10_000, credit_limit=5_000)

    after = state.apply(BUYER, domain.payment_postings(method, BUYER, 2_500))

    assert (after.balance, after.credit_limit, after.credit_used) == (balance, 5_000, credit_used)


def test_postings_on_another_account_do_not_move_this_one():
    state = AccountState(balance=100)
    assert state.apply(BUYER, domain.payment_postings(domain.BALANCE, "acc_other", 50)) == state


def test_short_balance_refuses_and_exact_balance_pays():
    AccountState(balance=1_000).authorize(domain.BALANCE, 1_000)
    with pytest.raises(PaymentRequired, match="insufficient balance"):
        AccountState(balance=999).authorize(domain.BALANCE, 1_000)


def test_credit_pays_up_to_the_limit_and_not_a_cent_more():
    state = AccountState(credit_limit=10_000, credit_used=6_000)
    state.authorize(domain.CREDIT, 4_000)
    with pytest.raises(PaymentRequired, match="credit limit exceeded"):
        state.authorize(domain.CREDIT, 4_001)
    with pytest.raises(PaymentRequired):
        AccountState().authorize(domain.CREDIT, 1)  # no credit granted


def test_a_card_pays_whatever_the_balance():
    AccountState().authorize(domain.CREDIT_CARD, 10_000)


def test_a_reseller_pays_for_its_customers_within_its_credit_limit():
    """Its balance first, then what it owes up to its limit: its balance has a floor."""
    AccountState(balance=-50_000, credit_limit=60_000).authorize(domain.RESELLER, 10_000)
    AccountState(balance=5_000).authorize(domain.RESELLER, 5_000)
    with pytest.raises(PaymentRequired) as refused:
        AccountState(balance=-50_000, credit_limit=60_000).authorize(domain.RESELLER, 10_001)
    assert refused.value.code == "RESELLER_CREDIT_LIMIT_EXCEEDED"
    with pytest.raises(PaymentRequired):
        AccountState().authorize(domain.RESELLER, 1)  # no limit granted: no debt
    # credit used on its own orders counts against the same limit
    with pytest.raises(PaymentRequired):
        AccountState(credit_limit=10_000, credit_used=9_000).authorize(domain.RESELLER, 1_001)
    after = AccountState().apply(RESELLER, domain.payment_postings(domain.RESELLER, RESELLER, 700))
    assert after.balance == -700


def test_a_resellers_debt_takes_from_its_credit_too():
    owing = AccountState(balance=-7_000, credit_limit=10_000)
    assert owing.available_credit == 3_000
    with pytest.raises(PaymentRequired):
        owing.authorize(domain.CREDIT, 3_001)
    owing.authorize(domain.CREDIT, 3_000)


def test_figures_kept_in_step_equal_the_figures_derived_from_the_postings():
    """Whatever sequence of movements: applying them one by one and summing the
    ledgers give the same account."""
    rng = random.Random(20261127)
    state = AccountState(credit_limit=1_000_000)
    ledger: list[Posting] = []
    for _ in range(500):
        amount = rng.randint(1, 20_000)
        kind = rng.choice([*PAYER_METHODS, "top_up"])
        postings = (
            domain.top_up_postings(BUYER, amount)
            if kind == "top_up"
            else domain.payment_postings(kind, BUYER, amount)
        )
        assert domain.is_balanced(postings)
        state = state.apply(BUYER, postings)
        ledger.extend(postings)

    sums: dict[str, int] = {}
    for posting in ledger:
        if posting.account_id == BUYER:
            sums[posting.ledger_account] = sums.get(posting.ledger_account, 0) + posting.amount
    assert sum(posting.amount for posting in ledger) == 0
    assert domain.derived_state(state.credit_limit, sums) == state


# -- cards --------------------------------------------------------------------------


def test_a_card_shows_brand_and_last_four_never_its_token():
    assert repr(CARD) == "Card(visa ****4242)"


# -- the RPC boundary ---------------------------------------------------------------


def _pay(**overrides):
    payload = {
        "order_id": "ord_1",
        "account_id": BUYER,
        "payer_account_id": BUYER,
        "amount": {"amount": 12_999, "currency": "USD"},
        "enterprise_project_id": "default",
        "payment_method": "balance",
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_pay(payment_method="credit_card"), "card"),
        (_pay(card=GOOD_CARD), "card"),
        (_pay(payer_account_id=RESELLER), "payer_account_id"),
        (_pay(payment_method="reseller"), "payer_account_id"),
        (_pay(payment_method="cash"), "payment_method"),
        (_pay(amount={"amount": 12.5, "currency": "USD"}), "amount.amount"),
        (_pay(amount={"amount": "12999", "currency": "USD"}), "amount.amount"),
        (_pay(amount={"amount": 0, "currency": "USD"}), "amount.amount"),
        (_pay(amount={"amount": -1, "currency": "USD"}), "amount.amount"),
        (_pay(amount={"amount": 100, "currency": "usd"}), "amount.currency"),
        (_pay(amount=12_999), "amount._schema"),
        (_pay(order_id=""), "order_id"),
        (_pay(colour="red"), "colour"),
        (_pay(payment_method="credit_card", card=RAW_CARD), "card"),
        (_pay(payment_method="credit_card", card={"number": "4242424242424242"}), "card"),
        (_pay(payment_method="credit_card", card={**GOOD_CARD, "cvc": "123"}), "card"),
        (_pay(payment_method="credit_card", card={}), "card.token"),
        (
            _pay(payment_method="credit_card", card={**GOOD_CARD, "card_id": "card_1"}),
            "card.card_id",
        ),
        (_pay(payment_method="credit_card", card={"token": ""}), "card.token"),
        (_pay(amount={"amount": 100, "currency": "EUR"}), "amount.currency"),
    ],
)
def test_pay_order_rejects_bad_input_naming_the_field_and_touches_nothing(payload, field):
    service = worker_factory(BillingService, clock=ManualClock(NOW))
    service.caller.require.return_value.account_id = BUYER

    with pytest.raises(ValidationError) as raised:
        service.pay_order(payload)

    assert field in raised.value.fields, raised.value.fields
    assert not service.db.method_calls and not service.db.session.method_calls
    assert not service.card_gateway.method_calls


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": {"amount": 0, "currency": "USD"}, "card": GOOD_CARD}, "amount.amount"),
        ({"amount": 500, "card": GOOD_CARD}, "amount._schema"),
        ({"amount": True, "card": GOOD_CARD}, "amount._schema"),
        ({"amount": "500", "card": GOOD_CARD}, "amount._schema"),
        ({"amount": {"amount": 500}, "card": GOOD_CARD}, "amount.currency"),
        ({"amount": {"amount": 500, "currency": "USD"}}, "card"),
        ({"amount": {"amount": 500, "currency": "USD"}, "card": {**GOOD_CARD, "cvc": "x"}}, "card"),
        ({"amount": {"amount": 500, "currency": "USD"}, "card": RAW_CARD}, "card"),
        ({"amount": {"amount": 500, "currency": "USD"}, "card": {"pin": "1"}}, "card.pin"),
    ],
)
def test_top_up_rejects_bad_input_naming_the_field(payload, field):
    service = worker_factory(BillingService, clock=ManualClock(NOW))
    with pytest.raises(ValidationError) as raised:
        service.top_up(payload)
    assert field in raised.value.fields, raised.value.fields
    assert not service.card_gateway.method_calls


def test_list_transactions_caps_the_page_size_at_a_hundred():
    service = worker_factory(BillingService)
    with pytest.raises(ValidationError) as raised:
        service.list_transactions({"page": 1, "page_size": 101})
    assert "page_size" in raised.value.fields
    with pytest.raises(ValidationError) as raised:
        service.list_transactions({"page": 0, "page_size": 10})
    assert "page" in raised.value.fields


def test_a_credit_limit_cannot_be_negative():
    service = worker_factory(BillingService)
    with pytest.raises(ValidationError) as raised:
        service.set_credit_limit("acc_1", {"amount": {"amount": -1, "currency": "USD"}})
    assert "amount.amount" in raised.value.fields


# -- refunds ------------------------------------------------------------------------


@pytest.mark.parametrize("method", PAYER_METHODS)
def test_a_refund_posts_the_payment_with_its_signs_swapped(method):
    paid = domain.payment_postings(method, BUYER, 12_999)
    refunded = domain.refund_postings(method, BUYER, 12_999)

    assert domain.is_balanced(refunded)
    assert Posting(domain.SALES, None, 12_999) in refunded
    net: dict[tuple[str, str | None], int] = {}
    for posting in paid + refunded:
        key = (posting.ledger_account, posting.account_id)
        net[key] = net.get(key, 0) + posting.amount
    assert set(net.values()) == {0}


@pytest.mark.parametrize("method", PAYER_METHODS)
def test_a_full_refund_puts_the_payers_figures_back(method):
    before = AccountState(balance=10_000, credit_limit=5_000, credit_used=1_000)

    paid = before.apply(BUYER, domain.payment_postings(method, BUYER, 2_500))
    refunded = paid.apply(BUYER, domain.refund_postings(method, BUYER, 2_500))

    assert refunded == before


def test_a_refund_refuses_a_zero_amount():
    with pytest.raises(ValueError):
        domain.refund_postings(domain.BALANCE, BUYER, 0)


def test_a_refund_may_be_up_to_what_was_paid_and_not_a_cent_more():
    paid = Money(5_000, "USD")
    domain.check_refund(paid=paid, payment_status=domain.SUCCEEDED, refund=paid)
    domain.check_refund(paid=paid, payment_status=domain.SUCCEEDED, refund=Money(1, "USD"))

    with pytest.raises(BusinessRuleViolation) as raised:
        domain.check_refund(paid=paid, payment_status=domain.SUCCEEDED, refund=Money(5_001, "USD"))
    assert raised.value.code == "REFUND_EXCEEDS_PAYMENT"
    assert "refund.amount" in raised.value.fields


@pytest.mark.parametrize(
    ("status", "refund", "code"),
    [
        (domain.FAILED, Money(100, "USD"), "PAYMENT_NOT_REFUNDABLE"),
        (domain.PENDING, Money(100, "USD"), "PAYMENT_NOT_REFUNDABLE"),
        (domain.SUCCEEDED, Money(100, "EUR"), "REFUND_CURRENCY_MISMATCH"),
    ],
)
def test_a_refund_of_an_unpaid_payment_or_in_another_currency_is_refused(status, refund, code):
    with pytest.raises(BusinessRuleViolation) as raised:
        domain.check_refund(paid=Money(5_000, "USD"), payment_status=status, refund=refund)
    assert raised.value.code == code


# -- the moves of a payment, a top-up and a refund ----------------------------------


@pytest.mark.parametrize(
    ("machine", "move", "status"),
    [
        (domain.PAYMENT, "succeed", domain.SUCCEEDED),
        (domain.PAYMENT, "succeed", domain.FAILED),
        (domain.PAYMENT, "fail", domain.SUCCEEDED),
        (domain.PAYMENT, "fail", domain.FAILED),
        (domain.PAYMENT, "try_again", domain.PENDING),
        (domain.PAYMENT, "try_again", domain.SUCCEEDED),
        (domain.TOP_UP, "succeed", domain.FAILED),
        (domain.TOP_UP, "fail", domain.SUCCEEDED),
        (domain.REFUND, "complete", domain.SUCCEEDED),
        (domain.REFUND, "complete", domain.FAILED),
        (domain.REFUND, "fail", domain.SUCCEEDED),
    ],
)
def test_a_move_its_status_does_not_allow_is_refused_naming_both(machine, move, status):
    with pytest.raises(Conflict, match=f"the {machine.entity} is {status}; {move} needs it"):
        machine.move(move, status)
    assert not machine.allows(move, status)


def _payment(card: domain.Card | None = None) -> Payment:
    return started_payment("pay_1", "ord_1", BUYER, 5_000, card, NOW)


def test_a_settled_payment_refuses_another_outcome_and_records_nothing_more():
    payment = _payment()
    payment.succeed(NOW)
    assert [event.type for event in payment.take_events()] == ["billing.payment.succeeded"]

    with pytest.raises(Conflict, match="the payment is succeeded; fail needs it pending"):
        payment.fail(domain.CARD_DECLINED, NOW)
    with pytest.raises(Conflict):
        payment.succeed(NOW)

    assert payment.status == domain.SUCCEEDED and payment.failure_code is None
    assert payment.take_events() == []


def test_a_failed_card_attempt_is_tried_again_under_a_new_key():
    card = CARD
    payment = _payment(card)
    assert payment.charge_key == "pay_1.1" and payment.awaits_charge("pay_1.1")
    payment.fail(domain.CARD_DECLINED, NOW)

    payment.try_again(domain.CREDIT_CARD, card, NOW)

    assert (payment.status, payment.attempt, payment.charge_key) == (domain.PENDING, 2, "pay_1.2")
    assert (payment.failure_code, payment.failure_reason, payment.completed_at) == (None,) * 3
    assert not payment.awaits_charge("pay_1.1")


def test_a_refund_completes_or_fails_once():
    refund = Refund(
        id="rfd_1",
        payment_id="pay_1",
        order_id="ord_1",
        account_id=BUYER,
        payer_account_id=BUYER,
        payment_method=domain.CREDIT_CARD,
        amount=5_000,
        currency="USD",
        status=domain.PENDING,
        reason="Delivery failed.",
    )
    refund.fail(domain.REFUND_DECLINED, NOW)

    with pytest.raises(Conflict, match="the refund is failed; complete needs it pending"):
        refund.complete(NOW)

    (event,) = refund.take_events()
    assert (event.type, event.data["failure_code"]) == ("billing.refund.failed", "refund_declined")
    assert refund.status == domain.FAILED


def test_a_pay_for_another_amount_or_account_is_a_conflict():
    payment = _payment()
    payment.require_same_order(account_id=BUYER, payer_account_id=BUYER, price=Money(5_000, "USD"))
    for account_id, payer, price in (
        (BUYER, BUYER, Money(5_001, "USD")),
        (BUYER, RESELLER, Money(5_000, "USD")),
        ("acc_other", BUYER, Money(5_000, "USD")),
    ):
        with pytest.raises(Conflict):
            payment.require_same_order(account_id=account_id, payer_account_id=payer, price=price)
