"""End to end: service supervision through the gateway, as buyer, seller and operator,
with the whole system running (the ``system`` fixture is in conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.parties import Party, card, eventually, new_party, sign_in

pytestmark = pytest.mark.e2e

PRICE = 50_000


def _demo_seeded(system) -> None:
    """make run seeds the demo accounts and products after the processes are ready."""
    eventually(system.log, lambda log: "demo accounts" in log)


def _operator(system) -> Party:
    _demo_seeded(system)
    return Party(system, None, sign_in(system, "operator@demo.mercato", "operator-demo-pass"))


def _seller_with_service(system) -> tuple[Party, dict]:
    seller = new_party(system, "seller")
    seller.ok(
        "PUT",
        "/v1/seller/profile",
        {
            "company_name": "Careful Consulting",
            "email": "help@careful.example",
            "mobile": "+1 555 0142",
            "support_range": "weekdays 9-18",
        },
    )
    product = seller.ok(
        "POST",
        "/v1/seller/products",
        {
            "name": f"Migration service {uuid.uuid4().hex[:6]}",
            "summary": "We move your data.",
            "description": "A professional service, supervised from request to acceptance.",
            "category": "services",
            "delivery_method": "professional_service",
            "service_supervision": True,
            "terms": "Delivered within two weeks.",
            "specifications": [
                {"name": "Standard", "prices": [{"billing_mode": "one_time", "amount": PRICE}]}
            ],
        },
        status=201,
    )
    product = seller.ok("POST", f"/v1/seller/products/{product['id']}/publish", {})
    return seller, product


def _buy(system, product: dict, **configuration: Any) -> tuple[Party, dict, dict]:
    """A new buyer pays the product's first specification from its balance (once, a
    one-time purchase unless ``configuration`` says otherwise); its flow, once started."""
    buyer = new_party(system, "buyer")
    buyer.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": 100_000, "currency": "USD"}, "card": card(system)},
        status=201,
    )
    order = buyer.ok(
        "POST",
        "/v1/orders",
        {
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "one_time",
            "quantity": 1,
            "accept_terms": True,
            **configuration,
        },
        status=201,
    )
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    flows = eventually(
        lambda: buyer.ok("GET", "/v1/supervision/flows", q=order["id"]),
        lambda page: page["total"] == 1,
    )
    return buyer, order, flows["items"][0]


def _order_status(buyer: Party, order: dict, status: str) -> dict:
    return eventually(
        lambda: buyer.ok("GET", f"/v1/orders/{order['id']}"), lambda o: o["status"] == status
    )


def test_a_professional_service_from_request_to_acceptance(system):
    seller, product = _seller_with_service(system)
    buyer, order, flow = _buy(system, product)
    flow_path = f"/v1/supervision/flows/{flow['id']}"
    assert flow["step"] == "awaiting_request" and flow["process"] == "2025-03-26"
    assert flow["product"] == {"id": product["id"], "name": product["name"]}
    _order_status(buyer, order, "delivering")
    # the seller sees it among its flows, and its order leads to it
    assert [f["id"] for f in seller.ok("GET", "/v1/supervision/flows")["items"]] == [flow["id"]]
    assert seller.ok("GET", f"/v1/seller/orders/{order['id']}")["flow_id"] == flow["id"]
    (listed,) = seller.ok("GET", "/v1/seller/orders")["items"]
    assert listed["flow_id"] == flow["id"]
    # the seller's request template is shown on the flow
    seller.ok(
        "PUT",
        f"/v1/seller/products/{product['id']}/request-template",
        {"template": "Which cluster, how many TB, and when may we stop it?"},
    )
    shown = buyer.ok("GET", flow_path)
    assert shown["request_template"].startswith("Which cluster")
    assert shown["steps"][0] == {
        "name": "awaiting_request",
        "status": "current",
        "at": shown["created_at"],
    }

    # the request, sent back once, then confirmed
    assert buyer.call("POST", f"{flow_path}/acceptance", {}).status_code == 409
    submitted = buyer.ok(
        "POST", f"{flow_path}/requests", {"description": "Move 2 TB from the old cluster."}, 201
    )
    assert submitted["step"] == "awaiting_confirmation"
    again = buyer.call("POST", f"{flow_path}/requests", {"description": "Once more."})
    assert again.status_code == 409, again.text
    rejected = seller.ok(
        "POST", f"{flow_path}/confirmation", {"reject": True, "reason": "Which cluster?"}
    )
    assert rejected["step"] == "awaiting_request"
    assert rejected["requests"][0]["rejected_reason"] == "Which cluster?"
    # the second request names a file: the flow's seller may read it, no one else
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    uploaded = buyer.upload("cluster-plan.pdf", pdf)
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["content_type"] == "application/pdf"
    renamed = buyer.upload("photo.png", b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    assert renamed.status_code == 415, renamed.text
    resubmitted = buyer.ok(
        "POST",
        f"{flow_path}/requests",
        {"description": "The cluster db-old-1.", "attachment_ids": [attachment["id"]]},
        201,
    )
    assert resubmitted["requests"][-1]["attachment_ids"] == [attachment["id"]]
    downloaded = seller.call("GET", f"/v1/attachments/{attachment['id']}")
    assert downloaded.status_code == 200 and downloaded.content == pdf
    assert (
        new_party(system, "seller").call("GET", f"/v1/attachments/{attachment['id']}").status_code
        == 404
    )
    confirmed = seller.ok("POST", f"{flow_path}/confirmation", {})
    assert confirmed["step"] == "in_service"

    provided = seller.ok(
        "POST", f"{flow_path}/provisions", {"description": "Moved; checksums attached."}, 201
    )
    assert provided["step"] == "awaiting_acceptance" and provided["accept_by"]
    _order_status(buyer, order, "awaiting_acceptance")
    # not a purchased app until accepted
    assert buyer.ok("GET", "/v1/purchased-apps")["items"] == []

    accepted = buyer.ok("POST", f"{flow_path}/acceptance", {})
    assert accepted["step"] == "completed"
    assert [step["status"] for step in accepted["steps"]] == ["done"] * 5
    assert [record["action"] for record in accepted["records"]] == [
        "flow_started",
        "request_submitted",
        "request_rejected",
        "request_submitted",
        "confirmed",
        "service_provided",
        "accepted",
    ]
    _order_status(buyer, order, "completed")
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps"),
        lambda page: [app["status"] for app in page["items"]] == ["enabled"],
    )
    assert apps["items"][0]["order_id"] == order["id"]

    # each party was told what waited for it
    kinds = {message["kind"] for message in buyer.ok("GET", "/v1/messages")["items"]}
    assert {"request_needed", "request_rejected", "service_started", "acceptance_needed"} <= kinds
    seller_messages = seller.ok("GET", "/v1/messages")
    assert {"confirmation_needed", "completed"} <= {m["kind"] for m in seller_messages["items"]}
    first = seller_messages["items"][0]
    assert seller.ok("POST", f"/v1/messages/{first['id']}/read", {})["read"] is True
    assert buyer.call("POST", f"/v1/messages/{first['id']}/read", {}).status_code == 404


def test_strangers_get_nothing_and_each_party_only_its_own_steps(system):
    seller, product = _seller_with_service(system)
    buyer, order, flow = _buy(system, product)
    flow_path = f"/v1/supervision/flows/{flow['id']}"
    other_buyer = new_party(system, "buyer")
    other_seller = new_party(system, "seller")
    anonymous = Party(system, None, {})

    appeal = {"reason": "Hijack", "description": "Not mine."}
    for stranger in (other_buyer, other_seller):
        assert stranger.call("GET", flow_path).status_code == 404
        assert stranger.ok("GET", "/v1/supervision/flows")["total"] == 0
        assert stranger.call("POST", f"{flow_path}/appeals", appeal).status_code == 404
    # every step of the flow's buyer, tried by another buyer, and of its seller by another
    for path, body in (("requests", {"description": "x"}), ("acceptance", {})):
        assert other_buyer.call("POST", f"{flow_path}/{path}", body).status_code == 404, path
    for path, body in (("confirmation", {}), ("provisions", {"description": "x"})):
        assert other_seller.call("POST", f"{flow_path}/{path}", body).status_code == 404, path
    assert other_seller.call("GET", f"/v1/seller/orders/{order['id']}").status_code == 404
    for method, path, body in (
        ("GET", flow_path, None),
        ("GET", "/v1/supervision/flows", None),
        ("POST", f"{flow_path}/requests", {"description": "x"}),
        ("POST", f"{flow_path}/confirmation", {}),
        ("POST", f"{flow_path}/acceptance", {}),
        ("POST", f"{flow_path}/appeals", appeal),
        ("GET", "/v1/admin/appeals", None),
        ("GET", "/v1/messages", None),
    ):
        assert anonymous.call(method, path, body).status_code == 401, (method, path)
    # each party only takes its own steps: a seller cannot accept, a buyer cannot confirm
    assert seller.call("POST", f"{flow_path}/requests", {"description": "x"}).status_code == 403
    assert buyer.call("POST", f"{flow_path}/confirmation", {}).status_code == 403
    assert buyer.call("GET", "/v1/admin/appeals").status_code == 403
    # bad input names the field and changes nothing
    refused = buyer.call("POST", f"{flow_path}/requests", {"description": ""})
    assert refused.status_code == 400 and "description" in refused.json()["fields"]
    refused = buyer.call("POST", f"{flow_path}/requests", {"description": "x" * 1001})
    assert refused.status_code == 400 and "description" in refused.json()["fields"]
    assert buyer.ok("GET", flow_path)["step"] == "awaiting_request"


def test_an_appeal_freezes_the_flow_and_a_partial_refund_balances_the_ledger(system):
    seller, product = _seller_with_service(system)
    buyer, order, flow = _buy(system, product)
    operator = _operator(system)
    flow_path = f"/v1/supervision/flows/{flow['id']}"
    buyer.ok("POST", f"{flow_path}/requests", {"description": "Please start."}, 201)

    appeal = buyer.ok(
        "POST",
        f"{flow_path}/appeals",
        {"reason": "No answer", "description": "The seller does not react."},
        201,
    )
    assert appeal["status"] == "open" and appeal["due_at"]
    second = buyer.call("POST", f"{flow_path}/appeals", {"reason": "x", "description": "y"})
    assert second.status_code == 409, second.text
    frozen = seller.call("POST", f"{flow_path}/confirmation", {})
    assert frozen.status_code == 409, frozen.text
    assert appeal["id"] in [a["id"] for a in operator.ok("GET", "/v1/admin/appeals")["items"]]

    resolution = f"/v1/admin/appeals/{appeal['id']}/resolution"
    too_much = operator.call(
        "POST",
        resolution,
        {
            "decision": "refund",
            "message": "Refund.",
            "refund": {"amount": PRICE + 1, "currency": "USD"},
        },
    )
    assert too_much.status_code == 422 and too_much.json()["error"] == "REFUND_ABOVE_PAID"
    no_amount = operator.call("POST", resolution, {"decision": "refund", "message": "Refund."})
    assert no_amount.status_code == 400 and "refund" in no_amount.json()["fields"]
    resolved = operator.ok(
        "POST",
        resolution,
        {
            "decision": "refund",
            "message": "The seller did not start; 40% back.",
            "refund": {"amount": 20_000, "currency": "USD"},
        },
    )
    assert resolved["decision"] == "refund" and resolved["status"] == "resolved"
    assert (
        operator.call("POST", resolution, {"decision": "continue", "message": "x"}).status_code
        == 409
    )
    assert buyer.ok("GET", flow_path)["step"] == "closed"
    cancelled = _order_status(buyer, order, "cancelled")
    assert "Refunded on appeal" in cancelled["cancel_reason"]

    refunds = eventually(
        lambda: [
            m for m in buyer.ok("GET", "/v1/billing/transactions")["items"] if m["kind"] == "refund"
        ],
        bool,
    )
    assert [(m["amount"]["amount"], m["order_id"]) for m in refunds] == [(20_000, order["id"])]
    balance = buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"]
    assert balance == 100_000 - PRICE + 20_000
    for party in (buyer, seller):
        kinds = [m["kind"] for m in party.ok("GET", "/v1/messages")["items"]]
        assert "appeal_resolved" in kinds
    # billing's refund event becomes the buyer's message, once
    refunded = eventually(
        lambda: [m for m in buyer.ok("GET", "/v1/messages")["items"] if m["kind"] == "refund_made"],
        bool,
    )
    assert len(refunded) == 1 and refunded[0]["subject"].startswith("200.00 USD refunded")


def test_an_appeal_continued_then_completed_by_the_operator(system):
    seller, product = _seller_with_service(system)
    buyer, order, flow = _buy(system, product)
    operator = _operator(system)
    flow_path = f"/v1/supervision/flows/{flow['id']}"
    buyer.ok("POST", f"{flow_path}/requests", {"description": "Please start."}, 201)

    appeal = seller.ok(
        "POST", f"{flow_path}/appeals", {"reason": "Unclear", "description": "Vague request."}, 201
    )
    assert appeal["opened_by"] == "seller"
    operator.ok(
        "POST",
        f"/v1/admin/appeals/{appeal['id']}/resolution",
        {"decision": "continue", "message": "Go on as agreed."},
    )
    assert seller.ok("POST", f"{flow_path}/confirmation", {})["step"] == "in_service"

    appeal = buyer.ok(
        "POST", f"{flow_path}/appeals", {"reason": "Done", "description": "It works."}, 201
    )
    completed = operator.ok(
        "POST",
        f"/v1/admin/appeals/{appeal['id']}/resolution",
        {"decision": "complete", "message": "The buyer confirms the work."},
    )
    assert completed["decision"] == "complete"
    flow = buyer.ok("GET", flow_path)
    assert flow["step"] == "completed" and flow["appeal"]["status"] == "resolved"
    _order_status(buyer, order, "completed")
    closed = buyer.call("POST", f"{flow_path}/appeals", {"reason": "x", "description": "y"})
    assert closed.status_code == 409


def test_a_supervised_saas_tenant_is_created_when_the_seller_confirms(system):
    _demo_seeded(system)
    demo_seller = Party(system, None, sign_in(system, "seller@demo.mercato", "seller-demo-pass"))
    (found,) = requests.get(
        f"{system.gateway}/v1/products", params={"q": "Lumen"}, timeout=15
    ).json()["items"]
    product = requests.get(f"{system.gateway}/v1/products/{found['id']}", timeout=15).json()
    buyer, order, flow = _buy(
        system,
        product,
        billing_mode="yearly_monthly",
        period={"unit": "month", "count": 1},
        quantity=3,
    )
    flow_path = f"/v1/supervision/flows/{flow['id']}"
    assert flow["step"] == "awaiting_request"
    # no tenant before the seller confirms
    assert buyer.ok("GET", flow_path)["application"] is None
    buyer.ok("POST", f"{flow_path}/requests", {"description": "Three analysts, EU data."}, 201)
    demo_seller.ok("POST", f"{flow_path}/confirmation", {})

    # the seller's application creates the tenant; its delivery moves the flow
    delivered = eventually(
        lambda: buyer.ok("GET", flow_path), lambda f: f["step"] == "awaiting_acceptance"
    )
    application = delivered["application"]
    assert application["username"] and application["password"] == "******"
    assert application["frontend_url"].startswith("http")
    # the seller sees the flow but not the buyer's application
    assert demo_seller.ok("GET", flow_path)["application"] is None
    _order_status(buyer, order, "awaiting_acceptance")
    assert buyer.ok("GET", "/v1/purchased-apps")["items"] == []
    revealed = buyer.ok(
        "POST", f"/v1/purchased-apps/{delivered['subscription_id']}/credentials/reveal", {}
    )
    assert revealed["username"] == application["username"] and revealed["password"]

    assert buyer.ok("POST", f"{flow_path}/acceptance", {})["step"] == "completed"
    _order_status(buyer, order, "completed")
    (app,) = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps")["items"],
        lambda items: [a["status"] for a in items] == ["enabled"],
    )
    assert app["id"] == delivered["subscription_id"] and app["expires_at"]
