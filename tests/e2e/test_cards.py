"""Cards end to end: card numbers go to the card provider (the simulated one ``make run``
starts) and never to Mercato; a token or a kept card pays; a provider slower than
billing's budget answers the pending payment, not a 503, and the payment settles."""

from __future__ import annotations

import time

import pytest
import requests

from mercato_devrun import DEMO_OPERATOR
from mercato_testing import payments
from tests.e2e.parties import Party, card, eventually, new_party

pytestmark = pytest.mark.e2e


def _backup_order(buyer: Party) -> dict:
    # make run lists the demo products once every process is ready: wait for them
    found = eventually(
        lambda: buyer.ok("GET", "/v1/products", q="backup")["items"], bool, timeout=60
    )
    product = buyer.ok("GET", f"/v1/products/{found[0]['id']}")
    return buyer.ok(
        "POST",
        "/v1/orders",
        {
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "yearly_monthly",
            "period": {"unit": "month", "count": 1},
            "quantity": 1,
            "accept_terms": True,
        },
        status=201,
    )


def _pay(buyer: Party, order: dict, card_body: dict) -> requests.Response:
    return buyer.call(
        "POST",
        f"/v1/orders/{order['id']}/pay",
        {"payment_method": "credit_card", "card": card_body},
    )


def test_a_token_from_the_provider_pays_and_a_card_number_is_refused(system):
    buyer = new_party(system, "buyer")
    order = _backup_order(buyer)

    raw = {"number": payments.GOOD, "expiry": payments.EXPIRY, "cvc": payments.CVC}
    refused = _pay(buyer, order, raw)
    assert refused.status_code == 400, refused.text
    assert set(refused.json()["fields"]) == {"card"}

    paid = _pay(buyer, order, card(system))
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert payments.GOOD not in system.log()


def test_a_kept_card_pays_for_its_account_only(system):
    buyer, other = new_party(system, "buyer"), new_party(system, "buyer")
    kept = buyer.ok(
        "POST", "/v1/billing/cards", {"token": card(system, payments.MASTERCARD)["token"]}, 201
    )
    assert (kept["brand"], kept["last4"], kept["expiry"]) == ("mastercard", "4444", "12/30")
    assert buyer.ok("GET", "/v1/billing/cards")["items"] == [kept]

    stolen = _pay(other, _backup_order(other), {"card_id": kept["id"]})
    assert stolen.status_code == 400 and "card.card_id" in stolen.json()["fields"]

    paid = _pay(buyer, _backup_order(buyer), {"card_id": kept["id"]})
    assert paid.status_code == 200, paid.text
    assert buyer.call("DELETE", f"/v1/billing/cards/{kept['id']}").status_code == 204
    assert buyer.ok("GET", "/v1/billing/cards")["items"] == []


def _operator(system) -> Party:
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": DEMO_OPERATOR["email"], "password": DEMO_OPERATOR["password"]},
        timeout=15,
    )
    assert issued.status_code == 201, issued.text
    return Party(system, None, {"Authorization": f"Bearer {issued.json()['token']}"})


@pytest.mark.parametrize("number", [payments.SLOW, payments.HANGING])
def test_a_card_the_provider_is_slow_with_answers_the_pending_payment_not_a_503(system, number):
    """The slow card answers after 6 s, the hanging one after a minute: both longer than
    billing waits for the provider (4 s). Billing leaves the payment pending, orders and
    the gateway are still waiting (10 s, 15 s), and the buyer gets the order with its
    payment pending; recovery then finds the charge and the order is paid."""
    buyer = new_party(system, "buyer")
    order = _backup_order(buyer)

    started = time.monotonic()
    answer = _pay(buyer, order, card(system, number))
    waited = time.monotonic() - started

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "unpaid"  # its payment pending at billing
    assert waited < 10, waited  # billing's budget and a little, not orders' nor the gateway's
    # past the recovery's grace (by the billing clock) the charge is looked up by its key
    _operator(system).ok("POST", "/v1/admin/clock", {"advance_seconds": 120})
    settled = eventually(
        lambda: buyer.ok("GET", f"/v1/orders/{order['id']}"),
        lambda seen: seen["status"] != "unpaid",
        timeout=60,
    )
    assert settled["status"] in ("paid", "delivering", "completed"), settled
