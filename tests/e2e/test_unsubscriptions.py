"""End to end: unsubscriptions (guide section 7) through the gateway, with the whole
system running: a license unsubscribed and approved (the payer refunded by billing, the
supervision flow closed, the subscription released), one rejected (nothing refunded),
the refused cases, and an image's unused period refunded at once under the cloud's rule
(its deployment released in the buyer's cloud)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.parties import Party, card, eventually, new_party
from tests.e2e.test_images import Cloud, _buyer_with_cloud, _deployed, _image_product, _order_body

pytestmark = pytest.mark.e2e

PRICE = 40_000
TOP_UP = 100_000


def _seller_with_license(system) -> tuple[Party, dict]:
    seller = new_party(system, "seller")
    seller.ok(
        "PUT",
        "/v1/seller/profile",
        {
            "company_name": "Granite Keys",
            "email": "help@granite.example",
            "mobile": "+1 555 0143",
            "support_range": "weekdays 9-18",
        },
    )
    product = seller.ok(
        "POST",
        "/v1/seller/products",
        {
            "name": f"Firewall license {uuid.uuid4().hex[:6]}",
            "summary": "A license key.",
            "description": "A license, supervised until the buyer accepts it.",
            "category": "security",
            "delivery_method": "license",
            "service_supervision": True,
            "terms": "One key per server.",
            "specifications": [
                {"name": "Per server", "prices": [{"billing_mode": "one_time", "amount": PRICE}]}
            ],
        },
        status=201,
    )
    return seller, seller.ok("POST", f"/v1/seller/products/{product['id']}/publish", {})


def _buyer(system) -> Party:
    buyer = new_party(system, "buyer")
    buyer.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": TOP_UP, "currency": "USD"}, "card": card(system)},
        status=201,
    )
    return buyer


def _balance(buyer: Party) -> int:
    return buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"]


def _buy_license(system, product: dict, buyer: Party) -> tuple[dict, dict, dict]:
    """The buyer pays the license from its balance: the order, its flow (awaiting the
    acceptance) and its row of "My Unsubscriptions"."""
    order = buyer.ok(
        "POST",
        "/v1/orders",
        {
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "one_time",
            "quantity": 1,
            "accept_terms": True,
        },
        status=201,
    )
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    flow = eventually(
        lambda: buyer.ok("GET", "/v1/supervision/flows", q=order["id"]),
        lambda page: page["total"] == 1,
    )["items"][0]
    eligible = eventually(
        lambda: buyer.ok("GET", "/v1/unsubscriptions/eligible")["items"],
        lambda items: any(item["order_id"] == order["id"] for item in items),
    )
    (row,) = [item for item in eligible if item["order_id"] == order["id"]]
    return order, flow, row


def _ask(buyer: Party, subscription_id: str, amount: int | None, **extra: Any):
    body: dict[str, Any] = {"subscription_id": subscription_id, "reason": "tests_completed"}
    if amount is not None:
        body["refund"] = {"amount": amount, "currency": "USD"}
    return buyer.call("POST", "/v1/unsubscriptions", {**body, **extra})


def _refused(response: requests.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "UNSUBSCRIPTION_NOT_ALLOWED", body
    (rule,) = body["fields"]["subscription_id"]
    assert rule in body["message"]
    return rule


def test_a_license_unsubscribed_and_approved_is_refunded_released_and_its_flow_closed(system):
    seller, product = _seller_with_license(system)
    buyer = _buyer(system)
    order, flow, row = _buy_license(system, product, buyer)
    assert _balance(buyer) == TOP_UP - PRICE
    assert row["max_refundable"] == {"amount": PRICE, "currency": "USD"}
    assert row["delivery_method"] == "license" and row["automatic"] is False
    assert row["product_name"] == product["name"]
    assert row["seller_account_id"] == seller.id

    asked = _ask(buyer, row["subscription_id"], 30_000, share_contact=True)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending_review"
    # the seller sees it with the buyer's contact, shared with the request
    (seen,) = seller.ok("GET", "/v1/seller/unsubscriptions?status=pending_review")["items"]
    assert seen["id"] == request["id"]
    assert seen["buyer"]["account_id"] == buyer.id and seen["buyer"]["email"] == buyer.email
    # the seller is told of it
    eventually(
        lambda: seller.ok("GET", "/v1/messages")["items"],
        lambda items: any(m["kind"] == "unsubscription_requested" for m in items),
    )

    approved = seller.ok("POST", f"/v1/seller/unsubscriptions/{request['id']}/approval", {})
    assert approved["status"] == "approved"
    again = seller.call("POST", f"/v1/seller/unsubscriptions/{request['id']}/approval", {})
    assert again.status_code == 409, again.text

    # billing refunds the payer once, supervision closes the flow, the app is released
    eventually(lambda: _balance(buyer), lambda balance: balance == TOP_UP - PRICE + 30_000)
    eventually(
        lambda: buyer.ok("GET", f"/v1/supervision/flows/{flow['id']}"),
        lambda shown: shown["step"] == "closed",
    )
    cancelled = buyer.ok("GET", f"/v1/orders/{order['id']}")
    assert cancelled["status"] == "cancelled" and request["id"] in cancelled["cancel_reason"]
    app = buyer.ok("GET", f"/v1/purchased-apps/{row['subscription_id']}")
    assert app["status"] == "released"
    refunded = eventually(
        lambda: buyer.ok("GET", f"/v1/unsubscriptions/{request['id']}"),
        lambda shown: shown["status"] == "refunded",
    )
    assert refunded["refunded_at"]
    assert _balance(buyer) == TOP_UP - PRICE + 30_000  # once
    # released: it cannot be asked again
    assert _refused(_ask(buyer, row["subscription_id"], 1)) == "released"


def test_a_rejected_request_refunds_nothing_and_after_acceptance_none_is_allowed(system):
    seller, product = _seller_with_license(system)
    buyer = _buyer(system)
    order, flow, row = _buy_license(system, product, buyer)
    subscription_id = row["subscription_id"]

    # the refund is bounded, in the order's currency, and the reason known
    above = _ask(buyer, subscription_id, PRICE + 1)
    assert above.status_code == 422 and above.json()["error"] == "REFUND_ABOVE_PAID", above.text
    for amount, extra, field in (
        (0, {}, "refund"),
        (None, {}, "refund"),
        (100, {"reason": "because"}, "reason"),
        (100, {"reason": "other"}, "reason_detail"),
    ):
        bad = _ask(buyer, subscription_id, amount, **extra)
        assert bad.status_code == 400, bad.text
        assert any(key.split(".")[0] == field for key in bad.json()["fields"]), bad.text
    euros = buyer.call(
        "POST",
        "/v1/unsubscriptions",
        {
            "subscription_id": subscription_id,
            "reason": "tests_completed",
            "refund": {"amount": 100, "currency": "EUR"},
        },
    )
    assert euros.status_code == 400 and "refund" in euros.json()["fields"], euros.text
    stranger = _buyer(system)
    assert _ask(stranger, subscription_id, 100).status_code == 404

    first = _ask(buyer, subscription_id, 10_000)
    assert first.status_code == 201, first.text
    assert _refused(_ask(buyer, subscription_id, 5_000)) == "already_requested"
    other_seller = new_party(system, "seller")
    assert (
        other_seller.call(
            "POST", f"/v1/seller/unsubscriptions/{first.json()['id']}/rejection", {"reason": "x"}
        ).status_code
        == 404
    )
    rejected = seller.ok(
        "POST",
        f"/v1/seller/unsubscriptions/{first.json()['id']}/rejection",
        {"reason": "We agreed on 50.00."},
    )
    assert (
        rejected["status"] == "rejected" and rejected["rejection_reason"] == "We agreed on 50.00."
    )
    eventually(
        lambda: buyer.ok("GET", "/v1/messages")["items"],
        lambda items: any(m["kind"] == "unsubscription_rejected" for m in items),
    )
    assert _balance(buyer) == TOP_UP - PRICE
    assert buyer.ok("GET", f"/v1/orders/{order['id']}")["status"] == "awaiting_acceptance"

    # asked again, then the buyer accepts: the guarantee period is over
    second = _ask(buyer, subscription_id, 5_000)
    assert second.status_code == 201, second.text
    accepted = buyer.ok("POST", f"/v1/supervision/flows/{flow['id']}/acceptance", {})
    assert accepted["step"] == "completed"
    eventually(
        lambda: buyer.ok("GET", f"/v1/orders/{order['id']}"),
        lambda shown: shown["status"] == "completed",
    )
    # the acceptance closed the pending request: rejected automatically, the buyer told
    closed = buyer.ok("GET", f"/v1/unsubscriptions/{second.json()['id']}")
    assert closed["status"] == "rejected"
    assert closed["rejection_reason"] == (
        "the transaction guarantee period ended when the delivery was accepted"
    )
    late = seller.call("POST", f"/v1/seller/unsubscriptions/{second.json()['id']}/approval", {})
    assert late.status_code == 409, late.text
    eventually(
        lambda: buyer.ok("GET", "/v1/messages")["items"],
        lambda items: sum(m["kind"] == "unsubscription_rejected" for m in items) == 2,
    )
    assert _refused(_ask(buyer, subscription_id, 5_000)) == "transaction_completed"
    assert _balance(buyer) == TOP_UP - PRICE
    assert {item["status"] for item in buyer.ok("GET", "/v1/unsubscriptions")["items"]} == {
        "rejected"
    }


def test_unsupervised_saas_is_not_unsubscribed_from(system):
    eventually(system.log, lambda log: "demo accounts" in log)
    found = eventually(
        lambda: requests.get(
            f"{system.gateway}/v1/products", params={"q": "Nimbus Backup"}, timeout=15
        ).json()["items"],
        lambda items: len(items) == 1,
    )
    product = requests.get(f"{system.gateway}/v1/products/{found[0]['id']}", timeout=15).json()
    buyer = _buyer(system)
    order = buyer.ok(
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
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps")["items"],
        lambda items: any(item["order_id"] == order["id"] for item in items),
    )
    (app,) = [item for item in apps if item["order_id"] == order["id"]]
    assert _refused(_ask(buyer, app["id"], 100)) == "unsupervised_saas"
    assert buyer.ok("GET", "/v1/unsubscriptions/eligible")["total"] == 0


def test_an_image_refunds_its_unused_period_at_once_and_pay_per_use_is_refused(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud)
    order = buyer.ok("POST", "/v1/orders", _order_body(product), status=201)
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    app = _deployed(buyer, order, "active")
    assert len(cloud.of_type(account["domain_id"], "server")) == 1
    (row,) = [
        item
        for item in buyer.ok("GET", "/v1/unsubscriptions/eligible")["items"]
        if item["subscription_id"] == app["id"]
    ]
    assert row["automatic"] is True
    assert 0 < row["max_refundable"]["amount"] <= order["amount_due"]["amount"]
    before = buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"]

    asked = _ask(buyer, app["id"], None, reason="redundant_after_deployment")
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "approved"
    refund = request["refund"]["amount"]
    assert 0 < refund <= row["max_refundable"]["amount"]
    eventually(
        lambda: buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"],
        lambda balance: balance == before + refund,
    )
    eventually(
        lambda: buyer.ok("GET", f"/v1/unsubscriptions/{request['id']}"),
        lambda shown: shown["status"] == "refunded",
    )
    assert buyer.ok("GET", f"/v1/purchased-apps/{app['id']}")["status"] == "released"
    # provisioning releases the deployment: its servers are deleted
    eventually(
        lambda: cloud.of_type(account["domain_id"], "server"), lambda servers: not servers, 90
    )

    hourly = _order_body(product)
    hourly.update(billing_mode="pay_per_use", period=None)
    hourly_order = buyer.ok("POST", "/v1/orders", hourly, status=201)
    buyer.ok("POST", f"/v1/orders/{hourly_order['id']}/pay", {"payment_method": "balance"})
    hourly_app = _deployed(buyer, hourly_order, "active")
    assert _refused(_ask(buyer, hourly_app["id"], None)) == "pay_per_use"
