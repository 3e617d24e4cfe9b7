"""The cloud driver stops and starts a buyer's servers (a frozen image subscription's,
and its renewal's) against the cloud simulator, through the SDK, under the temporary
credentials of ``mkp_agency_trust`` with the policy version 3 granted: the job waited
for, what is there already left out, the policy checked first, the cloud's refusals and
failures as ``CloudError``."""

from __future__ import annotations

import time
import uuid

import pytest
from huaweicloudsdkecs.v2 import (
    CreateServersRequest,
    CreateServersRequestBody,
    EcsClient,
    PrePaidServer,
    PrePaidServerNic,
    PrePaidServerRootVolume,
    ShowJobRequest,
)
from huaweicloudsdkvpc.v2 import (
    CreateSubnetOption,
    CreateSubnetRequest,
    CreateSubnetRequestBody,
    CreateVpcOption,
    CreateVpcRequest,
    CreateVpcRequestBody,
    VpcClient,
)

from mercato_testing.cloud import project_client, start_cloud_simulator
from provisioning.cloud.driver import (
    CloudCredentials,
    CloudError,
    CloudNotFound,
    HuaweiCloudDriver,
    PolicyDenied,
)
from provisioning.tests.cloud_account import (
    DEPLOYMENT_POLICY,
    AgencyStandIn,
    authorise,
    without,
)

pytestmark = pytest.mark.interface

STOP, START = "ecs:cloudServers:stop", "ecs:cloudServers:start"


@pytest.fixture
def agency(cloud_simulator):
    suffix = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{suffix}")
    buyer = cloud_simulator.create_account(f"buyer-{suffix}")
    authorise(cloud_simulator.url, buyer, mercato)
    return AgencyStandIn(cloud_simulator.url, buyer, mercato)


@pytest.fixture
def driver(cloud_simulator):
    return HuaweiCloudDriver(cloud_simulator.url, timeout=10, job_poll_seconds=0.02)


def creds_of(agency: AgencyStandIn, **overrides) -> CloudCredentials:
    return CloudCredentials.from_answer({**agency.credentials(), **overrides})


def servers_of(url: str, account: dict, count: int, wait_seconds: float = 10) -> list[str]:
    """``count`` running servers in the account, made with its admin's keys (as a
    deployment's stack leaves them)."""
    ecs, vpc = project_client(EcsClient, url, account), project_client(VpcClient, url, account)
    vpc_id = vpc.create_vpc(CreateVpcRequest(body=CreateVpcRequestBody(
        vpc=CreateVpcOption(name="v", cidr="10.0.0.0/16")))).vpc.id  # fmt: skip
    subnet_id = vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(subnet=CreateSubnetOption(
        name="s", cidr="10.0.1.0/24", gateway_ip="10.0.1.1", vpc_id=vpc_id)))).subnet.id  # fmt: skip
    created = ecs.create_servers(CreateServersRequest(body=CreateServersRequestBody(server=PrePaidServer(
        image_ref="img-ubuntu-22.04", flavor_ref="s6.medium.2", name="app", count=count,
        vpcid=vpc_id, nics=[PrePaidServerNic(subnet_id=subnet_id)],
        root_volume=PrePaidServerRootVolume(volumetype="SSD", size=40)))))  # fmt: skip
    deadline = time.monotonic() + wait_seconds
    while ecs.show_job(ShowJobRequest(job_id=created.job_id)).status == "RUNNING":
        assert time.monotonic() < deadline, "the servers were not built"
        time.sleep(0.02)
    return list(created.server_ids)


def test_servers_stop_and_start_and_a_repeat_does_nothing(cloud_simulator, driver, agency):
    creds = creds_of(agency)
    first, second = servers_of(cloud_simulator.url, agency.buyer, 2)

    job_id = driver.stop_servers(creds, [first, second])

    assert job_id and driver.server_job(creds, job_id)["status"] == "SUCCESS"
    assert driver.server_job(creds, job_id)["job_type"] == "batchStopServer"
    assert {driver.server_status(creds, i) for i in (first, second)} == {"SHUTOFF"}
    assert driver.stop_servers(creds, [first, second, first]) is None  # stopped already

    assert driver.start_servers(creds, [first])
    assert (driver.server_status(creds, first), driver.server_status(creds, second)) == (
        "ACTIVE",
        "SHUTOFF",
    )
    # only the stopped one is asked for: the running one is left out
    job_id = driver.start_servers(creds, [first, second])
    assert job_id and driver.server_job(creds, job_id)["status"] == "SUCCESS"
    assert {driver.server_status(creds, i) for i in (first, second)} == {"ACTIVE"}
    assert driver.server_job(creds, "no-such-job") is None
    assert driver.server_status(creds, "no-such-server") is None


def test_a_server_not_in_the_account_stops_none_of_them(cloud_simulator, driver, agency):
    creds = creds_of(agency)
    (server_id,) = servers_of(cloud_simulator.url, agency.buyer, 1)
    with pytest.raises(CloudNotFound) as missing:
        driver.stop_servers(creds, [server_id, "no-such-server"])
    assert missing.value.status == 404 and "no-such-server" in str(missing.value)
    assert driver.server_status(creds, server_id) == "ACTIVE"
    with pytest.raises(ValueError):
        driver.start_servers(creds, [])


def test_an_agency_without_version_3_is_refused_before_any_call(cloud_simulator, driver, agency):
    (server_id,) = servers_of(cloud_simulator.url, agency.buyer, 1)
    older = creds_of(agency, policy=without(DEPLOYMENT_POLICY, STOP, START))
    calls_before = cloud_simulator.log().count('"event": "request"')
    for method, action in ((driver.stop_servers, STOP), (driver.start_servers, START)):
        with pytest.raises(PolicyDenied) as denied:
            method(older, [server_id])
        assert denied.value.action == action and not denied.value.transient
    assert cloud_simulator.log().count('"event": "request"') == calls_before


def test_the_cloud_refuses_a_stop_the_granted_policy_lacks(cloud_simulator, driver):
    suffix = uuid.uuid4().hex[:8]
    mercato = cloud_simulator.create_account(f"mercato-{suffix}")
    buyer = cloud_simulator.create_account(f"buyer-{suffix}")
    authorise(
        cloud_simulator.url, buyer, mercato, deployment_policy=without(DEPLOYMENT_POLICY, STOP)
    )
    (server_id,) = servers_of(cloud_simulator.url, buyer, 1)
    # the policy Mercato checks says yes; the one granted in the cloud says no
    creds = creds_of(AgencyStandIn(cloud_simulator.url, buyer, mercato))
    with pytest.raises(CloudError) as refused:
        driver.stop_servers(creds, [server_id])
    assert refused.value.status == 403 and not refused.value.transient
    assert STOP in refused.value.message
    assert driver.server_status(creds, server_id) == "ACTIVE"


def test_a_failed_job_or_call_is_a_transient_cloud_error(cloud_simulator, driver, agency):
    creds = creds_of(agency)
    (server_id,) = servers_of(cloud_simulator.url, agency.buyer, 1)

    cloud_simulator.fault(action=STOP, mode="job_error")
    with pytest.raises(CloudError) as failed:
        driver.stop_servers(creds, [server_id])
    assert failed.value.code == "JOB_FAILED" and failed.value.transient
    assert driver.server_status(creds, server_id) == "ACTIVE"

    cloud_simulator.fault(action=STOP, mode="fail", status=503, error_code="Ecs.9999")
    with pytest.raises(CloudError) as unavailable:
        driver.stop_servers(creds, [server_id])
    assert (unavailable.value.status, unavailable.value.code) == (503, "Ecs.9999")
    assert unavailable.value.transient

    assert driver.stop_servers(creds, [server_id])  # the retry does it
    assert driver.server_status(creds, server_id) == "SHUTOFF"
    assert cloud_simulator.faults() == []


def test_a_job_still_running_when_the_wait_ends_is_transient(tmp_path):
    """On a simulator whose steps take a second, waiting 0.2 s is not enough."""
    cloud = start_cloud_simulator(tmp_path, step_seconds=1.0)
    try:
        mercato, buyer = cloud.create_account("mercato-slow"), cloud.create_account("buyer-slow")
        authorise(cloud.url, buyer, mercato)
        creds = creds_of(AgencyStandIn(cloud.url, buyer, mercato))
        (server_id,) = servers_of(cloud.url, buyer, 1, wait_seconds=30)
        impatient = HuaweiCloudDriver(
            cloud.url, timeout=10, job_wait_seconds=0.2, job_poll_seconds=0.05
        )
        with pytest.raises(CloudError) as waiting:
            impatient.stop_servers(creds, [server_id])
        assert waiting.value.code == "JOB_RUNNING" and waiting.value.transient
        # the stop goes on in the cloud; a retry asks only for what is not stopped yet
        deadline = time.monotonic() + 30
        while impatient.server_status(creds, server_id) != "SHUTOFF":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert impatient.stop_servers(creds, [server_id]) is None
    finally:
        cloud.stop()
