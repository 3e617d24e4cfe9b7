"""The image deployment saga on in-memory repositories, a stand-in iam-agency and a
stand-in cloud (``FakeCloud``): its rules in milliseconds. test_deployments_cloud.py
runs the same flows in a container against the cloud simulator through the SDK."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest

from mercato.clock import ManualClock
from mercato.errors import Conflict, Forbidden, NotFound, ValidationError
from provisioning import deploying, deployments, domain, usecases
from provisioning.cloud.driver import CloudError, PolicyDenied
from provisioning.cloud.template import build_template
from provisioning.keyring import Keyring, generate_key_spec
from provisioning.tests.fakes import (
    FakeCloud,
    FakeIamAgency,
    fake_unit_of_work,
)
from provisioning.tests.specs import (
    BUYER,
    HTTPS_RULE,
    INTERNAL_RULE,
    OTHER,
    PASSWORD,
    START,
    image,
    image_subscription,
    quick,
)

POLICY = deployments.DeploymentPolicy()
IMAGE = image("img-helix-cms-22", HTTPS_RULE, INTERNAL_RULE)


def customized(**overrides):
    return quick(
        **{
            "mode": "customized",
            "vpc_id": None,
            "subnet_id": None,
            "eip": {"bandwidth_mbps": 5},
            "data_disks": [{"size_gb": 20}],
            "count": 2,
            **overrides,
        }
    )


@pytest.fixture
def world():
    return SimpleNamespace(
        uow=fake_unit_of_work(),
        clock=ManualClock(START),
        keyring=Keyring.from_spec(generate_key_spec("k1")),
        iam=FakeIamAgency(),
        cloud=FakeCloud(),
    )


def prepare(world, deployment=None, buyer=BUYER) -> tuple[str, str]:
    order_id = f"ord_{uuid.uuid4().hex}"
    answer = deploying.prepare_deployment(
        world.uow,
        world.clock,
        buyer=buyer,
        request={
            "order_id": order_id,
            "account_id": buyer.account_id,
            "product_id": "prd_helix",
            "specification_id": "spc_std",
            "deployment": deployment or quick(),
            "image": IMAGE,
        },
        keyring=world.keyring,
    )
    return order_id, answer["deployment_id"]


def pay(world, order_id: str) -> str:
    subscription_id = f"sub_{uuid.uuid4().hex}"
    usecases.accept_paid_order(
        world.uow,
        world.clock,
        order={
            "order_id": order_id,
            "account_id": BUYER.account_id,
            "subscriptions": [image_subscription(subscription_id, f"oln_{uuid.uuid4().hex}")],
        },
        policy=domain.DeliveryPolicy(),
        deployment_policy=POLICY,
    )
    world.uow.commit()
    return subscription_id


def rounds(world, count: int = 20) -> None:
    """Up to ``count`` timer rounds, the clock moving a poll each."""
    for _ in range(count):
        for claimed in deploying.claim_due_deployments(world.uow, world.clock, POLICY):
            deploying.advance_deployment(
                world.uow,
                world.clock,
                claimed,
                iam_agency=world.iam,
                driver=world.cloud,
                keyring=world.keyring,
                policy=POLICY,
            )
        world.clock.advance(POLICY.poll)


def the(world, deployment_id):
    return world.uow.deployments.get(deployment_id)


def delivery_events(world):
    return [e.type for e in world.uow.committed if e.type.startswith("provisioning.delivery")]


# -- rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("Helix-2026-pass", 0),
        ("short1A", 1),  # too short
        ("alllowercase", 1),  # one kind only
        ("Aa1-helix-web-x", 1),  # contains the server name
        ("Aa1-bew-xileh-x", 1),  # contains it reversed
        ("Aa1 with space", 1),  # a character the cloud refuses
    ],
)
def test_password_rules_follow_the_cloud(password, broken):
    assert len(deployments.password_problems(password, "helix-web")) == broken


def test_quick_plans_only_the_security_group_and_servers():
    assert deployments.plan_steps(quick()) == [
        "check_agency", "prepare_keys", "create_stack", "security_group", "servers",
    ]  # fmt: skip
    assert deployments.plan_steps(customized(security_group="sg-1")) == [
        "check_agency", "prepare_keys", "create_stack", "network", "eip", "volumes", "servers",
    ]  # fmt: skip


def test_template_of_customized_gives_each_server_its_eip_and_disks():
    spec = customized()
    template = build_template(spec, IMAGE, region="sim-region-1")
    resources = template["resource"]
    assert set(resources["huaweicloud_compute_instance"]) == {"server_1", "server_2"}
    server = resources["huaweicloud_compute_instance"]["server_2"]
    assert server["name"] == "helix-web-2"
    assert server["network"] == [{"uuid": "${huaweicloud_vpc_subnet.subnet.id}"}]
    assert server["eip_id"] == "${huaweicloud_vpc_eip.eip_2.id}"
    assert server["data_disks"] == {"volume_ids": ["${huaweicloud_evs_volume.data_2_1.id}"]}
    assert server["admin_pass"] == "${var.admin_password}"
    assert server["system_disk_size"] == 40  # the image's smallest disk
    assert resources["huaweicloud_vpc_subnet"]["subnet"]["vpc_id"] == "${huaweicloud_vpc.vpc.id}"
    rules = resources["huaweicloud_networking_secgroup_rule"]
    assert rules["rule_2"]["port_range_min"] == 8000 and rules["rule_2"]["port_range_max"] == 8080
    assert PASSWORD not in str(template)


def test_template_of_quick_uses_the_existing_network():
    template = build_template(quick(security_group="sg-1"), IMAGE, region="r")
    assert set(template["resource"]) == {"huaweicloud_compute_instance"}
    server = template["resource"]["huaweicloud_compute_instance"]["server_1"]
    assert server["network"] == [{"uuid": "sub-1"}] and server["security_group_ids"] == ["sg-1"]


def test_every_move_is_declared():
    assert deployments.DEPLOYMENT.moves()["fail"] == (("compensating",), "failed")
    assert deployments.DEPLOYMENT.moves()["release"] == (("active",), "releasing")


# -- preparing and checking --------------------------------------------------------------


def test_prepare_seals_the_password_and_answers_the_same_deployment_again(world):
    order_id, deployment_id = prepare(world)
    deployment = the(world, deployment_id)
    assert deployment.status == "pending" and "admin_password" not in deployment.spec
    assert PASSWORD.encode() not in deployment.password_sealed
    again = deploying.prepare_deployment(
        world.uow, world.clock, buyer=BUYER,
        request={"order_id": order_id, "account_id": BUYER.account_id, "product_id": "p",
                 "specification_id": "s", "deployment": quick(), "image": IMAGE},
        keyring=world.keyring,
    )  # fmt: skip
    assert again == {"deployment_id": deployment_id}


def test_prepare_refuses_a_password_the_cloud_would_refuse(world):
    with pytest.raises(ValidationError) as refused:
        prepare(world, quick(admin_password="helix-web-1"))
    assert "deployment.admin_password" in refused.value.fields
    assert world.uow.deployments.table("deployments") == {}


def test_prepare_for_another_account_is_forbidden(world):
    with pytest.raises(Forbidden):
        deploying.prepare_deployment(
            world.uow, world.clock, buyer=OTHER,
            request={"order_id": "ord_x", "account_id": BUYER.account_id, "product_id": "p",
                     "specification_id": "s", "deployment": quick(), "image": IMAGE},
            keyring=world.keyring,
        )  # fmt: skip


def test_check_names_the_first_quota_too_small(world):
    sizing = customized(count=3)
    sizing.pop("admin_password")
    request = {"account_id": BUYER.account_id, "deployment": sizing, "image": IMAGE}
    check = deploying.check_deployment
    assert check(request=request, iam_agency=world.iam, driver=world.cloud) == {
        "ok": True, "quota_exceeded": None,
    }  # fmt: skip
    world.cloud.network["publicIp"] = 2
    assert check(request=request, iam_agency=world.iam, driver=world.cloud) == {
        "ok": False,
        "quota_exceeded": {"quota": "publicIp", "needed": 3, "available": 2},
    }
    with pytest.raises(ValidationError):
        check(request={**request, "image": {**IMAGE, "image_id": "nope"}},
              iam_agency=world.iam, driver=world.cloud)  # fmt: skip
    world.iam.refuse = "AGENCY_NOT_AUTHORIZED"
    with pytest.raises(Conflict) as refused:
        check(request=request, iam_agency=world.iam, driver=world.cloud)
    assert refused.value.code == "AGENCY_NOT_AUTHORIZED"


# -- the saga ---------------------------------------------------------------------------


def test_a_paid_deployment_runs_its_steps_to_active_and_delivers_once(world):
    order_id, deployment_id = prepare(world, customized())
    subscription_id = pay(world, order_id)
    assert the(world, deployment_id).status == "creating"
    rounds(world, 5)
    deployment = the(world, deployment_id)
    assert deployment.current_step == "network"  # the stack is still working
    assert world.iam.calls[0] == (BUYER.account_id, True)  # check_agency checks the cloud
    world.cloud.advance(deployment.stack_name)
    rounds(world, 3)
    deployment = the(world, deployment_id)
    assert deployment.status == "active"
    assert all(step["status"] == "succeeded" for step in deployment.steps)
    servers = [r for r in deployment.resources if r["type"] == "server"]
    assert len(servers) == 2 and servers[0]["addresses"] == ["192.168.0.10"]
    assert delivery_events(world) == ["provisioning.delivery.succeeded"]
    delivery = world.uow.deliveries.of_subscription(subscription_id)
    assert delivery.status == "succeeded" and delivery.instance_id == deployment.stack_id
    types = [e.type for e in world.uow.committed]
    assert types.count("provisioning.deployment.step_completed") == 8
    assert "provisioning.deployment.active" in types
    assert world.cloud.stacks[deployment.stack_name]["vars"][0]["var_key"] == "admin_password"
    assert world.cloud.keys == ["key-1"]


def test_the_kms_key_is_made_once_per_account(world):
    for _ in range(2):
        order_id, _ = prepare(world)
        pay(world, order_id)
        rounds(world, 4)
    assert world.cloud.keys == ["key-1"]


def test_a_refused_create_stack_deletes_the_stack_and_fails_the_delivery_once(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    world.cloud.fail_on["create_stack"] = CloudError("quota", code="RF.400", status=400)
    rounds(world, 8)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed"
    assert "The cloud refused a request" in deployment.failure_reason
    assert world.cloud.calls[-1] == "stack"  # CreateStack was sent: looked for, not there
    assert delivery_events(world) == ["provisioning.delivery.failed"]
    assert [s["status"] for s in deployment.steps if s["name"] == "create_stack"] == ["failed"]


def test_a_transient_cloud_error_is_tried_again(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    world.cloud.fail_on["create_stack"] = CloudError("busy", code="RF.500", status=503)
    rounds(world, 8)
    assert the(world, deployment_id).current_step == "security_group"


def test_a_failed_stack_compensates_and_nothing_is_left(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    rounds(world, 4)
    name = the(world, deployment_id).stack_name
    world.cloud.advance(name, status="DEPLOYMENT_FAILED", message="server job ended ERROR")
    rounds(world, 6)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed" and deployment.compensation_reason == "stack_failed"
    assert "server job ended ERROR" in deployment.failure_reason
    assert world.cloud.stacks == {}
    assert delivery_events(world) == ["provisioning.delivery.failed"]


def test_a_step_past_its_deadline_fails_the_deployment(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    rounds(world, 4)
    world.clock.advance(POLICY.deadline("security_group") + dt.timedelta(seconds=1))
    rounds(world, 6)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed" and deployment.compensation_reason == "deadline"
    assert "security_group did not finish within 300 seconds" in deployment.failure_reason
    assert world.cloud.stacks == {}


def test_an_agency_revoked_before_the_start_fails_without_touching_the_cloud(world):
    order_id, deployment_id = prepare(world)
    world.iam.refuse = "AGENCY_NOT_AUTHORIZED"
    pay(world, order_id)
    rounds(world, 3)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed" and deployment.compensation_reason == "agency"
    assert "no longer deploy" in deployment.failure_reason
    assert world.cloud.calls == []
    assert delivery_events(world) == ["provisioning.delivery.failed"]


def test_a_policy_refusal_compensates(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    world.cloud.fail_on["create_key"] = PolicyDenied("kms:cmk:create")
    rounds(world, 4)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed" and deployment.compensation_reason == "policy_denied"
    assert "kms:cmk:create" in deployment.failure_reason


def test_release_deletes_the_stack(world):
    order_id, deployment_id = prepare(world)
    subscription_id = pay(world, order_id)
    rounds(world, 4)
    world.cloud.advance(the(world, deployment_id).stack_name)
    rounds(world, 3)
    with pytest.raises(NotFound):
        deploying.release_deployment(
            world.uow, world.clock, caller=OTHER, request={"subscription_id": subscription_id}
        )
    view = deploying.release_deployment(
        world.uow, world.clock, caller=BUYER, request={"subscription_id": subscription_id}
    )
    assert view["status"] == "releasing"
    rounds(world, 4)
    assert the(world, deployment_id).status == "released" and world.cloud.stacks == {}
    assert "provisioning.deployment.released" in [e.type for e in world.uow.committed]


def test_another_buyer_cannot_see_the_deployment(world):
    order_id, _ = prepare(world)
    assert deploying.deployment_of(world.uow, viewer=BUYER, order_id=order_id)["status"] == (
        "pending"
    )
    with pytest.raises(NotFound):
        deploying.deployment_of(world.uow, viewer=OTHER, order_id=order_id)


def test_a_repeated_paid_event_starts_the_deployment_once(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    started = the(world, deployment_id).started_at
    world.clock.advance(dt.timedelta(seconds=5))
    deployment = the(world, deployment_id)
    assert deploying.start_deployment(
        world.uow, world.clock, POLICY, delivery=world.uow.deliveries.lock(deployment.delivery_id)
    ) is None  # fmt: skip
    assert the(world, deployment_id).started_at == started


def test_a_crashed_worker_s_deployment_is_resumed_once_its_lease_runs_out(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    assert len(deploying.claim_due_deployments(world.uow, world.clock, POLICY)) == 1
    # the worker dies here, its lease held: no one else may take it meanwhile
    assert deploying.claim_due_deployments(world.uow, world.clock, POLICY) == []
    world.clock.advance(POLICY.lease + dt.timedelta(seconds=1))
    assert [d.id for d in deploying.claim_due_deployments(world.uow, world.clock, POLICY)] == [
        deployment_id
    ]


def test_a_create_stack_retried_after_a_crash_adopts_the_stack(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    rounds(world, 2)  # check_agency, prepare_keys
    deployment = the(world, deployment_id)
    assert deployment.current_step == "create_stack"
    # the stack was created, but the worker died before recording it
    world.cloud.create_stack(
        None, name=deployment.stack_name, template={"resource": {}}, vars_structure=[],
        client_token=deployment_id,
    )  # fmt: skip
    rounds(world, 2)
    deployment = the(world, deployment_id)
    assert deployment.stack_id == f"stk-{deployment.stack_name}"
    assert list(world.cloud.stacks) == [deployment.stack_name]


def test_a_deletion_that_fails_is_asked_again(world):
    order_id, deployment_id = prepare(world)
    pay(world, order_id)
    rounds(world, 4)
    world.cloud.deletions_failing = 1
    world.clock.advance(POLICY.deadline("security_group") + dt.timedelta(seconds=1))
    rounds(world, 12)
    deployment = the(world, deployment_id)
    assert deployment.status == "failed" and world.cloud.stacks == {}
    assert world.cloud.calls.count("delete_stack") == 2
