"""End to end: all seven processes started the way `make run` starts them
(``python -m mercato.devrun``), on PostgreSQL and RabbitMQ, driven over real HTTP.
The ``system`` fixture is in conftest.py."""

import signal
import time
import uuid

import pytest
import requests

from mercato.topology import PROCESSES

pytestmark = pytest.mark.e2e


def test_sign_up_sign_in_and_me_through_the_gateway(system):
    request_id = f"e2e-{uuid.uuid4().hex}"
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    created = requests.post(
        f"{system.gateway}/v1/accounts",
        json={
            "name": "E2E Buyer",
            "email": email,
            "password": "a long e2e password",
            "type": "buyer",
        },
        timeout=15,
    )
    assert created.status_code == 201, created.text
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": email, "password": "a long e2e password"},
        timeout=15,
    )
    assert issued.status_code == 201, issued.text
    me = requests.get(
        f"{system.gateway}/v1/me",
        headers={"Authorization": f"Bearer {issued.json()['token']}", "X-Request-ID": request_id},
        timeout=15,
    )
    assert me.status_code == 200, me.text
    assert me.headers["X-Request-ID"] == request_id
    assert me.json()["account"] == {
        "id": created.json()["id"],
        "name": "E2E Buyer",
        "type": "buyer",
    }
    assert me.json()["user"]["email"] == email

    # the one request id appears in the gateway's and in iam-agency's logs
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = {
            name
            for name in ("gateway", "iam_agency")
            if any(r.get("correlation_id") == request_id for r in system.log_records(name))
        }
        if seen == {"gateway", "iam_agency"}:
            break
        time.sleep(0.2)
    assert seen == {"gateway", "iam_agency"}, f"request id only in {seen}"


def test_demo_accounts_were_seeded_and_sign_in(system):
    deadline = time.monotonic() + 30
    while "demo accounts" not in system.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    for email, password in [
        ("operator@demo.mercato", "operator-demo-pass"),
        ("buyer@demo.mercato", "buyer-demo-pass"),
        ("seller@demo.mercato", "seller-demo-pass"),
    ]:
        issued = requests.post(
            f"{system.gateway}/v1/auth/tokens",
            json={"email": email, "password": password},
            timeout=15,
        )
        assert issued.status_code == 201, (email, issued.text)


def test_demo_seller_products_are_published_for_buyers_to_find(system):
    deadline = time.monotonic() + 30
    while "demo accounts" not in system.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    found = requests.get(f"{system.gateway}/v1/products", params={"q": "backup"}, timeout=15)
    assert found.status_code == 200, found.text
    assert [item["name"] for item in found.json()["items"]] == ["Nimbus Backup for ECS"]
    assert requests.get(f"{system.gateway}/v1/products", timeout=15).json()["total"] == 3


def test_every_process_serves_metrics_with_its_entrypoint_counters(system):
    requests.get(f"{system.gateway}/healthz", timeout=5)
    for process in PROCESSES:
        body = requests.get(f"{system.url(process.name)}/metrics", timeout=5).text
        assert "process_resident_memory_bytes" in body, process.name
        assert "mercato_outbox_backlog" in body, process.name
    gateway_metrics = requests.get(f"{system.gateway}/metrics", timeout=5).text
    assert 'kind="http"' in gateway_metrics
    iam_metrics = requests.get(f"{system.url('iam_agency')}/metrics", timeout=5).text
    assert 'entrypoint="authenticate",kind="rpc",outcome="success"' in iam_metrics


# -- the buyer's journey, every way to pay ------------------------------------------------

CARD = {"number": "4242424242424242", "expiry": "12/35", "cvc": "123"}


def _signed_in(system, email: str, password: str) -> dict[str, str]:
    issued = requests.post(
        f"{system.gateway}/v1/auth/tokens", json={"email": email, "password": password}, timeout=15
    )
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def _new_account(system, type_: str, headers: dict | None = None, path: str = "/v1/accounts"):
    email = f"{type_}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"name": f"E2E {type_}", "email": email, "password": "a long e2e password"}
    if path == "/v1/accounts":
        body["type"] = type_
    created = requests.post(f"{system.gateway}{path}", json=body, headers=headers, timeout=15)
    assert created.status_code == 201, created.text
    return created.json(), _signed_in(system, email, "a long e2e password")


def _buy_backup(system, headers: dict) -> dict:
    """Find the demo backup product, save it, configure it and place the order."""
    found = requests.get(
        f"{system.gateway}/v1/products", params={"q": "backup"}, headers=headers, timeout=15
    ).json()["items"]
    product = requests.get(
        f"{system.gateway}/v1/products/{found[0]['id']}", headers=headers, timeout=15
    ).json()
    saved = requests.post(
        f"{system.gateway}/v1/saved-products",
        json={"product_id": product["id"]},
        headers=headers,
        timeout=15,
    )
    assert saved.status_code == 201, saved.text
    placed = requests.post(
        f"{system.gateway}/v1/orders",
        json={
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "yearly_monthly",
            "period": {"unit": "month", "count": 3},
            "quantity": 2,
            "accept_terms": True,
        },
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=15,
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["amount_due"] == {"amount": 1500 * 3 * 2, "currency": "USD"}
    return placed.json()


def _pay(system, headers: dict, order: dict, body: dict) -> requests.Response:
    return requests.post(
        f"{system.gateway}/v1/orders/{order['id']}/pay",
        json=body,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=15,
    )


def _assert_purchased(system, headers: dict, order: dict) -> None:
    apps = requests.get(f"{system.gateway}/v1/purchased-apps", headers=headers, timeout=15).json()
    assert [(app["order_id"], app["status"]) for app in apps["items"]] == [
        (order["id"], "enabling")
    ]


@pytest.mark.parametrize("method", ["balance", "credit_card", "credit"])
def test_buyer_finds_buys_and_pays_with_each_method(system, method):
    test_demo_seller_products_are_published_for_buyers_to_find(system)
    account, buyer = _new_account(system, "buyer")
    if method == "balance":
        topped = requests.post(
            f"{system.gateway}/v1/billing/top-ups",
            json={"amount": {"amount": 50_000, "currency": "USD"}, "card": CARD},
            headers=buyer,
            timeout=15,
        )
        assert topped.status_code == 201, topped.text
    if method == "credit":
        operator = _signed_in(system, "operator@demo.mercato", "operator-demo-pass")
        granted = requests.post(
            f"{system.gateway}/v1/admin/accounts/{account['id']}/credit-limit",
            json={"amount": {"amount": 20_000, "currency": "USD"}},
            headers=operator,
            timeout=15,
        )
        assert granted.status_code == 200, granted.text
    order = _buy_backup(system, buyer)
    body = {"payment_method": method, **({"card": CARD} if method == "credit_card" else {})}

    paid = _pay(system, buyer, order, body)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    _assert_purchased(system, buyer, order)
    again = _pay(system, buyer, order, body)
    assert again.status_code == 409, again.text
    balance = requests.get(f"{system.gateway}/v1/billing/balance", headers=buyer, timeout=15).json()
    expected = {
        "balance": (50_000 - 9_000, 0),
        "credit_card": (0, 0),
        "credit": (0, 9_000),
    }[method]
    assert (balance["balance"]["amount"], balance["credit_used"]["amount"]) == expected


def test_reseller_customer_order_is_paid_by_the_reseller_when_placed(system):
    test_demo_seller_products_are_published_for_buyers_to_find(system)
    _reseller, reseller = _new_account(system, "reseller")
    _customer, customer = _new_account(
        system, "buyer", headers=reseller, path="/v1/reseller/customers"
    )
    order = _buy_backup(system, customer)
    assert order["status"] == "paid"
    _assert_purchased(system, customer, order)
    owed = requests.get(f"{system.gateway}/v1/billing/balance", headers=reseller, timeout=15).json()
    assert owed["balance"]["amount"] == -9_000


# -- last, since it stops the system every test above uses ---------------------------


def test_ctrl_c_stops_all_seven_cleanly(system):
    system.process.send_signal(signal.SIGINT)
    assert system.process.wait(timeout=60) == 130  # honcho's answer to an interrupt
    log = system.log()
    for process in PROCESSES:
        assert f"{process.name} stopped (rc=0)" in log, f"{process.name} did not stop cleanly"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{system.url(process.name)}/healthz", timeout=2)
