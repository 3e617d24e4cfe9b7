"""End to end: the demo data ``make run`` seeds (``mercato_devrun``) beyond the accounts
and products test_whole_system.py checks: the demo buyer's two enterprise projects
besides ``default``, a purchase paid in each, and the invoice it asked for its
Production backup order, which billing's sweep issues. Seeding again makes nothing
new."""

from __future__ import annotations

import pytest

import mercato_devrun
from mercato_devrun import DEMO_ACCOUNTS, DEMO_INVOICE, DEMO_PROJECTS, DEMO_PURCHASES
from tests.e2e.parties import Party, eventually, sign_in

pytestmark = pytest.mark.e2e

SYSTEM_ENV = {"INVOICE_ISSUE_SECONDS": "1"}
PAID = ("paid", "delivering", "awaiting_acceptance", "completed")


@pytest.fixture(scope="module")
def buyer(system) -> Party:
    eventually(
        system.log,
        lambda log: "demo purchases seeded" in log or "demo purchases not seeded" in log,
        timeout=180,
    )
    assert "demo purchases not seeded" not in system.log(), system.log()[-5000:]
    account = next(account for account in DEMO_ACCOUNTS if account["type"] == "buyer")
    return Party(system, None, sign_in(system, account["email"], account["password"]))


def _projects(buyer: Party) -> dict[str, dict]:
    return {p["name"]: p for p in buyer.ok("GET", "/v1/enterprise-projects")["items"]}


def _orders(buyer: Party) -> list[dict]:
    return buyer.ok("GET", "/v1/orders", page_size=100)["items"]


def test_the_demo_buyer_has_production_and_staging_besides_default(buyer):
    projects = _projects(buyer)
    assert set(projects) == {"default", *(p["name"] for p in DEMO_PROJECTS)}, projects
    for seeded in DEMO_PROJECTS:
        project = projects[seeded["name"]]
        assert (project["type"], project["status"]) == (seeded["type"], "enabled"), project
        assert project["description"] == seeded["description"]
        assert project["id"].startswith("eps_")
    assert projects["default"]["type"] == "commercial"


def test_each_demo_purchase_is_paid_in_its_project(buyer):
    projects = _projects(buyer)
    orders = _orders(buyer)
    for purchase in DEMO_PURCHASES:
        project = projects[purchase["project"]]
        (order,) = [
            o
            for o in orders
            if o["enterprise_project_id"] == project["id"]
            and o["lines"][0]["product_name"] == purchase["product"]
        ]
        assert order["status"] in PAID, order
        assert order["enterprise_project_name"] == purchase["project"]
        assert order["lines"][0]["quantity"] == purchase["quantity"]
    assert len(orders) == len(DEMO_PURCHASES)
    # each project holds purchases: the apps are listed under their projects
    apps = buyer.ok("GET", "/v1/purchased-apps", page_size=100)["items"]
    assert {app["enterprise_project_name"] for app in apps} == {p["name"] for p in DEMO_PROJECTS}


def test_the_invoice_asked_for_the_production_backup_is_issued(buyer):
    project_id = _projects(buyer)[DEMO_INVOICE["project"]]["id"]
    (order,) = [
        o
        for o in _orders(buyer)
        if o["enterprise_project_id"] == project_id
        and o["lines"][0]["product_name"] == DEMO_INVOICE["product"]
    ]
    listed = eventually(
        lambda: buyer.ok("GET", "/v1/invoices")["items"],
        lambda items: len(items) == 1 and items[0]["status"] == "issued",
        timeout=60,
    )
    invoice = buyer.ok("GET", f"/v1/invoices/{listed[0]['id']}")
    assert [line["order_id"] for line in invoice["orders"]] == [order["id"]]
    assert invoice["number"].startswith("INV-")
    assert (invoice["title"], invoice["tax_id"], invoice["email"]) == (
        DEMO_INVOICE["title"],
        DEMO_INVOICE["tax_id"],
        DEMO_INVOICE["email"],
    )
    assert invoice["seller"]["company_name"] == "Demo Seller Co"
    assert invoice["amount"] == order["amount_due"]


def test_seeding_again_makes_nothing_new(buyer, system):
    before = (_projects(buyer), _orders(buyer), buyer.ok("GET", "/v1/invoices")["total"])
    assert mercato_devrun.seed_demo_purchases(system.gateway) == []
    after = (_projects(buyer), _orders(buyer), buyer.ok("GET", "/v1/invoices")["total"])
    assert [o["id"] for o in after[1]] == [o["id"] for o in before[1]]
    assert set(after[0]) == set(before[0]) and after[2] == before[2] == 1
