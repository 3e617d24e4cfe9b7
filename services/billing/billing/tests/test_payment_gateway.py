"""The simulated card gateway on a real PostgreSQL database (billing's migrated schema):
a key is charged once, declines say why, a timed-out charge is found by its key."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from billing import domain
from billing.payment_gateway import (
    CHARGE_DECLINED,
    CHARGE_SUCCEEDED,
    GatewayTimeout,
    SimulatedCardGateway,
    TimedGateway,
)
from mercato.db import create_engine
from mercato.money import Money

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
USD_10 = Money(1_000, "USD")


def card(number: str) -> domain.Card:
    return domain.check_card({"number": number, "expiry": "12/30", "cvc": "123"}, NOW)


@pytest.fixture
def engine(databases):
    engine = create_engine(databases.fresh("billing"))
    yield engine
    engine.dispose()


def charges(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM card_gateway_charges")).scalar_one()


def test_a_key_is_charged_once_however_often_it_is_sent(engine):
    gateway = SimulatedCardGateway(engine)

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(
            pool.map(
                lambda _: gateway.charge("pay_1.1", card("4242424242424242"), USD_10), range(5)
            )
        )

    assert {result.charge_id for result in results} == {results[0].charge_id}
    assert results[0].status == CHARGE_SUCCEEDED and results[0].amount == USD_10
    assert charges(engine) == 1
    assert gateway.lookup("pay_1.1") == results[0]
    assert gateway.lookup("pay_1.2") is None


@pytest.mark.parametrize(
    ("number", "code"),
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")],
)
def test_test_cards_decline_with_their_reason(engine, number, code):
    result = SimulatedCardGateway(engine).charge("pay_2.1", card(number), USD_10)

    assert (result.status, result.decline_code) == (CHARGE_DECLINED, code)
    assert not result.succeeded


def test_the_timeout_card_charges_but_does_not_answer_in_time(engine):
    gateway = TimedGateway(SimulatedCardGateway(engine, hang_seconds=30), timeout=0.2)

    with pytest.raises(GatewayTimeout):
        gateway.charge("pay_3.1", card("4000000000000119"), USD_10)

    found = gateway.lookup("pay_3.1")
    assert found is not None and found.succeeded
    assert charges(engine) == 1


def refunds(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM card_gateway_refunds")).scalar_one()


def test_a_refund_key_refunds_once_however_often_it_is_sent(engine):
    gateway = SimulatedCardGateway(engine)
    charge = gateway.charge("pay_4.1", card("4242424242424242"), USD_10)

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(
            pool.map(lambda _: gateway.refund(charge.charge_id, USD_10, "rfd_4"), range(5))
        )

    assert {result.refund_id for result in results} == {results[0].refund_id}
    assert results[0].succeeded and results[0].charge_id == charge.charge_id
    assert results[0].amount == USD_10
    assert refunds(engine) == 1


def test_a_charge_is_never_refunded_beyond_what_it_took(engine):
    gateway = SimulatedCardGateway(engine)
    charge = gateway.charge("pay_5.1", card("4242424242424242"), USD_10)

    first = gateway.refund(charge.charge_id, Money(600, "USD"), "rfd_5a")
    too_much = gateway.refund(charge.charge_id, Money(401, "USD"), "rfd_5b")
    rest = gateway.refund(charge.charge_id, Money(400, "USD"), "rfd_5c")

    assert first.succeeded and rest.succeeded
    assert (too_much.status, too_much.failure_code) == ("failed", "charge_not_refundable")


@pytest.mark.parametrize("number", ["4000000000000002", None])
def test_a_declined_or_unknown_charge_cannot_be_refunded(engine, number):
    gateway = SimulatedCardGateway(engine)
    charge_id = gateway.charge("pay_6.1", card(number), USD_10).charge_id if number else "ch_none"

    result = gateway.refund(charge_id, USD_10, "rfd_6")

    assert (result.status, result.failure_code) == ("failed", "charge_not_refundable")


def test_the_refund_declining_card_refuses_refunds(engine):
    gateway = SimulatedCardGateway(engine)
    charge = gateway.charge("pay_7.1", card("4000000000005126"), USD_10)

    result = gateway.refund(charge.charge_id, USD_10, "rfd_7")

    assert charge.succeeded
    assert (result.status, result.failure_code) == ("failed", "refund_declined")


def test_the_refund_timeout_card_refunds_but_does_not_answer_in_time(engine):
    gateway = TimedGateway(SimulatedCardGateway(engine, hang_seconds=30), timeout=0.2)
    charge = gateway.charge("pay_8.1", card("4000000000000077"), USD_10)
    assert charge.succeeded  # its charges answer at once

    with pytest.raises(GatewayTimeout):
        gateway.refund(charge.charge_id, USD_10, "rfd_8")

    again = gateway.refund(charge.charge_id, USD_10, "rfd_8")  # answers at once
    assert again.succeeded
    assert refunds(engine) == 1
