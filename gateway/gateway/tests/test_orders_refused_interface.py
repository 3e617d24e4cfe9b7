"""Every way an order or a payment is refused through the gateway, with the real
services behind it: the status and error the contract names, the field when it is a
field's fault, and nothing changed (no order, no charge, no ledger movement)."""

import pytest

from gateway.tests.marketplace import (
    PRODUCT,
    RAW_CARD,
    assert_error,
    card,
    money,
    order_body,
    place_order,
    seller_with_product,
    sign_up,
    top_up,
)
from mercato_testing import payments

pytestmark = pytest.mark.interface


@pytest.fixture
def shop(market):
    """A published product (monthly/yearly and one-time, 1-100 servers), a buyer with a
    balance of 20000."""
    _seller, product = seller_with_product(market)
    buyer = sign_up(market, "buyer")
    top_up(buyer, 20000)
    return market, product, buyer


def assert_no_order(market, buyer) -> None:
    assert buyer.ok(buyer.get("/v1/orders"))["total"] == 0
    assert market.rows("orders", "orders") == 0


def test_terms_not_accepted_is_422_and_places_nothing(shop):
    market, product, buyer = shop

    response = buyer.post("/v1/orders", order_body(product, accept_terms=False))

    assert_error(response, 422, "TERMS_NOT_ACCEPTED")
    assert_no_order(market, buyer)


def test_unknown_specification_is_404_and_places_nothing(shop):
    market, product, buyer = shop

    response = buyer.post(
        "/v1/orders", order_body(product, specification_id="spc_00000000000000000000000000000000")
    )

    assert_error(response, 404, "NOT_FOUND")
    assert_no_order(market, buyer)


def test_unknown_product_is_404(shop):
    market, product, buyer = shop
    response = buyer.post("/v1/orders", order_body(product, product_id="prd_nope"))
    assert_error(response, 404, "NOT_FOUND")
    assert_no_order(market, buyer)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"billing_mode": "pay_per_use", "period": None}, "billing_mode"),
        ({"quantity": 101}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"billing_mode": "one_time"}, "period"),
        ({"period": {"unit": "month", "count": 12}}, "period.count"),
        ({"period": None}, "period"),
        ({"enterprise_project_id": "nope"}, "enterprise_project_id"),
        ({"quantity": "2"}, "quantity"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "billing-mode-not-offered",
        "quantity-above-max",
        "quantity-zero",
        "period-on-one-time",
        "twelve-months",
        "no-period-for-monthly",
        "unknown-project",
        "quantity-as-text",
        "unknown-field",
    ],
)
def test_an_order_the_product_does_not_allow_is_400_naming_the_field(shop, changes, field):
    market, product, buyer = shop

    response = buyer.post("/v1/orders", order_body(product, **changes))

    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in body["fields"], body
    assert_no_order(market, buyer)


def test_paying_someone_elses_order_is_404_and_charges_no_one(shop):
    market, product, buyer = shop
    other = sign_up(market, "buyer")
    top_up(other, 20000)
    order = place_order(buyer, product)

    response = other.post(f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})

    assert_error(response, 404, "NOT_FOUND")
    assert_error(other.get(f"/v1/orders/{order['id']}"), 404, "NOT_FOUND")
    assert buyer.order(order["id"])["status"] == "unpaid"
    assert other.balance()["balance"] == money(20000)
    assert buyer.balance()["balance"] == money(20000)


def test_paying_twice_charges_once_and_the_second_is_409(shop):
    market, product, buyer = shop
    order = place_order(buyer, product)
    pay = f"/v1/orders/{order['id']}/pay"

    first = buyer.post(pay, {"payment_method": "balance"})
    second = buyer.post(pay, {"payment_method": "balance"})

    assert first.status_code == 200 and first.json()["status"] == "paid"
    assert_error(second, 409, "CONFLICT")
    assert buyer.balance()["balance"] == money(20000 - 9000)
    payments = [t for t in buyer.transactions() if t["kind"] == "payment"]
    assert len(payments) == 1
    assert market.rows("billing", "payments") == 1


def test_a_retried_payment_with_its_idempotency_key_answers_the_first_again(shop):
    market, product, buyer = shop
    order = place_order(buyer, product)
    pay = f"/v1/orders/{order['id']}/pay"
    headers = {"Idempotency-Key": "pay-1"}

    first = buyer.post(pay, {"payment_method": "balance"}, headers=headers)
    again = buyer.post(pay, {"payment_method": "balance"}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert buyer.balance()["balance"] == money(20000 - 9000)
    assert market.rows("billing", "payments") == 1


def test_short_funds_is_402_and_changes_nothing_until_topped_up(shop):
    _market, product, buyer = shop
    order = place_order(buyer, product, billing_mode="one_time", period=None, quantity=1)
    pay = f"/v1/orders/{order['id']}/pay"
    headers = {"Idempotency-Key": "pay-short"}
    before = buyer.transactions()

    refused = buyer.post(pay, {"payment_method": "balance"}, headers=headers)

    assert_error(refused, 402, "PAYMENT_REQUIRED")
    assert buyer.order(order["id"])["status"] == "unpaid"
    assert buyer.balance()["balance"] == money(20000)
    assert buyer.transactions() == before
    assert buyer.ok(buyer.get("/v1/purchased-apps"))["total"] == 0

    # the refusal released the key: once the balance suffices, the same retry pays
    top_up(buyer, 70000)
    paid = buyer.post(pay, {"payment_method": "balance"}, headers=headers)
    assert paid.status_code == 200, paid.text
    assert "Idempotent-Replayed" not in paid.headers
    assert buyer.balance()["balance"] == money(0)


def test_a_declined_card_is_402_and_leaves_the_order_unpaid(shop):
    _market, product, buyer = shop
    order = place_order(buyer, product)

    response = buyer.post(
        f"/v1/orders/{order['id']}/pay",
        {"payment_method": "credit_card", "card": card(buyer.stack, payments.DECLINING)},
    )

    assert_error(response, 402, "PAYMENT_DECLINED")
    assert buyer.order(order["id"])["status"] == "unpaid"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"payment_method": "cash"}, "payment_method"),
        ({"payment_method": "credit_card"}, "card"),
        ({"payment_method": "balance", "card": {"token": "tok_any"}}, "card"),
        ({"payment_method": "credit_card", "card": RAW_CARD}, "card"),
        ({"payment_method": "credit_card", "card": {"token": "tok_never_issued"}}, "card.token"),
        ({}, "payment_method"),
    ],
)
def test_a_malformed_payment_is_400_and_charges_nothing(shop, body, field):
    market, product, buyer = shop
    order = place_order(buyer, product)

    response = buyer.post(f"/v1/orders/{order['id']}/pay", body)

    assert field in assert_error(response, 400, "VALIDATION_ERROR")["fields"]
    assert buyer.order(order["id"])["status"] == "unpaid"
    assert market.rows("billing", "payments") == 0


def test_an_order_id_that_cannot_be_one_is_404_without_asking_orders(shop):
    _market, _product, buyer = shop
    assert_error(
        buyer.post("/v1/orders/not%20an%20id/pay", {"payment_method": "balance"}),
        404,
        "NOT_FOUND",
    )
    assert_error(buyer.get("/v1/orders/" + "x" * 41), 404, "NOT_FOUND")


def test_a_seller_cannot_place_orders(shop):
    market, product, _buyer = shop
    seller = sign_up(market, "seller")
    assert_error(seller.post("/v1/orders", order_body(product)), 403, "FORBIDDEN")
    assert market.rows("orders", "orders") == 0


def test_a_buyer_cannot_list_products(shop):
    market, _product, buyer = shop
    assert_error(buyer.post("/v1/seller/products", PRODUCT), 403, "FORBIDDEN")
    assert market.rows("catalog", "products") == 1
