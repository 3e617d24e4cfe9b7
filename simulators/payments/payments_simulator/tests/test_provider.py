"""The simulated provider as a process, over HTTP, as billing and clients call it."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from mercato_testing.payments import (
    DECLINING,
    GOOD,
    HANGING,
    INSUFFICIENT_FUNDS,
    MASTERCARD,
    REFUND_DECLINING,
    REFUND_HANGING,
    SLOW,
    start_payments_simulator,
)

HANG, SLOW_SECONDS = 3.0, 1.0


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    handle = start_payments_simulator(
        tmp_path_factory.mktemp("payments"), hang_seconds=HANG, slow_seconds=SLOW_SECONDS
    )
    yield handle
    handle.stop()


def post(provider, path: str, body: dict, key: str | None = None, timeout: float = 10):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{provider.url}{path}", json=body, headers=headers, timeout=timeout)


def charge(provider, source: str, amount: int = 1000, key: str | None = None, **kw):
    return post(
        provider,
        "/v1/charges",
        {"source": source, "amount": amount, "currency": "USD"},
        key or uuid.uuid4().hex,
        **kw,
    )


def test_a_token_names_the_brand_and_last_four_digits_never_the_number(provider):
    answer = post(
        provider, "/v1/tokens", {"number": "5555 5555 5555 4444", "expiry": "12/30", "cvc": "123"}
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["token"].startswith("tok_")
    assert (body["brand"], body["last4"], body["expiry"]) == ("mastercard", "4444", "12/30")
    assert MASTERCARD not in answer.text and MASTERCARD not in provider.log()


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"number": "4242424242424241", "expiry": "12/30", "cvc": "123"}, "number"),
        ({"number": "4242", "expiry": "12/30", "cvc": "123"}, "number"),
        ({"number": GOOD, "expiry": "01/20", "cvc": "123"}, "expiry"),
        ({"number": GOOD, "expiry": "13/30", "cvc": "123"}, "expiry"),
        ({"number": GOOD, "expiry": "12/30", "cvc": "12"}, "cvc"),
        ({"number": "378282246310005", "expiry": "12/30", "cvc": "123"}, "cvc"),  # amex: 4
        ({"number": GOOD, "expiry": "12/30"}, "cvc"),
        ({"number": GOOD, "expiry": "12/30", "cvc": "123", "pin": "1"}, "pin"),
    ],
)
def test_a_bad_card_is_refused_naming_the_field(provider, card, field):
    answer = post(provider, "/v1/tokens", card)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == field


def test_a_charge_is_made_once_per_key(provider):
    token = provider.token(GOOD)
    key = uuid.uuid4().hex
    first = charge(provider, token, 1500, key)
    again = charge(provider, token, 1500, key)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["status"] == "succeeded"
    assert first.json()["card"] == {"brand": "visa", "last4": "4242"}
    assert len(provider.charges_for(key)) == 1
    found = requests.get(f"{provider.url}/v1/charges", params={"idempotency_key": key}, timeout=5)
    assert found.json()["data"] == [first.json()]


def test_a_charge_needs_a_key_a_known_source_and_money(provider):
    token = provider.token(GOOD)
    no_key = post(provider, "/v1/charges", {"source": token, "amount": 100, "currency": "USD"})
    assert no_key.json()["error"]["param"] == "Idempotency-Key"
    assert charge(provider, "tok_nope").json()["error"]["param"] == "source"
    assert charge(provider, token, 0).json()["error"]["param"] == "amount"


@pytest.mark.parametrize(
    ("number", "code"), [(DECLINING, "card_declined"), (INSUFFICIENT_FUNDS, "insufficient_funds")]
)
def test_the_declining_test_cards_are_declined(provider, number, code):
    answer = charge(provider, provider.token(number))
    assert answer.status_code == 201
    assert (answer.json()["status"], answer.json()["decline_code"]) == ("declined", code)


def test_a_hanging_charge_is_made_and_found_by_its_key_while_its_answer_is_late(provider):
    key = uuid.uuid4().hex
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        charge(provider, provider.token(HANGING), 2000, key, timeout=0.5)
    assert time.monotonic() - started < HANG
    (found,) = requests.get(
        f"{provider.url}/v1/charges", params={"idempotency_key": key}, timeout=5
    ).json()["data"]
    assert found["status"] == "succeeded" and found["amount"] == 2000
    # asked again with the same key, the charge is answered at once
    assert charge(provider, provider.token(HANGING), 2000, key, timeout=1).json() == found


def test_the_slow_card_is_answered_late_but_answered(provider):
    started = time.monotonic()
    answer = charge(provider, provider.token(SLOW))
    assert answer.json()["status"] == "succeeded"
    assert time.monotonic() - started >= SLOW_SECONDS


def refund(provider, charge_id: str, amount: int, key: str | None = None, **kw):
    return post(
        provider,
        "/v1/refunds",
        {"charge": charge_id, "amount": amount, "currency": "USD"},
        key or uuid.uuid4().hex,
        **kw,
    )


def test_a_refund_is_made_once_per_key_and_never_above_the_charge(provider):
    charged = charge(provider, provider.token(GOOD), 1000).json()
    key = uuid.uuid4().hex
    first = refund(provider, charged["id"], 600, key).json()
    assert refund(provider, charged["id"], 600, key).json() == first
    assert first["status"] == "succeeded"
    over = refund(provider, charged["id"], 600).json()
    assert (over["status"], over["failure_code"]) == ("failed", "charge_not_refundable")
    assert refund(provider, charged["id"], 400).json()["status"] == "succeeded"
    declined = charge(provider, provider.token(DECLINING)).json()
    assert refund(provider, declined["id"], 100).json()["failure_code"] == "charge_not_refundable"


def test_the_refund_test_cards(provider):
    refused = charge(provider, provider.token(REFUND_DECLINING)).json()
    answer = refund(provider, refused["id"], 1000).json()
    assert (answer["status"], answer["failure_code"]) == ("failed", "refund_declined")

    hanging = charge(provider, provider.token(REFUND_HANGING)).json()
    key = uuid.uuid4().hex
    with pytest.raises(requests.Timeout):
        refund(provider, hanging["id"], 1000, key, timeout=0.5)
    assert refund(provider, hanging["id"], 1000, key, timeout=1).json()["status"] == "succeeded"


def test_a_kept_card_is_charged_by_its_id_until_it_is_deleted(provider):
    token = provider.token(GOOD)
    key = uuid.uuid4().hex
    kept = post(provider, "/v1/cards", {"token": token}, key)
    assert kept.status_code == 201
    card = kept.json()
    assert card["id"].startswith("card_") and card["last4"] == "4242"
    assert post(provider, "/v1/cards", {"token": token}, key).json() == card  # same key
    assert charge(provider, card["id"]).json()["status"] == "succeeded"
    assert requests.delete(f"{provider.url}/v1/cards/{card['id']}", timeout=5).status_code == 200
    assert charge(provider, card["id"]).json()["error"]["param"] == "source"
    assert requests.delete(f"{provider.url}/v1/cards/{card['id']}", timeout=5).status_code == 404
    assert post(provider, "/v1/cards", {"token": "tok_x"}).json()["error"]["param"] == "token"


def test_an_injected_delay_slows_the_next_answers_about_money(provider):
    provider.fault(delay_seconds=1.0, count=1)
    try:
        started = time.monotonic()
        charge(provider, provider.token(GOOD))
        assert time.monotonic() - started >= 1.0
        started = time.monotonic()
        charge(provider, provider.token(GOOD))
        assert time.monotonic() - started < 1.0
    finally:
        provider.clear_faults()


def test_charges_and_kept_cards_survive_a_restart(tmp_path):
    first = start_payments_simulator(tmp_path)
    try:
        kept = first.call("POST", "/v1/cards", {"token": first.token(GOOD)})
        made = first.call(
            "POST",
            "/v1/charges",
            {"source": kept["id"], "amount": 700, "currency": "USD"},
            **{"Idempotency-Key": "restart-1"},
        )
    finally:
        assert first.stop() == 0
    second = start_payments_simulator(tmp_path)
    try:
        assert second.call("GET", "/v1/charges?idempotency_key=restart-1")["data"] == [made]
        assert second.call("GET", f"/v1/cards/{kept['id']}")["last4"] == "4242"
    finally:
        second.stop()
