"""Invoices through the gateway, over real HTTP with catalog, orders and billing running:
a paid order invoiced, issued by billing's sweep (the seller's details read from the
catalog), its PDF downloaded as an attachment, returned and reissued; another buyer gets
404 on each route."""

import datetime as dt
import json

import pypdfium2 as pdfium
import pytest
import sqlalchemy as sa

from gateway.tests.marketplace import (
    assert_error,
    place_order,
    seller_with_product,
    sign_up,
    top_up,
)
from mercato_testing.interface import wait_for

pytestmark = pytest.mark.interface

DETAILS = {
    "title": "Contoso Trading Ltd",
    "tax_id": "91440300MA5G8X2K1P",
    "address": "1 Harbour Road, Shenzhen",
    "email": "accounts@contoso.test",
}


def billed(market, order: dict, buyer_account_id: str, seller_account_id: str, product: dict):
    """What ``orders.order.created`` tells billing of the order (unless it did already)."""
    engine = sa.create_engine(market.market["billing"][0]["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO billed_orders (order_id, account_id, payer_account_id, "
                    "enterprise_project_id, type, seller_account_id, product_id, product_name, "
                    "lines, amount, currency, created_at) VALUES (:order_id, :buyer, :buyer, "
                    "'default', 'purchase', :seller, :product_id, :product_name, "
                    "CAST(:lines AS JSON), :amount, 'USD', :now) ON CONFLICT DO NOTHING"
                ),
                {
                    "order_id": order["id"],
                    "buyer": buyer_account_id,
                    "seller": seller_account_id,
                    "product_id": product["id"],
                    "product_name": product["name"],
                    "lines": json.dumps(order["lines"]),
                    "amount": order["amount_due"]["amount"],
                    "now": dt.datetime.now(dt.UTC),
                },
            )
    finally:
        engine.dispose()


def test_a_buyer_invoices_a_paid_order_and_downloads_its_pdf(market):
    seller, product = seller_with_product(market)
    buyer = sign_up(market, "buyer", name="Contoso")
    stranger = sign_up(market, "buyer", name="Stranger")
    top_up(buyer, 10000)
    order = place_order(buyer, product)
    buyer.ok(buyer.post(f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"}))
    billed(market, order, buyer.id, seller.id, product)

    assert_error(
        stranger.post("/v1/invoices", {"order_ids": [order["id"]], **DETAILS}), 404, "NOT_FOUND"
    )
    invoice = buyer.ok(buyer.post("/v1/invoices", {"order_ids": [order["id"]], **DETAILS}), 201)
    assert invoice["status"] == "requested"
    assert invoice["amount"] == {"amount": 9000, "currency": "USD"}

    def issued():
        return buyer.ok(buyer.get(f"/v1/invoices/{invoice['id']}"))["status"] == "issued"

    wait_for(issued, "the invoice issued by billing's sweep", timeout=30)
    shown = buyer.ok(buyer.get(f"/v1/invoices/{invoice['id']}"))
    assert shown["seller"]["company_name"] == "Acme Cloud Ltd"
    number = shown["number"]
    assert number.startswith(f"INV-{dt.datetime.now(dt.UTC).year}-")

    response = buyer.get(f"/v1/invoices/{invoice['id']}/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="{number}.pdf"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content.startswith(b"%PDF-")
    document = pdfium.PdfDocument(response.content)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    for expected in (number, "Acme Cloud Ltd", "Contoso Trading Ltd", "90.00", "Total: 90.00 USD"):
        assert expected in text, expected

    for method, path in (
        ("GET", f"/v1/invoices/{invoice['id']}"),
        ("GET", f"/v1/invoices/{invoice['id']}/pdf"),
        ("POST", f"/v1/invoices/{invoice['id']}/return"),
        ("POST", f"/v1/invoices/{invoice['id']}/reissue"),
    ):
        body = {"reason": "mine now"} if path.endswith("return") else {}
        assert_error(stranger.request(method, path, json=body), 404, "NOT_FOUND")
    assert stranger.ok(stranger.get("/v1/invoices"))["total"] == 0

    returned = buyer.ok(
        buyer.post(f"/v1/invoices/{invoice['id']}/return", {"reason": "Wrong tax id"})
    )
    assert returned["status"] == "returned"
    assert_error(
        buyer.post(f"/v1/invoices/{invoice['id']}/return", {"reason": "again"}), 409, "CONFLICT"
    )
    new = buyer.ok(
        buyer.post(f"/v1/invoices/{invoice['id']}/reissue", {"tax_id": "91440300MA5G8X2K1Q"}),
        201,
    )
    assert (new["status"], new["reissue_of"]) == ("requested", invoice["id"])
    listed = buyer.ok(buyer.get("/v1/invoices"))
    assert [item["id"] for item in listed["items"]] == [new["id"], invoice["id"]]
