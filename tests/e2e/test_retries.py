"""Retrying a POST with its Idempotency-Key through the whole system: a request whose
answer was lost (a 503) does its work once, however often it is sent again; a retried
sign-in never answers a token revoked since; a retried issue of interface credentials
answers the pair it issued while it is the seller's, and never a replaced one.

The gateway waits 3 s for a service here (orders included), so a service stopped for
longer answers 503 while the request waits in its queue."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import pytest
import requests

from tests.e2e.parties import PASSWORD, eventually, new_party

pytestmark = pytest.mark.e2e

SYSTEM_ENV = {"RPC_TIMEOUT_SECONDS": "3", "GATEWAY_ORDERS_TIMEOUT_SECONDS": "3"}


def post(system, path: str, body: dict, headers: dict[str, str], key: str) -> requests.Response:
    return requests.post(
        f"{system.gateway}{path}",
        json=body,
        headers={**headers, "Idempotency-Key": key},
        timeout=30,
    )


def pid_of(system, name: str) -> int:
    """The process ``name`` as make run last started it (its log says so)."""
    started = re.findall(rf"\b{re.escape(name)}(?:\.\d+)? started \(pid=(\d+)\)", system.log())
    assert started, f"{name} has not started:\n{system.log()[-3000:]}"
    return int(started[-1])


def new_seller(system):
    """A seller whose profile catalog has made (from iam-agency's event)."""
    seller = new_party(system, "seller")
    eventually(lambda: seller.call("GET", "/v1/seller/profile").status_code, lambda s: s == 200)
    return seller


def product(name: str) -> dict:
    return {
        "name": name,
        "summary": "Retried until it answered.",
        "description": "Created once, however often it is asked for.",
        "category": "crm",
        "delivery_method": "license",
        "service_supervision": True,
        "terms": "None.",
        "specifications": [
            {"name": "Basic", "prices": [{"billing_mode": "one_time", "amount": 4000}]}
        ],
    }


def named(seller, name: str) -> list[dict]:
    listed = seller.ok("GET", "/v1/seller/products", page_size=100)
    return [item for item in listed["items"] if item["name"] == name]


def test_a_create_whose_answer_was_lost_creates_one_product_however_often_retried(system):
    seller = new_seller(system)
    name = f"Retried CRM {uuid.uuid4().hex[:6]}"
    key = uuid.uuid4().hex

    retried = lost_then_retried(
        system,
        "catalog",
        "/v1/seller/products",
        product(name),
        seller,
        key,
        lambda: named(seller, name),
    )
    assert retried.status_code == 201, retried.text
    again = post(system, "/v1/seller/products", product(name), seller.headers, key)

    assert again.status_code == 201 and again.json()["id"] == retried.json()["id"]
    assert [item["id"] for item in named(seller, name)] == [retried.json()["id"]]


def lost_then_retried(system, process: str, path: str, body: dict, party, key: str, done):
    """Send the request while ``process`` is stopped (503: its answer is lost), let the
    request run late if it still may (``done()`` says it did), then retry it with its
    key until it is answered; the retry's response."""
    pid = pid_of(system, process)
    os.kill(pid, signal.SIGSTOP)
    try:
        lost = post(system, path, body, party.headers, key)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert lost.status_code == 503, lost.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not done():
        time.sleep(0.5)
    return eventually(
        lambda: post(system, path, body, party.headers, key),
        lambda response: response.status_code != 409,  # the first still in flight: wait
    )


def test_an_order_whose_answer_was_lost_is_placed_once_however_often_retried(system):
    seller = new_seller(system)
    created = seller.ok(
        "POST", "/v1/seller/products", product(f"Lost order {uuid.uuid4().hex[:6]}"), status=201
    )
    listed = seller.ok("POST", f"/v1/seller/products/{created['id']}/publish", {})
    buyer = new_party(system, "buyer")
    order = {
        "product_id": listed["id"],
        "specification_id": listed["specifications"][0]["id"],
        "billing_mode": "one_time",
        "quantity": 1,
        "accept_terms": True,
    }

    def orders() -> list[dict]:
        return buyer.ok("GET", "/v1/orders")["items"]

    retried = lost_then_retried(
        system, "orders", "/v1/orders", order, buyer, uuid.uuid4().hex, lambda: orders()
    )

    assert retried.status_code == 201, retried.text
    assert [item["id"] for item in orders()] == [retried.json()["id"]]


def test_a_sign_in_replayed_after_sign_out_signs_in_again(system):
    buyer = new_party(system, "buyer")
    credentials = {"email": buyer.email, "password": PASSWORD}
    key = uuid.uuid4().hex
    first = post(system, "/v1/auth/tokens", credentials, {}, key)
    revoked = {"Authorization": f"Bearer {first.json()['token']}"}
    signed_out = requests.delete(
        f"{system.gateway}/v1/auth/tokens/current", headers=revoked, timeout=15
    )
    assert signed_out.status_code == 204

    again = post(system, "/v1/auth/tokens", credentials, {}, key)

    assert again.status_code == 201 and again.json()["token"] != first.json()["token"]
    fresh = {"Authorization": f"Bearer {again.json()['token']}"}
    assert requests.get(f"{system.gateway}/v1/me", headers=fresh, timeout=15).status_code == 200
    # the revoked token stays revoked (the gateway may trust it from its cache briefly)
    eventually(
        lambda: requests.get(f"{system.gateway}/v1/me", headers=revoked, timeout=15),
        lambda response: response.status_code == 401,
    )


def test_interface_credentials_retried_answer_their_pair_until_it_is_replaced(system):
    seller = new_party(system, "seller")
    key = uuid.uuid4().hex
    path = "/v1/seller/interface-credentials"
    first = post(system, path, {}, seller.headers, key)
    assert first.status_code == 201, first.text

    again = post(system, path, {}, seller.headers, key)
    assert again.status_code == 201 and again.json() == first.json()
    assert "Idempotent-Replayed" not in again.headers  # answered by provisioning's keyring

    rotated = post(system, path, {}, seller.headers, uuid.uuid4().hex)
    assert rotated.status_code == 201
    stale = post(system, path, {}, seller.headers, key)
    assert stale.status_code == 409
    assert first.json()["secret"] not in stale.text
