"""End to end: money is neither lost nor taken twice, through the gateway, with the
test clock. A card payment that times out just before the payment window ends pays its
order (it is not cancelled under it); two balance payments racing the deadline charge
at most once, and a payment that lands on a cancelled order comes back once; a reseller
pays its customers only within its credit limit, and a refused payment leaves no order;
one currency; a retried place or pay answers the first result; opaque ledger ids.
Cards are tokens from the system's own simulated card provider (``parties.card``)."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
import requests

from mercato_devrun import DEMO_OPERATOR
from mercato_testing import payments as cards
from tests.e2e.parties import Party, card, eventually, new_party, sign_in

pytestmark = pytest.mark.e2e

WINDOW = 24 * 3600  # an order's payment window (ORDERS_PAYMENT_WINDOW_HOURS)
PRICE = 1500  # the demo backup product, per month and unit


@pytest.fixture(scope="module")
def market(system):
    """The system, its demo catalogue listed, and its operator."""
    operator = Party(
        system,
        None,
        eventually(lambda: _operator_headers(system), bool, timeout=60),
        DEMO_OPERATOR["email"],
    )
    eventually(lambda: _backup_product(system), bool, timeout=60)
    return system, operator


def _operator_headers(system) -> dict[str, str] | None:
    """The demo operator's, once make run has seeded it."""
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": DEMO_OPERATOR["email"], "password": DEMO_OPERATOR["password"]},
        timeout=15,
    )
    if issued.status_code != 201:
        return None
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def _backup_product(system) -> dict | None:
    found = requests.get(
        f"{system.gateway}/v1/products", params={"q": "backup"}, timeout=15
    ).json()["items"]
    if not found:
        return None
    return requests.get(f"{system.gateway}/v1/products/{found[0]['id']}", timeout=15).json()


def _order_body(system) -> dict:
    product = _backup_product(system)
    assert product is not None
    return {
        "product_id": product["id"],
        "specification_id": product["specifications"][0]["id"],
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 1},
        "quantity": 1,
        "accept_terms": True,
    }


def _keyed(party: Party, path: str, body: dict, key: str) -> requests.Response:
    """A POST under an Idempotency-Key of the test's choosing."""
    return requests.post(
        f"{party.system.gateway}{path}",
        json=body,
        headers={**party.headers, "Idempotency-Key": key},
        timeout=30,
    )


def _advance(operator: Party, seconds: int) -> None:
    operator.headers = _operator_headers(operator.system) or {}  # a move outlives tokens
    operator.ok("POST", "/v1/admin/clock", {"advance_seconds": seconds})


def _order(party: Party, order_id: str) -> dict:
    return party.ok("GET", f"/v1/orders/{order_id}")


def _movements(party: Party) -> list[dict]:
    return party.ok("GET", "/v1/billing/transactions", page_size=100)["items"]


def _balance(party: Party) -> int:
    return party.ok("GET", "/v1/billing/balance")["balance"]["amount"]


def _top_up(party: Party, amount: int) -> None:
    party.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": amount, "currency": "USD"}, "card": card(party.system)},
        status=201,
    )


def _charges(system) -> list[dict]:
    """Every charge the card provider made."""
    return requests.get(f"{system.payments_url}/sim/ledger", timeout=15).json()["charges"]


# -- a payment in progress at the deadline ---------------------------------------------


def test_a_card_that_times_out_just_before_the_window_ends_pays_the_order(market):
    system, operator = market
    buyer = new_party(system, "buyer")
    order = buyer.ok("POST", "/v1/orders", _order_body(system), status=201)
    _advance(operator, WINDOW - 60)
    buyer.sign_in_again()

    pending = buyer.call(
        "POST",
        f"/v1/orders/{order['id']}/pay",
        {"payment_method": "credit_card", "card": card(system, cards.HANGING)},
    )
    assert pending.status_code == 200, pending.text
    assert pending.json()["status"] == "unpaid"  # the provider did not answer in time

    # far past the window (and past billing's recovery grace): the attempt holds the
    # order until billing looks the charge up, finds it made, and the order is paid
    _advance(operator, 2 * 3600)
    buyer.sign_in_again()
    paid = eventually(
        lambda: _order(buyer, order["id"]), lambda o: o["status"] != "unpaid", timeout=60
    )
    assert paid["status"] == "paid", paid
    assert paid["cancel_reason"] is None
    assert any(c["idempotency_key"].startswith("pay_") for c in _charges(system))
    kinds = [movement["kind"] for movement in _movements(buyer)]
    assert "refund" not in kinds


def test_two_balance_payments_racing_the_deadline_charge_at_most_once(market):
    """Each round: two pays of one order fired as its window closes, the expiry sweep
    running beside them. Whatever wins, the buyer pays for a paid order exactly once and
    for a cancelled one not at all (a payment that landed on it is refunded once)."""
    system, operator = market
    buyer = new_party(system, "buyer")
    rounds = 3
    _top_up(buyer, PRICE * 2 * rounds)
    orders = [
        buyer.ok("POST", "/v1/orders", _order_body(system), status=201) for _ in range(rounds)
    ]
    # the deadline passes a moment after the pays are sent, as the sweep runs
    _advance(operator, WINDOW - 2)
    buyer.sign_in_again()
    time.sleep(1.5)
    answers: list[int] = []

    def pay(order_id: str) -> None:
        answers.append(
            buyer.call(
                "POST", f"/v1/orders/{order_id}/pay", {"payment_method": "balance"}
            ).status_code
        )

    threads = [
        threading.Thread(target=pay, args=(order["id"],)) for order in orders for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(answers) <= {200, 409}, answers

    # every order settles: paid, or cancelled with nothing kept
    settled = {
        order["id"]: eventually(
            lambda order=order: _order(buyer, order["id"]),
            lambda o: o["status"] != "unpaid",
            timeout=30,
        )["status"]
        for order in orders
    }
    paid = [order_id for order_id, status in settled.items() if status != "cancelled"]

    def books_settled() -> bool:
        movements = _movements(buyer)
        payments_of = {m["order_id"] for m in movements if m["kind"] == "payment"}
        refunds_of = {m["order_id"] for m in movements if m["kind"] == "refund"}
        return payments_of - refunds_of == set(paid)

    eventually(lambda: books_settled(), bool, timeout=30)
    movements = _movements(buyer)
    for order_id in settled:
        taken = [m for m in movements if m["order_id"] == order_id and m["kind"] == "payment"]
        given_back = [m for m in movements if m["order_id"] == order_id and m["kind"] == "refund"]
        assert len(taken) <= 1 and len(given_back) <= 1, (order_id, movements)
        assert len(given_back) == (1 if taken and order_id not in paid else 0)
    assert _balance(buyer) == PRICE * 2 * rounds - PRICE * len(paid)


# -- resellers ----------------------------------------------------------------------


def test_a_reseller_pays_for_its_customers_only_within_its_credit_limit(market):
    system, operator = market
    reseller = new_party(system, "reseller")
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    reseller.ok(
        "POST",
        "/v1/reseller/customers",
        {"name": "Customer", "email": email, "password": "a long e2e password"},
        status=201,
    )
    customer = Party(system, None, sign_in(system, email, "a long e2e password"), email)

    refused = customer.call("POST", "/v1/orders", _order_body(system))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"] == "RESELLER_CREDIT_LIMIT_EXCEEDED"
    assert customer.ok("GET", "/v1/orders")["total"] == 0  # no order, nothing announced

    operator.headers = _operator_headers(system) or {}
    operator.ok(
        "POST",
        f"/v1/admin/accounts/{reseller.id}/credit-limit",
        {"amount": {"amount": PRICE, "currency": "USD"}},
    )
    paid = customer.ok("POST", "/v1/orders", _order_body(system), status=201)
    assert (paid["status"], paid["paid_by_reseller"]) == ("paid", True)
    assert _balance(reseller) == -PRICE
    # its balance has a floor: the next order is past the limit
    again = customer.call("POST", "/v1/orders", _order_body(system))
    assert again.status_code == 402, again.text
    assert customer.ok("GET", "/v1/orders")["total"] == 1


# -- one currency, retries, ids ------------------------------------------------------


def test_a_seller_cannot_price_in_another_currency(market):
    system, _operator = market
    seller = new_party(system, "seller")
    refused = seller.call(
        "PUT",
        "/v1/seller/profile",
        {"company_name": "Euro Soft", "email": seller.email, "currency": "EUR"},
    )
    assert refused.status_code == 400, refused.text
    assert "currency" in refused.json()["fields"]


def test_a_retried_place_and_pay_answer_the_first_result_and_charge_once(market):
    system, _operator = market
    buyer = new_party(system, "buyer")
    _top_up(buyer, PRICE)
    place_key = uuid.uuid4().hex
    first = _keyed(buyer, "/v1/orders", _order_body(system), place_key)
    again = _keyed(buyer, "/v1/orders", _order_body(system), place_key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]
    assert buyer.ok("GET", "/v1/orders")["total"] == 1

    order_id = first.json()["id"]
    pay_key = uuid.uuid4().hex
    paid = _keyed(buyer, f"/v1/orders/{order_id}/pay", {"payment_method": "balance"}, pay_key)
    repeat = _keyed(buyer, f"/v1/orders/{order_id}/pay", {"payment_method": "balance"}, pay_key)
    assert paid.status_code == repeat.status_code == 200, repeat.text
    assert repeat.json()["id"] == order_id and repeat.json()["status"] == "paid"
    assert [m["kind"] for m in _movements(buyer)].count("payment") == 1
    assert _balance(buyer) == 0


def test_ledger_transaction_ids_are_opaque(market):
    system, _operator = market
    buyer = new_party(system, "buyer")
    _top_up(buyer, 100)
    _top_up(buyer, 100)
    ids = [movement["id"] for movement in _movements(buyer)]
    assert len(ids) == 2
    assert all(re.fullmatch(r"txn_[0-9a-f]{32}", txn_id) for txn_id in ids), ids
