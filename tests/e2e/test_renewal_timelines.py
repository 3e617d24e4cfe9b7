"""End to end: a yearly/monthly SaaS subscription's whole timeline through the gateway and
the test clock, with the whole system running and the reference seller app delivering
the demo SaaS product: bought, expired (grace), renewed from grace with the expiry
continuing from the original one; never renewed, frozen then released; renewed from
frozen."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3

import pytest

from mercato.periods import renewed_expiry
from mercato_devrun import DEMO_OPERATOR
from tests.e2e.parties import Party, card, eventually, new_party, sign_in

pytestmark = pytest.mark.e2e

# the sweep looks every second here, so a move shows within a few seconds of the clock's
SYSTEM_ENV = {"SUBSCRIPTION_SWEEP_SECONDS": "1"}
DAY = dt.timedelta(days=1)
MONTH = {"unit": "month", "count": 1}


def _operator(system) -> Party:
    return Party(system, None, sign_in(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"]))


def _move_clock_to(system, when: dt.datetime) -> None:
    operator = _operator(system)
    now = dt.datetime.fromisoformat(operator.ok("GET", "/v1/admin/clock")["now"])
    seconds = math.ceil((when - now).total_seconds())
    if seconds > 0:
        operator.ok("POST", "/v1/admin/clock", {"advance_seconds": seconds})


def _bought_saas(system) -> tuple[Party, dict]:
    """A new buyer with money and an enabled month of the demo SaaS backup product."""
    buyer = new_party(system, "buyer")
    buyer.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": 50_000, "currency": "USD"}, "card": card(system)},
        status=201,
    )
    # the demo seller's products are seeded once the system is up
    found = eventually(
        lambda: buyer.ok("GET", "/v1/products", q="backup")["items"], lambda items: items
    )
    product = buyer.ok("GET", f"/v1/products/{found[0]['id']}")
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
    apps = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps"),
        lambda seen: seen["total"] == 1,
    )
    app_id = apps["items"][0]["id"]
    app = eventually(
        lambda: buyer.ok("GET", f"/v1/purchased-apps/{app_id}"),
        lambda seen: seen["status"] == "enabled",
        timeout=60,
    )
    return buyer, app


def _tenant(system, order_id: str) -> dict:
    """The SaaS tenant as the reference seller app keeps it (its own SQLite file)."""
    connection = sqlite3.connect(system.env["DEMO_SELLER_SAAS_DB"])
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute(
            "SELECT state, frozen, expire_time FROM instances WHERE order_id = ?", (order_id,)
        ).fetchone()
    finally:
        connection.close()
    return dict(row) if row is not None else {}


def _status_becomes(system, buyer: Party, app_id: str, status: str) -> dict:
    buyer.sign_in_again()  # the clock may have moved past the token's lifetime
    return eventually(
        lambda: buyer.ok("GET", f"/v1/purchased-apps/{app_id}"),
        lambda seen: seen["status"] == status,
        timeout=60,
    )


def _renew(buyer: Party, app_id: str, period: dict) -> tuple[dict, dict]:
    quote = buyer.ok(
        "POST", f"/v1/purchased-apps/{app_id}/renewal-quotes", {"period": period}, status=201
    )
    order = buyer.ok(
        "POST", f"/v1/purchased-apps/{app_id}/renewals", {"quote_id": quote["id"]}, status=201
    )
    assert (order["type"], order["subscription_id"]) == ("renewal", app_id)
    paid = buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    return quote, paid


def test_bought_expired_and_renewed_from_grace_continues_from_the_original_expiry(system):
    buyer, app = _bought_saas(system)
    expires = dt.datetime.fromisoformat(app["expires_at"])
    assert (expires.hour, expires.minute, expires.second) == (23, 59, 59)
    assert app["grace_ends_at"] == (expires + 15 * DAY).isoformat()
    assert app["release_at"] == (expires + 30 * DAY).isoformat()

    _move_clock_to(system, expires - 6 * DAY)
    buyer.sign_in_again()
    renewals = buyer.ok("GET", "/v1/renewals", days=7)
    assert [item["subscription_id"] for item in renewals["items"]] == [app["id"]]
    assert renewals["items"][0]["days_left"] == 6

    _move_clock_to(system, expires + 2 * DAY)
    expired = _status_becomes(system, buyer, app["id"], "expired")
    assert expired["expires_at"] == app["expires_at"]
    (item,) = buyer.ok("GET", "/v1/renewals")["items"]
    assert (item["status"], item["days_left"]) == ("expired", 0)

    quote, paid = _renew(buyer, app["id"], MONTH)
    assert quote["new_expires_at"] == renewed_expiry(expires, "month", 1, "UTC").isoformat()
    assert paid["status"] == "completed"
    renewed = _status_becomes(system, buyer, app["id"], "enabled")
    assert renewed["expires_at"] == quote["new_expires_at"]  # from the original expiry
    orders = buyer.ok("GET", "/v1/orders")["items"]
    assert sorted(order["type"] for order in orders) == ["purchase", "renewal"]
    # a quote makes one order
    again = buyer.call(
        "POST", f"/v1/purchased-apps/{app['id']}/renewals", {"quote_id": quote["id"]}
    )
    assert again.status_code == 409 and again.json()["error"] == "QUOTE_USED", again.text


def test_never_renewed_it_is_frozen_then_released(system):
    buyer, app = _bought_saas(system)
    expires = dt.datetime.fromisoformat(app["expires_at"])
    _move_clock_to(system, expires + DAY)
    _status_becomes(system, buyer, app["id"], "expired")
    _move_clock_to(system, expires + 15 * DAY + dt.timedelta(hours=1))
    frozen = _status_becomes(system, buyer, app["id"], "frozen")
    assert frozen["basic"]["resource_status"] == "frozen"
    # provisioning froze the tenant at the seller's (updateInstanceStatus FREEZE)
    eventually(lambda: _tenant(system, app["order_id"]), lambda t: t.get("frozen") == 1, 60)
    _move_clock_to(system, expires + 30 * DAY + dt.timedelta(hours=1))
    _status_becomes(system, buyer, app["id"], "released")
    # and released it there (releaseInstance)
    eventually(lambda: _tenant(system, app["order_id"]), lambda t: t.get("state") == "released", 60)
    refused = buyer.call(
        "POST", f"/v1/purchased-apps/{app['id']}/renewal-quotes", {"period": MONTH}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "SUBSCRIPTION_RELEASED"


def test_renewed_from_frozen_it_is_enabled_again_from_the_original_expiry(system):
    buyer, app = _bought_saas(system)
    expires = dt.datetime.fromisoformat(app["expires_at"])
    _move_clock_to(system, expires + 16 * DAY)
    _status_becomes(system, buyer, app["id"], "frozen")
    tenant = eventually(
        lambda: _tenant(system, app["order_id"]), lambda t: t.get("frozen") == 1, 60
    )
    quote, paid = _renew(buyer, app["id"], {"unit": "month", "count": 2})
    assert paid["status"] == "completed"
    renewed = _status_becomes(system, buyer, app["id"], "enabled")
    assert renewed["expires_at"] == renewed_expiry(expires, "month", 2, "UTC").isoformat()
    assert renewed["expires_at"] == quote["new_expires_at"]
    # unfrozen at the seller's, its expiry refreshed (refreshInstance)
    eventually(
        lambda: _tenant(system, app["order_id"]),
        lambda t: t.get("frozen") == 0 and t.get("expire_time") != tenant["expire_time"],
        60,
    )
