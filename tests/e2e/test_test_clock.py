"""The test clock end to end: the whole system runs with MERCATO_CLOCK=controllable (the
``system`` fixture, one per module, so moving time here touches no other module's tests);
an operator moves every service's time through the gateway and the timers due at the
new time run."""

import datetime as dt
import time
import uuid

import pytest
import requests

from mercato_devrun import DEMO_OPERATOR
from mercato_testing.interface import wait_for

pytestmark = pytest.mark.e2e

DAY_AND_AN_HOUR = 25 * 3600  # past an unpaid order's 24-hour payment window
DUE_TIMERS_RUN_WITHIN_SECONDS = 10
PASSWORD = "a long e2e password"


def _token(system, email: str, password: str) -> dict[str, str]:
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens", json={"email": email, "password": password}, timeout=15
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def _new_buyer(system) -> tuple[str, dict[str, str]]:
    email = f"clock-{uuid.uuid4().hex[:8]}@example.com"
    body = {"name": "E2E clock buyer", "email": email, "password": PASSWORD, "type": "buyer"}
    created = requests.post(f"{system.gateway}/v1/accounts", json=body, timeout=15)
    assert created.status_code == 201, created.text
    return email, _token(system, email, PASSWORD)


def _place_unpaid_order(system, buyer: dict[str, str]) -> dict:
    products = wait_for(
        lambda: requests.get(
            f"{system.gateway}/v1/products", params={"q": "backup"}, timeout=15
        ).json()["items"],
        "the demo seller's products",
        timeout=60,
    )
    product = requests.get(f"{system.gateway}/v1/products/{products[0]['id']}", timeout=15).json()
    placed = requests.post(
        f"{system.gateway}/v1/orders",
        json={
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "yearly_monthly",
            "period": {"unit": "month", "count": 1},
            "quantity": 1,
            "accept_terms": True,
        },
        headers=buyer,
        timeout=15,
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "unpaid"
    return placed.json()


def _clock(system, headers: dict[str, str]) -> dict:
    answer = requests.get(f"{system.gateway}/v1/admin/clock", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_operator_moves_time_a_day_on_and_the_unpaid_order_is_cancelled_within_10_s(system):
    operator = wait_for(
        lambda: (
            "demo accounts" in system.log()
            and _token(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"])
        ),
        "the demo operator",
        timeout=60,
    )
    email, buyer = _new_buyer(system)
    order = _place_unpaid_order(system, buyer)
    before = _clock(system, operator)

    moved = requests.post(
        f"{system.gateway}/v1/admin/clock",
        json={"advance_seconds": DAY_AND_AN_HOUR},
        headers={**operator, "Idempotency-Key": uuid.uuid4().hex},
        timeout=60,
    )
    answered = time.monotonic()

    assert moved.status_code == 200, moved.text
    assert moved.json()["offset_seconds"] == before["offset_seconds"] + DAY_AND_AN_HOUR
    elapsed = dt.datetime.fromisoformat(moved.json()["now"]) - dt.datetime.fromisoformat(
        before["now"]
    )
    assert elapsed >= dt.timedelta(seconds=DAY_AND_AN_HOUR)
    # the buyer's token (12 hours) expired with the move: sign in at the new time
    buyer = _token(system, email, PASSWORD)

    def cancelled() -> dict | None:
        now = requests.get(f"{system.gateway}/v1/orders/{order['id']}", headers=buyer, timeout=5)
        return now.json() if now.json()["status"] == "cancelled" else None

    left = DUE_TIMERS_RUN_WITHIN_SECONDS - (time.monotonic() - answered)
    expired = wait_for(cancelled, "the unpaid order's cancellation", timeout=left)
    assert expired["cancel_reason"] == "the payment window passed before the order was paid"
    # every service reads the moved time
    assert (
        _clock(system, _token(system, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"]))[
            "offset_seconds"
        ]
        == moved.json()["offset_seconds"]
    )


def test_only_an_operator_reads_or_moves_the_clock(system):
    _email, buyer = _new_buyer(system)

    for headers, status in (({}, 401), (buyer, 403)):
        assert (
            requests.get(
                f"{system.gateway}/v1/admin/clock", headers=headers, timeout=15
            ).status_code
            == status
        )
        moved = requests.post(
            f"{system.gateway}/v1/admin/clock",
            json={"advance_seconds": 60},
            headers=headers,
            timeout=15,
        )
        assert moved.status_code == status, moved.text
