"""End to end, through the gateway and the test clock with the whole system running:
a SaaS subscription of the demo product (delivered by the reference seller app)
upgraded mid-period, the seller's system applying it through provisioning; a license
renewed automatically from the balance, and one whose buyer has no balance failing,
being told, and renewed the next day once it tops up."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest

from mercato.periods import renewed_expiry
from mercato_devrun import DEMO_OPERATOR
from tests.e2e.parties import Party, card, eventually, new_party, sign_in

pytestmark = pytest.mark.e2e

# the sweeps look every second here, so a move shows within a few seconds of the clock's
SYSTEM_ENV = {"SUBSCRIPTION_SWEEP_SECONDS": "1"}
DAY = dt.timedelta(days=1)
MONTH = {"unit": "month", "count": 1}
LICENSE_PRICE = 10_000  # a month


def _operator(system) -> Party:
    return Party(system, None, sign_in(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"]))


def _now(system) -> dt.datetime:
    return dt.datetime.fromisoformat(_operator(system).ok("GET", "/v1/admin/clock")["now"])


def _move_clock_to(system, when: dt.datetime) -> None:
    operator = _operator(system)
    now = dt.datetime.fromisoformat(operator.ok("GET", "/v1/admin/clock")["now"])
    seconds = math.ceil((when - now).total_seconds())
    if seconds > 0:
        operator.ok("POST", "/v1/admin/clock", {"advance_seconds": seconds})


def _buyer(system, top_up: int) -> Party:
    buyer = new_party(system, "buyer")
    if top_up:
        buyer.ok(
            "POST",
            "/v1/billing/top-ups",
            {"amount": {"amount": top_up, "currency": "USD"}, "card": card(system)},
            status=201,
        )
    return buyer


def _balance(buyer: Party) -> int:
    return buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"]


def _app(buyer: Party, app_id: str, until) -> dict:
    buyer.sign_in_again()  # the clock may have moved past the token's lifetime
    return eventually(lambda: buyer.ok("GET", f"/v1/purchased-apps/{app_id}"), until, timeout=60)


# -- upgrade ---------------------------------------------------------------------------


def test_a_saas_subscription_upgraded_mid_period_reaches_the_seller_app(system):
    buyer = _buyer(system, 100_000)
    found = eventually(
        lambda: buyer.ok("GET", "/v1/products", q="backup")["items"], lambda items: items
    )
    product = buyer.ok("GET", f"/v1/products/{found[0]['id']}")
    specification = product["specifications"][0]["id"]
    order = buyer.ok(
        "POST",
        "/v1/orders",
        {
            "product_id": product["id"],
            "specification_id": specification,
            "billing_mode": "yearly_monthly",
            "period": MONTH,
            "quantity": 1,
            "accept_terms": True,
        },
        status=201,
    )
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    app_id = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps"), lambda seen: seen["total"] == 1
    )["items"][0]["id"]
    app = _app(buyer, app_id, lambda seen: seen["status"] == "enabled")
    expires = dt.datetime.fromisoformat(app["expires_at"])

    # half way through the month
    _move_clock_to(system, expires - dt.timedelta(days=15))
    buyer.sign_in_again()
    lower = buyer.call(
        "POST",
        f"/v1/purchased-apps/{app_id}/upgrade-quotes",
        {"specification_id": specification, "quantity": 1},
    )
    assert lower.status_code == 422 and lower.json()["error"] == "DOWNGRADE_NOT_SUPPORTED"
    quote = buyer.ok(
        "POST",
        f"/v1/purchased-apps/{app_id}/upgrade-quotes",
        {"specification_id": specification, "quantity": 3},
        status=201,
    )
    new_value, unused = (line["amount"]["amount"] for line in quote["lines"])
    assert [line["item"] for line in quote["lines"]] == ["new_configuration", "unused_value"]
    assert new_value > 0 > unused
    assert quote["amount_due"]["amount"] == new_value + unused
    assert abs(new_value - 3 * -unused) <= 2  # three times the unit, for the same time
    assert 0 < quote["amount_due"]["amount"] < 2 * order["amount_due"]["amount"]
    upgrade = buyer.ok(
        "POST",
        f"/v1/purchased-apps/{app_id}/upgrades",
        {"quote_id": quote["id"], "accept_terms": True},
        status=201,
    )
    assert (upgrade["type"], upgrade["amount_due"]) == ("upgrade", quote["amount_due"])
    again = buyer.call(
        "POST",
        f"/v1/purchased-apps/{app_id}/upgrades",
        {"quote_id": quote["id"], "accept_terms": True},
    )
    assert again.status_code == 409 and again.json()["error"] == "QUOTE_USED", again.text
    before = _balance(buyer)
    paid = buyer.ok("POST", f"/v1/orders/{upgrade['id']}/pay", {"payment_method": "balance"})
    assert paid["status"] in ("delivering", "completed")
    assert _balance(buyer) == before - quote["amount_due"]["amount"]

    # provisioning asks the reference seller app (upgradeInstance), which applies it
    upgraded = _app(buyer, app_id, lambda seen: seen["quantity"] == 3 and not seen["upgrading"])
    assert upgraded["expires_at"] == app["expires_at"]  # the expiry does not move
    assert buyer.ok("GET", f"/v1/orders/{upgrade['id']}")["status"] == "completed"
    eventually(
        lambda: buyer.ok("GET", "/v1/messages")["items"],
        lambda items: any(m["kind"] == "subscription_upgraded" for m in items),
    )


# -- auto-renewal ------------------------------------------------------------------------


def _license_product(system) -> dict:
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
            "summary": "A license key, by the month.",
            "description": "A license, supervised until the buyer accepts it.",
            "category": "security",
            "delivery_method": "license",
            "service_supervision": True,
            "terms": "One key per server.",
            "specifications": [
                {
                    "name": "Per server",
                    "prices": [
                        {
                            "billing_mode": "yearly_monthly",
                            "period_unit": "month",
                            "amount": LICENSE_PRICE,
                        }
                    ],
                }
            ],
        },
        status=201,
    )
    return seller.ok("POST", f"/v1/seller/products/{product['id']}/publish", {})


def _licensed(system, product: dict, buyer: Party) -> dict:
    """The buyer pays a month of the license from its balance and accepts it."""
    order = buyer.ok(
        "POST",
        "/v1/orders",
        {
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "yearly_monthly",
            "period": MONTH,
            "quantity": 1,
            "accept_terms": True,
        },
        status=201,
    )
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    flow = eventually(
        lambda: buyer.ok("GET", "/v1/supervision/flows", q=order["id"]),
        lambda page: page["total"] == 1 and page["items"][0]["step"] == "awaiting_acceptance",
        timeout=60,
    )["items"][0]
    buyer.ok("POST", f"/v1/supervision/flows/{flow['id']}/acceptance", {})
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps")["items"],
        lambda items: any(a["order_id"] == order["id"] and a["status"] == "enabled" for a in items),
    )
    return next(a for a in apps if a["order_id"] == order["id"])


def _due(expires: dt.datetime) -> dt.datetime:
    """03:00 UTC (the buyers' zone), 7 days before the expiry's date."""
    return dt.datetime.combine(
        expires.astimezone(dt.UTC).date() - 7 * DAY, dt.time(3), tzinfo=dt.UTC
    )


def _renewal_orders(buyer: Party) -> list[dict]:
    return [o for o in buyer.ok("GET", "/v1/orders")["items"] if o["type"] == "renewal"]


def test_a_license_renews_itself_from_the_balance_and_without_one_fails_until_topped_up(system):
    product = _license_product(system)
    rich, poor = _buyer(system, 50_000), _buyer(system, LICENSE_PRICE)
    rich_app, poor_app = _licensed(system, product, rich), _licensed(system, product, poor)

    missing = rich.call(
        "PUT",
        f"/v1/purchased-apps/{rich_app['id']}/auto-renew",
        {"enabled": True},
    )
    assert missing.status_code == 400 and "period" in missing.json()["fields"], missing.text
    on = rich.ok(
        "PUT", f"/v1/purchased-apps/{rich_app['id']}/auto-renew", {"enabled": True, "period": MONTH}
    )
    poor.ok(
        "PUT", f"/v1/purchased-apps/{poor_app['id']}/auto-renew", {"enabled": True, "period": MONTH}
    )
    expires = dt.datetime.fromisoformat(rich_app["expires_at"])
    due = _due(expires)
    poor_due = _due(dt.datetime.fromisoformat(poor_app["expires_at"]))
    assert on["next_auto_renew_at"] == max(due, _now(system)).isoformat()
    assert rich.ok("GET", f"/v1/purchased-apps/{rich_app['id']}")["auto_renew"] is True

    _move_clock_to(system, max(due, poor_due) + dt.timedelta(minutes=1))
    renewed = _app(rich, rich_app["id"], lambda seen: seen["expires_at"] != rich_app["expires_at"])
    assert renewed["expires_at"] == renewed_expiry(expires, "month", 1, "UTC").isoformat()
    (order,) = _renewal_orders(rich)
    assert (order["status"], order["amount_due"]["amount"]) == ("completed", LICENSE_PRICE)
    assert _balance(rich) == 50_000 - 2 * LICENSE_PRICE
    # no new supervision flow for a renewal
    assert rich.ok("GET", "/v1/supervision/flows", q=order["id"])["total"] == 0

    # the buyer without a balance is told, and the order waits for tomorrow's attempt
    poor.sign_in_again()
    message = eventually(
        lambda: poor.ok("GET", "/v1/messages")["items"],
        lambda items: any(m["kind"] == "auto_renew_failed" for m in items),
        timeout=60,
    )
    assert message
    (waiting,) = _renewal_orders(poor)
    assert waiting["status"] == "unpaid"
    assert (
        poor.ok("GET", f"/v1/purchased-apps/{poor_app['id']}")["expires_at"]
        == (poor_app["expires_at"])
    )
    poor.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": LICENSE_PRICE, "currency": "USD"}, "card": card(system)},
        status=201,
    )
    _move_clock_to(system, max(due, poor_due) + DAY + dt.timedelta(minutes=1))
    _app(poor, poor_app["id"], lambda seen: seen["expires_at"] != poor_app["expires_at"])
    (paid,) = _renewal_orders(poor)
    assert (paid["id"], paid["status"]) == (waiting["id"], "completed")
    assert _balance(poor) == 0
