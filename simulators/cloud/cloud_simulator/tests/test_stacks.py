"""RFS stacks end to end through the SDK: Mercato's agency creates a stack, the stack
service deploys it under the buyer's rfs agency, DeleteStack leaves nothing behind."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import EcsClient, ShowServerRequest
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    KmsClient,
)
from huaweicloudsdkrfs.v1 import (
    Agency,
    CreateStackRequest,
    CreateStackRequestBody,
    DeleteStackRequest,
    EncryptionStructure,
    GetStackMetadataRequest,
    KmsStructure,
    ListStackEventsRequest,
    ListStackOutputsRequest,
    ListStackResourcesRequest,
    ListStacksRequest,
    RfsClient,
    UpdateStackRequest,
    UpdateStackRequestBody,
    VarsStructure,
)

from mercato_testing.cloud import (
    create_agency,
    global_client,
    grant_policy,
    project_client,
    trusted_agency,
    unique,
)

MERCATO_POLICY = [
    {
        "Effect": "Allow",
        "Action": ["rf:stack:*", "kms:cmk:*", "kms:dek:create", "ecs:cloudServers:get"],
    }
]
RFS_POLICY = [
    {
        "Effect": "Allow",
        "Action": [
            "vpc:networks:*", "vpc:subnets:*", "vpc:securityGroups:*", "vpc:securityGroupRules:create",
            "vpc:publicIps:*", "evs:volumes:*", "ecs:cloudServers:*", "kms:dek:decrypt",
        ],
    }
]  # fmt: skip


def template(servers: int = 1) -> dict:
    ref = lambda kind, name, attr="id": "${" + f"{kind}.{name}.{attr}" + "}"  # noqa: E731
    return {
        "terraform": {"required_providers": {"huaweicloud": {"source": "huawei.com/provider/huaweicloud"}}},
        "provider": {"huaweicloud": {"region": "cn-north-4"}},
        "variable": {"admin_pass": {"type": "string", "sensitive": True}, "prefix": {"default": "helix"}},
        "resource": {
            "huaweicloud_compute_instance": {
                "web": {
                    "count": servers,
                    "name": "${var.prefix}-web",
                    "image_id": "img-helix-ubuntu-22",
                    "flavor_id": "s6.large.2",
                    "admin_pass": "${var.admin_pass}",
                    "security_group_ids": [ref("huaweicloud_networking_secgroup", "sg")],
                    "availability_zone": "cn-north-4a",
                    "system_disk_type": "SSD",
                    "system_disk_size": 40,
                    "network": [{"uuid": ref("huaweicloud_vpc_subnet", "subnet")}],
                },
                "db": {
                    "name": "${var.prefix}-db",
                    "image_id": "img-helix-ubuntu-22",
                    "flavor_id": "s6.medium.2",
                    "admin_pass": "${var.admin_pass}",
                    "security_group_ids": [ref("huaweicloud_networking_secgroup", "sg")],
                    "system_disk_size": 40,
                    "network": [{"uuid": ref("huaweicloud_vpc_subnet", "subnet")}],
                    "eip_id": ref("huaweicloud_vpc_eip", "eip"),
                    "data_disks": {"volume_ids": [ref("huaweicloud_evs_volume", "data")]},
                },
            },
            "huaweicloud_vpc": {"vpc": {"name": "helix-vpc", "cidr": "192.168.0.0/16"}},
            "huaweicloud_vpc_subnet": {
                "subnet": {"name": "helix-subnet", "cidr": "192.168.1.0/24", "gateway_ip": "192.168.1.1",
                           "vpc_id": ref("huaweicloud_vpc", "vpc")},
            },
            "huaweicloud_networking_secgroup": {"sg": {"name": "helix-sg"}},
            "huaweicloud_networking_secgroup_rule": {
                "https": {"security_group_id": ref("huaweicloud_networking_secgroup", "sg"), "direction": "ingress",
                          "protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
                          "remote_ip_prefix": "0.0.0.0/0", "ethertype": "IPv4"},
            },
            "huaweicloud_vpc_eip": {
                "eip": {"publicip": {"type": "5_bgp"},
                        "bandwidth": {"name": "helix-bw", "size": 5, "share_type": "PER", "charge_mode": "traffic"}},
            },
            "huaweicloud_evs_volume": {
                "data": {"name": "helix-data", "size": 100, "volume_type": "SSD", "availability_zone": "cn-north-4a"},
            },
        },
        "output": {
            "db_public_ip": {"value": ref("huaweicloud_vpc_eip", "eip", "address")},
            "db_private_ip": {"value": ref("huaweicloud_compute_instance", "db", "access_ip_v4")},
        },
    }  # fmt: skip


@pytest.fixture
def world(cloud_simulator):
    """A buyer with both agencies authorised, and Mercato's temporary credentials."""
    buyer = cloud_simulator.create_account(unique("buyer"))
    mercato = cloud_simulator.create_account(unique("mercato"))
    iam = global_client(cloud_simulator.url, buyer)
    rfs_agency = create_agency(iam, buyer, "mkp_rfs_agency_trust", "op_svc_rfs")
    grant_policy(iam, buyer, rfs_agency, RFS_POLICY, unique("mkp_rfs_deployment_policy"))
    creds = trusted_agency(cloud_simulator.url, buyer, mercato, MERCATO_POLICY)
    return {"buyer": buyer, "mercato": mercato, "creds": creds, "iam": iam}


def sealed_password(url: str, buyer: dict, creds: dict, password: str) -> VarsStructure:
    kms = project_client(KmsClient, url, buyer, creds)
    key_id = kms.create_key(
        CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("mkp")))
    ).key_info.key_id
    data_key = kms.create_datakey(
        CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="256"))
    )
    nonce = os.urandom(12)
    sealed = AESGCM(bytes.fromhex(data_key.plain_text)).encrypt(nonce, password.encode(), None)
    return VarsStructure(
        var_key="admin_pass",
        var_value=base64.b64encode(nonce + sealed).decode(),
        encryption=EncryptionStructure(
            kms=KmsStructure(id=key_id, cipher_text=data_key.cipher_text)
        ),
    )


def create_stack(
    url: str, world: dict, name: str, body: dict | None = None, sealed=None
) -> RfsClient:
    rfs = project_client(RfsClient, url, world["buyer"], world["creds"])
    rfs.create_stack(
        CreateStackRequest(
            client_request_id=str(uuid.uuid4()),
            body=CreateStackRequestBody(
                stack_name=name,
                template_body=json.dumps(body or template()),
                vars_structure=[
                    sealed or sealed_password(url, world["buyer"], world["creds"], "S3cret-pass!")
                ],
                agencies=[Agency(provider_name="huaweicloud", agency_name="mkp_rfs_agency_trust")],
            ),
        )
    )
    return rfs


def metadata(rfs: RfsClient, name: str):
    return rfs.get_stack_metadata(
        GetStackMetadataRequest(client_request_id=str(uuid.uuid4()), stack_name=name)
    )


def wait_status(rfs: RfsClient, name: str, *statuses: str, timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = metadata(rfs, name)
        if answer.status in statuses:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"stack {name} still {answer.status}")


def wait_gone(rfs: RfsClient, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            metadata(rfs, name)
        except ClientRequestException as exc:
            assert exc.status_code == 404
            return
        time.sleep(0.05)
    raise AssertionError(f"stack {name} is still there")


def delete_stack(rfs: RfsClient, name: str) -> None:
    rfs.delete_stack(DeleteStackRequest(client_request_id=str(uuid.uuid4()), stack_name=name))


def resources(rfs: RfsClient, name: str) -> list:
    return rfs.list_stack_resources(
        ListStackResourcesRequest(client_request_id=str(uuid.uuid4()), stack_name=name)
    ).stack_resources


def test_a_stack_deploys_every_resource_and_its_deletion_leaves_nothing(cloud_simulator, world):
    url, buyer = cloud_simulator.url, world["buyer"]
    rfs = create_stack(url, world, "mkp-deployment-1", template(servers=2))
    done = wait_status(rfs, "mkp-deployment-1", "DEPLOYMENT_COMPLETE", "DEPLOYMENT_FAILED")
    assert done.status == "DEPLOYMENT_COMPLETE", done.status_message
    assert done.vars_structure[0].var_value is None  # a sensitive value is never answered back

    listed = resources(rfs, "mkp-deployment-1")
    assert {r.resource_status for r in listed} == {"CREATION_COMPLETE"}
    kinds = [r.logical_resource_type for r in listed]
    assert (
        kinds.index("huaweicloud_vpc")
        < kinds.index("huaweicloud_vpc_subnet")
        < kinds.index("huaweicloud_compute_instance")
    )
    servers = [r for r in listed if r.logical_resource_type == "huaweicloud_compute_instance"]
    assert sorted(r.physical_resource_name for r in servers) == [
        "helix-db",
        "helix-web-1",
        "helix-web-2",
    ]
    ecs = project_client(EcsClient, url, buyer, world["creds"])
    for server in servers:
        shown = ecs.show_server(ShowServerRequest(server_id=server.physical_resource_id)).server
        assert shown.status == "ACTIVE"
    db = next(r for r in servers if r.physical_resource_name == "helix-db")
    addresses = {a.key: a.value for a in db.resource_attributes}
    outputs = {
        o.name: o.value
        for o in rfs.list_stack_outputs(
            ListStackOutputsRequest(
                client_request_id=str(uuid.uuid4()), stack_name="mkp-deployment-1"
            )
        ).outputs
    }
    assert outputs["db_private_ip"] == addresses["access_ip_v4"]
    assert outputs["db_public_ip"] == addresses["public_ip"]
    events = rfs.list_stack_events(
        ListStackEventsRequest(client_request_id=str(uuid.uuid4()), stack_name="mkp-deployment-1")
    ).stack_events
    assert {"CREATION_IN_PROGRESS", "CREATION_COMPLETE"} <= {e.event_type for e in events}
    left = {r["type"] for r in cloud_simulator.resources(buyer["domain_id"])}
    assert left == {"server", "volume", "vpc", "subnet", "security_group", "eip", "stack"}
    stacks = rfs.list_stacks(ListStacksRequest(client_request_id=str(uuid.uuid4()))).stacks
    assert [s.stack_name for s in stacks] == ["mkp-deployment-1"]
    rfs.update_stack(
        UpdateStackRequest(
            client_request_id=str(uuid.uuid4()), stack_name="mkp-deployment-1",
            body=UpdateStackRequestBody(description="updated"),
        )
    )  # fmt: skip
    assert metadata(rfs, "mkp-deployment-1").description == "updated"

    delete_stack(rfs, "mkp-deployment-1")
    wait_gone(rfs, "mkp-deployment-1")
    assert cloud_simulator.resources(buyer["domain_id"]) == []


def test_the_same_stack_name_twice_is_a_conflict(cloud_simulator, world):
    rfs = create_stack(cloud_simulator.url, world, "mkp-twice")
    with pytest.raises(ClientRequestException) as caught:
        create_stack(cloud_simulator.url, world, "mkp-twice")
    assert caught.value.status_code == 409
    assert caught.value.error_code == "RF.0409"
    delete_stack(rfs, "mkp-twice")
    wait_gone(rfs, "mkp-twice")
    assert cloud_simulator.resources(world["buyer"]["domain_id"]) == []


def test_a_failing_call_fails_the_deployment_and_delete_still_cleans_up(cloud_simulator, world):
    cloud_simulator.fault(
        action="vpc:publicIps:create", mode="fail", count=1, status=500, error_code="VPC.9999"
    )
    try:
        rfs = create_stack(cloud_simulator.url, world, "mkp-fault")
        failed = wait_status(rfs, "mkp-fault", "DEPLOYMENT_FAILED", "DEPLOYMENT_COMPLETE")
    finally:
        cloud_simulator.clear_faults()
    assert failed.status == "DEPLOYMENT_FAILED"
    assert "huaweicloud_vpc_eip.eip" in failed.status_message
    statuses = {r.logical_resource_type: r.resource_status for r in resources(rfs, "mkp-fault")}
    assert statuses["huaweicloud_vpc_eip"] == "CREATION_FAILED"
    assert cloud_simulator.resources(world["buyer"]["domain_id"])  # the network was made
    delete_stack(rfs, "mkp-fault")
    wait_gone(rfs, "mkp-fault")
    assert cloud_simulator.resources(world["buyer"]["domain_id"]) == []


def test_a_server_job_error_fails_the_deployment(cloud_simulator, world):
    cloud_simulator.fault(action="ecs:cloudServers:create", mode="job_error", count=1)
    try:
        rfs = create_stack(cloud_simulator.url, world, "mkp-job-error")
        failed = wait_status(rfs, "mkp-job-error", "DEPLOYMENT_FAILED", "DEPLOYMENT_COMPLETE")
    finally:
        cloud_simulator.clear_faults()
    assert failed.status == "DEPLOYMENT_FAILED"
    assert "job" in failed.status_message and "failed" in failed.status_message
    servers = [
        r for r in cloud_simulator.resources(world["buyer"]["domain_id"]) if r["type"] == "server"
    ]
    assert [s["status"] for s in servers] == ["ERROR"]
    delete_stack(rfs, "mkp-job-error")
    wait_gone(rfs, "mkp-job-error")
    assert cloud_simulator.resources(world["buyer"]["domain_id"]) == []


def test_a_quota_exceeded_fails_the_deployment_naming_it(cloud_simulator, world):
    cloud_simulator.set_quotas(world["buyer"]["domain_id"], instances=2)
    rfs = create_stack(cloud_simulator.url, world, "mkp-quota", template(servers=2))
    failed = wait_status(rfs, "mkp-quota", "DEPLOYMENT_FAILED", "DEPLOYMENT_COMPLETE")
    assert failed.status == "DEPLOYMENT_FAILED"
    assert "Quota exceeded for instances" in failed.status_message
    delete_stack(rfs, "mkp-quota")
    wait_gone(rfs, "mkp-quota")
    assert cloud_simulator.resources(world["buyer"]["domain_id"]) == []


def test_the_rfs_agency_policy_is_enforced_on_create_and_delete(cloud_simulator, world):
    """Without vpc:publicIps:create the deployment fails; without vpc:networks:delete
    the deletion ends DELETION_FAILED, and succeeds once the policy allows it."""
    url, buyer, iam = cloud_simulator.url, world["buyer"], world["iam"]
    narrow = create_agency(iam, buyer, "narrow_rfs_agency", "op_svc_rfs")
    grant_policy(
        iam, buyer, narrow,
        [*RFS_POLICY, {"Effect": "Deny", "Action": ["vpc:publicIps:create", "vpc:networks:delete"]}],
        unique("narrow"),
    )  # fmt: skip
    rfs = project_client(RfsClient, url, buyer, world["creds"])
    rfs.create_stack(
        CreateStackRequest(
            client_request_id=str(uuid.uuid4()),
            body=CreateStackRequestBody(
                stack_name="mkp-narrow",
                template_body=json.dumps(template()),
                vars_structure=[sealed_password(url, buyer, world["creds"], "S3cret-pass!")],
                agencies=[Agency(provider_name="huaweicloud", agency_name="narrow_rfs_agency")],
            ),
        )
    )
    failed = wait_status(rfs, "mkp-narrow", "DEPLOYMENT_FAILED", "DEPLOYMENT_COMPLETE")
    assert "Policy doesn't allow vpc:publicIps:create to be performed." in failed.status_message
    delete_stack(rfs, "mkp-narrow")
    refused = wait_status(rfs, "mkp-narrow", "DELETION_FAILED")
    assert "Policy doesn't allow vpc:networks:delete to be performed." in refused.status_message
    assert [r["type"] for r in cloud_simulator.resources(buyer["domain_id"])] == ["vpc", "stack"]

    rfs.update_stack(
        UpdateStackRequest(
            client_request_id=str(uuid.uuid4()), stack_name="mkp-narrow",
            body=UpdateStackRequestBody(
                agencies=[Agency(provider_name="huaweicloud", agency_name="mkp_rfs_agency_trust")]
            ),
        )
    )  # fmt: skip
    delete_stack(rfs, "mkp-narrow")
    wait_gone(rfs, "mkp-narrow")
    assert cloud_simulator.resources(buyer["domain_id"]) == []


def test_deleting_a_stack_while_it_deploys_removes_what_was_started(cloud_simulator, world):
    cloud_simulator.fault(
        action="ecs:cloudServers:create", mode="delay", count=1, delay_seconds=0.5
    )
    try:
        rfs = create_stack(cloud_simulator.url, world, "mkp-early")
        deadline = time.monotonic() + 10
        while not any(
            r.logical_resource_type == "huaweicloud_compute_instance"
            for r in resources(rfs, "mkp-early")
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        delete_stack(rfs, "mkp-early")
    finally:
        cloud_simulator.clear_faults()
    wait_gone(rfs, "mkp-early")
    assert cloud_simulator.resources(world["buyer"]["domain_id"]) == []


def test_mercato_cannot_create_a_stack_without_rf_create_stack(cloud_simulator, world):
    creds = trusted_agency(
        cloud_simulator.url,
        world["buyer"],
        world["mercato"],
        [{"Effect": "Allow", "Action": ["rf:stack:list*"]}],
    )
    rfs = project_client(RfsClient, cloud_simulator.url, world["buyer"], creds)
    with pytest.raises(ClientRequestException) as caught:
        rfs.create_stack(
            CreateStackRequest(
                client_request_id=str(uuid.uuid4()),
                body=CreateStackRequestBody(
                    stack_name="mkp-denied", template_body=json.dumps(template())
                ),
            )
        )
    assert caught.value.status_code == 403
    assert caught.value.error_code == "RF.0403"
    assert caught.value.error_msg == "Policy doesn't allow rf:stack:createStack to be performed."
