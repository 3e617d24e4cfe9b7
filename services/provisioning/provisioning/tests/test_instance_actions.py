"""Instance actions (``provisioning.instance_actions``) on PostgreSQL, with a scripted
seller, a stand-in catalog, iam-agency and cloud: which actions each event queues,
their order per subscription, the claim under two workers, retries with backoff,
upgrades announced, licenses signed again, images' servers stopped and started, and a
sweep of thousands of actions. (test_instance_actions_service.py runs the flows in a
container against the reference seller app.)"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from mercato.clock import ManualClock
from mercato.db import new_id
from mercato.standalone import standalone_unit_of_work
from provisioning import domain, instance_actions, licenses, metrics, usecases
from provisioning.cloud.driver import CloudError
from provisioning.keyring import Keyring, generate_key_spec
from provisioning.models import Delivery, Deployment, InstanceAction, metadata
from provisioning.service import ProvisioningService
from provisioning.tests.fakes import FakeCatalog, FakeIamAgency
from provisioning.tests.specs import BUYER, START
from seller_interface import ResultCode, SellerAnswer, SellerUnreachable

pytestmark = pytest.mark.interface

SELLER = SimpleNamespace(account_id="acc_seller")
POLICY = domain.InstanceActionPolicy(
    first_retry=dt.timedelta(seconds=30), max_retry=dt.timedelta(hours=1), batch=50
)
NEW_EXPIRY = dt.datetime(2026, 3, 14, 23, 59, 59, tzinfo=dt.UTC)


# -- a scripted seller and cloud -------------------------------------------------------


class ScriptedSeller:
    """Answers each activity (of one instance, or of any) with the next scripted answer
    (a result code, or an exception to raise), then 000000; keeps every call."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str | None], list[Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def then(self, activity: str, *answers: Any, instance: str | None = None) -> None:
        self.script.setdefault((activity, instance), []).extend(answers)

    def client(self, endpoint, access_key, secret, address=None):
        return _Client(self)

    def activities(self) -> list[str]:
        return [
            f"{activity}:{fields['status']}" if "status" in fields else activity
            for activity, fields in self.calls
        ]


class _Client:
    def __init__(self, seller: ScriptedSeller) -> None:
        self.seller = seller

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def call(self, activity, fields):
        self.seller.calls.append((activity, fields))
        script = self.seller.script
        queued = script.get((activity, fields["instanceId"])) or script.get((activity, None)) or []
        answer = queued.pop(0) if queued else ResultCode.SUCCESS.value
        if isinstance(answer, Exception):
            raise answer
        return SellerAnswer(
            result_code=answer, result_msg="scripted", data={}, elapsed_seconds=0.01
        )


class PoweredCloud:
    """The two methods the instance actions need of the cloud driver."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_next: Exception | None = None

    def _power(self, name, server_ids):
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.calls.append((name, list(server_ids)))

    def stop_servers(self, creds, server_ids):
        self._power("stop", server_ids)

    def start_servers(self, creds, server_ids):
        self._power("start", server_ids)


# -- the world ---------------------------------------------------------------------------


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
        keyring = Keyring.from_spec(generate_key_spec("k1"))
        seller_identity = SimpleNamespace(account_id=SELLER.account_id)
        usecases.issue_interface_credentials(
            uow, ManualClock(START), seller=seller_identity, keyring=keyring
        )
        yield SimpleNamespace(
            url=url,
            uow=uow,
            clock=ManualClock(START),
            keyring=keyring,
            catalog=FakeCatalog(),
            seller=ScriptedSeller(),
            iam_agency=FakeIamAgency(),
            cloud=PoweredCloud(),
        )


def run(world, policy=POLICY) -> int:
    return instance_actions.run_due(
        world.uow,
        world.clock,
        policy,
        keyring=world.keyring,
        catalog=world.catalog,
        seller_client=world.seller.client,
        iam_agency=world.iam_agency,
        driver=world.cloud,
        allow_private_endpoints=True,
    )


def run_all(world, policy=POLICY) -> None:
    while run(world, policy):
        pass


def delivered(
    world, method: str = "saas", *, status: str = "succeeded", instance=True, product="prd_app"
) -> str:
    """A delivery of one subscription, as a succeeded delivery leaves it."""
    subscription_id = new_id("sub")
    now = world.clock.now()
    delivery = Delivery(
        id=new_id("dlv"),
        subscription_id=subscription_id,
        order_id=new_id("ord"),
        order_line_id=new_id("oln"),
        account_id=BUYER.account_id,
        product_id=product,
        product_name="Team Chat",
        seller_account_id=SELLER.account_id,
        specification_id="spc_std",
        specification_name="Standard",
        delivery_method=method,
        service_supervision=False,
        billing_mode="yearly_monthly",
        period_unit="month",
        period_count=1,
        quantity=10,
        starts_at=now,
        expires_at=dt.datetime(2026, 2, 14, 23, 59, 59, tzinfo=dt.UTC),
        status=status,
        attempts=1,
        release_attempts=0,
        deadline_at=now + dt.timedelta(hours=3),
        instance_id=f"inst_{uuid.uuid4().hex[:8]}" if method == "saas" and instance else None,
        created_at=now,
        updated_at=now,
    )
    world.uow.deliveries.add(delivery)
    if method == "license" and status == "succeeded":
        delivery = world.uow.deliveries.of_subscription(subscription_id)
        delivery.license_key = usecases.sign_license(
            world.uow, world.clock, delivery, world.keyring
        ).license_key
    if method == "image":
        world.uow.deployments.add(
            Deployment(
                id=new_id("dep"),
                order_id=delivery.order_id,
                account_id=BUYER.account_id,
                product_id="prd_img",
                specification_id="spc_std",
                subscription_id=subscription_id,
                delivery_id=delivery.id,
                spec={},
                password_key_id="k1",
                password_sealed=b"x",
                status="active",
                steps=[],
                stack_name=f"stk-{uuid.uuid4().hex[:12]}",
                stack_id="stk_1",
                resources=[
                    {"type": "vpc", "id": "vpc_1", "name": "v", "status": "OK", "addresses": []},
                    {"type": "server", "id": "srv_1", "name": "a", "status": "OK", "addresses": []},
                    {"type": "server", "id": "srv_2", "name": "b", "status": "OK", "addresses": []},
                ],
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    world.uow.commit()
    return subscription_id


# orders' clock: each event made here is a move a second after the one made before it
_MOVES = itertools.count(1)


def _moved() -> dt.datetime:
    return START + dt.timedelta(seconds=next(_MOVES))


def event(event_type: str, subscription_id: str, **data: Any) -> SimpleNamespace:
    return SimpleNamespace(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at=_moved(),
        data={"subscription_id": subscription_id, **data},
    )


def frozen(subscription_id):
    return event(domain.SUBSCRIPTION_FROZEN, subscription_id, frozen_at=_moved())


def renewed(subscription_id, previous_status="frozen", expires_at=NEW_EXPIRY):
    return event(
        domain.SUBSCRIPTION_RENEWED,
        subscription_id,
        previous_status=previous_status,
        expires_at=expires_at,
        renewal_order_id=new_id("ord"),
        renewed_at=_moved(),
    )


def released(subscription_id):
    return event(
        domain.SUBSCRIPTION_RELEASED, subscription_id, reason="expired", released_at=_moved()
    )


def upgrading(subscription_id, quantity=25):
    return event(
        domain.SUBSCRIPTION_UPGRADING,
        subscription_id,
        upgrade_order_id=new_id("ord"),
        specification_id="spc_pro",
        specification_name="Pro",
        quantity=quantity,
    )


def receive(world, *events) -> None:
    """Each event as its handler takes it: queued and committed with the inbox."""
    for received in events:
        instance_actions.enqueue(world.uow, world.clock, event=received)
        world.uow.commit()


def actions(world, subscription_id) -> list[InstanceAction]:
    found = world.uow.instance_actions.of_subscription(subscription_id)
    world.uow.rollback()
    return found


def outbox(world, event_type) -> list[dict]:
    with sa.create_engine(world.url).connect() as connection:
        rows = connection.execute(
            sa.text("SELECT payload FROM outbox_messages WHERE event_type = :t ORDER BY id"),
            {"t": event_type},
        ).all()
    return [row.payload for row in rows]


# -- the rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind", "outcome"),
    [
        ("000000", "freeze", "done"),
        (None, "freeze", "pending"),
        ("000004", "refresh", "pending"),
        ("000005", "upgrade", "pending"),
        ("000002", "upgrade", "failed"),
        ("000003", "upgrade", "failed"),
        ("000001", "upgrade", "failed"),
        ("000003", "release", "done"),
        ("000003", "freeze", "failed"),
        ("000001", "release", "pending"),
        ("000002", "refresh", "pending"),
    ],
)
def test_a_sellers_answer_decides_the_action(code, kind, outcome):
    assert domain.seller_outcome(kind, code) == outcome


def test_backoff_doubles_from_the_first_retry_to_the_cap():
    policy = domain.InstanceActionPolicy()
    waits = [policy.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)]
    assert waits == [30, 60, 120, 1920, 3600, 3600]


@pytest.mark.parametrize(
    ("method", "event_type", "data", "kinds"),
    [
        ("saas", domain.SUBSCRIPTION_FROZEN, {}, ["freeze"]),
        ("saas", domain.SUBSCRIPTION_RENEWED, {"previous_status": "frozen"}, ["unfreeze", "refresh"]),
        ("saas", domain.SUBSCRIPTION_RENEWED, {"previous_status": "enabled"}, ["refresh"]),
        ("saas", domain.SUBSCRIPTION_RELEASED, {}, ["release"]),
        ("saas", domain.SUBSCRIPTION_UPGRADING, {}, ["upgrade"]),
        ("license", domain.SUBSCRIPTION_FROZEN, {}, []),
        ("license", domain.SUBSCRIPTION_RENEWED, {"previous_status": "frozen"}, ["reissue_license"]),
        ("license", domain.SUBSCRIPTION_RELEASED, {}, []),
        ("image", domain.SUBSCRIPTION_FROZEN, {}, ["stop_servers"]),
        ("image", domain.SUBSCRIPTION_RENEWED, {"previous_status": "frozen"}, ["start_servers"]),
        ("image", domain.SUBSCRIPTION_RENEWED, {"previous_status": "expired"}, []),
        ("image", domain.SUBSCRIPTION_RELEASED, {}, ["release_deployment"]),
        ("professional_service", domain.SUBSCRIPTION_FROZEN, {}, []),
        ("professional_service", domain.SUBSCRIPTION_RENEWED, {"previous_status": "frozen"}, []),
        ("professional_service", domain.SUBSCRIPTION_RELEASED, {}, []),
    ],
)  # fmt: skip
def test_each_delivery_method_gets_its_actions(method, event_type, data, kinds):
    """(What a delivered subscription gets; see the next test for one not delivered.)"""
    data = {
        "expires_at": NEW_EXPIRY,
        "renewal_order_id": "ord_r",
        "upgrade_order_id": "ord_u",
        "specification_id": "spc_pro",
        **data,
    }
    delivered = domain.SubscriptionDelivered(method, "succeeded", "inst_1")
    assert [kind for kind, _ in domain.planned_actions(event_type, data, delivered)] == kinds


@pytest.mark.parametrize(
    ("status", "instance_id", "kinds"),
    [
        ("pending", None, ["freeze"]),  # being created: the freeze waits for it
        ("waiting", None, []),  # a supervised request the seller never confirmed
        ("failed", None, []),
        ("failed", "inst_1", ["freeze"]),  # the seller may still have it
    ],
)
def test_a_saas_tenant_not_delivered_gets_an_action_only_while_it_may_exist(
    status, instance_id, kinds
):
    delivered = domain.SubscriptionDelivered("saas", status, instance_id)
    planned = domain.planned_actions(domain.SUBSCRIPTION_FROZEN, {}, delivered)
    assert [kind for kind, _ in planned] == kinds


# -- SaaS ----------------------------------------------------------------------------------


def test_a_subscription_never_delivered_gets_nothing(world):
    receive(world, frozen("sub_unknown"), renewed("sub_unknown"), released("sub_unknown"))
    assert actions(world, "sub_unknown") == []
    assert run(world) == 0


def test_a_redelivered_event_adds_nothing(world):
    subscription_id = delivered(world)
    again = renewed(subscription_id)
    receive(world, again, again)
    assert [action.kind for action in actions(world, subscription_id)] == ["unfreeze", "refresh"]


def test_frozen_then_renewed_freezes_unfreezes_and_refreshes_in_order(world):
    subscription_id = delivered(world)
    receive(world, frozen(subscription_id), renewed(subscription_id))

    # one action of a subscription at a time: the freeze first, alone
    assert run(world) == 1
    assert world.seller.activities() == ["updateInstanceStatus:FREEZE"]
    run_all(world)

    assert world.seller.activities() == [
        "updateInstanceStatus:FREEZE",
        "updateInstanceStatus:UNFREEZE",
        "refreshInstance",
    ]
    refresh = world.seller.calls[-1][1]
    assert refresh["expireTime"] == "2026-03-14T23:59:59Z"
    assert [action.status for action in actions(world, subscription_id)] == ["done"] * 3
    delivery = world.uow.deliveries.of_subscription(subscription_id)
    assert delivery.expires_at == NEW_EXPIRY


def test_a_seller_that_does_not_answer_is_asked_again_with_backoff_and_the_order_holds(world):
    subscription_id = delivered(world)
    other = delivered(world)
    world.seller.then(
        "updateInstanceStatus",
        SellerUnreachable("no answer within 5 s"),
        ResultCode.INTERNAL_ERROR.value,
        instance=world.uow.deliveries.of_subscription(subscription_id).instance_id,
    )
    receive(world, frozen(subscription_id), renewed(subscription_id), frozen(other))
    retried_before = metrics.INSTANCE_ACTIONS.labels("freeze", "retried")._value.get()

    run_all(world)  # the first freeze is not answered; the other subscription's runs
    first, unfreeze, refresh = actions(world, subscription_id)
    assert (first.status, first.attempts) == ("pending", 1)
    assert "no answer" in first.last_error
    assert first.next_attempt_at == START + dt.timedelta(seconds=30)
    assert (unfreeze.status, refresh.status) == ("pending", "pending")
    # the other subscription never waits on this one
    assert [action.status for action in actions(world, other)] == ["done"]

    world.clock.advance(seconds=30)
    run_all(world)  # 000005: again, after twice as long
    first = actions(world, subscription_id)[0]
    assert (first.status, first.attempts) == ("pending", 2)
    assert first.next_attempt_at == START + dt.timedelta(seconds=30 + 60)
    world.clock.advance(seconds=59)
    assert run(world) == 0  # not due yet

    world.clock.advance(seconds=1)
    run_all(world)
    assert [action.status for action in actions(world, subscription_id)] == ["done"] * 3
    assert world.seller.activities()[-3:] == [
        "updateInstanceStatus:FREEZE",
        "updateInstanceStatus:UNFREEZE",
        "refreshInstance",
    ]
    retried = metrics.INSTANCE_ACTIONS.labels("freeze", "retried")._value.get()
    assert retried - retried_before == 2


def test_an_upgrade_done_by_the_seller_is_announced(world):
    subscription_id = delivered(world)
    asked = upgrading(subscription_id)
    receive(world, asked)
    run_all(world)

    (call,) = world.seller.calls
    assert call[0] == "upgradeInstance"
    assert (call[1]["specificationId"], call[1]["quantity"]) == ("spc_pro", 25)
    assert call[1]["orderId"] == asked.data["upgrade_order_id"]
    (announced,) = outbox(world, domain.INSTANCE_UPGRADED)
    assert announced["data"]["upgrade_order_id"] == asked.data["upgrade_order_id"]
    assert (announced["data"]["specification_id"], announced["data"]["quantity"]) == (
        "spc_pro",
        25,
    )
    assert announced["subject"] == subscription_id
    assert outbox(world, domain.INSTANCE_UPGRADE_FAILED) == []
    delivery = world.uow.deliveries.of_subscription(subscription_id)
    assert (delivery.specification_id, delivery.quantity) == ("spc_pro", 25)


def test_an_upgrade_the_seller_refuses_fails_and_is_announced(world):
    subscription_id = delivered(world)
    world.seller.then(
        "upgradeInstance", ResultCode.PROCESSING.value, ResultCode.BAD_PARAMETERS.value
    )
    receive(world, upgrading(subscription_id))

    run_all(world)
    assert actions(world, subscription_id)[0].status == "pending"  # 000004: again later
    world.clock.advance(seconds=30)
    run_all(world)

    (action,) = actions(world, subscription_id)
    assert (action.status, action.attempts) == ("failed", 2)
    (failed,) = outbox(world, domain.INSTANCE_UPGRADE_FAILED)
    assert "000002" in failed["data"]["reason"]
    assert outbox(world, domain.INSTANCE_UPGRADED) == []
    assert world.uow.deliveries.of_subscription(subscription_id).specification_id == "spc_std"


def test_an_upgrade_without_an_instance_fails_at_once(world):
    subscription_id = delivered(world, status="failed", instance=False)
    receive(world, upgrading(subscription_id))
    run_all(world)
    assert world.seller.calls == []
    (failed,) = outbox(world, domain.INSTANCE_UPGRADE_FAILED)
    assert "no SaaS instance" in failed["data"]["reason"]


def test_releasing_an_instance_the_seller_no_longer_has_is_done(world):
    subscription_id = delivered(world)
    world.seller.then("releaseInstance", ResultCode.NO_SUCH_INSTANCE.value)
    receive(world, released(subscription_id))
    run_all(world)
    (action,) = actions(world, subscription_id)
    assert action.status == "done"
    assert "000003" in action.last_error


# -- licenses and images -------------------------------------------------------------------


def test_a_renewed_license_is_signed_again_with_the_new_expiry(world):
    subscription_id = delivered(world, "license")
    before = world.uow.deliveries.of_subscription(subscription_id).license_key
    receive(world, renewed(subscription_id, previous_status="enabled"))
    run_all(world)

    delivery = world.uow.deliveries.of_subscription(subscription_id)
    assert delivery.license_key != before
    key = world.uow.seller_keys.signing_key(SELLER.account_id)
    claims = licenses.verify(delivery.license_key, key.public_key)
    assert claims["expires_at"] == NEW_EXPIRY.isoformat()
    assert claims["license_id"] == licenses.verify(before, key.public_key)["license_id"]
    assert world.seller.calls == []


def test_an_image_frozen_then_renewed_stops_then_starts_its_servers(world):
    subscription_id = delivered(world, "image")
    receive(world, frozen(subscription_id))
    world.cloud.fail_next = CloudError("busy", status=503)
    run_all(world)
    assert actions(world, subscription_id)[0].status == "pending"
    receive(world, renewed(subscription_id))
    world.clock.advance(seconds=30)
    run_all(world)

    assert world.cloud.calls == [("stop", ["srv_1", "srv_2"]), ("start", ["srv_1", "srv_2"])]
    assert [action.status for action in actions(world, subscription_id)] == ["done", "done"]


def test_a_released_image_releases_its_deployment(world):
    subscription_id = delivered(world, "image")
    receive(world, released(subscription_id))
    run_all(world)
    assert actions(world, subscription_id)[0].status == "done"
    assert world.uow.deployments.of_subscription(subscription_id).status == "releasing"


# -- replicas and sweeps -----------------------------------------------------------------


def test_two_workers_never_claim_the_same_action(world):
    first, second = delivered(world), delivered(world)
    receive(world, frozen(first), renewed(first), frozen(second))
    with standalone_unit_of_work(
        world.url,
        metadata,
        service_name="provisioning",
        command="other",
        repositories=ProvisioningService.db.repositories,
    ) as other:
        now = world.clock.now()
        mine = world.uow.instance_actions.lock_due(now, 10)  # held until commit
        theirs = other.instance_actions.lock_due(now, 10)
        assert [a.kind for a in mine] == ["freeze", "freeze"]
        assert theirs == []  # the heads are locked; the unfreeze waits for its freeze
        world.uow.instance_actions.lease([a.seq for a in mine], now + POLICY.lease)
        world.uow.commit()
        assert other.instance_actions.lock_due(now, 10) == []  # leased
        other.rollback()
        # the lease runs out (a crashed replica): another worker takes them over
        later = now + POLICY.lease + dt.timedelta(seconds=1)
        assert len(other.instance_actions.lock_due(later, 10)) == 2
        other.rollback()


def test_a_sweep_of_thousands_is_claimed_and_finished_in_batches(world):
    count = 3000
    now = world.clock.now()
    rows = []
    for index in range(count):
        rows.append(
            {
                "subscription_id": f"sub_bulk_{index}",
                "kind": "release_deployment",
                "payload": {},
                "cause_event_id": f"evt_{index}",
                "occurred_at": now,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": None,
                "created_at": now,
                "updated_at": now,
                "finished_at": None,
            }
        )
    world.uow.instance_actions.add_all(rows)
    world.uow.commit()
    assert instance_actions.refresh_gauges(world.uow, world.clock) == {"release_deployment": count}

    started = time.monotonic()
    rounds = 0
    policy = domain.InstanceActionPolicy(batch=500)
    while run(world, policy):
        rounds += 1
    elapsed = time.monotonic() - started

    assert rounds == count // 500
    assert instance_actions.refresh_gauges(world.uow, world.clock) == {}
    assert metrics.INSTANCE_ACTION_OLDEST_PENDING._value.get() == 0
    # a batch is a handful of statements, not one per action
    assert elapsed < 30, f"{count} actions took {elapsed:.1f} s"


def test_a_local_action_that_breaks_is_tried_again_and_holds_up_no_other(world, monkeypatch):
    broken, fine = delivered(world, "license"), delivered(world, "license")
    sign = usecases.sign_license

    def sign_or_break(uow, clock, delivery, keyring):
        if delivery.subscription_id == broken:
            raise RuntimeError("the keyring cannot open the signing key")
        return sign(uow, clock, delivery, keyring)

    monkeypatch.setattr(usecases, "sign_license", sign_or_break)
    receive(world, renewed(broken, "enabled"), renewed(fine, "enabled"))
    run_all(world)

    (failing,) = actions(world, broken)
    assert (failing.status, failing.attempts) == ("pending", 1)
    assert "cannot open the signing key" in failing.last_error
    assert world.uow.deliveries.of_subscription(broken).expires_at != NEW_EXPIRY
    assert [action.status for action in actions(world, fine)] == ["done"]
    assert world.uow.deliveries.of_subscription(fine).expires_at == NEW_EXPIRY


def test_a_product_catalog_cannot_describe_waits_and_holds_up_no_other(world):
    class BrokenCatalog(FakeCatalog):
        def delivery_settings(self, product_id):
            if product_id == "prd_broken":
                raise RuntimeError("catalog answered nonsense")
            return super().delivery_settings(product_id)

    world.catalog = BrokenCatalog()
    broken, fine = delivered(world, product="prd_broken"), delivered(world)
    receive(world, frozen(broken), frozen(fine))
    run_all(world)

    (waiting,) = actions(world, broken)
    assert waiting.status == "pending" and "catalog answered nonsense" in waiting.last_error
    assert [action.status for action in actions(world, fine)] == ["done"]
    assert len(world.seller.calls) == 1


# -- the order of orders' moves (review 9, finding 2) ------------------------------------


def test_a_renewal_consumed_before_the_freeze_it_follows_leaves_the_tenant_unfrozen(world):
    subscription_id = delivered(world)
    freeze, renewal = frozen(subscription_id), renewed(subscription_id)  # in orders' order
    receive(world, renewal)  # the renewed queue is consumed first
    run_all(world)
    receive(world, freeze)  # the frozen queue was backlogged
    run_all(world)

    assert world.seller.activities() == ["updateInstanceStatus:UNFREEZE", "refreshInstance"]
    kinds = {action.kind: action for action in actions(world, subscription_id)}
    assert kinds["freeze"].status == "superseded"
    assert "older than" in kinds["freeze"].last_error


def test_a_late_freeze_queued_before_its_renewal_ran_is_dropped_too(world):
    subscription_id = delivered(world)
    freeze, renewal = frozen(subscription_id), renewed(subscription_id)
    receive(world, renewal, freeze)  # both queued before the sweep
    run_all(world)
    assert world.seller.activities() == ["updateInstanceStatus:UNFREEZE", "refreshInstance"]


def test_actions_run_in_the_order_of_orders_moves_not_of_their_arrival(world):
    subscription_id = delivered(world)
    upgrade, freeze = upgrading(subscription_id), frozen(subscription_id)
    receive(world, freeze, upgrade)  # the upgrading event arrives last, made first
    run_all(world)
    assert world.seller.activities() == ["upgradeInstance", "updateInstanceStatus:FREEZE"]


def test_an_older_renewal_consumed_late_does_not_take_the_expiry_back(world):
    later_expiry = NEW_EXPIRY + dt.timedelta(days=30)
    subscription_id = delivered(world, "license")
    first = renewed(subscription_id, "enabled")
    second = renewed(subscription_id, "enabled", expires_at=later_expiry)
    receive(world, second)
    run_all(world)
    receive(world, first)
    run_all(world)
    assert world.uow.deliveries.of_subscription(subscription_id).expires_at == later_expiry
    kinds = [action.status for action in actions(world, subscription_id)]
    assert sorted(kinds) == ["done", "superseded"]


def test_a_release_supersedes_what_is_pending_before_it(world):
    subscription_id = delivered(world)
    world.seller.then("updateInstanceStatus", SellerUnreachable("no answer"))
    receive(world, frozen(subscription_id))
    run_all(world)  # the freeze waits for its retry
    receive(world, released(subscription_id))
    run_all(world)  # the release does not wait for it

    assert world.seller.activities() == ["updateInstanceStatus:FREEZE", "releaseInstance"]
    freeze, release = actions(world, subscription_id)
    assert (freeze.status, release.status) == ("superseded", "done")
    world.clock.advance(hours=2)
    assert run(world) == 0


def test_an_event_older_than_the_release_is_dropped_and_an_upgrade_refunded(world):
    subscription_id = delivered(world)
    upgrade, freeze, release = (
        upgrading(subscription_id),
        frozen(subscription_id),
        released(subscription_id),
    )
    receive(world, release)
    run_all(world)
    receive(world, freeze, upgrade)
    run_all(world)
    assert world.seller.activities() == ["releaseInstance"]
    (failed,) = outbox(world, domain.INSTANCE_UPGRADE_FAILED)
    assert failed["data"]["upgrade_order_id"] == upgrade.data["upgrade_order_id"]
    assert "released" in failed["data"]["reason"]


def test_two_replicas_queueing_one_subscriptions_events_take_turns(world):
    """The check-and-insert holds the delivery's row: a second replica's enqueue waits
    for the first's commit, then sees its actions."""
    subscription_id = delivered(world)
    freeze, renewal = frozen(subscription_id), renewed(subscription_id)
    with standalone_unit_of_work(
        world.url,
        metadata,
        service_name="provisioning",
        command="other",
        repositories=ProvisioningService.db.repositories,
    ) as other:
        instance_actions.enqueue(world.uow, world.clock, event=renewal)  # not committed
        lock_timeout = sa.text("SET LOCAL lock_timeout = '200ms'")
        other.session.execute(lock_timeout)
        with pytest.raises(sa.exc.OperationalError):  # it waits on the delivery's row
            instance_actions.enqueue(other, world.clock, event=freeze)
        other.rollback()
        world.uow.commit()
        instance_actions.enqueue(other, world.clock, event=freeze)
        other.commit()
    run_all(world)
    assert world.seller.activities() == ["updateInstanceStatus:UNFREEZE", "refreshInstance"]


# -- an upgrade the seller never confirms (review 9, finding 5b) -------------------------


def test_an_upgrade_unanswered_past_its_window_fails_once_and_the_later_actions_run(world):
    policy = domain.InstanceActionPolicy(
        first_retry=dt.timedelta(seconds=30),
        max_retry=dt.timedelta(hours=1),
        upgrade_window=dt.timedelta(hours=3),
        batch=50,
    )
    subscription_id = delivered(world)
    world.seller.then("upgradeInstance", *[ResultCode.PROCESSING.value] * 50)
    asked = upgrading(subscription_id)
    receive(world, asked, frozen(subscription_id))

    for _ in range(12):  # 2 h 30 min of tries: still waiting, the freeze behind it
        run_all(world, policy)
        world.clock.advance(minutes=15)
    upgrade, freeze = actions(world, subscription_id)
    assert (upgrade.status, freeze.status) == ("pending", "pending")
    assert outbox(world, domain.INSTANCE_UPGRADE_FAILED) == []

    for _ in range(12):
        run_all(world, policy)
        world.clock.advance(minutes=15)
    receive(world, released(subscription_id))
    for _ in range(3):
        run_all(world, policy)
        world.clock.advance(minutes=15)

    (failed,) = outbox(world, domain.INSTANCE_UPGRADE_FAILED)
    assert failed["data"]["upgrade_order_id"] == asked.data["upgrade_order_id"]
    assert "did not confirm the upgrade within 3 h" in failed["data"]["reason"]
    assert "000004" in failed["data"]["reason"]
    assert outbox(world, domain.INSTANCE_UPGRADED) == []
    statuses = [(action.kind, action.status) for action in actions(world, subscription_id)]
    assert statuses == [("upgrade", "failed"), ("freeze", "done"), ("release", "done")]
    assert world.seller.activities()[-2:] == ["updateInstanceStatus:FREEZE", "releaseInstance"]
    # the last try is made at the window's end, not up to an hour after it
    assert (
        upgrade.created_at + dt.timedelta(hours=3) == actions(world, subscription_id)[0].finished_at
    )


def test_the_upgrade_window_defaults_to_the_delivery_window():
    assert domain.InstanceActionPolicy().upgrade_window == dt.timedelta(hours=3)


def test_a_release_supersedes_an_upgrade_waiting_for_its_retry_which_is_refunded_once(world):
    subscription_id = delivered(world)
    world.seller.then("upgradeInstance", ResultCode.PROCESSING.value)
    asked = upgrading(subscription_id)
    receive(world, asked)
    run_all(world)  # 000004: asked again later
    receive(world, released(subscription_id))
    run_all(world)
    world.clock.advance(hours=4)
    run_all(world)

    upgrade, release = actions(world, subscription_id)
    assert (upgrade.status, release.status) == ("superseded", "done")
    (failed,) = outbox(world, domain.INSTANCE_UPGRADE_FAILED)
    assert failed["data"]["upgrade_order_id"] == asked.data["upgrade_order_id"]
    assert world.seller.activities() == ["upgradeInstance", "releaseInstance"]
