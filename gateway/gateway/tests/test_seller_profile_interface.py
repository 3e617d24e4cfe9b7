"""``GET /v1/seller/profile``: one declaration in ``routes.py`` over catalog's existing
``get_seller_profile`` RPC, and nothing else written for it."""

import pytest

from gateway.tests.marketplace import assert_error, sign_up

pytestmark = pytest.mark.interface

PROFILE = {
    "company_name": "Acme Cloud Ltd",
    "email": "help@acme.test",
    "mobile": "+86 755 2878 0808",
    "support_range": "24x7, English",
    "currency": "USD",
}


def test_a_seller_reads_back_its_profile_and_no_one_else_may(market):
    seller, buyer = sign_up(market, "seller"), sign_up(market, "buyer")
    saved = seller.ok(seller.put("/v1/seller/profile", PROFILE))

    read = seller.get("/v1/seller/profile")

    assert seller.ok(read) == saved
    assert {key: saved[key] for key in PROFILE} == PROFILE
    assert saved["account_id"] == seller.id
    assert_error(buyer.get("/v1/seller/profile"), 403, "FORBIDDEN")
