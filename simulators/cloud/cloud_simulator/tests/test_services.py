"""Every ECS, EVS, VPC, EIP, IMS and KMS call of the action table through the SDK
clients, with an account's admin keys and with an agency's temporary credentials."""

from __future__ import annotations

import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import (
    CreateServersRequest,
    CreateServersRequestBody,
    DeleteServersRequest,
    DeleteServersRequestBody,
    EcsClient,
    ListFlavorsRequest,
    ListServersDetailsRequest,
    PrePaidServer,
    PrePaidServerNic,
    PrePaidServerPublicip,
    PrePaidServerRootVolume,
    PrePaidServerSecurityGroup,
    ServerId,
    ShowJobRequest,
    ShowServerLimitsRequest,
    ShowServerRequest,
)
from huaweicloudsdkeip.v2 import (
    CreatePublicipBandwidthOption,
    CreatePublicipOption,
    CreatePublicipRequest,
    CreatePublicipRequestBody,
    DeletePublicipRequest,
    EipClient,
    ShowPublicipRequest,
)
from huaweicloudsdkevs.v2 import (
    CreateVolumeOption,
    CreateVolumeRequest,
    CreateVolumeRequestBody,
    DeleteVolumeRequest,
    EvsClient,
    ShowVolumeRequest,
)
from huaweicloudsdkevs.v2 import ShowJobRequest as ShowVolumeJobRequest
from huaweicloudsdkims.v2 import GlanceShowImageRequest, ImsClient, ListImagesRequest
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    KmsClient,
    ListKeyDetailRequest,
    OperateKeyRequestBody,
)
from huaweicloudsdkvpc.v2 import (
    CreateSecurityGroupOption,
    CreateSecurityGroupRequest,
    CreateSecurityGroupRequestBody,
    CreateSecurityGroupRuleOption,
    CreateSecurityGroupRuleRequest,
    CreateSecurityGroupRuleRequestBody,
    CreateSubnetOption,
    CreateSubnetRequest,
    CreateSubnetRequestBody,
    CreateVpcOption,
    CreateVpcRequest,
    CreateVpcRequestBody,
    DeleteSecurityGroupRequest,
    DeleteSubnetRequest,
    DeleteVpcRequest,
    ListSecurityGroupsRequest,
    ListSubnetsRequest,
    ListVpcsRequest,
    ShowQuotaRequest,
    ShowSecurityGroupRequest,
    ShowSubnetRequest,
    ShowVpcRequest,
    VpcClient,
)

from mercato_testing.cloud import project_client, trusted_agency, unique


@pytest.fixture
def buyer(cloud_simulator):
    return cloud_simulator.create_account(unique("buyer"))


def clients(url: str, account: dict, creds: dict | None = None) -> dict:
    return {
        name: project_client(cls, url, account, creds)
        for name, cls in (("ecs", EcsClient), ("vpc", VpcClient), ("eip", EipClient),
                          ("evs", EvsClient), ("ims", ImsClient), ("kms", KmsClient))
    }  # fmt: skip


def wait_job(show, job_id: str) -> object:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = show(job_id)
        if job.status != "RUNNING":
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still running")


def test_network_server_volume_and_eip_lifecycle(cloud_simulator, buyer):
    c = clients(cloud_simulator.url, buyer)
    ecs, vpc, eip, evs = c["ecs"], c["vpc"], c["eip"], c["evs"]

    vpc_id = vpc.create_vpc(CreateVpcRequest(body=CreateVpcRequestBody(
        vpc=CreateVpcOption(name="v", cidr="10.0.0.0/16")))).vpc.id  # fmt: skip
    subnet = vpc.create_subnet(CreateSubnetRequest(body=CreateSubnetRequestBody(subnet=CreateSubnetOption(
        name="s", cidr="10.0.1.0/24", gateway_ip="10.0.1.1", vpc_id=vpc_id)))).subnet  # fmt: skip
    group_id = vpc.create_security_group(CreateSecurityGroupRequest(body=CreateSecurityGroupRequestBody(
        security_group=CreateSecurityGroupOption(name="g")))).security_group.id  # fmt: skip
    rule = vpc.create_security_group_rule(CreateSecurityGroupRuleRequest(body=CreateSecurityGroupRuleRequestBody(
        security_group_rule=CreateSecurityGroupRuleOption(
            security_group_id=group_id, direction="ingress", protocol="tcp", port_range_min=22,
            port_range_max=22, remote_ip_prefix="0.0.0.0/0")))).security_group_rule  # fmt: skip
    assert rule.port_range_min == 22
    assert [v.id for v in vpc.list_vpcs(ListVpcsRequest()).vpcs] == [vpc_id]
    assert vpc.show_vpc(ShowVpcRequest(vpc_id=vpc_id)).vpc.cidr == "10.0.0.0/16"
    assert [s.id for s in vpc.list_subnets(ListSubnetsRequest(vpc_id=vpc_id)).subnets] == [
        subnet.id
    ]
    assert vpc.show_subnet(ShowSubnetRequest(subnet_id=subnet.id)).subnet.gateway_ip == "10.0.1.1"
    assert [
        g.id for g in vpc.list_security_groups(ListSecurityGroupsRequest()).security_groups
    ] == [group_id]
    shown_group = vpc.show_security_group(
        ShowSecurityGroupRequest(security_group_id=group_id)
    ).security_group
    assert [r.id for r in shown_group.security_group_rules] == [rule.id]

    publicip = eip.create_publicip(CreatePublicipRequest(body=CreatePublicipRequestBody(
        publicip=CreatePublicipOption(type="5_bgp"),
        bandwidth=CreatePublicipBandwidthOption(name="bw", size=5, share_type="PER", charge_mode="traffic"),
    ))).publicip  # fmt: skip
    assert publicip.status == "DOWN"

    volume = evs.create_volume(CreateVolumeRequest(body=CreateVolumeRequestBody(volume=CreateVolumeOption(
        availability_zone="cn-north-4a", name="data", size=20, volume_type="SSD"))))  # fmt: skip
    job = wait_job(lambda j: evs.show_job(ShowVolumeJobRequest(job_id=j)), volume.job_id)
    assert job.status == "SUCCESS"
    assert job.entities.volume_id == volume.volume_ids[0]
    assert (
        evs.show_volume(ShowVolumeRequest(volume_id=volume.volume_ids[0])).volume.status
        == "available"
    )

    created = ecs.create_servers(CreateServersRequest(body=CreateServersRequestBody(server=PrePaidServer(
        image_ref="img-ubuntu-22.04", flavor_ref="s6.large.2", name="web", admin_pass="S3cret-pass!",
        vpcid=vpc_id, nics=[PrePaidServerNic(subnet_id=subnet.id)],
        security_groups=[PrePaidServerSecurityGroup(id=group_id)],
        root_volume=PrePaidServerRootVolume(volumetype="SSD", size=40),
        publicip=PrePaidServerPublicip(id=publicip.id)))))  # fmt: skip
    server_id = created.server_ids[0]
    assert ecs.show_server(ShowServerRequest(server_id=server_id)).server.status == "BUILD"
    job = wait_job(lambda j: ecs.show_job(ShowJobRequest(job_id=j)), created.job_id)
    assert (job.status, job.entities.sub_jobs[0].entities.server_id) == ("SUCCESS", server_id)
    server = ecs.show_server(ShowServerRequest(server_id=server_id)).server
    assert server.status == "ACTIVE"
    assert server.flavor.id == "s6.large.2"
    kinds = {a.os_ext_ip_stype: a.addr for a in server.addresses[vpc_id]}
    assert kinds["fixed"].startswith("10.0.1.")
    assert kinds["floating"] == publicip.public_ip_address
    assert (
        eip.show_publicip(ShowPublicipRequest(publicip_id=publicip.id)).publicip.status == "ACTIVE"
    )
    listed = ecs.list_servers_details(ListServersDetailsRequest())
    assert (listed.count, listed.servers[0].id) == (1, server_id)
    limits = ecs.show_server_limits(ShowServerLimitsRequest()).absolute
    assert (limits.max_total_instances, limits.total_instances_used) == (10, 1)
    assert (limits.total_cores_used, limits.total_ram_used) == (2, 4096)
    quota = {r.type: (r.used, r.quota) for r in vpc.show_quota(ShowQuotaRequest()).quotas.resources}
    assert quota == {"vpc": (1, 5), "subnet": (1, 20), "securityGroup": (1, 20), "publicIp": (1, 5)}

    with pytest.raises(ClientRequestException) as caught:  # still in use
        vpc.delete_vpc(DeleteVpcRequest(vpc_id=vpc_id))
    assert (caught.value.status_code, caught.value.error_code) == (409, "VPC.0015")

    deleted = ecs.delete_servers(DeleteServersRequest(body=DeleteServersRequestBody(
        servers=[ServerId(id=server_id)], delete_publicip=False, delete_volume=False)))  # fmt: skip
    assert (
        wait_job(lambda j: ecs.show_job(ShowJobRequest(job_id=j)), deleted.job_id).status
        == "SUCCESS"
    )
    with pytest.raises(ClientRequestException) as caught:
        ecs.show_server(ShowServerRequest(server_id=server_id))
    assert (caught.value.status_code, caught.value.error_code) == (404, "Ecs.0114")
    eip.delete_publicip(DeletePublicipRequest(publicip_id=publicip.id))
    job_id = evs.delete_volume(DeleteVolumeRequest(volume_id=volume.volume_ids[0])).job_id
    assert (
        wait_job(lambda j: evs.show_job(ShowVolumeJobRequest(job_id=j)), job_id).status == "SUCCESS"
    )
    vpc.delete_security_group(DeleteSecurityGroupRequest(security_group_id=group_id))
    vpc.delete_subnet(DeleteSubnetRequest(vpc_id=vpc_id, subnet_id=subnet.id))
    vpc.delete_vpc(DeleteVpcRequest(vpc_id=vpc_id))
    assert cloud_simulator.resources(buyer["domain_id"]) == []


def test_flavors_and_images(cloud_simulator, buyer):
    c = clients(cloud_simulator.url, buyer)
    flavors = {f.id: (f.vcpus, f.ram) for f in c["ecs"].list_flavors(ListFlavorsRequest()).flavors}
    assert flavors["s6.small.1"] == ("1", 1024)
    assert flavors["c6.xlarge.2"] == ("4", 8192)
    images = [i.id for i in c["ims"].list_images(ListImagesRequest()).images]
    assert set(cloud_simulator.image_ids) <= set(images)
    registered = cloud_simulator.register_image(
        "Acme backup 22", image_id=unique("img-acme"), min_disk=50
    )
    shown = c["ims"].glance_show_image(GlanceShowImageRequest(image_id=registered))
    assert (shown.name, shown.min_disk, shown.status) == ("Acme backup 22", 50, "active")
    only = c["ims"].list_images(ListImagesRequest(id=registered)).images
    assert [i.id for i in only] == [registered]
    with pytest.raises(ClientRequestException) as caught:
        c["ims"].glance_show_image(GlanceShowImageRequest(image_id="img-nope"))
    assert caught.value.status_code == 404


def test_kms_data_keys_round_trip(cloud_simulator, buyer):
    kms = clients(cloud_simulator.url, buyer)["kms"]
    key = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="mkp-cmk"))).key_info
    detail = kms.list_key_detail(
        ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key.key_id))
    ).key_info
    assert (detail.key_alias, detail.key_state) == ("mkp-cmk", "2")
    data_key = kms.create_datakey(
        CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key.key_id, datakey_length="256"))
    )
    assert len(bytes.fromhex(data_key.plain_text)) == 32
    opened = kms.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=key.key_id, cipher_text=data_key.cipher_text, datakey_cipher_length="32")))  # fmt: skip
    assert opened.data_key == data_key.plain_text
    with pytest.raises(ClientRequestException) as caught:
        kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id="missing")))
    assert (caught.value.status_code, caught.value.error_code) == (404, "KMS.0205")


def test_quota_exceeded_is_refused_naming_the_quota(cloud_simulator, buyer):
    cloud_simulator.set_quotas(buyer["domain_id"], vpcs=1)
    vpc = clients(cloud_simulator.url, buyer)["vpc"]
    request = CreateVpcRequest(
        body=CreateVpcRequestBody(vpc=CreateVpcOption(name="v", cidr="10.0.0.0/16"))
    )
    vpc.create_vpc(request)
    with pytest.raises(ClientRequestException) as caught:
        vpc.create_vpc(request)
    assert (caught.value.status_code, caught.value.error_code) == (403, "VPC.0106")
    assert "Quota exceeded for vpcs" in caught.value.error_msg


@pytest.mark.parametrize(
    ("service", "call", "action", "code"),
    [
        ("ecs", lambda c: c.list_flavors(ListFlavorsRequest()), "ecs:flavors:get", "Ecs.0003"),
        ("vpc", lambda c: c.show_quota(ShowQuotaRequest()), "vpc:quotas:list", "VPC.0003"),
        ("eip", lambda c: c.show_publicip(ShowPublicipRequest(publicip_id="x")), "vpc:publicIps:get", "VPC.0003"),
        ("evs", lambda c: c.show_volume(ShowVolumeRequest(volume_id="x")), "evs:volumes:get", "Ecs.0003"),
        ("ims", lambda c: c.list_images(ListImagesRequest()), "ims:images:list", "Ecs.0003"),
        ("kms", lambda c: c.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="k"))), "kms:cmk:create", "KMS.0303"),
    ],
)  # fmt: skip
def test_an_agency_is_refused_what_its_policy_does_not_allow(
    cloud_simulator, buyer, service, call, action, code
):
    mercato = cloud_simulator.create_account(unique("mercato"))
    creds = trusted_agency(
        cloud_simulator.url, buyer, mercato, [{"Effect": "Allow", "Action": ["rf:stack:*"]}]
    )
    with pytest.raises(ClientRequestException) as caught:
        call(clients(cloud_simulator.url, buyer, creds)[service])
    assert (caught.value.status_code, caught.value.error_code) == (403, code)
    assert caught.value.error_msg == f"Policy doesn't allow {action} to be performed."


def test_an_agency_does_what_wildcards_allow(cloud_simulator, buyer):
    mercato = cloud_simulator.create_account(unique("mercato"))
    creds = trusted_agency(
        cloud_simulator.url,
        buyer,
        mercato,
        [{"Effect": "Allow", "Action": ["ECS:*:get", "ims:images:*"]}],
    )
    c = clients(cloud_simulator.url, buyer, creds)
    assert c["ecs"].list_flavors(ListFlavorsRequest()).flavors
    assert c["ims"].list_images(ListImagesRequest()).images
    with pytest.raises(ClientRequestException):
        c["ecs"].list_servers_details(ListServersDetailsRequest())  # ecs:cloudServers:list


def test_another_projects_path_is_refused(cloud_simulator, buyer):
    other = cloud_simulator.create_account(unique("other"))
    vpc = project_client(
        VpcClient, cloud_simulator.url, {**buyer, "project_id": other["project_id"]}
    )
    with pytest.raises(ClientRequestException) as caught:
        vpc.list_vpcs(ListVpcsRequest())
    assert caught.value.status_code == 403


def test_faults_fail_delay_and_count_down(cloud_simulator, buyer):
    ecs = clients(cloud_simulator.url, buyer)["ecs"]
    cloud_simulator.fault(
        action="ecs:flavors:get", mode="fail", count=2, status=503, error_code="Ecs.9999"
    )
    for _ in range(2):
        with pytest.raises(Exception) as caught:
            ecs.list_flavors(ListFlavorsRequest())
        assert caught.value.status_code == 503
        assert caught.value.error_code == "Ecs.9999"
    assert ecs.list_flavors(ListFlavorsRequest()).flavors
    cloud_simulator.fault(action="ecs:quotas:get", mode="delay", count=1, delay_seconds=0.3)
    assert [f["action"] for f in cloud_simulator.faults()] == ["ecs:quotas:get"]
    started = time.monotonic()
    ecs.show_server_limits(ShowServerLimitsRequest())
    assert time.monotonic() - started >= 0.3
    assert cloud_simulator.faults() == []
