"""A seller's side of the marketplace over HTTP: the orders of its products with their
buyers named (one batch call to iam-agency) and their emails only where the buyer shared
them, a product's request template, and the catalog's rule that licenses and
professional services are supervised."""

import pytest

from gateway.tests.marketplace import (
    PRODUCT,
    assert_error,
    order_body,
    place_order,
    seller_with_product,
    sign_up,
)

pytestmark = pytest.mark.interface


def test_a_seller_sees_its_products_orders_and_the_email_of_buyers_who_shared_it(market):
    seller, product = seller_with_product(market)
    ann = sign_up(market, "buyer", name="Ann Ltd")
    bob = sign_up(market, "buyer", name="Bob Ltd")
    shared = place_order(ann, product, share_contact=True)
    private = place_order(bob, product)
    unshared_by_ann = place_order(ann, product)
    assert (shared["share_contact"], private["share_contact"]) == (True, False)

    page = seller.ok(seller.get("/v1/seller/orders"))

    assert page["total"] == 3
    by_id = {order["id"]: order for order in page["items"]}
    assert by_id[shared["id"]]["buyer"] == {
        "account_id": ann.id,
        "name": "Ann Ltd",
        "email": ann.account["email"],
    }
    # the same buyer's order without its consent shows no email
    assert by_id[unshared_by_ann["id"]]["buyer"] == {"account_id": ann.id, "name": "Ann Ltd"}
    assert by_id[private["id"]]["buyer"] == {"account_id": bob.id, "name": "Bob Ltd"}
    one = seller.ok(seller.get(f"/v1/seller/orders/{shared['id']}"))
    assert one == by_id[shared["id"]]
    assert one["amount"] == shared["amount_due"] and one["status"] == "unpaid"
    assert [line["product_id"] for line in one["lines"]] == [product["id"]]
    assert set(one) == {
        "id",
        "status",
        "buyer",
        "lines",
        "amount",
        "paid_at",
        "cancel_reason",
        "created_at",
        "updated_at",
        "flow_id",
    }
    assert one["flow_id"] is None  # unpaid: no supervision flow (and none runs here)
    cancelled = ann.ok(ann.post(f"/v1/orders/{unshared_by_ann['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
    unpaid = seller.ok(seller.get("/v1/seller/orders", params={"status": "unpaid"}))
    assert {order["id"] for order in unpaid["items"]} == {shared["id"], private["id"]}


def test_another_sellers_order_is_not_found_and_buyers_may_not_ask(market):
    _seller, product = seller_with_product(market)
    other_seller, _other_product = seller_with_product(market)
    buyer = sign_up(market, "buyer")
    order = place_order(buyer, product)

    assert_error(other_seller.get(f"/v1/seller/orders/{order['id']}"), 404, "NOT_FOUND")
    assert other_seller.ok(other_seller.get("/v1/seller/orders"))["total"] == 0
    assert_error(buyer.get("/v1/seller/orders"), 403, "FORBIDDEN")
    assert_error(buyer.get(f"/v1/seller/orders/{order['id']}"), 403, "FORBIDDEN")
    assert_error(market.get("/v1/seller/orders"), 401, "UNAUTHENTICATED")
    assert_error(market.get(f"/v1/seller/orders/{order['id']}"), 401, "UNAUTHENTICATED")
    refused = assert_error(
        other_seller.get("/v1/seller/orders", params={"status": "lost"}), 400, "VALIDATION_ERROR"
    )
    assert list(refused["fields"]) == ["status"]
    refused = assert_error(
        buyer.post("/v1/orders", order_body(product, share_contact="yes")), 400, "VALIDATION_ERROR"
    )
    assert list(refused["fields"]) == ["share_contact"]


def test_a_seller_sets_its_products_request_template_and_no_one_else_may(market):
    seller, product = seller_with_product(market)
    other_seller, _other = seller_with_product(market)
    buyer = sign_up(market, "buyer")
    path = f"/v1/seller/products/{product['id']}/request-template"

    answer = seller.ok(seller.put(path, {"template": "Company name:\nServers to protect:"}))

    assert answer == {"product_id": product["id"], "template": "Company name:\nServers to protect:"}
    [listed] = seller.ok(seller.get("/v1/seller/products"))["items"]
    assert listed["request_template"] == answer["template"]
    assert "request_template" not in market.get(f"/v1/products/{product['id']}").json()
    assert_error(other_seller.put(path, {"template": "mine"}), 404, "NOT_FOUND")
    assert_error(buyer.put(path, {"template": "mine"}), 403, "FORBIDDEN")
    too_long = assert_error(seller.put(path, {"template": "x" * 5_001}), 400, "VALIDATION_ERROR")
    assert list(too_long["fields"]) == ["template"]
    assert (
        seller.ok(seller.get("/v1/seller/products"))["items"][0]["request_template"]
        == (answer["template"])
    )
    assert seller.ok(seller.put(path, {"template": ""}))["template"] is None


@pytest.mark.parametrize("method", ["license", "professional_service"])
def test_an_unsupervised_license_or_professional_service_is_refused(market, method):
    seller, _product = seller_with_product(market)
    body = {**PRODUCT, "delivery_method": method, "service_supervision": False}
    del body["saas_endpoint_url"]

    refused = assert_error(seller.post("/v1/seller/products", body), 400, "VALIDATION_ERROR")

    assert list(refused["fields"]) == ["service_supervision"]
    assert seller.ok(seller.get("/v1/seller/products"))["total"] == 1
    created = seller.ok(
        seller.post("/v1/seller/products", {**body, "service_supervision": True}), 201
    )
    assert created["service_supervision"] is True
