"""An image's resources and the buyer's enterprise projects, on PostgreSQL with a
stand-in iam-agency and cloud: every resource starts in the order's project, and
follows orders' moves of the subscription (``orders.subscription.moved``):
``with_associated`` takes the servers with the volumes and EIPs in their project,
``independent`` the servers only. A move taken twice, or older than one taken already,
changes nothing; a move made while the deployment runs is kept for the resources it
creates; anything but an image is none of this."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from mercato.clock import ManualClock
from mercato.contracts import new_envelope
from mercato.contracts import provisioning as contract
from mercato.errors import ServiceUnavailable
from mercato.standalone import standalone_unit_of_work
from mercato.validation import dump
from provisioning import deploying, deployments, domain, usecases
from provisioning.keyring import Keyring, generate_key_spec
from provisioning.models import Deployment, metadata
from provisioning.service import ProvisioningService
from provisioning.tests.fakes import FakeCloud, FakeIamAgency
from provisioning.tests.specs import BUYER, HTTPS_RULE, START, image, image_subscription, quick

pytestmark = pytest.mark.interface

POLICY = deployments.DeploymentPolicy()
IMAGE = image("img-helix-cms-22", HTTPS_RULE)
PRODUCTION, STAGING, ARCHIVE = "eps_production", "eps_staging", "eps_archive"


def customized() -> dict[str, Any]:
    """Two servers in a new network, each with an EIP and a data disk."""
    return quick(
        mode="customized",
        vpc_id=None,
        subnet_id=None,
        eip={"bandwidth_mbps": 5},
        data_disks=[{"size_gb": 20}],
        count=2,
    )


@pytest.fixture
def world(databases):
    url = databases.fresh("provisioning")
    with standalone_unit_of_work(
        url,
        metadata,
        service_name="provisioning",
        command="test",
        repositories=ProvisioningService.db.repositories,
    ) as uow:
        yield SimpleNamespace(
            url=url,
            uow=uow,
            clock=ManualClock(START),
            keyring=Keyring.from_spec(generate_key_spec("k1")),
            iam=FakeIamAgency(),
            cloud=FakeCloud(),
        )


def bought(world, project: str = PRODUCTION, *, active: bool = True) -> tuple[str, str]:
    """An image order placed and paid in ``project``; its deployment run to active
    (``active``) or left creating. Answers (subscription id, deployment id)."""
    order_id = f"ord_{uuid.uuid4().hex}"
    deployment_id = deploying.prepare_deployment(
        world.uow,
        world.clock,
        buyer=BUYER,
        request={
            "order_id": order_id,
            "account_id": BUYER.account_id,
            "product_id": "prd_helix",
            "specification_id": "spc_std",
            "deployment": customized(),
            "image": IMAGE,
        },
        keyring=world.keyring,
    )["deployment_id"]
    subscription_id = f"sub_{uuid.uuid4().hex}"
    usecases.accept_paid_order(
        world.uow,
        world.clock,
        order={
            "order_id": order_id,
            "account_id": BUYER.account_id,
            "enterprise_project_id": project,
            "subscriptions": [image_subscription(subscription_id, f"oln_{uuid.uuid4().hex}")],
        },
        policy=domain.DeliveryPolicy(),
        deployment_policy=POLICY,
    )
    world.uow.commit()
    if active:
        finish(world, deployment_id)
    return subscription_id, deployment_id


def rounds(world, count: int) -> None:
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


def finish(world, deployment_id: str) -> None:
    """The stack service creates everything; the deployment becomes active."""
    rounds(world, 4)
    world.cloud.advance(the(world, deployment_id).stack_name)
    rounds(world, 4)
    assert the(world, deployment_id).status == "active"


def the(world, deployment_id: str) -> Deployment:
    """The deployment as it is now, detached: later moves do not change what it shows."""
    deployment = world.uow.deployments.get(deployment_id)
    world.uow.session.expunge(deployment)
    world.uow.rollback()
    return deployment


def moved(
    world,
    subscription_id: str,
    to: str,
    mode: str,
    *,
    at: dt.datetime | None = None,
    source: str = PRODUCTION,
    delivery_method: str = "image",
) -> bool:
    """``orders.subscription.moved`` as its handler takes it, committed with the inbox."""
    answer = deploying.move_resources(
        world.uow,
        world.clock,
        move={
            "subscription_id": subscription_id,
            "account_id": BUYER.account_id,
            "from_enterprise_project_id": source,
            "to_enterprise_project_id": to,
            "mode": mode,
            "delivery_method": delivery_method,
            "moved_at": at or world.clock.now(),
        },
    )
    world.uow.commit()
    return answer


def projects(world, deployment_id: str) -> dict[str, set[str]]:
    """The project of each resource type: {type: {project, ...}}."""
    found: dict[str, set[str]] = {}
    for resource in the(world, deployment_id).resources:
        found.setdefault(resource["type"], set()).add(resource["enterprise_project_id"])
    return found


def stored_resources(world, deployment_id: str) -> list[dict[str, Any]]:
    """The JSON column as PostgreSQL holds it."""
    with sa.create_engine(world.url).connect() as connection:
        return connection.execute(
            sa.text("SELECT resources FROM deployments WHERE id = :id"), {"id": deployment_id}
        ).scalar_one()


def everything_in(project: str) -> dict[str, set[str]]:
    return {
        kind: {project} for kind in ("vpc", "subnet", "security_group", "eip", "volume", "server")
    }


# -- where resources start -------------------------------------------------------------


def test_every_resource_starts_in_the_orders_project(world):
    _, deployment_id = bought(world, PRODUCTION)
    deployment = the(world, deployment_id)
    assert deployment.enterprise_project_id == PRODUCTION
    assert projects(world, deployment_id) == everything_in(PRODUCTION)
    assert all(
        r["enterprise_project_id"] == PRODUCTION for r in stored_resources(world, deployment_id)
    )
    assert len([r for r in deployment.resources if r["type"] == "server"]) == 2


def test_the_resource_details_carry_each_resources_project(world):
    subscription_id, _ = bought(world, PRODUCTION)
    moved(world, subscription_id, STAGING, "independent")
    answer = dump(
        contract.DeploymentResponse,
        deploying.deployment_of(world.uow, viewer=BUYER, subscription_id=subscription_id),
    )
    assert answer["enterprise_project_id"] == STAGING  # where its servers are
    by_type = {(r["type"], r["enterprise_project_id"]) for r in answer["resources"]}
    assert ("server", STAGING) in by_type and ("volume", PRODUCTION) in by_type
    assert all("enterprise_project_id" in r for r in answer["resources"])


# -- moves -----------------------------------------------------------------------------


def test_with_associated_moves_the_servers_with_their_volumes_and_eips(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    assert moved(world, subscription_id, STAGING, "with_associated")
    assert projects(world, deployment_id) == {
        "vpc": {PRODUCTION},
        "subnet": {PRODUCTION},
        "security_group": {PRODUCTION},
        "eip": {STAGING},
        "volume": {STAGING},
        "server": {STAGING},
    }
    stored = {
        (r["type"], r["enterprise_project_id"]) for r in stored_resources(world, deployment_id)
    }
    assert ("volume", STAGING) in stored and ("vpc", PRODUCTION) in stored


def test_independent_moves_the_servers_only(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    assert moved(world, subscription_id, STAGING, "independent")
    assert projects(world, deployment_id) == {
        **everything_in(PRODUCTION),
        "server": {STAGING},
    }


def test_with_associated_takes_only_what_is_in_the_servers_project(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    moved(world, subscription_id, STAGING, "independent")
    world.clock.advance(dt.timedelta(minutes=1))
    # the disks and EIPs stayed in production: the servers leave staging without them
    moved(world, subscription_id, ARCHIVE, "with_associated", source=STAGING)
    assert projects(world, deployment_id) == {
        **everything_in(PRODUCTION),
        "server": {ARCHIVE},
    }


def test_the_same_move_again_changes_nothing(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    at = world.clock.now()
    assert moved(world, subscription_id, STAGING, "with_associated", at=at)
    before = the(world, deployment_id)
    world.clock.advance(dt.timedelta(minutes=5))
    assert not moved(world, subscription_id, STAGING, "with_associated", at=at)
    after = the(world, deployment_id)
    assert after.resources == before.resources
    assert after.project_moves == before.project_moves and len(after.project_moves) == 1
    assert after.updated_at == before.updated_at


def test_an_older_move_taken_after_a_newer_one_does_not_win(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    first = world.clock.now() + dt.timedelta(minutes=1)
    second = first + dt.timedelta(minutes=1)
    # orders moved it to staging, then to the archive; provisioning takes them reversed
    moved(world, subscription_id, ARCHIVE, "with_associated", at=second, source=STAGING)
    moved(world, subscription_id, STAGING, "with_associated", at=first)
    deployment = the(world, deployment_id)
    assert projects(world, deployment_id) == {
        **everything_in(PRODUCTION),
        "eip": {ARCHIVE},
        "volume": {ARCHIVE},
        "server": {ARCHIVE},
    }
    assert deployment.servers_project == ARCHIVE
    assert [m["to"] for m in deployment.project_moves] == [STAGING, ARCHIVE]


def test_a_late_older_independent_move_leaves_the_disks_where_orders_left_them(world):
    """Replayed in orders' order: independent to staging (disks stay in production),
    then with_associated to the archive (nothing of the servers' in staging but them)."""
    subscription_id, deployment_id = bought(world, PRODUCTION)
    first = world.clock.now() + dt.timedelta(minutes=1)
    second = first + dt.timedelta(minutes=1)
    moved(world, subscription_id, ARCHIVE, "with_associated", at=second, source=STAGING)
    moved(world, subscription_id, STAGING, "independent", at=first)
    assert projects(world, deployment_id) == {
        **everything_in(PRODUCTION),
        "server": {ARCHIVE},
    }


def test_moving_a_subscription_that_is_not_an_image_changes_nothing(world):
    subscription_id = f"sub_{uuid.uuid4().hex}"
    _, deployment_id = bought(world, PRODUCTION)
    usecases.accept_paid_order(
        world.uow,
        world.clock,
        order={
            "order_id": f"ord_{uuid.uuid4().hex}",
            "account_id": BUYER.account_id,
            "enterprise_project_id": PRODUCTION,
            "subscriptions": [
                {
                    **image_subscription(subscription_id, f"oln_{uuid.uuid4().hex}"),
                    "delivery_method": "saas",
                    "product_name": "Team Chat",
                }
            ],
        },
        policy=domain.DeliveryPolicy(),
    )
    world.uow.commit()
    before = the(world, deployment_id)
    assert not moved(world, subscription_id, STAGING, "with_associated", delivery_method="saas")
    # a SaaS subscription moved while its delivery is not recorded: nothing to wait for
    assert not moved(world, f"sub_{uuid.uuid4().hex}", STAGING, "independent",
                     delivery_method="saas")  # fmt: skip
    with sa.create_engine(world.url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM deployments")).scalar_one() == 1
    after = the(world, deployment_id)
    assert after.resources == before.resources and after.project_moves == []


def test_a_move_before_the_deployment_is_active_is_kept_for_its_resources(world):
    subscription_id, deployment_id = bought(world, PRODUCTION, active=False)
    assert the(world, deployment_id).status == "creating"
    assert moved(world, subscription_id, STAGING, "with_associated")
    deployment = the(world, deployment_id)
    assert deployment.resources == [] and deployment.servers_project == STAGING
    view = deploying.deployment_of(world.uow, viewer=BUYER, subscription_id=subscription_id)
    world.uow.rollback()
    assert view["enterprise_project_id"] == STAGING
    finish(world, deployment_id)
    assert projects(world, deployment_id) == {
        **everything_in(PRODUCTION),
        "eip": {STAGING},
        "volume": {STAGING},
        "server": {STAGING},
    }


def test_a_move_before_the_paid_order_is_taken_is_tried_again(world):
    with pytest.raises(ServiceUnavailable):
        moved(world, f"sub_{uuid.uuid4().hex}", STAGING, "independent")
    world.uow.rollback()


def test_an_image_paid_without_a_deployment_here_moves_nothing(world):
    subscription_id = f"sub_{uuid.uuid4().hex}"
    usecases.accept_paid_order(
        world.uow,
        world.clock,
        order={
            "order_id": f"ord_{uuid.uuid4().hex}",
            "account_id": BUYER.account_id,
            "enterprise_project_id": PRODUCTION,
            "subscriptions": [image_subscription(subscription_id, f"oln_{uuid.uuid4().hex}")],
        },
        policy=domain.DeliveryPolicy(),
    )
    world.uow.commit()
    assert not moved(world, subscription_id, STAGING, "independent")


def test_resources_in_projects_replays_moves_in_orders_order():
    at = START.isoformat()
    later = (START + dt.timedelta(seconds=1)).isoformat()
    resources = [{"type": "server"}, {"type": "volume"}, {"type": "eip"}, {"type": "vpc"}]
    placed = deployments.resources_in_projects(
        resources,
        "default",
        [
            {"to": "b", "mode": "with_associated", "moved_at": later},
            {"to": "a", "mode": "independent", "moved_at": at},
        ],
    )
    assert [r["enterprise_project_id"] for r in placed] == ["b", "default", "default", "default"]
    assert "enterprise_project_id" not in resources[0]  # the input is left as it was


# -- the handler, through the inbox ---------------------------------------------------


class _Service:
    """What ``on_subscription_moved`` needs of the service: its unit of work and clock."""

    name = "provisioning"

    def __init__(self, world) -> None:
        self.db = world.uow
        self.clock = world.clock


def _event(subscription_id: str, to: str, mode: str, delivery_method: str = "image") -> dict:
    return new_envelope(
        "orders.subscription.moved",
        subject=subscription_id,
        account_id=BUYER.account_id,
        correlation_id=uuid.uuid4().hex,
        causation_id=None,
        data={
            "subscription_id": subscription_id,
            "account_id": BUYER.account_id,
            "from_enterprise_project_id": PRODUCTION,
            "to_enterprise_project_id": to,
            "mode": mode,
            "delivery_method": delivery_method,
            "moved_at": START + dt.timedelta(hours=1),
        },
    ).dump()


def test_the_handler_takes_each_event_once_and_leaves_other_deliveries_alone(world):
    subscription_id, deployment_id = bought(world, PRODUCTION)
    service = _Service(world)
    event = _event(subscription_id, STAGING, "with_associated")
    assert ProvisioningService.on_subscription_moved(service, event) is None
    assert projects(world, deployment_id)["volume"] == {STAGING}
    before = the(world, deployment_id)
    # the same event again: the inbox has it
    assert ProvisioningService.on_subscription_moved(service, event) is None
    assert the(world, deployment_id).updated_at == before.updated_at
    # a SaaS subscription's move is none of provisioning's business: no inbox row
    other = _event(f"sub_{uuid.uuid4().hex}", STAGING, "independent", delivery_method="saas")
    assert ProvisioningService.on_subscription_moved(service, other) is None
    with sa.create_engine(world.url).connect() as connection:
        inbox = connection.execute(sa.text("SELECT count(*) FROM inbox_messages")).scalar_one()
    assert inbox == 1
