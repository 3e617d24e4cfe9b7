"""The marketplace's routes as HTTP: who must sign in, query strings checked at the
gateway, idempotency keys kept per account, the top-up's key carried to billing."""

import pytest
import sqlalchemy as sa

from gateway import openapi
from gateway.service import GatewayService
from gateway.tests.marketplace import (
    PRODUCT,
    RAW_CARD,
    assert_error,
    card,
    money,
    order_body,
    seller_with_product,
    sign_up,
)
from mercato_testing import payments

pytestmark = pytest.mark.interface

OPEN = {("POST", "/v1/accounts"), ("POST", "/v1/auth/tokens")}
TOKEN_OPTIONAL = {
    ("GET", "/v1/products"),
    ("GET", "/v1/products/<product_id>"),
    ("GET", "/v1/sellers/<seller_id>/license-public-key"),
}


def v1_routes_that_need_a_token():
    for _name, method, rule in openapi.routes(GatewayService):
        if rule.startswith("/v1/") and (method, rule) not in OPEN | TOKEN_OPTIONAL:
            path = rule.replace("<", "").replace(">", "")
            yield pytest.param(method, path, id=f"{method} {rule}")


@pytest.mark.parametrize("method, path", list(v1_routes_that_need_a_token()))
def test_every_route_but_sign_up_sign_in_and_browsing_needs_a_token(stack, method, path):
    if method in ("POST", "PUT", "PATCH"):
        response = stack.request(method, path, json={})
    else:
        response = stack.request(method, path)

    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stack.gateway_rows() == 0


def test_anyone_may_browse_but_a_bad_token_is_still_refused(market):
    _seller, product = seller_with_product(market)

    assert market.get("/v1/products").status_code == 200
    assert market.get(f"/v1/products/{product['id']}").status_code == 200
    bad = {"Authorization": "Bearer mkt_" + "x" * 43}
    assert_error(market.get("/v1/products", headers=bad), 401, "UNAUTHENTICATED")
    assert_error(market.get(f"/v1/products/{product['id']}", headers=bad), 401, "UNAUTHENTICATED")


def test_a_seller_sees_its_own_draft_through_the_public_details_when_signed_in(market):
    seller = sign_up(market, "seller")
    seller.ok(seller.put("/v1/seller/profile", {"company_name": "Acme", "email": "a@acme.test"}))
    draft = seller.ok(seller.post("/v1/seller/products", PRODUCT), 201)

    assert_error(market.get(f"/v1/products/{draft['id']}"), 404, "NOT_FOUND")
    assert seller.ok(seller.get(f"/v1/products/{draft['id']}"))["status"] == "draft"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"page": "abc"}, "page"),
        ({"page_size": "101"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"sort": "cheapest"}, "sort"),
        ({"min_price": "500", "max_price": "100"}, "max_price"),
        ({"service_supervision": "maybe"}, "service_supervision"),
        ({"delivery_method": "email"}, "delivery_method"),
        ({"colour": "red"}, "colour"),
        ({"page": ["1", "2"]}, "page"),
    ],
)
def test_a_bad_search_query_is_400_naming_the_parameter(market, params, field):
    response = market.get("/v1/products", params=params)
    assert field in assert_error(response, 400, "VALIDATION_ERROR")["fields"]


@pytest.mark.parametrize(
    "path", ["/v1/orders", "/v1/purchased-apps", "/v1/billing/transactions", "/v1/saved-products"]
)
def test_a_bad_page_of_a_list_is_400_naming_it(market, path):
    buyer = sign_up(market, "buyer")
    for params, field in (({"page": "abc"}, "page"), ({"page_size": "101"}, "page_size")):
        response = buyer.get(path, params=params)
        assert field in assert_error(response, 400, "VALIDATION_ERROR")["fields"]


def test_lists_answer_their_page(market):
    buyer = sign_up(market, "buyer")
    page = buyer.ok(buyer.get("/v1/orders", params={"page": "2", "page_size": "5"}))
    assert page == {"items": [], "total": 0, "page": 2, "page_size": 5}


def test_one_idempotency_key_is_two_requests_for_two_accounts(market):
    _seller, product = seller_with_product(market)
    alice, bob = sign_up(market, "buyer"), sign_up(market, "buyer")
    key = {"Idempotency-Key": "order-1"}

    first = alice.post("/v1/orders", order_body(product), headers=key)
    other = bob.post("/v1/orders", order_body(product), headers=key)
    again = alice.post("/v1/orders", order_body(product), headers=key)

    assert first.status_code == other.status_code == again.status_code == 201
    assert first.json()["id"] != other.json()["id"]
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert market.rows("orders", "orders") == 2
    assert market.gateway_rows() == 2


def test_same_key_with_another_order_is_refused(market):
    _seller, product = seller_with_product(market)
    buyer = sign_up(market, "buyer")
    key = {"Idempotency-Key": "order-2"}
    buyer.post("/v1/orders", order_body(product), headers=key)

    response = buyer.post("/v1/orders", order_body(product, quantity=3), headers=key)

    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert market.rows("orders", "orders") == 1


def forget_idempotency_keys(stack) -> None:
    """What the gateway's purge does once a key's TTL has passed."""
    engine = sa.create_engine(stack.gateway_config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM idempotency_records"))
    engine.dispose()


def test_a_top_up_with_a_key_charges_the_card_once_even_if_the_gateway_forgot_the_key(market):
    buyer = sign_up(market, "buyer")
    body = {"amount": money(5000), "card": card(market)}
    key = {"Idempotency-Key": "top-up-1"}

    first = buyer.post("/v1/billing/top-ups", body, headers=key)
    forget_idempotency_keys(market)
    again = buyer.post("/v1/billing/top-ups", body, headers=key)

    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert "Idempotent-Replayed" not in again.headers
    assert buyer.balance()["balance"] == money(5000)
    assert market.rows("billing", "top_ups") == 1


def test_a_top_up_of_nothing_or_a_bare_number_is_400(market):
    buyer = sign_up(market, "buyer")
    for body, field in (
        ({"amount": money(0), "card": card(market)}, "amount.amount"),
        ({"amount": 5000, "card": card(market)}, "amount"),
        ({"amount": money(100), "card": {"token": ""}}, "card.token"),
    ):
        fields = assert_error(buyer.post("/v1/billing/top-ups", body), 400, "VALIDATION_ERROR")[
            "fields"
        ]
        assert any(name == field or name.startswith(f"{field}.") for name in fields), fields
    assert market.rows("billing", "top_ups") == 0


def test_a_card_number_is_refused_naming_card_and_reaches_no_service(market):
    buyer = sign_up(market, "buyer")
    for raw in (RAW_CARD, {"number": payments.GOOD}, {**card(market), "cvc": "123"}):
        response = buyer.post("/v1/billing/top-ups", {"amount": money(100), "card": raw})
        assert assert_error(response, 400, "VALIDATION_ERROR")["fields"].keys() == {"card"}
    assert buyer.balance()["balance"] == money(0)
    assert market.rows("billing", "top_ups") == 0


def test_a_token_the_provider_never_issued_is_billings_400(market):
    buyer = sign_up(market, "buyer")
    response = buyer.post(
        "/v1/billing/top-ups", {"amount": money(100), "card": {"token": "tok_never_issued"}}
    )
    assert "card.token" in assert_error(response, 400, "VALIDATION_ERROR")["fields"]
    assert buyer.balance()["balance"] == money(0)


def test_a_bound_card_pays_and_is_forgotten_and_is_no_one_elses(market):
    buyer, other = sign_up(market, "buyer"), sign_up(market, "buyer")
    bound = buyer.ok(
        buyer.post(
            "/v1/billing/cards",
            {"token": card(market, payments.MASTERCARD)["token"]},
            headers={"Idempotency-Key": "bind-1"},
        ),
        201,
    )
    assert set(bound) == {"id", "brand", "last4", "expiry", "created_at"}
    assert (bound["brand"], bound["last4"]) == ("mastercard", "4444")
    assert buyer.ok(buyer.get("/v1/billing/cards"))["items"] == [bound]
    assert other.ok(other.get("/v1/billing/cards"))["items"] == []

    topped = buyer.ok(
        buyer.post("/v1/billing/top-ups", {"amount": money(700), "card": {"card_id": bound["id"]}}),
        201,
    )
    assert topped["card"] == {"brand": "mastercard", "last4": "4444"}
    stolen = other.post(
        "/v1/billing/top-ups", {"amount": money(700), "card": {"card_id": bound["id"]}}
    )
    assert "card.card_id" in assert_error(stolen, 400, "VALIDATION_ERROR")["fields"]
    assert_error(other.delete(f"/v1/billing/cards/{bound['id']}"), 404, "NOT_FOUND")

    assert buyer.delete(f"/v1/billing/cards/{bound['id']}").status_code == 204
    assert buyer.ok(buyer.get("/v1/billing/cards"))["items"] == []
    assert_error(buyer.delete(f"/v1/billing/cards/{bound['id']}"), 404, "NOT_FOUND")
    assert buyer.balance()["balance"] == money(700)
    assert other.balance()["balance"] == money(0)


def test_saving_a_product_that_does_not_exist_is_404(market):
    buyer = sign_up(market, "buyer")
    response = buyer.post("/v1/saved-products", {"product_id": "prd_nope"})
    assert_error(response, 404, "NOT_FOUND")
    assert_error(buyer.delete("/v1/saved-products/prd_nope"), 404, "NOT_FOUND")


def test_the_document_describes_every_route_the_gateway_serves(market):
    document = market.get("/openapi.json").json()
    served = {
        (openapi.openapi_path(rule), method.lower())
        for _name, method, rule in openapi.routes(GatewayService)
    }
    assert served == {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert ("/v1/orders/{order_id}/pay", "post") in served
