"""End to end: all seven processes started the way `make run` starts them
(``python -m mercato_devrun``), on PostgreSQL and RabbitMQ, driven over real HTTP.
The ``system`` fixture is in conftest.py."""

import base64
import json
import signal
import subprocess
import time
import uuid

import pytest
import requests

from mercato.topology import PROCESSES
from tests.e2e.parties import card

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
        "time_zone": "UTC",
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
    listed = requests.get(f"{system.gateway}/v1/products", timeout=15).json()
    assert sorted(item["delivery_method"] for item in listed["items"]) == [
        "image",
        "license",
        "professional_service",
        "saas",
        "saas",
    ]
    supervised = requests.get(
        f"{system.gateway}/v1/products", params={"service_supervision": "true"}, timeout=15
    ).json()["items"]
    # the license and the professional service always are; one SaaS product is too
    assert sorted(item["delivery_method"] for item in supervised) == [
        "license",
        "professional_service",
        "saas",
    ]


def test_every_process_serves_metrics_with_its_entrypoint_counters(system):
    requests.get(f"{system.gateway}/healthz", timeout=5)
    for process in PROCESSES:
        body = requests.get(system.metrics_url(process.name), timeout=5).text
        assert "process_resident_memory_bytes" in body, process.name
        assert "mercato_outbox_backlog" in body, process.name
    gateway_metrics = requests.get(system.metrics_url("gateway"), timeout=5).text
    assert 'kind="http"' in gateway_metrics
    # anonymous callers of the public API see none of it
    assert requests.get(f"{system.gateway}/metrics", timeout=5).status_code == 404
    iam_metrics = requests.get(system.metrics_url("iam_agency"), timeout=5).text
    assert 'entrypoint="authenticate",kind="rpc",outcome="success"' in iam_metrics


# -- the buyer's journey, every way to pay ------------------------------------------------


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


def _assert_purchased(system, headers: dict, order: dict) -> dict:
    """The order's app is under Purchased Apps, and the seller's application (the
    reference app running beside the services) delivers it: enabled, order completed."""
    apps = requests.get(f"{system.gateway}/v1/purchased-apps", headers=headers, timeout=15).json()
    assert [app["order_id"] for app in apps["items"]] == [order["id"]]
    app = _wait_until_enabled(system, headers, apps["items"][0]["id"])
    completed = requests.get(
        f"{system.gateway}/v1/orders/{order['id']}", headers=headers, timeout=15
    ).json()
    assert completed["status"] == "completed", completed
    return app


def _order(system, headers: dict, order: dict) -> dict:
    return requests.get(
        f"{system.gateway}/v1/orders/{order['id']}", headers=headers, timeout=15
    ).json()


def _flow_of(system, headers: dict, order: dict, timeout: float = 30) -> dict:
    """The order's supervision flow, once supervision has started it."""
    deadline = time.monotonic() + timeout
    while True:
        flows = requests.get(
            f"{system.gateway}/v1/supervision/flows",
            params={"q": order["id"]},
            headers=headers,
            timeout=15,
        ).json()
        if flows["total"] == 1 or time.monotonic() > deadline:
            assert flows["total"] == 1, flows
            return flows["items"][0]
        time.sleep(0.3)


def _wait_until_enabled(system, headers: dict, subscription_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        app = requests.get(
            f"{system.gateway}/v1/purchased-apps/{subscription_id}", headers=headers, timeout=15
        ).json()
        if app["status"] == "enabled" or time.monotonic() > deadline:
            assert app["status"] == "enabled", app
            return app
        time.sleep(0.3)


@pytest.mark.parametrize("method", ["balance", "credit_card", "credit"])
def test_buyer_finds_buys_and_pays_with_each_method(system, method):
    test_demo_seller_products_are_published_for_buyers_to_find(system)
    account, buyer = _new_account(system, "buyer")
    if method == "balance":
        topped = requests.post(
            f"{system.gateway}/v1/billing/top-ups",
            json={"amount": {"amount": 50_000, "currency": "USD"}, "card": card(system)},
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
    body = {"payment_method": method, **({"card": card(system)} if method == "credit_card" else {})}

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
    # the reseller pays for its customers within the credit an operator grants it
    operator = requests.post(
        f"{system.gateway}/v1/auth/tokens",
        json={"email": "operator@demo.mercato", "password": "operator-demo-pass"},
        timeout=15,
    ).json()["token"]
    granted = requests.post(
        f"{system.gateway}/v1/admin/accounts/{_reseller['id']}/credit-limit",
        json={"amount": {"amount": 9_000, "currency": "USD"}},
        headers={"Authorization": f"Bearer {operator}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=15,
    )
    assert granted.status_code == 200, granted.text
    order = _buy_backup(system, customer)
    assert order["status"] == "paid"
    _assert_purchased(system, customer, order)
    owed = requests.get(f"{system.gateway}/v1/billing/balance", headers=reseller, timeout=15).json()
    assert owed["balance"]["amount"] == -9_000


# -- delivery ------------------------------------------------------------------------

REVEALED_PASSWORDS: list[str] = []


def test_saas_is_delivered_by_the_sellers_app_and_its_password_revealed(system):
    test_demo_seller_products_are_published_for_buyers_to_find(system)
    _account, buyer = _new_account(system, "buyer")
    topped = requests.post(
        f"{system.gateway}/v1/billing/top-ups",
        json={"amount": {"amount": 20_000, "currency": "USD"}, "card": card(system)},
        headers=buyer,
        timeout=15,
    )
    assert topped.status_code == 201, topped.text
    order = _buy_backup(system, buyer)
    assert _pay(system, buyer, order, {"payment_method": "balance"}).status_code == 200

    app = _assert_purchased(system, buyer, order)
    application = app["application"]
    assert application["delivery_status"] == "succeeded"
    assert application["password"] == "******"
    assert application["username"]
    assert app["basic"]["resource_status"] == "enabled"
    assert app["seller"] == {
        "company_name": "Demo Seller Co",
        "mobile": "+1 555 0100",
        "email": "support@demo.mercato",
    }
    # the front-end URL opens the buyer's working tenant on the seller's side
    opened = requests.get(application["frontend_url"], timeout=15)
    assert opened.status_code == 200 and "text/html" in opened.headers["Content-Type"]

    revealed = requests.post(
        f"{system.gateway}/v1/purchased-apps/{app['id']}/credentials/reveal",
        json={},
        headers=buyer,
        timeout=15,
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.headers["Cache-Control"] == "no-store"
    credentials = revealed.json()
    assert credentials["username"] == application["username"] and credentials["password"]
    REVEALED_PASSWORDS.append(credentials["password"])

    _other, stranger = _new_account(system, "buyer")
    for method, path in (
        ("GET", f"/v1/purchased-apps/{app['id']}"),
        ("POST", f"/v1/purchased-apps/{app['id']}/credentials/reveal"),
    ):
        response = requests.request(
            method,
            f"{system.gateway}{path}",
            json={} if method == "POST" else None,
            headers=stranger,
            timeout=15,
        )
        assert response.status_code == 404, (path, response.text)


def test_a_license_key_verifies_offline_with_the_sellers_published_key(system):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    test_demo_seller_products_are_published_for_buyers_to_find(system)
    _account, buyer = _new_account(system, "buyer")
    found = requests.get(
        f"{system.gateway}/v1/products", params={"q": "firewall"}, timeout=15
    ).json()["items"]
    product = requests.get(f"{system.gateway}/v1/products/{found[0]['id']}", timeout=15).json()
    placed = requests.post(
        f"{system.gateway}/v1/orders",
        json={
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "one_time",
            "quantity": 3,
            "accept_terms": True,
        },
        headers=buyer,
        timeout=15,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    paid = _pay(system, buyer, order, {"payment_method": "credit_card", "card": card(system)})
    assert paid.status_code == 200, paid.text
    # a license is supervised: its key is delivered at payment and its flow waits for the
    # buyer's acceptance; until then it is not under Purchased Apps
    flow = _flow_of(system, buyer, order)
    assert flow["step"] == "awaiting_acceptance" and flow["accept_by"]
    deadline = time.monotonic() + 30
    while _order(system, buyer, order)["status"] != "awaiting_acceptance":
        assert time.monotonic() < deadline, _order(system, buyer, order)
        time.sleep(0.3)
    apps = requests.get(f"{system.gateway}/v1/purchased-apps", headers=buyer, timeout=15).json()
    assert apps["items"] == []
    accepted = requests.post(
        f"{system.gateway}/v1/supervision/flows/{flow['id']}/acceptance",
        json={},
        headers=buyer,
        timeout=15,
    )
    assert accepted.status_code == 200 and accepted.json()["step"] == "completed", accepted.text
    deadline = time.monotonic() + 30  # orders enables it on the flow's completed event
    while not requests.get(f"{system.gateway}/v1/purchased-apps", headers=buyer, timeout=15).json()[
        "items"
    ]:
        assert time.monotonic() < deadline, "the accepted license never became a purchased app"
        time.sleep(0.3)
    app = _assert_purchased(system, buyer, order)
    license_key = app["application"]["license_key"]
    assert license_key and app["application"]["password"] is None

    published = requests.get(
        f"{system.gateway}/v1/sellers/{product['seller']['id']}/license-public-key", timeout=15
    )
    assert published.status_code == 200, published.text
    key = published.json()
    # verified the way a seller's software would, with nothing but the published key
    prefix, payload, signature = license_key.split(".")

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    public_key = Ed25519PublicKey.from_public_bytes(unb64(key["public_key"]))
    public_key.verify(unb64(signature), f"{prefix}.{payload}".encode())  # raises if forged
    claims = json.loads(unb64(payload))
    assert claims["quantity"] == 3
    assert claims["product_id"] == product["id"]
    assert claims["subscription_id"] == app["id"]


def test_a_seller_that_never_delivers_gets_the_order_cancelled_and_refunded_once(system):
    from mercato_testing import free_port

    _seller_account, seller = _new_account(system, "seller")
    profile = requests.put(
        f"{system.gateway}/v1/seller/profile",
        json={
            "company_name": "Silent Seller",
            "email": "silent@example.com",
            "mobile": "+1 555 0199",
            "support_range": "never",
        },
        headers=seller,
        timeout=15,
    )
    assert profile.status_code == 200, profile.text
    issued = requests.post(
        f"{system.gateway}/v1/seller/interface-credentials", json={}, headers=seller, timeout=15
    )
    assert issued.status_code == 201, issued.text
    created = requests.post(
        f"{system.gateway}/v1/seller/products",
        json={
            "name": "Silent CRM",
            "summary": "Never delivered.",
            "description": "Its seller's endpoint does not answer.",
            "category": "crm",
            "delivery_method": "saas",
            "service_supervision": False,
            "terms": "None.",
            # nothing listens there
            "saas_endpoint_url": f"http://127.0.0.1:{free_port()}/saas",
            "specifications": [
                {"name": "Basic", "prices": [{"billing_mode": "one_time", "amount": 4000}]}
            ],
        },
        headers=seller,
        timeout=15,
    )
    assert created.status_code == 201, created.text
    product = requests.post(
        f"{system.gateway}/v1/seller/products/{created.json()['id']}/publish",
        json={},
        headers=seller,
        timeout=15,
    ).json()
    assert product["saas_endpoint_url"].startswith("http://127.0.0.1:")

    _buyer_account, buyer = _new_account(system, "buyer")
    requests.post(
        f"{system.gateway}/v1/billing/top-ups",
        json={"amount": {"amount": 10_000, "currency": "USD"}, "card": card(system)},
        headers=buyer,
        timeout=15,
    ).raise_for_status()
    order = requests.post(
        f"{system.gateway}/v1/orders",
        json={
            "product_id": product["id"],
            "specification_id": product["specifications"][0]["id"],
            "billing_mode": "one_time",
            "quantity": 1,
            "accept_terms": True,
        },
        headers=buyer,
        timeout=15,
    ).json()
    assert _pay(system, buyer, order, {"payment_method": "balance"}).status_code == 200

    deadline = time.monotonic() + 60
    while True:
        current = requests.get(
            f"{system.gateway}/v1/orders/{order['id']}", headers=buyer, timeout=15
        ).json()
        if current["status"] == "cancelled" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert current["status"] == "cancelled", current
    assert current["cancel_reason"].startswith("Delivery failed: "), current
    assert "Silent CRM" in current["cancel_reason"]
    (app,) = requests.get(f"{system.gateway}/v1/purchased-apps", headers=buyer, timeout=15).json()[
        "items"
    ]
    assert app["status"] == "released"

    # billing refunds the payment, once
    deadline = time.monotonic() + 30
    while True:
        movements = requests.get(
            f"{system.gateway}/v1/billing/transactions", headers=buyer, timeout=15
        ).json()["items"]
        refunds = [m for m in movements if m["kind"] == "refund"]
        if refunds or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(m["amount"]["amount"], m["order_id"]) for m in refunds] == [(4000, order["id"])]
    balance = requests.get(f"{system.gateway}/v1/billing/balance", headers=buyer, timeout=15)
    assert balance.json()["balance"]["amount"] == 10_000


def test_no_database_holds_a_delivered_password_in_plaintext(system):
    assert REVEALED_PASSWORDS, "the SaaS delivery test runs first"
    for name, url in system.env.items():
        if not name.endswith("_DATABASE_URL"):
            continue
        dump = subprocess.run(
            ["pg_dump", "--data-only", url.replace("postgresql+psycopg2", "postgresql")],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        assert dump.strip(), name
        for password in REVEALED_PASSWORDS:
            assert password not in dump, name


# -- last, since it stops the system every test above uses ---------------------------


def test_ctrl_c_stops_all_seven_cleanly(system):
    system.process.send_signal(signal.SIGINT)
    assert system.process.wait(timeout=60) == 130  # honcho's answer to an interrupt
    log = system.log()
    for process in PROCESSES:
        assert f"{process.name} stopped (rc=0)" in log, f"{process.name} did not stop cleanly"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{system.url(process.name)}/healthz", timeout=2)
