"""billing's card provider driver (``HttpCardGateway``) against the simulated provider
as a process, over real HTTP."""

from __future__ import annotations

import time
import uuid

import pytest

from billing.payment_gateway import GatewayError, GatewayTimeout, HttpCardGateway, UnknownCard
from mercato.money import Money
from mercato_testing import payments

BUDGET = 0.5


@pytest.fixture
def gateway(payments_simulator):
    return HttpCardGateway(payments_simulator.url, BUDGET)


def key() -> str:
    return f"test.{uuid.uuid4().hex}"


def test_a_token_is_read_as_brand_last_four_and_expiry_only(gateway, payments_simulator):
    token = payments_simulator.token(payments.MASTERCARD)
    card = gateway.card(token)
    assert card is not None
    assert (card.source, card.brand, card.last4, card.expiry) == (
        token,
        "mastercard",
        "4444",
        "12/30",
    )
    assert gateway.card("tok_never_issued") is None


def test_a_charge_is_made_once_per_key_and_found_by_it(gateway, payments_simulator):
    card = gateway.card(payments_simulator.token())
    charge_key = key()
    first = gateway.charge(charge_key, card, Money(1_250, "USD"))
    assert first.succeeded and first.amount == Money(1_250, "USD")
    assert gateway.charge(charge_key, card, Money(1_250, "USD")) == first
    assert gateway.lookup(charge_key) == first
    assert gateway.lookup(key()) is None
    assert len(payments_simulator.charges_for(charge_key)) == 1


def test_a_declined_card_answers_its_decline_code(gateway, payments_simulator):
    card = gateway.card(payments_simulator.token(payments.INSUFFICIENT_FUNDS))
    declined = gateway.charge(key(), card, Money(100, "USD"))
    assert (declined.status, declined.decline_code) == ("declined", "insufficient_funds")


def test_an_unanswered_charge_times_out_within_the_budget_and_is_found_later(
    gateway, payments_simulator
):
    card = gateway.card(payments_simulator.token(payments.HANGING))
    charge_key = key()
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        gateway.charge(charge_key, card, Money(900, "USD"))
    assert time.monotonic() - started < BUDGET + 0.5
    assert gateway.lookup(charge_key).succeeded


def test_refunds_once_per_key_and_a_refused_refund_answers_why(gateway, payments_simulator):
    good = gateway.charge(key(), gateway.card(payments_simulator.token()), Money(1_000, "USD"))
    refund_key = key()
    refunded = gateway.refund(good.charge_id, Money(1_000, "USD"), refund_key)
    assert refunded.succeeded
    assert gateway.refund(good.charge_id, Money(1_000, "USD"), refund_key) == refunded
    closed = gateway.card(payments_simulator.token(payments.REFUND_DECLINING))
    charged = gateway.charge(key(), closed, Money(500, "USD"))
    refused = gateway.refund(charged.charge_id, Money(500, "USD"), key())
    assert (refused.status, refused.failure_code) == ("failed", "refund_declined")


def test_a_kept_card_is_charged_by_the_providers_id_until_forgotten(gateway, payments_simulator):
    kept = gateway.keep(payments_simulator.token(), key())
    assert kept.source.startswith("card_") and kept.last4 == "4242"
    assert gateway.charge(key(), kept, Money(300, "USD")).succeeded
    gateway.forget(kept.source)
    gateway.forget(kept.source)  # forgotten already: nothing to do
    with pytest.raises(GatewayError):
        gateway.charge(key(), kept, Money(300, "USD"))
    with pytest.raises(UnknownCard):
        gateway.keep("tok_never_issued", key())


def test_a_provider_that_is_not_there_is_a_gateway_error():
    gateway = HttpCardGateway("http://127.0.0.1:9", BUDGET)  # nothing listens on discard
    with pytest.raises(GatewayError):
        gateway.lookup(key())
