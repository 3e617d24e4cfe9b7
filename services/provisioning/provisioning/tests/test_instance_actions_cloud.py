"""An image's servers after the purchase, end to end inside provisioning: the service in
a real container, its driver against the cloud simulator through the SDK (policy
version 3 grants stop and start), orders' events published as orders does. Frozen stops
the deployment's servers, a renewal of the frozen subscription starts them, released
deletes the deployment.

The fixtures are test_deployments_cloud.py's, imported (hence F811 on their parameters)."""

# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from mercato_testing.interface import publish_event, wait_for
from provisioning.cloud.driver import CloudCredentials, HuaweiCloudDriver
from provisioning.tests.test_deployments_cloud import (  # noqa: F401  (fixtures)
    FakeIamAgency,
    buyer,
    deployed,
    events,
    prepare_and_pay,
    start,
)

pytestmark = pytest.mark.interface


@pytest.fixture
def config(make_service_config, cloud_simulator):
    return make_service_config(
        "provisioning",
        CLOUD_ENDPOINT=cloud_simulator.url,
        DEPLOYMENT_SWEEP_SECONDS=0.2,
        DEPLOYMENT_POLL_SECONDS=0.3,
        DEPLOYMENT_RETRY_MAX_SECONDS=1,
        DEPLOYMENT_LEASE_SECONDS=3,
        DELIVERY_SWEEP_SECONDS=0.5,
        INSTANCE_ACTION_SWEEP_SECONDS=0.2,
        INSTANCE_ACTION_RETRY_SECONDS=0.2,
        INSTANCE_ACTION_RETRY_MAX_SECONDS=0.5,
    )


def facts(identity: dict, order_id: str, subscription_id: str) -> dict:
    return {
        "subscription_id": subscription_id,
        "order_id": order_id,
        "account_id": identity["account_id"],
        "seller_account_id": "acc_seller",
        "product_id": "prd_helix",
        "product_name": "Helix CMS",
        "specification_name": "Standard",
        "delivery_method": "image",
        "billing_mode": "yearly_monthly",
    }


def publish(config, event_type: str, data: dict) -> None:
    publish_event(config["AMQP_URI"], event_type, data, subject=data["subscription_id"])


def test_a_frozen_image_stops_its_servers_a_renewal_starts_them_and_release_deletes_it(
    start, config, buyer, cloud_simulator
):
    start()
    identity, account = buyer
    order_id, subscription_id = prepare_and_pay(config, cloud_simulator, identity)
    found = deployed(config, identity, order_id, "active")
    (server_id,) = [r["id"] for r in found["resources"] if r["type"] == "server"]
    driver = HuaweiCloudDriver(cloud_simulator.url, timeout=10)
    standing = FakeIamAgency.accounts[identity["account_id"]]

    def status() -> str | None:
        creds = CloudCredentials.from_answer(standing.credentials())
        return driver.server_status(creds, server_id)

    assert status() == "ACTIVE"
    base = facts(identity, order_id, subscription_id)
    publish(
        config,
        "orders.subscription.frozen",
        {
            **base,
            "expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            "frozen_at": dt.datetime(2027, 1, 16, tzinfo=dt.UTC),
            "release_at": dt.datetime(2027, 1, 31, tzinfo=dt.UTC),
        },
    )
    wait_for(lambda: status() == "SHUTOFF", "the server stopped", timeout=30)

    publish(
        config,
        "orders.subscription.renewed",
        {
            **base,
            "renewal_order_id": f"ord_{uuid.uuid4().hex}",
            "previous_status": "frozen",
            "previous_expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            "expires_at": dt.datetime(2027, 2, 28, tzinfo=dt.UTC),
            "period": {"unit": "month", "count": 1},
            "amount": {"amount": 5000, "currency": "USD"},
            "automatic": False,
            "renewed_at": dt.datetime(2027, 1, 20, tzinfo=dt.UTC),
        },
    )
    wait_for(lambda: status() == "ACTIVE", "the server started", timeout=30)

    publish(
        config,
        "orders.subscription.released",
        {**base, "reason": "unsubscribed", "released_at": dt.datetime(2027, 2, 1, tzinfo=dt.UTC)},
    )
    deployed(config, identity, order_id, "released")
    assert cloud_simulator.resources(account["domain_id"]) == []
