"""Stopping and starting servers (BatchStopServers, BatchStartServers: one path, the
body says which) through the SDK: asynchronously through a job, refused for servers
that are not the caller's, under the agency's policy, and with injected faults."""

from __future__ import annotations

import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import (
    BatchStartServersOption,
    BatchStartServersRequest,
    BatchStartServersRequestBody,
    BatchStopServersOption,
    BatchStopServersRequest,
    BatchStopServersRequestBody,
    CreateServersRequest,
    CreateServersRequestBody,
    EcsClient,
    PrePaidServer,
    PrePaidServerNic,
    PrePaidServerRootVolume,
    ServerId,
    ShowJobRequest,
    ShowServerRequest,
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

from mercato_testing.cloud import project_client, start_cloud_simulator, trusted_agency, unique

STOP, START = "ecs:cloudServers:stop", "ecs:cloudServers:start"


@pytest.fixture
def buyer(cloud_simulator):
    return cloud_simulator.create_account(unique("buyer"))


def wait_job(ecs, job_id: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ecs.show_job(ShowJobRequest(job_id=job_id))
        if job.status != "RUNNING":
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still running")


def active_servers(url: str, account: dict, count: int = 1, timeout: float = 10) -> list[str]:
    """``count`` ACTIVE servers in the account (with the admin's keys)."""
    ecs, vpc = project_client(EcsClient, url, account), project_client(VpcClient, url, account)
    vpc_id = vpc.create_vpc(
        CreateVpcRequest(
            body=CreateVpcRequestBody(vpc=CreateVpcOption(name="v", cidr="10.0.0.0/16"))
        )
    ).vpc.id
    subnet_id = vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(subnet=CreateSubnetOption(
        name="s", cidr="10.0.1.0/24", gateway_ip="10.0.1.1", vpc_id=vpc_id)))).subnet.id  # fmt: skip
    created = ecs.create_servers(CreateServersRequest(body=CreateServersRequestBody(server=PrePaidServer(
        image_ref="img-ubuntu-22.04", flavor_ref="s6.medium.2", name="web", count=count,
        vpcid=vpc_id, nics=[PrePaidServerNic(subnet_id=subnet_id)],
        root_volume=PrePaidServerRootVolume(volumetype="SSD", size=40)))))  # fmt: skip
    assert wait_job(ecs, created.job_id, timeout).status == "SUCCESS"
    return list(created.server_ids)


def stop(ecs, *server_ids: str, type_: str | None = "SOFT") -> str:
    option = BatchStopServersOption(servers=[ServerId(id=i) for i in server_ids], type=type_)
    request = BatchStopServersRequest(body=BatchStopServersRequestBody(os_stop=option))
    return ecs.batch_stop_servers(request).job_id


def start(ecs, *server_ids: str) -> str:
    option = BatchStartServersOption(servers=[ServerId(id=i) for i in server_ids])
    request = BatchStartServersRequest(body=BatchStartServersRequestBody(os_start=option))
    return ecs.batch_start_servers(request).job_id


def shown(ecs, server_id: str):
    return ecs.show_server(ShowServerRequest(server_id=server_id)).server


def test_servers_stop_and_start_again_through_jobs(cloud_simulator, buyer):
    ecs = project_client(EcsClient, cloud_simulator.url, buyer)
    first, second = active_servers(cloud_simulator.url, buyer, count=2)

    job_id = stop(ecs, first, second)

    job = wait_job(ecs, job_id)
    assert (job.status, job.job_type) == ("SUCCESS", "batchStopServer")
    assert {sub.entities.server_id for sub in job.entities.sub_jobs} == {first, second}
    for server_id in (first, second):
        server = shown(ecs, server_id)
        assert server.status == "SHUTOFF"
        assert (server.os_ext_st_svm_state, server.os_ext_st_spower_state) == ("stopped", 4)
        assert server.os_ext_st_stask_state == ""

    # stopping a stopped server changes nothing, and its job succeeds
    assert wait_job(ecs, stop(ecs, first, type_="HARD")).status == "SUCCESS"
    assert shown(ecs, first).status == "SHUTOFF"

    job = wait_job(ecs, start(ecs, first))
    assert (job.status, job.job_type) == ("SUCCESS", "batchStartServer")
    assert (shown(ecs, first).status, shown(ecs, second).status) == ("ACTIVE", "SHUTOFF")
    assert wait_job(ecs, start(ecs, first, second)).status == "SUCCESS"
    assert {shown(ecs, i).status for i in (first, second)} == {"ACTIVE"}


def test_a_server_keeps_running_until_its_stop_job_ends(tmp_path):
    """With steps of a second (the shared simulator's are too short to look between)."""
    cloud = start_cloud_simulator(tmp_path, step_seconds=1.0)
    try:
        account = cloud.create_account(unique("slow"))
        ecs = project_client(EcsClient, cloud.url, account)
        (server_id,) = active_servers(cloud.url, account, timeout=30)

        job_id = stop(ecs, server_id)
        server = shown(ecs, server_id)
        assert (server.status, server.os_ext_st_stask_state) == ("ACTIVE", "powering-off")
        assert ecs.show_job(ShowJobRequest(job_id=job_id)).status == "RUNNING"
        assert wait_job(ecs, job_id, timeout=30).status == "SUCCESS"

        job_id = start(ecs, server_id)
        server = shown(ecs, server_id)
        assert (server.status, server.os_ext_st_stask_state) == ("SHUTOFF", "powering-on")
        assert wait_job(ecs, job_id, timeout=30).status == "SUCCESS"
        assert shown(ecs, server_id).status == "ACTIVE"
    finally:
        cloud.stop()


def test_an_unknown_server_or_another_accounts_is_refused_and_nothing_is_done(
    cloud_simulator, buyer
):
    ecs = project_client(EcsClient, cloud_simulator.url, buyer)
    (mine,) = active_servers(cloud_simulator.url, buyer)
    other = cloud_simulator.create_account(unique("other"))
    (theirs,) = active_servers(cloud_simulator.url, other)

    for server_id in ("no-such-server", theirs):
        for call in (stop, start):
            with pytest.raises(ClientRequestException) as refused:
                call(ecs, mine, server_id)
            assert (refused.value.status_code, refused.value.error_code) == (404, "Ecs.0114")
            assert server_id in refused.value.error_msg
    assert (shown(ecs, mine).status, shown(ecs, mine).os_ext_st_stask_state) == ("ACTIVE", "")
    theirs_ecs = project_client(EcsClient, cloud_simulator.url, other)
    assert shown(theirs_ecs, theirs).status == "ACTIVE"


@pytest.mark.parametrize(
    "option, problem",
    [
        (BatchStopServersOption(servers=[]), "1 to 1000 servers"),
        (BatchStopServersOption(servers=[ServerId(id="a"), ServerId(id="a")]), "once"),
        (BatchStopServersOption(servers=[ServerId(id="a")], type="GENTLE"), "SOFT or HARD"),
    ],
)
def test_a_malformed_request_is_a_400(cloud_simulator, buyer, option, problem):
    ecs = project_client(EcsClient, cloud_simulator.url, buyer)
    with pytest.raises(ClientRequestException) as refused:
        ecs.batch_stop_servers(
            BatchStopServersRequest(body=BatchStopServersRequestBody(os_stop=option))
        )
    assert (refused.value.status_code, refused.value.error_code) == (400, "Ecs.0005")
    assert problem in refused.value.error_msg


def test_a_server_being_built_cannot_be_stopped(cloud_simulator, buyer):
    ecs = project_client(EcsClient, cloud_simulator.url, buyer)
    (server_id,) = active_servers(cloud_simulator.url, buyer)
    cloud_simulator.fault(action="ecs:cloudServers:create", mode="job_error", count=1)
    vpc_id = next(iter(shown(ecs, server_id).addresses))
    subnet_id = next(
        r["id"] for r in cloud_simulator.resources(buyer["domain_id"]) if r["type"] == "subnet"
    )
    failed = ecs.create_servers(CreateServersRequest(body=CreateServersRequestBody(server=PrePaidServer(
        image_ref="img-ubuntu-22.04", flavor_ref="s6.medium.2", name="broken", vpcid=vpc_id,
        nics=[PrePaidServerNic(subnet_id=subnet_id)]))))  # fmt: skip
    assert wait_job(ecs, failed.job_id).status == "FAIL"
    with pytest.raises(ClientRequestException) as refused:
        stop(ecs, server_id, failed.server_ids[0])
    assert refused.value.status_code == 409
    assert "ERROR" in refused.value.error_msg
    assert shown(ecs, server_id).os_ext_st_stask_state == ""


def test_an_agency_stops_and_starts_only_what_its_policy_allows(cloud_simulator, buyer):
    (server_id,) = active_servers(cloud_simulator.url, buyer)
    mercato = cloud_simulator.create_account(unique("mercato"))
    creds = trusted_agency(
        cloud_simulator.url, buyer, mercato,
        [{"Effect": "Allow", "Action": [STOP, "ecs:cloudServers:get"]}],
    )  # fmt: skip
    ecs = project_client(EcsClient, cloud_simulator.url, buyer, creds)

    assert wait_job(ecs, stop(ecs, server_id)).status == "SUCCESS"
    with pytest.raises(ClientRequestException) as refused:
        start(ecs, server_id)
    assert (refused.value.status_code, refused.value.error_code) == (403, "Ecs.0003")
    assert refused.value.error_msg == f"Policy doesn't allow {START} to be performed."
    assert shown(ecs, server_id).status == "SHUTOFF"

    nothing = trusted_agency(
        cloud_simulator.url, buyer, mercato, [{"Effect": "Allow", "Action": ["ecs:*:get"]}]
    )
    ecs = project_client(EcsClient, cloud_simulator.url, buyer, nothing)
    with pytest.raises(ClientRequestException) as refused:
        stop(ecs, "no-such-server")  # refused before it learns whether the server exists
    assert refused.value.status_code == 403


def test_faults_fail_the_call_or_end_its_job_in_error(cloud_simulator, buyer):
    ecs = project_client(EcsClient, cloud_simulator.url, buyer)
    (server_id,) = active_servers(cloud_simulator.url, buyer)

    cloud_simulator.fault(action=STOP, mode="fail", status=503, error_code="Ecs.9999")
    with pytest.raises(Exception) as caught:
        stop(ecs, server_id)
    assert (caught.value.status_code, caught.value.error_code) == (503, "Ecs.9999")
    assert shown(ecs, server_id).os_ext_st_stask_state == ""

    cloud_simulator.fault(action=STOP, mode="job_error")
    job = wait_job(ecs, stop(ecs, server_id))
    assert job.status == "FAIL" and job.fail_reason
    server = shown(ecs, server_id)
    assert (server.status, server.os_ext_st_stask_state) == ("ACTIVE", "")

    assert wait_job(ecs, stop(ecs, server_id)).status == "SUCCESS"
    cloud_simulator.fault(action=START, mode="job_error")
    assert wait_job(ecs, start(ecs, server_id)).status == "FAIL"
    assert shown(ecs, server_id).status == "SHUTOFF"
    assert cloud_simulator.faults() == []
