"""End to end: enterprise projects, bills, cost analysis and invoices through the gateway,
with the whole system running on a test clock started at a fixed instant (so one UTC
month holds every purchase and invoice numbers are of a known year). A month of mixed
purchases in three projects (balance and credit, a yearly/monthly license, a SaaS
moved to another project and renewed there, a professional service refunded) adds up
to the cent in the bills and the cost analysis, line by line against the ledger; the
rules of projects over HTTP; invoices requested, issued as PDFs whose text is read back,
returned and reissued; an image's resources moved with or without its disks and EIPs;
another buyer sees none of it; a reseller's customer orders in its own project and the
reseller, who paid, has the line on its bill while the customer has no invoice to ask."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
import requests

from mercato_devrun import DEMO_OPERATOR
from tests.e2e.parties import Party, card, eventually, new_party, sign_in
from tests.e2e.test_images import Cloud, _buyer_with_cloud, _deployed
from tests.e2e.test_images import _order_body as _image_order_body

pytestmark = pytest.mark.e2e

# every purchase of the module falls in May 2026 (UTC); invoices are issued quickly
START = "2026-05-04T09:00:00Z"
MONTH = "2026-05"
SYSTEM_ENV = {"MERCATO_CLOCK_START": START, "BILLING_INVOICE_ISSUE_SECONDS": "1"}

TOP_UP = 600_000
CREDIT = 300_000
NIMBUS_MONTH = 1500  # the demo SaaS backup product, per month and server
LICENSE_MONTH = 12_345  # odd cents on purpose
SERVICE_PRICE = 250_099
REFUND = 100_001
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


@dataclass
class Market:
    system: Any
    operator: Party
    seller: Party  # a seller of its own: a yearly/monthly license, a professional service
    license: dict
    service: dict
    nimbus: dict  # the demo seller's SaaS backup product
    image: dict  # the demo seller's image product


@pytest.fixture(scope="module")
def market(system) -> Market:
    eventually(system.log, lambda log: "demo accounts" in log, timeout=90)
    operator = Party(
        system,
        None,
        sign_in(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"]),
        DEMO_OPERATOR["email"],
    )
    seller = new_party(system, "seller")
    seller.ok(
        "PUT",
        "/v1/seller/profile",
        {
            "company_name": "Quarry Software",
            "email": "help@quarry.example",
            "mobile": "+1 555 0177",
            "support_range": "weekdays 9-18",
        },
    )
    license_product = _published(
        seller,
        {
            "name": f"Quarry node license {uuid.uuid4().hex[:6]}",
            "summary": "A license key a month.",
            "description": "A yearly/monthly license, supervised until accepted.",
            "category": "security",
            "delivery_method": "license",
            "service_supervision": True,
            "terms": "One key per node.",
            "specifications": [
                {
                    "name": "Per node",
                    "prices": [
                        {
                            "billing_mode": "yearly_monthly",
                            "period_unit": "month",
                            "amount": LICENSE_MONTH,
                        }
                    ],
                }
            ],
        },
    )
    service = _published(
        seller,
        {
            "name": f"Quarry migration {uuid.uuid4().hex[:6]}",
            "summary": "We move your data.",
            "description": "A professional service, supervised from request to acceptance.",
            "category": "services",
            "delivery_method": "professional_service",
            "service_supervision": True,
            "terms": "Delivered within two weeks.",
            "specifications": [
                {
                    "name": "Standard",
                    "prices": [{"billing_mode": "one_time", "amount": SERVICE_PRICE}],
                }
            ],
        },
    )
    return Market(
        system=system,
        operator=operator,
        seller=seller,
        license=license_product,
        service=service,
        nimbus=_demo_product(system, "Nimbus Backup for ECS"),
        image=_demo_product(system, "Helix CMS Server"),
    )


# -- helpers -------------------------------------------------------------------------


def _published(seller: Party, body: dict) -> dict:
    product = seller.ok("POST", "/v1/seller/products", body, status=201)
    return seller.ok("POST", f"/v1/seller/products/{product['id']}/publish", {})


def _demo_product(system, name: str) -> dict:
    found = eventually(
        lambda: requests.get(
            f"{system.gateway}/v1/products", params={"q": name}, timeout=15
        ).json()["items"],
        lambda items: any(item["name"] == name for item in items),
        timeout=60,
    )
    (item,) = [item for item in found if item["name"] == name]
    return requests.get(f"{system.gateway}/v1/products/{item['id']}", timeout=15).json()


def _buyer(market: Market, *, credit: int = 0) -> Party:
    """A new buyer with money on its balance and, when asked, a credit limit."""
    buyer = new_party(market.system, "buyer")
    buyer.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": TOP_UP, "currency": "USD"}, "card": card(market.system)},
        status=201,
    )
    if credit:
        market.operator.ok(
            "POST",
            f"/v1/admin/accounts/{buyer.id}/credit-limit",
            {"amount": {"amount": credit, "currency": "USD"}},
        )
    return buyer


def _project(buyer: Party, name: str, type_: str) -> dict:
    created = buyer.ok(
        "POST",
        "/v1/enterprise-projects",
        {"name": name, "description": f"{name} resources", "type": type_},
        status=201,
    )
    assert created["id"].startswith("eps_"), created
    assert (created["name"], created["type"], created["status"]) == (name, type_, "enabled")
    return created


def _body(product: dict, project: str | None = None, **configuration: Any) -> dict:
    """An order of the product's first specification: yearly/monthly a month by default,
    one-time when the product only has that."""
    modes = {price["billing_mode"] for price in product["specifications"][0]["prices"]}
    body: dict[str, Any] = {
        "product_id": product["id"],
        "specification_id": product["specifications"][0]["id"],
        "quantity": 1,
        "accept_terms": True,
    }
    if "yearly_monthly" in modes:
        body.update(billing_mode="yearly_monthly", period={"unit": "month", "count": 1})
    else:
        body.update(billing_mode="one_time")
    if project is not None:
        body["enterprise_project_id"] = project
    body.update(configuration)
    return body


def _bought(buyer: Party, body: dict, method: str = "balance") -> dict:
    """Placed and paid: the order as paying answered it."""
    order = buyer.ok("POST", "/v1/orders", body, status=201)
    paid = buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": method})
    assert paid["status"] != "unpaid", paid
    return paid


def _app_of(buyer: Party, order: dict) -> dict:
    """The purchased app the order made."""
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps", page_size=100)["items"],
        lambda items: any(item["order_id"] == order["id"] for item in items),
    )
    (app,) = [item for item in apps if item["order_id"] == order["id"]]
    return app


def _subscription_of(buyer: Party, order: dict) -> str:
    """The subscription of a supervised order (listed under purchased apps only once its
    flow completes): its row of the apps that may be unsubscribed from."""
    eligible = eventually(
        lambda: buyer.ok("GET", "/v1/unsubscriptions/eligible")["items"],
        lambda items: any(item["order_id"] == order["id"] for item in items),
    )
    (row,) = [item for item in eligible if item["order_id"] == order["id"]]
    return row["subscription_id"]


def _move(buyer: Party, project: str, subscription_ids: list[str], mode: str = "independent"):
    return buyer.call(
        "POST",
        f"/v1/enterprise-projects/{project}/resources",
        {"subscription_ids": subscription_ids, "mode": mode},
    )


def _ledger(buyer: Party) -> list[dict]:
    """The buyer's payments and refunds in its ledger."""
    items = buyer.ok("GET", "/v1/billing/transactions", page_size=100)["items"]
    return [item for item in items if item["kind"] in ("payment", "refund")]


def _bill(buyer: Party, **query: Any) -> dict:
    return buyer.ok("GET", "/v1/billing/bills", month=MONTH, page_size=100, **query)


def _minor(value: Any) -> int:
    """An amount in minor units, whether answered as Money or as a number."""
    return value["amount"] if isinstance(value, dict) else value


def _error(response: requests.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, (status, response.status_code, response.text)
    body = response.json()
    if error is not None:
        assert body["error"] == error, body
    return body


def _named(fields: dict, field: str, *words: str) -> None:
    """``fields[field]`` names each of ``words`` (however the messages are worded)."""
    assert field in fields, fields
    text = json.dumps(fields[field])
    for word in words:
        assert word in text, (field, word, fields)


def _formatted(minor: int) -> list[str]:
    return [f"{minor / 100:,.2f}", f"{minor / 100:.2f}"]


def _pdf_text(content: bytes) -> str:
    document = pypdfium2.PdfDocument(content)
    try:
        return "\n".join(
            document[index].get_textpage().get_text_range() for index in range(len(document))
        )
    finally:
        document.close()


def _in_pdf(text: str, value: str) -> bool:
    """``value`` in the PDF's text, also when a table cell wrapped it."""
    return value in text or re.sub(r"\s+", "", value) in re.sub(r"\s+", "", text)


def _issued(buyer: Party, invoice_id: str) -> dict:
    return eventually(
        lambda: buyer.ok("GET", f"/v1/invoices/{invoice_id}"),
        lambda shown: shown["status"] == "issued",
        timeout=60,
    )


def _pdf(buyer: Party, invoice_id: str) -> tuple[requests.Response, str]:
    response = buyer.call("GET", f"/v1/invoices/{invoice_id}/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/pdf"), response.headers
    assert "attachment" in response.headers.get("Content-Disposition", ""), response.headers
    assert response.content.startswith(b"%PDF"), response.content[:20]
    return response, _pdf_text(response.content)


# -- 1. a month of mixed purchases, to the cent -----------------------------------------


def test_a_month_of_mixed_purchases_adds_up_to_the_cent_per_project(market):
    buyer = _buyer(market, credit=CREDIT)
    production = _project(buyer, "Production", "commercial")["id"]
    staging = _project(buyer, "Staging", "test")["id"]

    # a SaaS in default (balance), three servers a month, delivered by the seller's app
    saas = _bought(buyer, _body(market.nimbus, quantity=3))
    assert saas["enterprise_project_id"] == "default"
    app = _app_of(buyer, saas)
    eventually(
        lambda: buyer.ok("GET", f"/v1/purchased-apps/{app['id']}"),
        lambda shown: shown["status"] == "enabled",
        timeout=60,
    )
    # a license for two months in Staging (credit)
    license_order = _bought(
        buyer,
        _body(market.license, staging, period={"unit": "month", "count": 2}),
        method="credit",
    )
    assert license_order["enterprise_project_id"] == staging
    # a professional service in Production (balance), refunded in part later
    service_order = _bought(buyer, _body(market.service, production))
    assert service_order["enterprise_project_id"] == production

    # the SaaS moves to Production; its renewal is booked there, its purchase stays
    moved = _move(buyer, production, [app["id"]])
    assert moved.status_code == 200, moved.text
    assert moved.json()["items"] == [
        {"subscription_id": app["id"], "enterprise_project_id": production, "moved": True}
    ]
    again = _move(buyer, production, [app["id"]])
    assert again.status_code == 200, again.text
    assert again.json()["items"][0]["moved"] is False  # already there
    shown = buyer.ok("GET", f"/v1/purchased-apps/{app['id']}")
    assert (shown["enterprise_project_id"], shown["enterprise_project_name"]) == (
        production,
        "Production",
    )
    quote = buyer.ok(
        "POST",
        f"/v1/purchased-apps/{app['id']}/renewal-quotes",
        {"period": {"unit": "month", "count": 1}},
        status=201,
    )
    renewal = buyer.ok(
        "POST", f"/v1/purchased-apps/{app['id']}/renewals", {"quote_id": quote["id"]}, status=201
    )
    assert renewal["enterprise_project_id"] == production, renewal
    renewal = buyer.ok("POST", f"/v1/orders/{renewal['id']}/pay", {"payment_method": "credit"})
    assert renewal["status"] != "unpaid", renewal
    assert buyer.ok("GET", f"/v1/orders/{saas['id']}")["enterprise_project_id"] == "default"

    # the service unsubscribed from, the seller approves: part of it refunded
    asked = buyer.ok(
        "POST",
        "/v1/unsubscriptions",
        {
            "subscription_id": _subscription_of(buyer, service_order),
            "reason": "tests_completed",
            "refund": {"amount": REFUND, "currency": "USD"},
        },
        status=201,
    )
    market.seller.ok("POST", f"/v1/seller/unsubscriptions/{asked['id']}/approval", {})
    eventually(
        lambda: _ledger(buyer), lambda items: any(item["kind"] == "refund" for item in items)
    )

    expected = sorted(
        [
            ("default", saas["id"], "charge", 3 * NIMBUS_MONTH),
            (staging, license_order["id"], "charge", 2 * LICENSE_MONTH),
            (production, service_order["id"], "charge", SERVICE_PRICE),
            (production, renewal["id"], "charge", 3 * NIMBUS_MONTH),
            (production, service_order["id"], "refund", -REFUND),
        ]
    )
    ledger = _ledger(buyer)
    assert len(ledger) == len(expected), ledger
    # the bill once billing knows every order's product (orders.order.created)
    bill = eventually(
        lambda: _bill(buyer),
        lambda seen: (
            seen["total"] == len(expected) and all(line["product_name"] for line in seen["items"])
        ),
    )
    lines = bill["items"]
    assert bill["month"] == MONTH
    assert (
        sorted(
            (line["enterprise_project_id"], line["order_id"], line["kind"], _minor(line["amount"]))
            for line in lines
        )
        == expected
    )
    # line by line, the ledger's own figures (it shows a payment as money going out)
    assert {
        line["id"]: (_minor(line["amount"]), line["order_id"], line["payment_method"])
        for line in lines
    } == {
        item["id"]: (-_minor(item["amount"]), item["order_id"], item["payment_method"])
        for item in ledger
    }
    assert all(line["amount"]["currency"] == "USD" for line in lines)
    names = {"default": "default", production: "Production", staging: "Staging"}
    products = {
        saas["id"]: market.nimbus,
        renewal["id"]: market.nimbus,
        license_order["id"]: market.license,
        service_order["id"]: market.service,
    }
    for line in lines:
        assert line["enterprise_project_name"] == names[line["enterprise_project_id"]], line
        assert line["product_id"] == products[line["order_id"]]["id"], line
        assert line["product_name"] == products[line["order_id"]]["name"], line
        assert line["order_type"] == (
            "renewal" if line["order_id"] == renewal["id"] else "purchase"
        )
        assert line["occurred_at"].startswith(MONTH), line
    methods = {line["order_id"]: line["payment_method"] for line in lines}
    assert (methods[saas["id"]], methods[license_order["id"]], methods[renewal["id"]]) == (
        "balance",
        "credit",
        "credit",
    )

    # totals per project: the sums of their lines, to the cent
    nets = {"default": 0, production: 0, staging: 0}
    for project, _order, _kind, amount in expected:
        nets[project] += amount
    totals = {row["enterprise_project_id"]: row for row in bill["totals"]}
    assert set(totals) == set(nets), bill["totals"]
    for project, row in totals.items():
        mine = [amount for p, _o, _k, amount in expected if p == project]
        assert _minor(row["charges"]) == sum(a for a in mine if a > 0), row
        assert abs(_minor(row["refunds"])) == -sum(a for a in mine if a < 0), row
        assert _minor(row["net"]) == nets[project], row
        assert row["enterprise_project_name"] == names[project], row
    assert nets[production] == SERVICE_PRICE + 3 * NIMBUS_MONTH - REFUND
    assert _minor(bill["total_net"]) == sum(nets.values())

    # one project's bill: its lines and its totals only
    only = _bill(buyer, enterprise_project_id=production)
    assert sorted(
        (line["order_id"], line["kind"], _minor(line["amount"])) for line in only["items"]
    ) == sorted((o, k, a) for p, o, k, a in expected if p == production)
    assert {row["enterprise_project_id"] for row in only["totals"]} == {production}
    assert _minor(only["total_net"]) == nets[production]
    # another month has nothing
    assert buyer.ok("GET", "/v1/billing/bills", month="2026-04")["total"] == 0

    # the cost analysis of the month gives the same net figures
    def analysis(group_by: str) -> dict:
        return buyer.ok(
            "GET",
            "/v1/billing/cost-analysis",
            **{"from": f"{MONTH}-01", "to": f"{MONTH}-31", "group_by": group_by},
        )

    by_project = analysis("enterprise_project")
    assert by_project["group_by"] == "enterprise_project"
    assert {s["key"]: _minor(s["amount"]) for s in by_project["series"]} == nets
    assert {s["key"]: s["name"] for s in by_project["series"]} == names
    assert _minor(by_project["total"]) == sum(nets.values())
    by_product = analysis("product")
    assert {s["key"]: _minor(s["amount"]) for s in by_product["series"]} == {
        market.nimbus["id"]: 6 * NIMBUS_MONTH,
        market.license["id"]: 2 * LICENSE_MONTH,
        market.service["id"]: SERVICE_PRICE - REFUND,
    }
    assert {s["key"]: s["name"] for s in by_product["series"]}[market.nimbus["id"]] == (
        market.nimbus["name"]
    )
    by_month = analysis("month")
    assert [(s["key"], _minor(s["amount"])) for s in by_month["series"]] == [
        (MONTH, sum(nets.values()))
    ]
    assert _minor(by_month["total"]) == sum(nets.values())

    # the refunded order cannot be invoiced
    refused = buyer.call(
        "POST",
        "/v1/invoices",
        {
            "order_ids": [service_order["id"]],
            "title": "Northwind Traders Ltd",
            "tax_id": "91310000MA1FL0XQ2K",
            "address": "1 Harbour Road, Shanghai",
            "email": "ap@northwind.example",
        },
    )
    _named(_error(refused, 409, "CONFLICT")["fields"], "order_ids", service_order["id"], "refunded")


# -- 2. the rules of projects over HTTP -------------------------------------------------


def test_project_rules_over_http(market):
    buyer, _account = _buyer_with_cloud(market.system, Cloud(market.system))
    listed = buyer.ok("GET", "/v1/enterprise-projects")["items"]
    assert [(p["id"], p["type"], p["status"]) for p in listed] == [
        ("default", "commercial", "enabled")
    ]
    production = _project(buyer, "Production", "commercial")["id"]
    staging = _project(buyer, "Staging", "test")["id"]
    retired = _project(buyer, "Retired", "commercial")["id"]
    taken = buyer.call("POST", "/v1/enterprise-projects", {"name": "retired", "type": "test"})
    assert "name" in _error(taken, 409, "CONFLICT")["fields"]
    _error(
        buyer.call("POST", "/v1/enterprise-projects/default/disable", {}),
        422,
        "DEFAULT_PROJECT_REQUIRED",
    )

    # disabled: listed so, and refused for an order (400 naming the project)
    disabled = buyer.ok("POST", f"/v1/enterprise-projects/{retired}/disable", {})
    assert (disabled["id"], disabled["status"]) == (retired, "disabled")
    assert buyer.ok("POST", f"/v1/enterprise-projects/{retired}/disable", {})["status"] == (
        "disabled"
    )
    listed = buyer.ok("GET", "/v1/enterprise-projects")["items"]
    assert [p["id"] for p in listed] == ["default", production, staging, retired]
    assert {p["id"]: p["status"] for p in listed}[retired] == "disabled"
    only_disabled = buyer.call("GET", "/v1/enterprise-projects", status="disabled")
    assert only_disabled.status_code == 200, only_disabled.text
    assert [p["id"] for p in only_disabled.json()["items"]] == [retired]
    refused = eventually(
        lambda: buyer.call("POST", "/v1/orders", _body(market.nimbus, retired)),
        lambda response: response.status_code != 201,
    )
    body = _error(refused, 400, "VALIDATION_ERROR")
    _named(body["fields"], "enterprise_project_id", "disabled")
    unknown = buyer.call(
        "POST", "/v1/orders", _body(market.nimbus, "eps_00000000000000000000000000000000")
    )
    _named(_error(unknown, 400, "VALIDATION_ERROR")["fields"], "enterprise_project_id", "unknown")
    # enabled again, it may be chosen
    assert buyer.ok("POST", f"/v1/enterprise-projects/{retired}/enable", {})["status"] == (
        "enabled"
    )
    placed = eventually(
        lambda: buyer.call("POST", "/v1/orders", _body(market.nimbus, retired)),
        lambda response: response.status_code == 201,
    ).json()
    assert (placed["enterprise_project_id"], placed["enterprise_project_name"]) == (
        retired,
        "Retired",
    )

    # pay-per-use stays in default
    hourly = _image_order_body(market.image)
    hourly.update(billing_mode="pay_per_use", period=None, enterprise_project_id=production)
    not_allowed = _error(
        buyer.call("POST", "/v1/orders", hourly), 422, "ENTERPRISE_PROJECT_NOT_ALLOWED"
    )
    assert "enterprise_project_id" in not_allowed["fields"], not_allowed

    # orders and purchased apps show their project
    service_order = _bought(buyer, _body(market.service, production))
    shown = buyer.ok("GET", f"/v1/orders/{service_order['id']}")
    assert (shown["enterprise_project_id"], shown["enterprise_project_name"]) == (
        production,
        "Production",
    )
    (mine,) = [o for o in buyer.ok("GET", "/v1/orders")["items"] if o["id"] == shown["id"]]
    assert (mine["enterprise_project_id"], mine["enterprise_project_name"]) == (
        production,
        "Production",
    )
    # a buyer's projects are its own accounting: its seller does not see them
    sold = market.seller.ok("GET", f"/v1/seller/orders/{service_order['id']}")
    assert "enterprise_project_id" not in sold and "enterprise_project_name" not in sold, sold
    # a supervised app is listed once its flow completes: its row of unsubscriptions
    service_app = buyer.ok("GET", f"/v1/purchased-apps/{_subscription_of(buyer, service_order)}")
    assert (service_app["enterprise_project_id"], service_app["enterprise_project_name"]) == (
        production,
        "Production",
    )
    saas = _bought(buyer, _body(market.nimbus, production))
    saas_app = _app_of(buyer, saas)
    assert (saas_app["enterprise_project_id"], saas_app["enterprise_project_name"]) == (
        production,
        "Production",
    )
    detail = buyer.ok("GET", f"/v1/purchased-apps/{saas_app['id']}")
    assert (detail["enterprise_project_id"], detail["enterprise_project_name"]) == (
        production,
        "Production",
    )

    # the moves refused, all or nothing
    one_time = _error(_move(buyer, "default", [service_app["id"]]), 422, "MOVE_NOT_ALLOWED")
    _named(one_time["fields"], "subscription_ids", "one_time", service_app["id"])
    across = _error(_move(buyer, staging, [saas_app["id"]]), 422, "MOVE_NOT_ALLOWED")
    _named(across["fields"], "subscription_ids", "project_type", saas_app["id"])
    both = _error(
        _move(buyer, "default", [saas_app["id"], service_app["id"]]), 422, "MOVE_NOT_ALLOWED"
    )
    _named(both["fields"], "subscription_ids", service_app["id"])
    assert buyer.ok("GET", f"/v1/purchased-apps/{saas_app['id']}")["enterprise_project_id"] == (
        production
    )
    buyer.ok("POST", f"/v1/enterprise-projects/{retired}/disable", {})
    eventually(  # once orders has heard of it
        lambda: buyer.call("POST", "/v1/orders", _body(market.nimbus, retired)),
        lambda response: response.status_code != 201,
    )
    into_disabled = _error(_move(buyer, retired, [saas_app["id"]]), 400)
    assert "enterprise_project_id" in into_disabled["fields"], into_disabled
    _error(_move(buyer, "eps_00000000000000000000000000000000", [saas_app["id"]]), 404)
    _error(_move(buyer, production, ["sub_00000000000000000000000000000000"]), 404)


# -- 3. invoices --------------------------------------------------------------------------


def test_invoices_requested_issued_as_pdfs_returned_and_reissued(market):
    buyer = _buyer(market)
    production = _project(buyer, "Production", "commercial")["id"]
    first = _bought(buyer, _body(market.nimbus, quantity=2))
    second = _bought(buyer, _body(market.nimbus, production, quantity=3))
    unpaid = buyer.ok("POST", "/v1/orders", _body(market.nimbus), status=201)
    other_seller = _bought(buyer, _body(market.license))
    details = {
        "title": "Northwind Traders Ltd",
        "tax_id": "91310000MA1FL0XQ2K",
        "address": "1 Harbour Road, Shanghai",
        "email": "ap@northwind.example",
    }

    def request(order_ids: list[str]) -> requests.Response:
        return buyer.call("POST", "/v1/invoices", {"order_ids": order_ids, **details})

    not_paid = _error(request([first["id"], unpaid["id"]]), 409, "CONFLICT")
    _named(not_paid["fields"], "order_ids", unpaid["id"], "not_paid")
    _error(request([first["id"], other_seller["id"]]), 422, "INVOICE_SELLERS_DIFFER")
    _error(request(["ord_00000000000000000000000000000000"]), 404)

    requested = request([first["id"], second["id"]])
    assert requested.status_code == 201, requested.text
    invoice = requested.json()
    assert invoice["status"] == "requested" and invoice["number"] is None, invoice
    # the ledger's amounts: what each order's payment took
    paid = {
        item["order_id"]: -_minor(item["amount"])
        for item in _ledger(buyer)
        if item["kind"] == "payment"
    }
    assert (paid[first["id"]], paid[second["id"]]) == (2 * NIMBUS_MONTH, 3 * NIMBUS_MONTH)
    total = paid[first["id"]] + paid[second["id"]]
    assert _minor(invoice["amount"]) == total
    assert {line["order_id"]: _minor(line["amount"]) for line in invoice["orders"]} == {
        first["id"]: paid[first["id"]],
        second["id"]: paid[second["id"]],
    }
    # an order on a live invoice is not invoiced twice
    twice = _error(request([second["id"]]), 409, "CONFLICT")
    _named(twice["fields"], "order_ids", second["id"], "already_invoiced")

    early = buyer.call("GET", f"/v1/invoices/{invoice['id']}/pdf")
    if early.status_code != 200:  # not issued yet: there is no document to give
        _error(early, 409)
    issued = _issued(buyer, invoice["id"])
    assert re.fullmatch(r"INV-2026-\d{6}", issued["number"]), issued
    assert issued["issued_at"].startswith(MONTH)
    assert issued["seller"]["company_name"] == "Demo Seller Co"
    listed = buyer.ok("GET", "/v1/invoices")
    assert [item["id"] for item in listed["items"]] == [invoice["id"]]
    response, text = _pdf(buyer, invoice["id"])
    for value in (
        "Invoice",
        issued["number"],
        details["title"],
        details["tax_id"],
        details["email"],
        first["id"],
        second["id"],
        "Demo Seller Co",
        "USD",
    ):
        assert _in_pdf(text, value), (value, text)
    assert any(_in_pdf(text, figure) for figure in _formatted(total)), (total, text)
    for order_id in (first["id"], second["id"]):
        assert any(_in_pdf(text, figure) for figure in _formatted(paid[order_id])), text
    _rendered(response.content)

    # returned: its orders may be invoiced again; reissued under a new title and number
    returned = buyer.ok(
        "POST", f"/v1/invoices/{invoice['id']}/return", {"reason": "The title was wrong."}
    )
    assert (returned["status"], returned["return_reason"]) == ("returned", "The title was wrong.")
    _error(buyer.call("POST", f"/v1/invoices/{invoice['id']}/return", {"reason": "again"}), 409)
    reissued = buyer.ok(
        "POST",
        f"/v1/invoices/{invoice['id']}/reissue",
        {"title": "Northwind Trading Co"},
        status=201,
    )
    assert (reissued["status"], reissued["reissue_of"]) == ("requested", invoice["id"])
    assert reissued["title"] == "Northwind Trading Co"
    assert reissued["tax_id"] == details["tax_id"]
    assert {line["order_id"] for line in reissued["orders"]} == {first["id"], second["id"]}
    old = buyer.ok("GET", f"/v1/invoices/{invoice['id']}")
    assert (old["status"], old["reissued_as"]) == ("reissued", reissued["id"])
    _error(buyer.call("POST", f"/v1/invoices/{invoice['id']}/reissue", {}), 409)
    new = _issued(buyer, reissued["id"])
    assert re.fullmatch(r"INV-2026-\d{6}", new["number"]), new
    assert new["number"] > issued["number"]  # the year's next one, never the old again
    assert {item["id"]: item["status"] for item in buyer.ok("GET", "/v1/invoices")["items"]} == {
        invoice["id"]: "reissued",
        reissued["id"]: "issued",
    }
    assert _minor(new["amount"]) == total
    _response, text = _pdf(buyer, reissued["id"])
    assert _in_pdf(text, new["number"]) and _in_pdf(text, "Northwind Trading Co"), text
    assert not _in_pdf(text, issued["number"]), text
    # still live: its orders are not invoiced again
    _named(
        _error(request([first["id"]]), 409, "CONFLICT")["fields"],
        "order_ids",
        first["id"],
        "already_invoiced",
    )


def _rendered(content: bytes) -> None:
    """Page 1 renders to a readable page: an A4-ish size, ink on it; kept as an artifact."""
    document = pypdfium2.PdfDocument(content)
    try:
        page = document[0]
        width, height = page.get_size()
        assert 500 < width < 700 and 700 < height < 900, (width, height)
        image = page.render(scale=1.5).to_pil().convert("L")
    finally:
        document.close()
    darkest, lightest = image.getextrema()
    assert lightest > 200 and darkest < 100, (darkest, lightest)  # white paper, dark text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / "e2e-invoice-page-1.png")


# -- 4. another buyer sees nothing --------------------------------------------------------


def test_another_buyer_sees_nothing_of_projects_bills_or_invoices(market):
    owner = _buyer(market)
    private = _project(owner, "Private", "commercial")["id"]
    order = _bought(owner, _body(market.nimbus, private))
    app = _app_of(owner, order)
    invoice = owner.ok(
        "POST",
        "/v1/invoices",
        {
            "order_ids": [order["id"]],
            "title": "Owner Ltd",
            "tax_id": "TAX-OWNER-1",
            "address": "2 Owner Street",
            "email": "owner@example.com",
        },
        status=201,
    )
    _issued(owner, invoice["id"])
    stranger = _buyer(market)

    assert [p["id"] for p in stranger.ok("GET", "/v1/enterprise-projects")["items"]] == ["default"]
    for action in ("disable", "enable"):
        _error(stranger.call("POST", f"/v1/enterprise-projects/{private}/{action}", {}), 404)
    _error(_move(stranger, private, [app["id"]]), 404)
    _error(_move(stranger, "default", [app["id"]]), 404)
    unknown = stranger.call("POST", "/v1/orders", _body(market.nimbus, private))
    _named(_error(unknown, 400)["fields"], "enterprise_project_id", "unknown")

    bill = _bill(stranger)
    assert (bill["total"], bill["items"], _minor(bill["total_net"])) == (0, [], 0), bill
    assert all(_minor(row["net"]) == 0 for row in bill["totals"]), bill
    filtered = stranger.call("GET", "/v1/billing/bills", month=MONTH, enterprise_project_id=private)
    assert filtered.status_code in (200, 404), filtered.text
    if filtered.status_code == 200:
        assert filtered.json()["items"] == [], filtered.text
    costs = stranger.ok(
        "GET",
        "/v1/billing/cost-analysis",
        **{"from": f"{MONTH}-01", "to": f"{MONTH}-31", "group_by": "enterprise_project"},
    )
    assert _minor(costs["total"]) == 0
    assert all(_minor(s["amount"]) == 0 for s in costs["series"]), costs

    assert stranger.ok("GET", "/v1/invoices")["items"] == []
    for method, path, body in (
        ("GET", f"/v1/invoices/{invoice['id']}", None),
        ("GET", f"/v1/invoices/{invoice['id']}/pdf", None),
        ("POST", f"/v1/invoices/{invoice['id']}/return", {"reason": "not mine"}),
        ("POST", f"/v1/invoices/{invoice['id']}/reissue", {}),
    ):
        _error(stranger.call(method, path, body), 404)
    theirs = stranger.call(
        "POST",
        "/v1/invoices",
        {
            "order_ids": [order["id"]],
            "title": "Stranger Ltd",
            "tax_id": "TAX-STRANGER",
            "address": "3 Elsewhere",
            "email": "stranger@example.com",
        },
    )
    _error(theirs, 404)
    # and the owner's things are where they were
    assert owner.ok("GET", f"/v1/purchased-apps/{app['id']}")["enterprise_project_id"] == private
    assert owner.ok("GET", f"/v1/invoices/{invoice['id']}")["status"] == "issued"


# -- 5. an image's resources follow their moves ---------------------------------------------


def test_an_image_moves_with_or_without_its_disks_and_eips(market):
    buyer, _account = _buyer_with_cloud(market.system, Cloud(market.system))
    web = _project(buyer, "Web", "commercial")["id"]
    shop = _project(buyer, "Shop", "commercial")["id"]
    body = _image_order_body(market.image, eip={"bandwidth_mbps": 2}, data_disks=[{"size_gb": 10}])
    body["enterprise_project_id"] = web
    whole = _bought(buyer, body)
    alone = _bought(buyer, body)
    apps = {order["id"]: _deployed(buyer, order, "active") for order in (whole, alone)}

    def projects(app_id: str) -> dict[str, set[str | None]]:
        resources = buyer.ok("GET", f"/v1/purchased-apps/{app_id}")["deployment"]["resources"]
        kept: dict[str, set[str | None]] = {}
        for resource in resources:
            if resource["type"] in ("server", "volume", "eip"):
                kept.setdefault(resource["type"], set()).add(resource["enterprise_project_id"])
        return kept

    for app in apps.values():
        assert projects(app["id"]) == {"server": {web}, "volume": {web}, "eip": {web}}

    with_associated = _move(buyer, shop, [apps[whole["id"]]["id"]], mode="with_associated")
    assert with_associated.status_code == 200, with_associated.text
    independent = _move(buyer, shop, [apps[alone["id"]]["id"]], mode="independent")
    assert independent.status_code == 200, independent.text
    eventually(
        lambda: projects(apps[whole["id"]]["id"]),
        lambda seen: seen == {"server": {shop}, "volume": {shop}, "eip": {shop}},
    )
    eventually(
        lambda: projects(apps[alone["id"]]["id"]),
        lambda seen: seen == {"server": {shop}, "volume": {web}, "eip": {web}},
    )
    for app in apps.values():
        assert buyer.ok("GET", f"/v1/purchased-apps/{app['id']}")["enterprise_project_id"] == shop


# -- 6. a reseller's customer: its projects, the reseller's bill, no invoice -----------------


def test_a_resellers_customer_orders_in_its_project_and_the_reseller_is_billed(market):
    system = market.system
    reseller = new_party(system, "reseller")
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    reseller.ok(
        "POST",
        "/v1/reseller/customers",
        {"name": "Customer", "email": email, "password": "a long e2e password"},
        status=201,
    )
    customer = Party(system, None, sign_in(system, email, "a long e2e password"), email)
    market.operator.ok(
        "POST",
        f"/v1/admin/accounts/{reseller.id}/credit-limit",
        {"amount": {"amount": CREDIT, "currency": "USD"}},
    )
    lab = _project(customer, "Lab", "commercial")["id"]
    order = customer.ok("POST", "/v1/orders", _body(market.nimbus, lab, quantity=2), status=201)
    assert (order["status"], order["paid_by_reseller"]) == ("paid", True)
    assert (order["enterprise_project_id"], order["enterprise_project_name"]) == (lab, "Lab")

    # the payer's statement: the reseller's bill holds the customer's order, in its project
    bill = eventually(
        lambda: reseller.ok("GET", "/v1/billing/bills", month=MONTH),
        lambda seen: seen["total"] == 1 and seen["items"][0]["product_name"],
    )
    (line,) = bill["items"]
    assert (line["kind"], line["order_id"], _minor(line["amount"])) == (
        "charge",
        order["id"],
        2 * NIMBUS_MONTH,
    )
    assert (line["buyer_account_id"], line["enterprise_project_id"]) == (
        order["account_id"],
        lab,
    )
    assert line["enterprise_project_name"] == "Lab", line
    assert _minor(bill["total_net"]) == 2 * NIMBUS_MONTH
    (payment,) = _ledger(reseller)
    assert (payment["id"], -_minor(payment["amount"])) == (line["id"], 2 * NIMBUS_MONTH)
    # the customer paid nothing itself: no line of its own, and no invoice to ask for
    assert _bill(customer)["items"] == []
    refused = customer.call(
        "POST",
        "/v1/invoices",
        {
            "order_ids": [order["id"]],
            "title": "Customer Ltd",
            "tax_id": "TAX-CUSTOMER",
            "address": "4 Customer Lane",
            "email": email,
        },
    )
    _named(_error(refused, 409, "CONFLICT")["fields"], "order_ids", order["id"], "paid_by_reseller")
