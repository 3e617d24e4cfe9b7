"""The public edge, through the whole system: sign-in limits with Retry-After, /metrics
on the operations port only, the role before anything else, NUL and lone surrogates
refused, and every rejection one INFO line in the logs (no traceback)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.e2e.parties import PASSWORD, eventually, new_party

pytestmark = pytest.mark.e2e

# a handful of sign-ins per email; the other limits keep their defaults
SYSTEM_ENV = {"GATEWAY_SIGN_IN_LIMIT_PER_EMAIL": "3/3600"}


def test_sign_ins_past_the_limit_answer_429_with_retry_after_and_no_token(system):
    buyer = new_party(system, "buyer")  # signed in once: one attempt of three spent
    wrong = {"email": buyer.email, "password": "not the password"}
    statuses = [
        requests.post(f"{system.gateway}/v1/auth/tokens", json=wrong, timeout=15).status_code
        for _ in range(2)
    ]

    refused = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": buyer.email, "password": PASSWORD},
        timeout=15,
    )

    assert statuses == [401, 401]
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "RATE_LIMITED"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # the test clock moves the window: an hour on, the email may sign in again
    operator = _operator_headers(system)
    moved = requests.post(
        f"{system.gateway}/v1/admin/clock",
        json={"advance_seconds": 3600},
        headers=operator,
        timeout=30,
    )
    assert moved.status_code == 200, moved.text
    again = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": buyer.email, "password": PASSWORD},
        timeout=15,
    )
    assert again.status_code == 201, again.text


def _operator_headers(system) -> dict[str, str]:
    from mercato_devrun import DEMO_OPERATOR

    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": DEMO_OPERATOR["email"], "password": DEMO_OPERATOR["password"]},
        timeout=15,
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def test_metrics_are_served_on_the_operations_port_only(system):
    assert requests.get(f"{system.gateway}/metrics", timeout=5).status_code == 404
    scraped = requests.get(system.metrics_url("gateway"), timeout=5)
    assert scraped.status_code == 200
    assert "mercato_gateway_rate_limited_total" in scraped.text


def test_a_buyer_on_an_operator_route_gets_403_whatever_it_sends(system):
    buyer = new_party(system, "buyer")
    response = requests.post(
        f"{system.gateway}/v1/admin/accounts/{buyer.id}/credit-limit",
        data=b'{"amount": "not even json',
        headers={
            **buyer.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": "spaces are not allowed",
        },
        timeout=15,
    )

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "FORBIDDEN"


@pytest.mark.parametrize("escaped", ["\\u0000", "\\ud83d", "x\\udc00"])
def test_nul_and_lone_surrogates_are_400_naming_the_field(system, escaped):
    seller = new_party(system, "seller")
    profile = {
        "company_name": "PLACEHOLDER",
        "email": "a@example.com",
        "mobile": "+1 555 0100",
        "support_range": "weekdays",
    }
    # json.dumps cannot write a lone surrogate's escape itself
    body = json.dumps(profile).replace('"PLACEHOLDER"', f'"{escaped}"').encode()

    response = requests.put(
        f"{system.gateway}/v1/seller/profile",
        data=body,
        headers={**seller.headers, "Content-Type": "application/json"},
        timeout=15,
    )

    assert response.status_code == 400, response.text
    assert "company_name" in response.json()["fields"]


def test_rejections_are_one_info_line_each_in_every_process_without_a_traceback(system):
    request_id = f"edge-{uuid.uuid4().hex[:12]}"
    buyer = new_party(system, "buyer")
    headers = {**buyer.headers, "X-Request-ID": request_id}
    response = requests.get(f"{system.gateway}/v1/orders/ord_nope", headers=headers, timeout=15)
    assert response.status_code == 404

    def records() -> list[dict]:
        return [
            record
            for name in ("gateway", "orders")
            for record in system.log_records(name)
            if record.get("correlation_id") == request_id
        ]

    logged = eventually(
        records,
        lambda found: (
            {r.get("service") for r in found if "rejected" in r.get("message", "")}
            >= {"gateway", "orders"}
        ),
    )
    time.sleep(0.5)  # anything else these requests logged is written by now
    assert [r for r in logged if r.get("exc_info") or r["level"] in ("WARNING", "ERROR")] == []
    rejected = [r for r in logged if r["message"].startswith("rejected ")]
    assert {r["level"] for r in rejected} == {"INFO"}
    assert any(r["message"].startswith("rejected orders.get_order: NotFound") for r in rejected)
