"""End to end: an image deployed into the buyer's own (simulated) cloud account under the
agencies it authorised, through the gateway, with the whole system running as `make run`
runs it (the simulated cloud included)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.parties import Party, card, eventually, new_party

pytestmark = pytest.mark.e2e

# the password rules of the cloud: 8 to 26 characters, three kinds, not the server name
ADMIN_PASSWORD = "Depl0y!ment"
MONTHLY = 2900


class Cloud:
    """The simulated cloud's own admin routes (simulators/cloud/README.md)."""

    def __init__(self, system) -> None:
        self.url = f"http://{system.env['CLOUD_SIMULATOR_ADDRESS']}"

    def new_account(self) -> dict[str, Any]:
        created = requests.post(
            f"{self.url}/sim/accounts", json={"name": f"buyer-{uuid.uuid4().hex[:8]}"}, timeout=10
        )
        assert created.status_code == 201, created.text
        return created.json()

    def resources(self, domain_id: str) -> list[dict[str, Any]]:
        listed = requests.get(f"{self.url}/sim/accounts/{domain_id}/resources", timeout=10)
        assert listed.status_code == 200, listed.text
        return listed.json()["resources"]

    def of_type(self, domain_id: str, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources(domain_id) if r["type"] == type_]

    def fault(self, **fault: Any) -> None:
        injected = requests.post(f"{self.url}/sim/faults", json=fault, timeout=10)
        assert injected.status_code in (200, 201), injected.text

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/sim/faults", timeout=10)

    def set_quotas(self, domain_id: str, **quotas: int) -> None:
        changed = requests.patch(
            f"{self.url}/sim/accounts/{domain_id}/quotas", json=quotas, timeout=10
        )
        assert changed.status_code == 200, changed.text


def _image_product(system) -> dict[str, Any]:
    """The demo image product `make run` lists."""
    eventually(system.log, lambda log: "demo accounts" in log)
    found = eventually(
        lambda: requests.get(
            f"{system.gateway}/v1/products", params={"q": "Helix CMS Server"}, timeout=15
        ).json()["items"],
        lambda items: len(items) == 1,
    )
    return requests.get(f"{system.gateway}/v1/products/{found[0]['id']}", timeout=15).json()


def _buyer_with_cloud(system, cloud: Cloud, *, authorise: bool = True) -> tuple[Party, dict]:
    """A new buyer with money on its balance and its own cloud account linked (and its
    agencies authorised with its cloud admin keys, given once)."""
    buyer = new_party(system, "buyer")
    buyer.ok(
        "POST",
        "/v1/billing/top-ups",
        {"amount": {"amount": 500_000, "currency": "USD"}, "card": card(system)},
        status=201,
    )
    account = cloud.new_account()
    buyer.ok(
        "PUT",
        "/v1/cloud-account",
        {
            "provider": "simulated",
            "region": account["region"],
            "domain_id": account["domain_id"],
            "project_id": account["project_id"],
        },
    )
    if authorise:
        buyer.ok(
            "POST",
            "/v1/agencies/authorization",
            {"access_key": account["access_key"], "secret_key": account["secret_key"]},
        )
    return buyer, account


def _order_body(product: dict, **deployment: Any) -> dict[str, Any]:
    return {
        "product_id": product["id"],
        "specification_id": product["specifications"][0]["id"],
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 1},
        "quantity": 1,
        "accept_terms": True,
        "deployment": {
            "mode": "customized",
            "flavor_id": "s6.medium.2",
            "vpc_id": None,
            "subnet_id": None,
            "security_group": "recommended",
            "server_name": "helix",
            "admin_password": ADMIN_PASSWORD,
            "system_disk_gb": 40,
            "data_disks": [],
            "eip": None,
            "count": 1,
            **deployment,
        },
    }


def _deployed(buyer: Party, order: dict, status: str, timeout: float = 90) -> dict[str, Any]:
    """The purchased app of ``order`` once its deployment is ``status``."""
    subscription = eventually(
        lambda: buyer.ok("GET", "/v1/purchased-apps")["items"],
        lambda items: any(item["order_id"] == order["id"] for item in items),
    )
    (app,) = [item for item in subscription if item["order_id"] == order["id"]]
    return eventually(
        lambda: buyer.ok("GET", f"/v1/purchased-apps/{app['id']}"),
        lambda details: (details.get("deployment") or {}).get("status") == status,
        timeout=timeout,
    )


def _balance(buyer: Party) -> int:
    return buyer.ok("GET", "/v1/billing/balance")["balance"]["amount"]


def test_customized_then_quick_deployments_become_active_in_the_buyers_account(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud)
    agencies = buyer.ok("GET", "/v1/agencies")
    assert {agency["name"]: agency["status"] for agency in agencies["items"]} == {
        "mkp_agency_trust": "authorized",
        "mkp_rfs_agency_trust": "authorized",
    }
    body = _order_body(product, eip={"bandwidth_mbps": 5}, data_disks=[{"size_gb": 20}])
    quote = buyer.ok("POST", "/v1/orders/quotes", body)
    assert [line["item"] for line in quote["lines"]] == ["image", "servers", "disks", "eip"]
    order = buyer.ok("POST", "/v1/orders", body, status=201)
    assert order["amount_due"] == quote["amount_due"]
    assert "admin_password" not in str(order)
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})

    app = _deployed(buyer, order, "active")
    deployment = app["deployment"]
    assert all(step["status"] == "succeeded" for step in deployment["steps"]), deployment
    created = {resource["type"] for resource in deployment["resources"]}
    assert {"vpc", "subnet", "security_group", "eip", "volume", "server"} <= created
    (server,) = cloud.of_type(account["domain_id"], "server")
    assert server["status"] == "ACTIVE"
    assert len(cloud.of_type(account["domain_id"], "eip")) == 1

    # quick: the VPC and subnet the first deployment made, found through Mercato
    (vpc,) = buyer.ok("GET", "/v1/cloud/vpcs")["items"]
    (subnet,) = buyer.ok("GET", "/v1/cloud/subnets", vpc_id=vpc["id"])["items"]
    flavors = {flavor["id"] for flavor in buyer.ok("GET", "/v1/cloud/flavors")["items"]}
    assert "s6.medium.2" in flavors
    quick = buyer.ok(
        "POST",
        "/v1/orders",
        _order_body(product, mode="quick", vpc_id=vpc["id"], subnet_id=subnet["id"]),
        status=201,
    )
    buyer.ok("POST", f"/v1/orders/{quick['id']}/pay", {"payment_method": "balance"})
    _deployed(buyer, quick, "active")
    assert len(cloud.of_type(account["domain_id"], "server")) == 2
    assert len(cloud.of_type(account["domain_id"], "vpc")) == 1


def test_an_image_order_is_refused_before_anything_is_placed(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud, authorise=False)
    refused = buyer.call("POST", "/v1/orders", _order_body(product))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "AGENCY_NOT_AUTHORIZED"

    buyer.ok(
        "POST",
        "/v1/agencies/authorization",
        {"access_key": account["access_key"], "secret_key": account["secret_key"]},
    )
    cloud.set_quotas(account["domain_id"], instances=1)
    over = buyer.call("POST", "/v1/orders", _order_body(product, count=2))
    assert over.status_code == 422, over.text
    assert over.json()["error"] == "QUOTA_EXCEEDED"
    assert "instances" in over.json()["message"]
    assert buyer.ok("GET", "/v1/orders")["total"] == 0
    assert cloud.resources(account["domain_id"]) == []


def test_an_order_under_an_older_policy_version_asks_for_authorisation_again(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud)
    # as if the buyer had authorised before Mercato's policies moved on to version 2
    engine = sa.create_engine(system.env["IAM_AGENCY_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE agencies SET policy_version = 1 WHERE account_id = :account"),
            {"account": buyer.id},
        )
    engine.dispose()
    statuses = {a["name"]: a["status"] for a in buyer.ok("GET", "/v1/agencies")["items"]}
    assert set(statuses.values()) == {"needs_reauthorization"}
    refused = buyer.call("POST", "/v1/orders", _order_body(product))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "AGENCY_REAUTHORIZATION_REQUIRED"
    assert buyer.ok("GET", "/v1/orders")["total"] == 0

    buyer.ok(
        "POST",
        "/v1/agencies/authorization",
        {"access_key": account["access_key"], "secret_key": account["secret_key"]},
    )
    buyer.ok("POST", "/v1/orders", _order_body(product), status=201)


# a fault at each step of a deployment: the call the step makes, and how it fails
FAULTS = {
    "prepare_keys": {"action": "kms:dek:create", "mode": "fail", "status": 400},
    "create_stack": {"action": "rf:stack:createStack", "mode": "fail", "status": 400},
    "network": {"action": "vpc:networks:create", "mode": "fail", "status": 400},
    "security_group": {"action": "vpc:securityGroups:create", "mode": "fail", "status": 400},
    "eip": {"action": "vpc:publicIps:create", "mode": "fail", "status": 400},
    "volumes": {"action": "evs:volumes:create", "mode": "job_error"},
    "servers": {"action": "ecs:cloudServers:create", "mode": "job_error"},
}


@pytest.mark.parametrize("step", list(FAULTS))
def test_a_cloud_error_at_any_step_deletes_what_was_made_and_refunds_once(system, step):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud)
    before = _balance(buyer)
    body = _order_body(product, eip={"bandwidth_mbps": 2}, data_disks=[{"size_gb": 10}])
    order = buyer.ok("POST", "/v1/orders", body, status=201)
    cloud.fault(count=1, **FAULTS[step])
    try:
        buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
        app = _deployed(buyer, order, "failed")
    finally:
        cloud.clear_faults()
    failed = [s["name"] for s in app["deployment"]["steps"] if s["status"] == "failed"]
    assert failed == [step], app["deployment"]["steps"]
    assert app["deployment"]["failure_reason"]
    eventually(lambda: cloud.resources(account["domain_id"]), lambda left: left == [])
    # the path of any failed delivery: the order cancelled, saying why, and refunded
    cancelled = eventually(
        lambda: buyer.ok("GET", f"/v1/orders/{order['id']}"),
        lambda o: o["status"] == "cancelled",
    )
    assert "Everything created for it was deleted" in cancelled["cancel_reason"]
    eventually(lambda: _balance(buyer), lambda balance: balance == before)
    refunds = [
        (movement["amount"]["amount"], movement["order_id"])
        for movement in buyer.ok("GET", "/v1/billing/transactions")["items"]
        if movement["kind"] == "refund"
    ]
    assert refunds == [(order["amount_due"]["amount"], order["id"])]


def test_an_agency_cancelled_between_order_and_deployment_fails_it_with_nothing_made(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, account = _buyer_with_cloud(system, cloud)
    before = _balance(buyer)
    order = buyer.ok("POST", "/v1/orders", _order_body(product), status=201)
    agencies = buyer.ok("DELETE", "/v1/agencies/mkp_agency_trust")
    assert {a["status"] for a in agencies["items"]} == {"not_authorized"}
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    app = _deployed(buyer, order, "failed")
    assert "agenc" in app["deployment"]["failure_reason"]
    assert cloud.of_type(account["domain_id"], "server") == []
    assert cloud.of_type(account["domain_id"], "stack") == []
    eventually(lambda: _balance(buyer), lambda balance: balance == before)


def test_another_buyer_sees_nothing_of_a_deployment_its_agencies_or_its_cloud(system):
    cloud = Cloud(system)
    product = _image_product(system)
    buyer, _account = _buyer_with_cloud(system, cloud)
    order = buyer.ok("POST", "/v1/orders", _order_body(product), status=201)
    buyer.ok("POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
    app = _deployed(buyer, order, "active")

    stranger = new_party(system, "buyer")
    assert stranger.call("GET", f"/v1/purchased-apps/{app['id']}").status_code == 404
    assert stranger.call("GET", f"/v1/orders/{order['id']}").status_code == 404
    agencies = stranger.ok("GET", "/v1/agencies")
    assert {agency["status"] for agency in agencies["items"]} == {"not_authorized"}
    assert stranger.call("GET", "/v1/cloud/vpcs").status_code in (404, 409)
