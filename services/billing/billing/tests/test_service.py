"""billing in a real container, on PostgreSQL and RabbitMQ, called the way the orders
service and the gateway call it. After every test the books are audited: every
journal entry sums to zero and every account and payment agrees with its postings."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from billing.service import BillingService
from mercato.clock import ManualClock
from mercato.db import create_engine
from mercato.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    Unauthenticated,
    ValidationError,
)
from mercato_testing import payments, signed_context
from mercato_testing.interface import (
    EventQueue,
    caller,
    events_consumed,
    publish_event,
    sample,
    wait_for,
)

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
GATEWAY_TIMEOUT = 0.5
GRACE = dt.timedelta(seconds=60)

# the provider's test cards (simulators/payments): a body's card is a token of one,
# got from the simulated provider by ``pay`` and ``top_up``
GOOD_CARD = payments.GOOD
DECLINING_CARD = payments.DECLINING
NO_FUNDS_CARD = payments.INSUFFICIENT_FUNDS
TIMEOUT_CARD = payments.HANGING

ANN = caller("acc_ann", "buyer")
BOB = caller("acc_bob", "buyer")
RESELLER = caller("acc_reseller", "reseller")
CUSTOMER = caller("acc_customer", "buyer", reseller_account_id="acc_reseller")
OPERATOR = caller("acc_ops", "operator")


@dataclass
class Billing:
    config: dict
    clock: ManualClock
    engine: sa.engine.Engine
    payments: payments.PaymentsSimulatorHandle

    def rpc(self, who: dict | None = None) -> ServiceRpcProxy:
        return ServiceRpcProxy("billing", self.config, timeout=30, context_data=signed_context(who))

    def scalar(self, sql: str, **params):
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar_one()


def _config(make_service_config, provider):
    return make_service_config(
        "billing",
        CARD_GATEWAY_URL=provider.url,
        CARD_GATEWAY_TIMEOUT_SECONDS=GATEWAY_TIMEOUT,
        PAYMENT_RECOVERY_INTERVAL_SECONDS=0.1,
        PAYMENT_RECOVERY_GRACE_SECONDS=GRACE.total_seconds(),
    )


def _start(container_factory, config, clock):
    container = container_factory(BillingService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


@pytest.fixture
def billing(container_factory, make_service_config, payments_simulator):
    """A running billing whose clock the test moves, charging cards at the simulated
    provider; audits the books afterwards."""
    config = _config(make_service_config, payments_simulator)
    clock = ManualClock(START)
    _start(container_factory, config, clock)
    engine = create_engine(config["DATABASE_URL"], pool_size=2)
    service = Billing(config, clock, engine, payments_simulator)
    yield service
    try:
        assert_books_balance(service)
    finally:
        engine.dispose()


def published(billing: Billing, routing_key: str):
    """Every event of ``routing_key`` billing publishes from now on, as a subscriber's
    queue receives them: ``read()`` waits for the outbox to drain, then reads all."""
    queue = EventQueue(billing.config["AMQP_URI"], "billing", routing_key)

    def read() -> list[dict]:
        wait_for(
            lambda: (
                billing.scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")
                == 0
            ),
            "the outbox to be published",
        )
        return queue.read()

    yield read
    queue.close()


@pytest.fixture
def events(billing):
    """Every billing.payment.* event published during the test (see ``published``)."""
    yield from published(billing, "billing.payment.*")


def assert_books_balance(billing: Billing) -> None:
    with billing.rpc(OPERATOR) as service:
        audit = service.audit_ledger()
    assert audit["balanced"], audit
    assert billing.scalar("SELECT coalesce(sum(amount), 0) FROM ledger_postings") == 0
    assert (
        billing.scalar(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id "
            "HAVING sum(amount) <> 0) AS unbalanced"
        )
        == 0
    )


def usd(amount: int) -> dict:
    return {"amount": amount, "currency": "USD"}


def as_card(billing: Billing, card) -> dict:
    """A test card's number as a body's ``card``: a token of it from the provider."""
    return {"token": billing.payments.token(card)} if isinstance(card, str) else card


def pay(billing: Billing, who: dict, order_id: str, amount: int, method: str, **extra) -> dict:
    if "card" in extra:
        extra["card"] = as_card(billing, extra["card"])
    payload = {
        "order_id": order_id,
        "account_id": who["account_id"],
        "payer_account_id": extra.pop("payer_account_id", who["account_id"]),
        "amount": usd(amount),
        "enterprise_project_id": "default",
        "payment_method": method,
        **extra,
    }
    with billing.rpc(who) as service:
        return service.pay_order(payload)


def top_up(billing: Billing, who: dict, amount: int, card=GOOD_CARD, **extra) -> dict:
    with billing.rpc(who) as service:
        return service.top_up({"amount": usd(amount), "card": as_card(billing, card), **extra})


def balance(billing: Billing, who: dict) -> dict:
    with billing.rpc(who) as service:
        view = service.get_balance()
    return {key: value["amount"] for key, value in view.items() if isinstance(value, dict)}


def statement(billing: Billing, who: dict, page: int = 1, page_size: int = 20) -> dict:
    with billing.rpc(who) as service:
        return service.list_transactions({"page": page, "page_size": page_size})


def _ids(billing: Billing, sql: str) -> set[str]:
    with billing.engine.connect() as connection:
        return set(connection.execute(sa.text(sql)).scalars())


def gateway_charges(billing: Billing) -> int:
    """The charges the provider made for this billing's payments and top-ups."""
    ours = _ids(billing, "SELECT id FROM payments UNION SELECT id FROM top_ups")
    return sum(
        charge["idempotency_key"].split(".")[0] in ours
        for charge in billing.payments.ledger()["charges"]
    )


def gateway_refunds(billing: Billing) -> int:
    """The refunds the provider made for this billing's refunds."""
    ours = _ids(billing, "SELECT id FROM refunds")
    return sum(refund["idempotency_key"] in ours for refund in billing.payments.ledger()["refunds"])


def entries_for(billing: Billing, order_id: str) -> int:
    return billing.scalar("SELECT count(*) FROM journal_entries WHERE order_id = :o", o=order_id)


def of_type(events: list[dict], event_type: str, order_id: str) -> list[dict]:
    return [e for e in events if e["type"] == event_type and e["data"]["order_id"] == order_id]


# -- balance ------------------------------------------------------------------------


def test_a_new_account_has_nothing(billing):
    assert balance(billing, ANN) == {
        "balance": 0,
        "credit_limit": 0,
        "credit_used": 0,
        "available_credit": 0,
    }
    assert statement(billing, ANN) == {"items": [], "total": 0, "page": 1, "page_size": 20}


def test_top_up_then_pay_from_the_balance(billing, events):
    topped = top_up(billing, ANN, 50_000)
    assert topped["status"] == "succeeded" and topped["card"] == {"brand": "visa", "last4": "4242"}
    assert balance(billing, ANN)["balance"] == 50_000

    payment = pay(billing, ANN, "ord_1", 12_999, "balance")

    assert payment["status"] == "succeeded"
    assert payment["amount"] == usd(12_999) and payment["failure_reason"] is None
    assert balance(billing, ANN)["balance"] == 50_000 - 12_999
    items = statement(billing, ANN)["items"]
    assert [(i["kind"], i["amount"]["amount"], i["balance_after"]["amount"]) for i in items] == [
        ("payment", -12_999, 37_001),
        ("top_up", 50_000, 50_000),
    ]
    assert items[0]["order_id"] == "ord_1" and items[0]["payment_method"] == "balance"
    assert items[0]["created_at"].startswith("2026-11-27T09:00:00")

    (event,) = of_type(events(), "billing.payment.succeeded", "ord_1")
    assert event["subject"] == payment["id"] and event["account_id"] == "acc_ann"
    assert event["data"] == {
        "payment_id": payment["id"],
        "order_id": "ord_1",
        "account_id": "acc_ann",
        "payer_account_id": "acc_ann",
        "payment_method": "balance",
        "amount": usd(12_999),
        "enterprise_project_id": "default",
    }


def test_short_balance_is_refused_and_changes_nothing(billing, events):
    top_up(billing, ANN, 1_000)

    with pytest.raises(PaymentRequired) as raised:
        pay(billing, ANN, "ord_short", 5_000, "balance")

    assert raised.value.code == "PAYMENT_REQUIRED"
    assert balance(billing, ANN)["balance"] == 1_000
    assert statement(billing, ANN)["total"] == 1
    assert billing.scalar("SELECT count(*) FROM payments") == 0
    with billing.rpc(ANN) as service, pytest.raises(NotFound):
        service.get_payment("ord_short")
    assert of_type(events(), "billing.payment.succeeded", "ord_short") == []


def test_a_retried_pay_answers_the_first_payment_and_charges_nothing(billing):
    top_up(billing, ANN, 10_000)
    first = pay(billing, ANN, "ord_again", 4_000, "balance")

    again = pay(billing, ANN, "ord_again", 4_000, "balance")
    by_card = pay(billing, ANN, "ord_again", 4_000, "credit_card", card=GOOD_CARD)

    assert again == first and by_card == first
    assert balance(billing, ANN)["balance"] == 6_000
    assert gateway_charges(billing) == 1  # the top-up's; the order's card was not charged
    with pytest.raises(Conflict):
        pay(billing, ANN, "ord_again", 4_001, "balance")


def test_nobody_pays_for_another_buyers_order(billing):
    top_up(billing, ANN, 10_000)
    with billing.rpc(BOB) as service, pytest.raises(Forbidden):
        service.pay_order(
            {
                "order_id": "ord_ann",
                "account_id": "acc_ann",
                "payer_account_id": "acc_ann",
                "amount": usd(100),
                "payment_method": "balance",
            }
        )
    with billing.rpc() as service, pytest.raises(Unauthenticated):
        service.get_balance()
    assert balance(billing, ANN)["balance"] == 10_000


# -- credit -------------------------------------------------------------------------


def test_credit_pays_up_to_the_granted_limit_and_no_further(billing):
    with pytest.raises(PaymentRequired):
        pay(billing, ANN, "ord_no_credit", 100, "credit")

    with billing.rpc(OPERATOR) as service:
        granted = service.set_credit_limit("acc_ann", {"amount": usd(100_000)})
    assert granted["credit_limit"] == usd(100_000)

    assert pay(billing, ANN, "ord_c1", 60_000, "credit")["status"] == "succeeded"
    with pytest.raises(PaymentRequired, match="credit limit exceeded"):
        pay(billing, ANN, "ord_c2", 40_001, "credit")
    assert pay(billing, ANN, "ord_c3", 40_000, "credit")["status"] == "succeeded"

    assert balance(billing, ANN) == {
        "balance": 0,
        "credit_limit": 100_000,
        "credit_used": 100_000,
        "available_credit": 0,
    }
    assert billing.scalar("SELECT count(*) FROM payments WHERE order_id = 'ord_c2'") == 0
    item = statement(billing, ANN)["items"][0]
    assert (item["payment_method"], item["amount"], item["credit_used_after"]) == (
        "credit",
        usd(-40_000),
        usd(100_000),
    )


@pytest.mark.parametrize("who", [ANN, RESELLER, {**ANN, "roles": ["buyer", "seller"]}])
def test_only_an_operator_sets_a_credit_limit(billing, who):
    with billing.rpc(who) as service, pytest.raises(Forbidden):
        service.set_credit_limit(who["account_id"], {"amount": usd(1_000_000)})
    assert balance(billing, who)["credit_limit"] == 0

    with billing.rpc(OPERATOR) as service:
        limit = service.set_credit_limit(who["account_id"], {"amount": usd(2_500)})
        assert limit["credit_limit"] == usd(2_500)
        with pytest.raises(ValidationError) as raised:
            service.set_credit_limit(who["account_id"], {"amount": usd(-1)})
    assert "amount.amount" in raised.value.fields
    assert balance(billing, who)["credit_limit"] == 2_500


# -- cards --------------------------------------------------------------------------


def test_a_card_pays_without_touching_the_balance(billing, events):
    payment = pay(billing, ANN, "ord_card", 7_500, "credit_card", card=GOOD_CARD)

    assert payment["status"] == "succeeded"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    assert balance(billing, ANN)["balance"] == 0
    assert gateway_charges(billing) == 1
    (item,) = statement(billing, ANN)["items"]
    assert (item["payment_method"], item["amount"], item["balance_after"]) == (
        "credit_card",
        usd(-7_500),
        usd(0),
    )
    assert len(of_type(events(), "billing.payment.succeeded", "ord_card")) == 1


@pytest.mark.parametrize(
    ("card", "code"), [(DECLINING_CARD, "card_declined"), (NO_FUNDS_CARD, "insufficient_funds")]
)
def test_a_declined_card_fails_with_a_reason_and_the_order_may_be_paid_again(
    billing, events, card, code
):
    declined = pay(billing, ANN, "ord_declined", 3_000, "credit_card", card=card)

    assert declined["status"] == "failed"
    assert declined["failure_code"] == code and declined["failure_reason"]
    assert entries_for(billing, "ord_declined") == 0
    (failed,) = of_type(events(), "billing.payment.failed", "ord_declined")
    assert failed["data"] == {
        "payment_id": declined["id"],
        "order_id": "ord_declined",
        "account_id": "acc_ann",
        "payment_method": "credit_card",
        "reason": declined["failure_reason"],
        "failure_code": code,
    }

    paid = pay(billing, ANN, "ord_declined", 3_000, "credit_card", card=GOOD_CARD)

    assert (paid["id"], paid["status"], paid["failure_code"]) == (declined["id"], "succeeded", None)
    assert gateway_charges(billing) == 2  # the declined attempt and the good one
    assert entries_for(billing, "ord_declined") == 1
    assert len(of_type(events(), "billing.payment.succeeded", "ord_declined")) == 1


def test_a_bad_card_is_refused_naming_the_field_and_changes_nothing(billing):
    billing.clock.set(dt.datetime(2031, 1, 5, tzinfo=dt.UTC))  # GOOD_CARD expired 12/30
    with pytest.raises(ValidationError) as raised:
        pay(billing, ANN, "ord_bad_card", 100, "credit_card", card=GOOD_CARD)
    assert raised.value.fields == {"card.token": ["the card has expired"]}
    with pytest.raises(ValidationError) as raised:
        top_up(billing, ANN, 100, card={"token": "tok_unknown"})
    assert set(raised.value.fields) == {"card.token"}
    with pytest.raises(ValidationError) as raised:
        top_up(billing, ANN, 100, card={"number": GOOD_CARD, "expiry": "12/35", "cvc": "123"})
    assert set(raised.value.fields) == {"card"}
    assert billing.scalar("SELECT count(*) FROM payments") == 0
    assert billing.scalar("SELECT count(*) FROM top_ups") == 0
    assert gateway_charges(billing) == 0


def test_a_card_that_times_out_stays_pending_then_is_recovered_once(billing, events):
    pending = pay(billing, ANN, "ord_slow", 9_900, "credit_card", card=TIMEOUT_CARD)
    assert pending["status"] == "pending"

    retried = pay(billing, ANN, "ord_slow", 9_900, "credit_card", card=TIMEOUT_CARD)
    assert (retried["id"], retried["status"]) == (pending["id"], "pending")
    assert entries_for(billing, "ord_slow") == 0

    billing.clock.advance(GRACE * 2)
    with billing.rpc(ANN) as service:
        wait_for(
            lambda: service.get_payment("ord_slow")["status"] != "pending", "recovery to settle it"
        )
        recovered = service.get_payment("ord_slow")

    assert (recovered["id"], recovered["status"]) == (pending["id"], "succeeded")
    assert gateway_charges(billing) == 1
    assert entries_for(billing, "ord_slow") == 1
    assert len(of_type(events(), "billing.payment.succeeded", "ord_slow")) == 1
    assert pay(billing, ANN, "ord_slow", 9_900, "credit_card", card=GOOD_CARD) == recovered
    assert gateway_charges(billing) == 1


def test_a_top_up_with_an_idempotency_key_charges_once(billing):
    first = top_up(billing, ANN, 2_000, idempotency_key="top-up-1")
    again = top_up(billing, ANN, 2_000, idempotency_key="top-up-1")
    other = top_up(billing, ANN, 2_000)

    assert again == first and other["id"] != first["id"]
    assert balance(billing, ANN)["balance"] == 4_000
    assert gateway_charges(billing) == 2
    with pytest.raises(Conflict):
        top_up(billing, ANN, 2_001, idempotency_key="top-up-1")
    with billing.rpc(ANN) as service:
        assert service.get_top_up(first["id"]) == first
    with billing.rpc(BOB) as service, pytest.raises(NotFound):
        service.get_top_up(first["id"])


def test_a_declined_top_up_is_refused_recorded_and_adds_nothing(billing):
    with pytest.raises(PaymentRequired) as raised:
        top_up(billing, ANN, 2_000, card=DECLINING_CARD)

    assert raised.value.code == "CARD_DECLINED"
    top_up_id = raised.value.message.split()[1]
    with billing.rpc(ANN) as service:
        recorded = service.get_top_up(top_up_id)
    assert (recorded["status"], recorded["failure_code"]) == ("failed", "card_declined")
    assert balance(billing, ANN)["balance"] == 0
    assert statement(billing, ANN)["total"] == 0


# -- resellers ----------------------------------------------------------------------


def grant_credit(billing: Billing, account_id: str, amount: int) -> dict:
    with billing.rpc(OPERATOR) as service:
        return service.set_credit_limit(account_id, {"amount": usd(amount)})


def test_a_reseller_pays_for_its_customer(billing, events):
    grant_credit(billing, "acc_reseller", 25_000)
    payment = pay(
        billing, CUSTOMER, "ord_customer", 25_000, "reseller", payer_account_id="acc_reseller"
    )

    assert payment["status"] == "succeeded"
    assert payment["payer_account_id"] == "acc_reseller"
    assert balance(billing, RESELLER)["balance"] == -25_000
    assert balance(billing, CUSTOMER)["balance"] == 0
    assert statement(billing, CUSTOMER)["total"] == 0
    (item,) = statement(billing, RESELLER)["items"]
    assert (item["order_id"], item["buyer_account_id"], item["amount"]) == (
        "ord_customer",
        "acc_customer",
        usd(-25_000),
    )
    assert (
        billing.scalar(
            "SELECT sum(amount) FROM ledger_postings WHERE ledger_account = 'reseller_receivable' "
            "AND account_id = 'acc_reseller'"
        )
        == 25_000
    )
    (event,) = of_type(events(), "billing.payment.succeeded", "ord_customer")
    assert event["data"]["payer_account_id"] == "acc_reseller"
    assert event["data"]["account_id"] == "acc_customer"


def test_a_buyer_cannot_make_a_reseller_it_does_not_belong_to_pay(billing):
    with pytest.raises(Forbidden):
        pay(billing, ANN, "ord_sneaky", 25_000, "reseller", payer_account_id="acc_reseller")
    assert balance(billing, RESELLER)["balance"] == 0


# -- exactly once -------------------------------------------------------------------


def test_ten_concurrent_pays_of_one_order_charge_the_balance_once(billing, events):
    top_up(billing, ANN, 100_000)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _: pay(billing, ANN, "ord_race", 10_000, "balance"), range(10))
        )

    assert {a["id"] for a in answers} == {answers[0]["id"]}
    assert {a["status"] for a in answers} == {"succeeded"}
    assert balance(billing, ANN)["balance"] == 90_000
    assert entries_for(billing, "ord_race") == 1
    assert len(of_type(events(), "billing.payment.succeeded", "ord_race")) == 1


def test_ten_concurrent_card_pays_of_one_order_charge_the_card_once(billing, events):
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(
                lambda _: pay(billing, ANN, "ord_card_race", 10_000, "credit_card", card=GOOD_CARD),
                range(10),
            )
        )

    assert {a["id"] for a in answers} == {answers[0]["id"]}
    assert {a["status"] for a in answers} <= {"pending", "succeeded"}
    assert "succeeded" in {a["status"] for a in answers}
    assert gateway_charges(billing) == 1
    assert entries_for(billing, "ord_card_race") == 1
    assert len(of_type(events(), "billing.payment.succeeded", "ord_card_race")) == 1


def _crashed_card_payment(billing: Billing, order_id: str, *, charged: bool) -> str:
    """What a crash between the gateway's charge and billing's record leaves: the
    attempt committed as pending, and (if ``charged``) the charge at the gateway."""
    payment_id = f"pay_crash_{order_id}"
    key = f"{payment_id}.1"
    with billing.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO payments (id, order_id, account_id, payer_account_id, "
                "enterprise_project_id, payment_method, amount, currency, status, attempt, "
                "charge_key, card_brand, card_last4, created_at, updated_at) VALUES "
                "(:id, :order_id, 'acc_ann', 'acc_ann', 'default', 'credit_card', 4200, 'USD', "
                "'pending', 1, :key, 'visa', '4242', :now, :now)"
            ),
            {"id": payment_id, "order_id": order_id, "key": key, "now": billing.clock.now()},
        )
    if charged:
        billing.payments.call(
            "POST",
            "/v1/charges",
            {"source": billing.payments.token(GOOD_CARD), "amount": 4_200, "currency": "USD"},
            **{"Idempotency-Key": key},
        )
    return payment_id


def test_two_replicas_recover_a_crashed_card_payment_exactly_once(
    billing, events, container_factory
):
    _start(container_factory, billing.config, billing.clock)  # a second replica
    charged = _crashed_card_payment(billing, "ord_crash", charged=True)
    never_charged = _crashed_card_payment(billing, "ord_crash_early", charged=False)

    with billing.rpc(ANN) as service:
        assert service.get_payment("ord_crash")["status"] == "pending"
        billing.clock.advance(GRACE * 2)
        wait_for(
            lambda: (
                {service.get_payment(order)["status"] for order in ("ord_crash", "ord_crash_early")}
                == {"succeeded", "failed"}
            ),
            "both replicas' recovery to settle both payments",
        )
        succeeded = service.get_payment("ord_crash")
        failed = service.get_payment("ord_crash_early")

    assert (succeeded["id"], succeeded["status"]) == (charged, "succeeded")
    assert (failed["id"], failed["status"]) == (never_charged, "failed")
    assert failed["failure_code"] == "gateway_no_charge"
    assert entries_for(billing, "ord_crash") == 1 and entries_for(billing, "ord_crash_early") == 0
    assert gateway_charges(billing) == 1
    published = events()
    assert len(of_type(published, "billing.payment.succeeded", "ord_crash")) == 1
    assert len(of_type(published, "billing.payment.failed", "ord_crash_early")) == 1
    assert of_type(published, "billing.payment.succeeded", "ord_crash_early") == []


def test_statement_pages_newest_first(billing):
    for amount in (1_000, 2_000, 3_000):
        top_up(billing, ANN, amount)

    second_page = statement(billing, ANN, page=2, page_size=2)

    assert second_page["total"] == 3 and (second_page["page"], second_page["page_size"]) == (2, 2)
    assert [item["amount"]["amount"] for item in second_page["items"]] == [1_000]
    assert [i["amount"]["amount"] for i in statement(billing, ANN, 1, 2)["items"]] == [3_000, 2_000]


def test_payments_are_counted_once_per_outcome_by_method(billing):
    def counted(name: str, **labels) -> float:
        return sample(name, service="billing", **labels)

    before = {
        "succeeded": counted("mercato_payments_total", method="balance", outcome="succeeded"),
        "refused": counted("mercato_payments_total", method="balance", outcome="refused"),
        "amount": counted("mercato_payment_amount_minor_total", method="balance", currency="USD"),
        "declined": counted("mercato_payments_total", method="credit_card", outcome="failed"),
    }
    top_up(billing, ANN, 5_000)

    pay(billing, ANN, "ord_m1", 3_000, "balance")
    pay(billing, ANN, "ord_m1", 3_000, "balance")  # a replay counts nothing
    with pytest.raises(PaymentRequired):
        pay(billing, ANN, "ord_m2", 3_000, "balance")
    pay(billing, ANN, "ord_m3", 100, "credit_card", card=DECLINING_CARD)

    assert counted("mercato_payments_total", method="balance", outcome="succeeded") == (
        before["succeeded"] + 1
    )
    assert counted("mercato_payments_total", method="balance", outcome="refused") == (
        before["refused"] + 1
    )
    assert counted("mercato_payment_amount_minor_total", method="balance", currency="USD") == (
        before["amount"] + 3_000
    )
    assert counted("mercato_payments_total", method="credit_card", outcome="failed") == (
        before["declined"] + 1
    )


def test_a_refused_retry_after_a_decline_leaves_the_failed_payment_as_it_was(billing):
    declined = pay(billing, ANN, "ord_switch", 2_000, "credit_card", card=DECLINING_CARD)

    with pytest.raises(PaymentRequired):
        pay(billing, ANN, "ord_switch", 2_000, "balance")
    with billing.rpc(ANN) as service:
        assert service.get_payment("ord_switch") == declined

    top_up(billing, ANN, 2_000)
    paid = pay(billing, ANN, "ord_switch", 2_000, "balance")

    assert (paid["id"], paid["status"], paid["payment_method"]) == (
        declined["id"],
        "succeeded",
        "balance",
    )
    assert paid["card"] is None
    assert balance(billing, ANN)["balance"] == 0


# -- refunds: the compensation of an order cancelled after it was paid ----------------

REFUND_TIMEOUT_CARD = payments.REFUND_HANGING
DELIVERY_FAILED = "Delivery failed: the SaaS tenant could not be created."
HANDLER = "billing.on_order_cancelled"


@pytest.fixture
def refund_events(billing):
    """Every billing.refund.* event published during the test (see ``published``)."""
    yield from published(billing, "billing.refund.*")


def cancelled(payment: dict | None, *, order_id: str | None = None, refund: int | None = None):
    """``orders.order.cancelled`` data: of a paid order (refund its payment) or, with
    ``payment`` None, of an unpaid one."""
    if payment is None:
        return {"order_id": order_id, "account_id": "acc_ann", "reason": "Cancelled by buyer."}
    return {
        "order_id": payment["order_id"],
        "account_id": payment["account_id"],
        "reason": DELIVERY_FAILED,
        "payment_id": payment["id"],
        "refund": usd(payment["amount"]["amount"] if refund is None else refund),
    }


def publish_cancelled(billing: Billing, data: dict, *, times: int = 1, event_id=None) -> str:
    return publish_event(
        billing.config["AMQP_URI"],
        "orders.order.cancelled",
        data,
        subject=data["order_id"],
        times=times,
        event_id=event_id,
    )


def consumed(outcome: str) -> float:
    return events_consumed(HANDLER, "orders.order.cancelled", outcome)


def handled(billing: Billing) -> int:
    return billing.scalar("SELECT count(*) FROM inbox_messages WHERE handler = :h", h=HANDLER)


def refund_of(billing: Billing, who: dict, order_id: str) -> dict:
    with billing.rpc(who) as service:
        return service.get_refund(order_id)


def refund_entries(billing: Billing, order_id: str) -> int:
    return billing.scalar(
        "SELECT count(*) FROM journal_entries WHERE kind = 'refund' AND order_id = :o", o=order_id
    )


def test_a_paid_order_cancelled_after_its_delivery_failed_is_refunded(billing, refund_events):
    top_up(billing, ANN, 50_000)
    payment = pay(billing, ANN, "ord_refund", 12_999, "balance")

    publish_cancelled(billing, cancelled(payment))
    wait_for(lambda: handled(billing) == 1, "the cancellation to be handled")

    refund = refund_of(billing, ANN, "ord_refund")
    assert (refund["status"], refund["payment_id"], refund["amount"]) == (
        "succeeded",
        payment["id"],
        usd(12_999),
    )
    assert refund["reason"] == DELIVERY_FAILED and refund["id"].startswith("rfd_")
    assert balance(billing, ANN)["balance"] == 50_000
    items = statement(billing, ANN)["items"]
    assert [(i["kind"], i["amount"]["amount"], i["balance_after"]["amount"]) for i in items] == [
        ("refund", 12_999, 50_000),
        ("payment", -12_999, 37_001),
        ("top_up", 50_000, 50_000),
    ]
    assert (items[0]["refund_id"], items[0]["payment_id"]) == (refund["id"], payment["id"])
    (event,) = refund_events()
    assert (event["type"], event["version"], event["subject"]) == (
        "billing.refund.completed",
        1,
        refund["id"],
    )
    assert event["account_id"] == "acc_ann"
    assert event["data"] == {
        "refund_id": refund["id"],
        "payment_id": payment["id"],
        "order_id": "ord_refund",
        "account_id": "acc_ann",
        "payer_account_id": "acc_ann",
        "payment_method": "balance",
        "amount": usd(12_999),
        "reason": DELIVERY_FAILED,
        "completed_at": "2026-11-27T09:00:00+00:00",
    }
    with billing.rpc(OPERATOR) as service:
        assert service.get_refund("ord_refund") == refund
    with billing.rpc(BOB) as service, pytest.raises(NotFound):
        service.get_refund("ord_refund")


def test_the_same_cancellation_delivered_twice_refunds_once(billing, refund_events):
    payment = pay(billing, ANN, "ord_twice", 7_500, "credit_card", card=GOOD_CARD)
    duplicates_before = consumed("duplicate")

    publish_cancelled(billing, cancelled(payment), times=2)
    # the repeat is skipped once the first has committed its inbox row and the pending
    # refund, which may be before the card processor's answer is recorded
    wait_for(lambda: consumed("duplicate") == duplicates_before + 1, "the repeat to be skipped")
    wait_for(
        lambda: refund_of(billing, ANN, "ord_twice")["status"] == "succeeded",
        "the card refund to be recorded",
    )

    assert billing.scalar("SELECT count(*) FROM refunds") == 1
    assert gateway_refunds(billing) == 1
    assert refund_entries(billing, "ord_twice") == 1
    assert len(of_type(refund_events(), "billing.refund.completed", "ord_twice")) == 1


def test_ten_concurrent_cancellations_of_one_paid_order_refund_once(billing, refund_events):
    with billing.rpc(OPERATOR) as service:
        service.set_credit_limit("acc_ann", {"amount": usd(100_000)})
    payment = pay(billing, ANN, "ord_race_refund", 60_000, "credit")

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda _: publish_cancelled(billing, cancelled(payment)), range(10)))
    wait_for(lambda: handled(billing) == 10, "all ten cancellations to be handled")

    assert billing.scalar("SELECT count(*) FROM refunds") == 1
    assert refund_entries(billing, "ord_race_refund") == 1
    assert balance(billing, ANN)["credit_used"] == 0
    assert len(of_type(refund_events(), "billing.refund.completed", "ord_race_refund")) == 1
    assert billing.scalar("SELECT count(*) FROM dead_letters") == 0


def test_a_card_refund_the_gateway_does_not_answer_completes_later_once(billing, refund_events):
    payment = pay(billing, ANN, "ord_slow_refund", 9_900, "credit_card", card=REFUND_TIMEOUT_CARD)
    assert payment["status"] == "succeeded"

    publish_cancelled(billing, cancelled(payment))
    wait_for(lambda: handled(billing) == 1, "the cancellation to be handled")

    pending = refund_of(billing, ANN, "ord_slow_refund")
    assert (pending["status"], pending["completed_at"]) == ("pending", None)
    assert refund_entries(billing, "ord_slow_refund") == 0
    assert of_type(refund_events(), "billing.refund.completed", "ord_slow_refund") == []

    billing.clock.advance(GRACE * 2)
    wait_for(
        lambda: refund_of(billing, ANN, "ord_slow_refund")["status"] != "pending",
        "recovery to complete the refund",
    )

    done = refund_of(billing, ANN, "ord_slow_refund")
    assert (done["id"], done["status"]) == (pending["id"], "succeeded")
    assert gateway_refunds(billing) == 1
    assert refund_entries(billing, "ord_slow_refund") == 1
    assert len(of_type(refund_events(), "billing.refund.completed", "ord_slow_refund")) == 1
    item = statement(billing, ANN)["items"][0]
    assert (item["kind"], item["amount"], item["balance_after"]) == ("refund", usd(9_900), usd(0))


def test_a_reseller_is_refunded_for_its_customers_cancelled_order(billing, refund_events):
    grant_credit(billing, "acc_reseller", 25_000)
    payment = pay(
        billing,
        CUSTOMER,
        "ord_reseller_refund",
        25_000,
        "reseller",
        payer_account_id="acc_reseller",
    )

    publish_cancelled(billing, cancelled(payment))
    wait_for(lambda: handled(billing) == 1, "the cancellation to be handled")

    assert balance(billing, RESELLER)["balance"] == 0
    assert refund_of(billing, RESELLER, "ord_reseller_refund")["status"] == "succeeded"
    assert refund_of(billing, CUSTOMER, "ord_reseller_refund")["payer_account_id"] == (
        "acc_reseller"
    )
    (item, _payment) = statement(billing, RESELLER)["items"]
    assert (item["kind"], item["buyer_account_id"], item["amount"]) == (
        "refund",
        "acc_customer",
        usd(25_000),
    )
    assert statement(billing, CUSTOMER)["total"] == 0


def test_cancelling_an_unpaid_order_changes_nothing_in_billing(billing, refund_events):
    top_up(billing, ANN, 5_000)
    pay(billing, ANN, "ord_paid_other", 1_000, "balance")
    entries_before = billing.scalar("SELECT count(*) FROM journal_entries")

    publish_cancelled(billing, cancelled(None, order_id="ord_unpaid"))
    wait_for(lambda: handled(billing) == 1, "the cancellation to be handled")

    assert billing.scalar("SELECT count(*) FROM refunds") == 0
    assert billing.scalar("SELECT count(*) FROM journal_entries") == entries_before
    assert balance(billing, ANN)["balance"] == 4_000
    assert refund_events() == []
    assert billing.scalar("SELECT count(*) FROM dead_letters") == 0
    with billing.rpc(ANN) as service, pytest.raises(NotFound):
        service.get_refund("ord_unpaid")


def dead_letter_error(billing: Billing, event_id: str) -> str:
    """The error the dead letter of ``event_id`` carries in billing's dead-letter queue."""
    import json

    from kombu import Connection

    queue = "evt-orders-orders.order.cancelled--billing.on_order_cancelled.dead-letters"
    with Connection(billing.config["AMQP_URI"]) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            if json.loads(message.body)["id"] == event_id:
                return message.headers["x-mercato-error"]
    raise AssertionError(f"no dead letter for {event_id}")


def test_a_cancellation_asking_more_back_than_was_paid_is_dead_lettered(billing, refund_events):
    top_up(billing, ANN, 5_000)
    payment = pay(billing, ANN, "ord_greedy", 1_000, "balance")
    dead_before = consumed("dead_lettered")

    event_id = publish_cancelled(billing, cancelled(payment, refund=1_001))
    wait_for(lambda: consumed("dead_lettered") == dead_before + 1, "the dead letter")

    assert billing.scalar("SELECT count(*) FROM refunds") == 0
    assert balance(billing, ANN)["balance"] == 4_000
    assert refund_events() == []
    error = dead_letter_error(billing, event_id)
    assert "REFUND_EXCEEDS_PAYMENT" in error or "exceeds the 1000 paid" in error
    assert handled(billing) == 0  # the inbox row went with the refused effect


# -- cards the account keeps ----------------------------------------------------------


def bind(billing: Billing, who: dict, number: str = GOOD_CARD, **context) -> dict:
    with billing.rpc({**who, **context}) as service:
        return service.bind_card({"token": billing.payments.token(number)})


def cards_of(billing: Billing, who: dict) -> list[dict]:
    with billing.rpc(who) as service:
        return service.list_cards({"page": 1, "page_size": 20})["items"]


def test_a_bound_card_keeps_only_the_providers_reference_and_pays(billing, events):
    card = bind(billing, ANN, payments.MASTERCARD)
    assert set(card) == {"id", "brand", "last4", "expiry", "created_at"}
    assert (card["brand"], card["last4"], card["expiry"]) == ("mastercard", "4444", "12/30")
    assert cards_of(billing, ANN) == [card]
    stored = billing.scalar("SELECT provider_card_id FROM bound_cards WHERE id = :i", i=card["id"])
    assert stored.startswith("card_") and stored != card["id"]

    payment = pay(billing, ANN, "ord_bound", 3_300, "credit_card", card={"card_id": card["id"]})

    assert payment["status"] == "succeeded"
    assert payment["card"] == {"brand": "mastercard", "last4": "4444"}
    (charged,) = [c for c in billing.payments.ledger()["charges"] if c["source"] == stored]
    assert (charged["amount"], charged["status"]) == (3_300, "succeeded")
    assert len(of_type(events(), "billing.payment.succeeded", "ord_bound")) == 1


def test_binding_the_same_request_again_answers_the_first_card(billing):
    first = bind(billing, ANN, request_key="bind-1")
    again = bind(billing, ANN, request_key="bind-1")
    other = bind(billing, BOB, request_key="bind-1")  # keys are per account
    assert again == first and other["id"] != first["id"]
    assert [c["id"] for c in cards_of(billing, ANN)] == [first["id"]]


def test_another_accounts_card_is_no_card_of_yours(billing):
    card = bind(billing, ANN)
    with pytest.raises(ValidationError) as raised:
        pay(billing, BOB, "ord_stolen", 100, "credit_card", card={"card_id": card["id"]})
    assert set(raised.value.fields) == {"card.card_id"}
    with billing.rpc(BOB) as service, pytest.raises(NotFound):
        service.delete_card(card["id"])
    assert cards_of(billing, BOB) == []
    assert billing.scalar("SELECT count(*) FROM payments") == 0
    assert gateway_charges(billing) == 0


def test_a_deleted_card_is_forgotten_here_and_at_the_provider(billing):
    card = bind(billing, ANN)
    provider_card = billing.scalar(
        "SELECT provider_card_id FROM bound_cards WHERE id = :i", i=card["id"]
    )
    with billing.rpc(ANN) as service:
        assert service.delete_card(card["id"]) is None
        with pytest.raises(NotFound):
            service.delete_card(card["id"])
    assert cards_of(billing, ANN) == []
    gone = billing.payments.session.get(f"{billing.payments.url}/v1/cards/{provider_card}")
    assert gone.status_code == 404
    with pytest.raises(ValidationError) as raised:
        pay(billing, ANN, "ord_deleted_card", 100, "credit_card", card={"card_id": card["id"]})
    assert set(raised.value.fields) == {"card.card_id"}


def test_an_unknown_token_binds_nothing(billing):
    with billing.rpc(ANN) as service, pytest.raises(ValidationError) as raised:
        service.bind_card({"token": "tok_never_issued"})
    assert set(raised.value.fields) == {"token"}
    assert billing.scalar("SELECT count(*) FROM bound_cards") == 0


def test_a_slow_provider_leaves_the_payment_pending_within_billings_budget(billing):
    """The slow test card answers after the provider's delay, longer than billing waits
    (CARD_GATEWAY_TIMEOUT_SECONDS): billing answers ``pending`` by its own budget, and
    recovery settles it."""
    started = dt.datetime.now(dt.UTC)
    payment = pay(billing, ANN, "ord_slow_card", 5_000, "credit_card", card=payments.SLOW)
    waited = (dt.datetime.now(dt.UTC) - started).total_seconds()
    assert payment["status"] == "pending"
    assert waited < 3  # the budget (0.5 s) and the token lookup, not the provider's 6 s
    billing.clock.advance(GRACE * 2)
    with billing.rpc(ANN) as service:
        wait_for(
            lambda: service.get_payment("ord_slow_card")["status"] == "succeeded",
            "recovery to find the slow card's charge",
            timeout=30,
        )
    assert gateway_charges(billing) == 1
