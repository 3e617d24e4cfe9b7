"""Sellers' keys and the reveal over real HTTP, through the gateway to real iam-agency,
catalog, orders, billing and provisioning containers."""

import uuid

import pytest
import sqlalchemy as sa

from gateway.tests.marketplace import (
    assert_error,
    place_order,
    seller_with_product,
    sign_up,
    top_up,
)

pytestmark = pytest.mark.interface


def test_interface_credentials_are_issued_once_per_idempotency_key(market):
    seller = sign_up(market, "seller")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = seller.ok(seller.post("/v1/seller/interface-credentials", {}, headers=key), 201)
    assert first["access_key"].startswith("ak_") and first["secret"]
    # a retry whose answer was lost gets the same pair, not a new one: provisioning
    # answers it from its keyring, the gateway kept no copy of the secret
    again = seller.post("/v1/seller/interface-credentials", {}, headers=key)
    assert again.status_code == 201 and again.json() == first
    assert "Idempotent-Replayed" not in again.headers
    assert first["secret"].encode() not in stored_responses(market)
    # without the key, asking again rotates the pair
    rotated = seller.ok(seller.post("/v1/seller/interface-credentials", {}), 201)
    assert rotated["access_key"] != first["access_key"]
    # the first key's secret is no longer valid: its retry never shows it again
    stale = assert_error(
        seller.post("/v1/seller/interface-credentials", {}, headers=key), 409, "CONFLICT"
    )
    assert first["secret"] not in str(stale)


def stored_responses(market) -> bytes:
    """Every response the gateway keeps for replays, as bytes."""
    engine = sa.create_engine(market.gateway_config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM idempotency_records")).all()
    engine.dispose()
    return b"".join(repr(tuple(row)).encode() + bytes(row.response or b"") for row in rows)


def test_only_a_seller_issues_interface_credentials_and_with_an_empty_body(market):
    buyer = sign_up(market, "buyer")
    assert_error(buyer.post("/v1/seller/interface-credentials", {}), 403, "FORBIDDEN")
    seller = sign_up(market, "seller")
    refused = assert_error(
        seller.post("/v1/seller/interface-credentials", {"access_key": "mine"}),
        400,
        "VALIDATION_ERROR",
    )
    assert "access_key" in refused["fields"]


def test_a_license_key_exists_only_once_its_seller_asks_or_sells(market):
    seller = sign_up(market, "seller")
    stranger = sign_up(market, "buyer")
    path = f"/v1/sellers/{seller.id}/license-public-key"
    assert_error(stranger.get(path), 404, "NOT_FOUND")  # nobody else creates it
    assert_error(market.get(path), 404, "NOT_FOUND")
    published = seller.ok(seller.get(path))
    assert published["algorithm"] == "Ed25519"
    assert market.get(path).json() == published  # now anyone may read it


def test_nothing_to_reveal_before_delivery_and_nothing_for_another_account(market):
    _seller, product = seller_with_product(market)
    buyer = sign_up(market, "buyer")
    top_up(buyer, 100_000)
    order = place_order(buyer, product, billing_mode="one_time", period=None, quantity=1)
    buyer.ok(buyer.post(f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"}))
    (app,) = buyer.ok(buyer.get("/v1/purchased-apps"))["items"]
    reveal = f"/v1/purchased-apps/{app['id']}/credentials/reveal"
    # the seller's endpoint (a host that does not resolve) never delivers here
    assert_error(buyer.post(reveal, {}), 404, "NOT_FOUND")
    assert_error(sign_up(market, "buyer").post(reveal, {}), 404, "NOT_FOUND")
    assert_error(buyer.post(reveal, {"password": "x"}), 400, "VALIDATION_ERROR")
