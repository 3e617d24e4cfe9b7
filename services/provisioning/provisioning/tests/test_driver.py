"""The cloud driver against the cloud simulator, through the real SDK clients, under the
temporary credentials of a buyer's ``mkp_agency_trust``: every call it makes, the
policy check before each, and the cloud's errors as ``CloudError``."""

from __future__ import annotations

import time
import uuid

import pytest

from provisioning.cloud.driver import (
    CloudCredentials,
    CloudError,
    HuaweiCloudDriver,
    PolicyDenied,
    StackExists,
)
from provisioning.cloud.template import build_template
from provisioning.tests.cloud_account import AgencyStandIn, authorise, without

pytestmark = pytest.mark.interface

IMAGE = {
    "image_id": None,  # the simulator's first public image (set by the fixture)
    "flavors": ["s6.medium.2"],
    "min_system_disk_gb": 40,
    "recommended_security_group": {
        "name": "web",
        "rules": [{"direction": "ingress", "protocol": "tcp", "port_range": "443",
                   "remote_ip_prefix": "0.0.0.0/0"}],
    },
}  # fmt: skip


@pytest.fixture
def agency(cloud_simulator):
    suffix = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{suffix}")
    buyer = cloud_simulator.create_account(f"buyer-{suffix}")
    authorise(cloud_simulator.url, buyer, mercato)
    return AgencyStandIn(cloud_simulator.url, buyer, mercato)


@pytest.fixture
def driver(cloud_simulator):
    return HuaweiCloudDriver(cloud_simulator.url, timeout=10)


def creds_of(agency: AgencyStandIn, **overrides) -> CloudCredentials:
    return CloudCredentials.from_answer({**agency.credentials(), **overrides})


def wait_stack(driver, creds, name, done, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = driver.stack(creds, name)
        if done(stack):
            return stack
        time.sleep(0.2)
    raise AssertionError(f"stack {name} did not get there: {driver.stack(creds, name)}")


def test_reads_quotas_flavors_images_and_networks(driver, agency):
    creds = creds_of(agency)
    limits = driver.server_limits(creds)
    assert limits["instances"] == 10 and limits["cores"] == 40
    assert driver.network_quotas(creds)["vpc"] == 5
    flavors = {flavor["id"]: flavor for flavor in driver.flavors(creds)}
    assert flavors["s6.medium.2"] == {
        "id": "s6.medium.2", "name": "s6.medium.2", "vcpus": 1, "ram_mb": 2048,
    }  # fmt: skip
    assert driver.image(creds, "no-such-image") is None
    assert driver.vpcs(creds) == [] and driver.subnets(creds, None) == []
    assert isinstance(driver.security_groups(creds), list)


def test_a_call_outside_the_policy_is_refused_before_it_is_made(driver, agency):
    creds = creds_of(agency, policy=without(agency.policy, "ecs:flavors:get"))
    with pytest.raises(PolicyDenied) as denied:
        driver.flavors(creds)
    assert denied.value.action == "ecs:flavors:get" and not denied.value.transient


def test_the_cloud_refuses_what_the_granted_policy_does_not_allow(cloud_simulator, driver):
    suffix = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{suffix}")
    buyer = cloud_simulator.create_account(f"buyer-{suffix}")
    from provisioning.tests.cloud_account import DEPLOYMENT_POLICY

    authorise(
        cloud_simulator.url, buyer, mercato,
        deployment_policy=without(DEPLOYMENT_POLICY, "ecs:quotas:get"),
    )  # fmt: skip
    # the policy Mercato checks says yes; the one granted in the cloud says no
    creds = creds_of(AgencyStandIn(cloud_simulator.url, buyer, mercato))
    with pytest.raises(CloudError) as refused:
        driver.server_limits(creds)
    assert refused.value.status == 403 and not refused.value.transient
    assert "ecs:quotas:get" in refused.value.message


def test_a_stack_is_created_once_then_deleted_with_everything_it_made(
    cloud_simulator, driver, agency
):
    creds = creds_of(agency)
    image_id = cloud_simulator_image(cloud_simulator, driver, creds)
    key_id = driver.create_key(creds, f"mkp-test-{uuid.uuid4().hex[:6]}")
    assert driver.key_usable(creds, key_id)
    variable = driver.encrypt_var(creds, key_id, "admin_password", "Helix-2026-pass")
    assert "Helix-2026-pass" not in str(variable)
    spec = {
        "mode": "customized", "flavor_id": "s6.medium.2", "vpc_id": None, "subnet_id": None,
        "security_group": "recommended", "server_name": "helix", "system_disk_gb": None,
        "data_disks": [{"size_gb": 10}], "eip": {"bandwidth_mbps": 5}, "count": 1,
    }  # fmt: skip
    template = build_template(spec, {**IMAGE, "image_id": image_id}, region=creds.region)
    name = f"mkp-dep_{uuid.uuid4().hex}"
    stack_id = driver.create_stack(
        creds, name=name, template=template, vars_structure=[variable], client_token=name
    )
    with pytest.raises(StackExists):  # the name is the client token
        driver.create_stack(
            creds, name=name, template=template, vars_structure=[variable], client_token=name
        )
    stack = wait_stack(
        driver, creds, name, lambda s: s["status"] in ("DEPLOYMENT_COMPLETE", "DEPLOYMENT_FAILED")
    )
    assert stack["status"] == "DEPLOYMENT_COMPLETE", stack
    assert stack["stack_id"] == stack_id
    resources = {r["type"]: r for r in driver.stack_resources(creds, name)}
    assert {r["status"] for r in resources.values()} == {"CREATION_COMPLETE"}
    server = resources["huaweicloud_compute_instance"]
    assert driver.server_addresses(creds, server["id"])
    assert driver.public_ip(creds, resources["huaweicloud_vpc_eip"]["id"])
    assert driver.stack_events(creds, name)
    assert {r["type"] for r in cloud_simulator.resources(agency.buyer["domain_id"])} >= {
        "server", "volume", "vpc", "subnet", "eip",
    }  # fmt: skip

    driver.delete_stack(creds, name)
    wait_stack(driver, creds, name, lambda s: s is None)
    assert cloud_simulator.resources(agency.buyer["domain_id"]) == []
    driver.delete_stack(creds, name)  # a stack that is gone is deleted already


def cloud_simulator_image(cloud_simulator, driver, creds) -> str:
    """A public image of the simulator that IMS shows."""
    for image_id in getattr(cloud_simulator, "image_ids", None) or ("img-helix-ubuntu-22",):
        if driver.image(creds, image_id) is not None:
            return image_id
    raise AssertionError("the simulator shows none of its documented images")
