"""Image deployments end to end inside provisioning: the service in a real container
(PostgreSQL, RabbitMQ), its driver against the cloud simulator through the SDK, and
iam-agency replaced by a small nameko service that hands out real temporary
credentials of the buyer's ``mkp_agency_trust`` (assumed by Mercato's own simulated
account, as iam-agency does)."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.errors import EXPECTED, Conflict, NotFound
from mercato.transport import rpc
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue, caller, publish_event, wait_for
from provisioning.service import ProvisioningService
from provisioning.tests.cloud_account import AgencyStandIn, authorise
from provisioning.tests.specs import HTTPS_RULE, image, image_subscription, quick

pytestmark = pytest.mark.interface

DELIVERY_SUCCEEDED = "provisioning.delivery.succeeded"
DELIVERY_FAILED = "provisioning.delivery.failed"


class FakeIamAgency:
    """iam-agency's ``agency_credentials``: real temporary credentials from the cloud
    simulator for the accounts a test registered, refused with its code otherwise."""

    name = "iam_agency"
    accounts: dict[str, AgencyStandIn] = {}

    @rpc(expected_exceptions=EXPECTED)
    def agency_credentials(self, account_id, check):
        standing = FakeIamAgency.accounts.get(account_id)
        if standing is None or standing.refuse:
            code = standing.refuse if standing else "AGENCY_NOT_AUTHORIZED"
            raise Conflict("the agency mkp_agency_trust is not authorised", code=code)
        return standing.credentials()


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
    )


@pytest.fixture
def events(config):
    queue = EventQueue(config["AMQP_URI"], "provisioning")
    yield queue.read
    queue.close()


@pytest.fixture
def start(container_factory, config):
    def start_provisioning(**overrides):
        container_factory(FakeIamAgency, config).start()
        container = container_factory(ProvisioningService, {**config, **overrides})
        container.start()
        return container

    return start_provisioning


@pytest.fixture
def buyer(cloud_simulator):
    """A Mercato buyer whose cloud account has both agencies authorised."""
    suffix = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{suffix}")
    account = cloud_simulator.create_account(f"buyer-{suffix}")
    authorise(cloud_simulator.url, account, mercato)
    identity = caller(f"acc_{suffix}", "buyer")
    FakeIamAgency.accounts[identity["account_id"]] = AgencyStandIn(
        cloud_simulator.url, account, mercato
    )
    return identity, account


def image_id(cloud_simulator) -> str:
    return (getattr(cloud_simulator, "image_ids", None) or ("img-helix-ubuntu-22",))[0]


def deployment(**overrides):
    """A customized deployment of one server, its VPC and subnet made by the stack."""
    return quick(mode="customized", vpc_id=None, subnet_id=None, **overrides)


def as_caller(config, identity):
    return ServiceRpcProxy(
        "provisioning", config, timeout=30, context_data=signed_context(dict(identity))
    )


def prepare_and_pay(config, cloud_simulator, identity, **spec) -> tuple[str, str]:
    """An image order prepared (as orders does while placing it) and paid; answers the
    order's and its subscription's ids."""
    order_id = f"ord_{uuid.uuid4().hex}"
    with as_caller(config, identity) as service:
        service.prepare_deployment(
            {
                "order_id": order_id,
                "account_id": identity["account_id"],
                "product_id": "prd_helix",
                "specification_id": "spc_std",
                "deployment": deployment(**spec),
                "image": image(image_id(cloud_simulator), HTTPS_RULE),
            }
        )
    subscription_id = f"sub_{uuid.uuid4().hex}"
    publish_event(
        config["AMQP_URI"],
        "orders.order.paid",
        {
            "order_id": order_id,
            "account_id": identity["account_id"],
            "payer_account_id": identity["account_id"],
            "enterprise_project_id": "default",
            "payment_id": f"pay_{uuid.uuid4().hex}",
            "payment_method": "balance",
            "amount": {"amount": 5000, "currency": "USD"},
            "subscriptions": [image_subscription(subscription_id, f"oln_{uuid.uuid4().hex}")],
        },
        subject=order_id,
    )
    return order_id, subscription_id


def deployed(config, identity, order_id, status, timeout=60.0) -> dict:
    def look():
        with as_caller(config, identity) as service:
            found = service.deployment_of_order(order_id)
        return found if found["status"] == status else None

    return wait_for(look, f"the deployment {status}", timeout)


def of_type(events, event_type, subject):
    return [e for e in events() if e["type"] == event_type and e["subject"] == subject]


def test_a_paid_image_is_deployed_to_active_and_delivered_once(
    start, config, events, buyer, cloud_simulator
):
    start()
    identity, account = buyer
    order_id, subscription_id = prepare_and_pay(config, cloud_simulator, identity)
    found = deployed(config, identity, order_id, "active")
    assert [step["status"] for step in found["steps"]] == ["succeeded"] * len(found["steps"])
    assert [step["name"] for step in found["steps"]][-1] == "servers"
    servers = [r for r in found["resources"] if r["type"] == "server"]
    assert len(servers) == 1 and servers[0]["addresses"]
    left = cloud_simulator.resources(account["domain_id"])
    assert len([r for r in left if r["type"] == "server"]) == 1
    wait_for(lambda: of_type(events, DELIVERY_SUCCEEDED, subscription_id), "delivered")
    time.sleep(0.5)
    assert len(of_type(events, DELIVERY_SUCCEEDED, subscription_id)) == 1
    # its buyer sees it by subscription too; another buyer does not see it at all
    with as_caller(config, identity) as service:
        assert service.deployment_of_subscription(subscription_id)["status"] == "active"
    with as_caller(config, caller("acc_stranger", "buyer")) as service:
        with pytest.raises(NotFound):
            service.deployment_of_order(order_id)
        with pytest.raises(NotFound):
            service.deployment_of_subscription(subscription_id)
    # released: the stack and everything in it deleted
    with as_caller(config, identity) as service:
        assert service.release_deployment({"subscription_id": subscription_id})["status"] == (
            "releasing"
        )
    deployed(config, identity, order_id, "released")
    assert cloud_simulator.resources(account["domain_id"]) == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"action": "rf:stack:createStack", "mode": "fail", "count": 1, "status": 400,
          "error_code": "RF.0001"}, "cloud_error"),
        ({"action": "ecs:cloudServers:create", "mode": "job_error", "count": 1}, "stack_failed"),
    ],
    ids=["create_stack refused", "server job ERROR"],
)  # fmt: skip
def test_a_failure_deletes_everything_and_fails_the_delivery_once(
    start, config, events, buyer, cloud_simulator, fault, reason
):
    start()
    identity, account = buyer
    before = cloud_simulator.resources(account["domain_id"])
    cloud_simulator.fault(**fault)
    try:
        order_id, subscription_id = prepare_and_pay(config, cloud_simulator, identity)
        found = deployed(config, identity, order_id, "failed")
    finally:
        cloud_simulator.clear_faults()
    assert found["failure_reason"] and "deleted" in found["failure_reason"]
    assert cloud_simulator.resources(account["domain_id"]) == before
    wait_for(lambda: of_type(events, DELIVERY_FAILED, subscription_id), "delivery failed")
    time.sleep(0.5)
    assert len(of_type(events, DELIVERY_FAILED, subscription_id)) == 1
    failed = [e for e in events() if e["type"] == "provisioning.deployment.failed"]
    assert failed[-1]["data"]["compensation_reason"] == reason


def test_a_step_past_its_deadline_fails_the_deployment(start, config, buyer, cloud_simulator):
    start(DEPLOYMENT_STEP_SERVERS_SECONDS=0.5)
    identity, account = buyer
    cloud_simulator.fault(action="ecs:cloudServers:create", mode="delay", count=1,
                          delay_seconds=5)  # fmt: skip
    try:
        order_id, _ = prepare_and_pay(config, cloud_simulator, identity)
        found = deployed(config, identity, order_id, "failed")
    finally:
        cloud_simulator.clear_faults()
    assert "servers did not finish within 0.5 seconds" in found["failure_reason"]
    wait_for(
        lambda: cloud_simulator.resources(account["domain_id"]) == [] or None,
        "everything deleted",
    )


def test_an_agency_revoked_before_the_start_fails_with_a_reason(
    start, config, events, buyer, cloud_simulator
):
    start()
    identity, account = buyer
    FakeIamAgency.accounts[identity["account_id"]].refuse = "AGENCY_NOT_AUTHORIZED"
    order_id, subscription_id = prepare_and_pay(config, cloud_simulator, identity)
    found = deployed(config, identity, order_id, "failed")
    assert "may no longer deploy" in found["failure_reason"]
    assert found["steps"][0] == {**found["steps"][0], "name": "check_agency", "status": "failed"}
    assert cloud_simulator.resources(account["domain_id"]) == []
    wait_for(lambda: of_type(events, DELIVERY_FAILED, subscription_id), "delivery failed")


def test_a_deployment_resumes_after_its_worker_stopped_mid_way(
    start, config, buyer, cloud_simulator
):
    container = start()
    identity, account = buyer
    order_id, _ = prepare_and_pay(config, cloud_simulator, identity)

    def stack_requested():
        with as_caller(config, identity) as service:
            found = service.deployment_of_order(order_id)
        done = [s["name"] for s in found["steps"] if s["status"] == "succeeded"]
        return "create_stack" in done or None

    wait_for(stack_requested, "the stack requested")
    container.kill()
    start()  # another provisioning takes it up once the lease has run out
    deployed(config, identity, order_id, "active")
    servers = [r for r in cloud_simulator.resources(account["domain_id"]) if r["type"] == "server"]
    assert len(servers) == 1


def test_two_replicas_deploy_each_image_once(container_factory, config, buyer, cloud_simulator):
    container_factory(FakeIamAgency, config).start()
    for _ in range(2):
        container_factory(ProvisioningService, config).start()
    identity, account = buyer
    orders = [prepare_and_pay(config, cloud_simulator, identity)[0] for _ in range(2)]
    for order_id in orders:
        deployed(config, identity, order_id, "active", timeout=90)
    servers = [r for r in cloud_simulator.resources(account["domain_id"]) if r["type"] == "server"]
    assert len(servers) == 2
    engine = sa.create_engine(config["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            stacks = connection.execute(sa.text("SELECT count(*) FROM deployments")).scalar()
    finally:
        engine.dispose()
    assert stacks == 2


def test_check_deployment_and_cloud_lists_read_the_buyers_account(
    start, config, buyer, cloud_simulator
):
    start()
    identity, _ = buyer
    sizing = deployment(count=1)
    sizing.pop("admin_password")
    image = {"image_id": image_id(cloud_simulator), "recommended_security_group": {"name": "x"}}
    with as_caller(config, identity) as service:
        answer = service.check_deployment(
            {"account_id": identity["account_id"], "deployment": sizing, "image": image}
        )
        assert answer == {"ok": True, "quota_exceeded": None}
        too_many = service.check_deployment(
            {"account_id": identity["account_id"], "deployment": {**sizing, "count": 6,
             "eip": {"bandwidth_mbps": 1}}, "image": image}
        )  # fmt: skip
        assert too_many == {
            "ok": False, "quota_exceeded": {"quota": "publicIp", "needed": 6, "available": 5},
        }  # fmt: skip
        flavors = service.list_cloud_resources({"kind": "flavors"})["items"]
        assert "s6.medium.2" in {flavor["id"] for flavor in flavors}
        assert service.list_cloud_resources({"kind": "vpcs"})["items"] == []
