"""provisioning's use cases on in-memory repositories, a stand-in catalog and a
stand-in seller: the delivery saga's rules in milliseconds (test_service.py runs the
same flows in a container, on PostgreSQL, against the reference seller app)."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest

from mercato.clock import ManualClock
from mercato.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from mercato.identity import Identity
from mercato.periods import subscription_expiry
from provisioning import domain, licenses, usecases
from provisioning.keyring import Keyring, generate_key_spec
from provisioning.tests.fakes import (
    FakeCatalog,
    FakeSeller,
    fake_unit_of_work,
)
from provisioning.tests.specs import BUYER, OTHER, START
from seller_interface import Activity, ResultCode

OPERATOR = Identity("acc_ops", "usr_ops", "operator", ("operator",))
SELLER = Identity("acc_seller", "usr_seller", "seller", ("seller",))
# the stand-in seller listens on loopback, as the reference app does in `make run`
POLICY = domain.DeliveryPolicy(allow_private_endpoints=True)
SUCCEEDED = "provisioning.delivery.succeeded"
FAILED = "provisioning.delivery.failed"


@pytest.fixture
def world():
    """A unit of work, a clock at START, a keyring, catalog and a seller that has
    issued its interface credentials."""
    world = SimpleNamespace(
        uow=fake_unit_of_work(),
        clock=ManualClock(START),
        keyring=Keyring.from_spec(generate_key_spec("k1")),
        catalog=FakeCatalog(),
        seller=FakeSeller(),
    )
    usecases.issue_interface_credentials(
        world.uow, world.clock, seller=SELLER, keyring=world.keyring
    )
    return world


def paid_order(*methods: str) -> dict:
    return {
        "order_id": f"ord_{uuid.uuid4().hex}",
        "account_id": BUYER.account_id,
        "subscriptions": [
            {
                "subscription_id": f"sub_{uuid.uuid4().hex}",
                "order_line_id": f"oln_{uuid.uuid4().hex}",
                "product_id": "prd_app",
                "product_name": "Team Chat",
                "seller_account_id": SELLER.account_id,
                "specification_id": "spc_std",
                "specification_name": "Standard",
                "delivery_method": method,
                # as the catalog has it: licenses and professional services always
                "service_supervision": method in ("license", "professional_service"),
                "billing_mode": "yearly_monthly",
                "period": {"unit": "month", "count": 1},
                "quantity": 10,
                "expires_at": None,
            }
            for method in methods
        ],
    }


def pay(world, method: str = "saas", policy=POLICY) -> str:
    """A paid order of one subscription, accepted and committed as the inbox does."""
    order = paid_order(method)
    usecases.accept_paid_order(world.uow, world.clock, order=order, policy=policy)
    world.uow.commit()
    return order["subscriptions"][0]["subscription_id"]


def neighbours(world, policy=POLICY) -> dict:
    """What a step is given besides its unit of work and clock."""
    return {
        "keyring": world.keyring,
        "catalog": world.catalog,
        "seller_client": world.seller.client,
        "policy": policy,
    }


def sweep(world, policy=POLICY) -> list[str]:
    """One pass of the sweep: each due delivery claimed and stepped; their statuses."""
    return [
        usecases.run_delivery(world.uow, world.clock, claimed, **neighbours(world, policy))
        for claimed in usecases.claim_due(world.uow, world.clock, policy)
    ]


def delivery(world, subscription_id: str):
    return world.uow.deliveries.of_subscription(subscription_id)


# -- accepting paid orders ---------------------------------------------------------------


def test_a_paid_order_records_one_delivery_per_subscription_and_leaves_the_commit_to_the_inbox(
    world,
):
    commits = world.uow.commits
    order = paid_order("saas", "license", "image")
    due = usecases.accept_paid_order(world.uow, world.clock, order=order, policy=POLICY)
    assert world.uow.commits == commits
    statuses = [delivery(world, item["subscription_id"]).status for item in order["subscriptions"]]
    assert statuses == ["pending", "pending", "waiting"]
    assert len(due) == 2
    # the event again: nothing new
    assert usecases.accept_paid_order(world.uow, world.clock, order=order, policy=POLICY) == []
    assert len(world.uow.deliveries.table("deliveries")) == 3


def test_images_and_professional_services_wait_for_their_own_flows(world):
    for method in ("image", "professional_service"):
        pay(world, method)
    assert sweep(world) == []
    assert world.uow.committed_event_types() == []


def test_a_supervised_saas_tenant_waits_for_the_sellers_confirmation(world):
    order = paid_order("saas")
    order["subscriptions"][0]["service_supervision"] = True
    usecases.accept_paid_order(world.uow, world.clock, order=order, policy=POLICY)
    world.uow.commit()
    subscription_id = order["subscriptions"][0]["subscription_id"]
    assert delivery(world, subscription_id).status == "waiting"
    assert sweep(world) == []

    world.clock.advance(hours=5)  # longer than the window: it runs from the confirmation
    started = usecases.start_confirmed_delivery(
        world.uow, world.clock, POLICY, subscription_id=subscription_id
    )
    assert started == delivery(world, subscription_id).id
    assert delivery(world, subscription_id).deadline_at == world.clock.now() + POLICY.window
    again = usecases.start_confirmed_delivery(
        world.uow, world.clock, POLICY, subscription_id=subscription_id
    )
    assert again is None
    assert sweep(world) == ["succeeded"]


def test_a_confirmation_before_its_paid_order_is_recorded_is_tried_again(world):
    with pytest.raises(ServiceUnavailable):
        usecases.start_confirmed_delivery(
            world.uow, world.clock, POLICY, subscription_id="sub_not_yet"
        )


# -- delivering --------------------------------------------------------------------------


def test_a_license_expires_at_the_end_of_the_day_in_the_buyers_time_zone(world):
    order = paid_order("license")
    order["subscriptions"][0]["time_zone"] = "Asia/Shanghai"
    usecases.accept_paid_order(world.uow, world.clock, order=order, policy=POLICY)
    world.uow.commit()
    assert sweep(world) == ["succeeded"]
    [event] = world.uow.committed_events(SUCCEEDED)
    # bought 2026-01-15T09:30Z for a month: Feb 14 23:59:59 in Shanghai (UTC+8)
    expected = dt.datetime(2026, 2, 14, 15, 59, 59, tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(str(event.data["expires_at"])) == expected
    assert subscription_expiry(START, "yearly_monthly", "month", 1) != expected


def test_a_license_is_signed_with_the_sellers_published_key_and_announced_once(world):
    subscription_id = pay(world, "license")
    assert sweep(world) == ["succeeded"]
    assert sweep(world) == []
    [event] = world.uow.committed_events(SUCCEEDED)
    published = usecases.license_public_key(
        world.uow,
        world.clock,
        seller_account_id=SELLER.account_id,
        keyring=world.keyring,
        create=False,
    )
    claims = licenses.verify(
        event.data["application"]["license_key"], licenses._unb64(published["public_key"])
    )
    assert claims["subscription_id"] == subscription_id and claims["quantity"] == 10
    # the period runs from the first attempt: in the key and in the event alike
    expires_at = subscription_expiry(START, "yearly_monthly", "month", 1)
    assert claims["expires_at"] == expires_at.isoformat()
    assert dt.datetime.fromisoformat(event.data["expires_at"]) == expires_at


def test_saas_is_delivered_once_with_its_password_sealed_and_masked(world):
    subscription_id = pay(world)
    assert sweep(world) == ["succeeded"]
    [event] = world.uow.committed_events(SUCCEEDED)
    application = event.data["application"]
    assert application["instance_id"] == "inst_1" and application["has_password"] is True
    assert "s3cret-pass" not in str(event.data)
    row = delivery(world, subscription_id)
    assert row.password_sealed is not None and b"s3cret-pass" not in row.password_sealed
    shown = usecases.application(world.uow, buyer=BUYER, subscription_id=subscription_id)
    assert shown["password"] == "******" and shown["delivery_status"] == "succeeded"
    assert world.seller.asked(Activity.NEW_INSTANCE) == 1


def test_a_delivery_already_ended_is_not_completed_again(world):
    pay(world)
    [claimed] = usecases.claim_due(world.uow, world.clock, POLICY)
    run = neighbours(world)
    assert usecases.run_delivery(world.uow, world.clock, claimed, **run) == "succeeded"
    # a second worker with the same (stale) claim: its outcome is not recorded
    assert usecases.run_delivery(world.uow, world.clock, claimed, **run) == "succeeded"
    assert world.uow.committed_event_types() == [SUCCEEDED]


def test_a_failed_step_is_tried_again_after_a_doubling_backoff(world):
    subscription_id = pay(world)
    world.seller.down = True
    delays = []
    for _ in range(4):
        assert sweep(world) == ["pending"]
        row = delivery(world, subscription_id)
        delays.append(row.next_attempt_at - world.clock.now())
        assert sweep(world) == []  # not due before its time
        world.clock.advance(seconds=delays[-1].total_seconds())
    assert delays == [dt.timedelta(seconds=seconds) for seconds in (1, 2, 4, 8)]
    assert row.attempts == 4 and "connection refused" in row.last_error
    assert world.uow.committed_event_types() == []
    world.seller.down = False
    assert sweep(world) == ["succeeded"]
    assert delivery(world, subscription_id).last_error is None


def test_the_backoff_stops_growing_and_the_last_try_falls_on_the_deadline(world):
    assert POLICY.backoff(30) == POLICY.max_retry
    subscription_id = pay(world)
    world.seller.down = True
    world.clock.advance(seconds=POLICY.window.total_seconds() - 0.5)
    assert sweep(world) == ["pending"]
    row = delivery(world, subscription_id)
    assert row.next_attempt_at == row.deadline_at
    world.clock.advance(seconds=0.5)
    assert sweep(world) == ["failed"]


def test_a_seller_still_creating_the_instance_is_asked_again_soon_about_the_same_one(world):
    subscription_id = pay(world)
    world.seller.ready = False
    assert sweep(world) == ["pending"]
    row = delivery(world, subscription_id)
    assert row.instance_id == "inst_1"  # saved as soon as the seller gave it
    assert row.next_attempt_at == world.clock.now() + POLICY.processing_poll
    world.clock.advance(seconds=1)
    world.seller.ready = True
    assert sweep(world) == ["succeeded"]
    assert world.seller.asked(Activity.NEW_INSTANCE) == 1
    assert world.seller.asked(Activity.QUERY_INSTANCE) == 2


def fail_with_an_instance(world, release_answer=ResultCode.SUCCESS):
    """A saas delivery whose instance the seller never finishes, failed when its
    window passes, the seller answering ``release_answer`` to the release it is asked."""
    subscription_id = pay(world)
    world.seller.ready = False
    assert sweep(world) == ["pending"]
    world.seller.release_answer = release_answer
    world.clock.advance(hours=3)
    assert sweep(world) == ["failed"]
    return delivery(world, subscription_id)


def test_when_the_window_passes_the_delivery_fails_once_and_the_instance_is_released(world):
    row = fail_with_an_instance(world)
    [event] = world.uow.committed_events(FAILED)
    assert "Team Chat" in event.data["reason"] and "3 hours" in event.data["reason"]
    assert row.failure_reason == event.data["reason"] and row.next_attempt_at is None
    assert row.release_status == domain.RELEASED and row.released_at == world.clock.now()
    assert world.seller.asked(Activity.RELEASE_INSTANCE) == 1
    assert sweep(world) == []
    assert usecases.claim_due_release(world.uow, world.clock, POLICY) is None
    assert world.uow.committed_event_types() == [FAILED]


def test_a_delivery_that_fails_before_any_instance_has_nothing_to_release(world):
    subscription_id = pay(world)
    world.seller.down = True
    world.clock.advance(hours=3)
    assert sweep(world) == ["failed"]
    assert delivery(world, subscription_id).release_status == domain.NO_RELEASE
    assert world.seller.asked(Activity.RELEASE_INSTANCE) == 0


def test_a_release_the_seller_refuses_is_asked_again_then_left_to_an_operator(world):
    row = fail_with_an_instance(world, ResultCode.INTERNAL_ERROR)
    assert row.release_status == domain.RELEASE_DUE and row.release_attempts == 1
    run = neighbours(world)
    world.clock.advance(hours=2)
    claimed = usecases.claim_due_release(world.uow, world.clock, POLICY)
    assert not usecases.release_instance(world.uow, world.clock, claimed, **run)
    assert row.release_status == domain.RELEASE_DUE and row.release_attempts == 2
    world.clock.advance(hours=1)  # as long again as the window: given up
    claimed = usecases.claim_due_release(world.uow, world.clock, POLICY)
    assert not usecases.release_instance(world.uow, world.clock, claimed, **run)
    assert row.release_status == domain.RELEASE_ABANDONED
    assert usecases.claim_due_release(world.uow, world.clock, POLICY) is None


def test_no_such_instance_at_the_seller_counts_as_released(world):
    row = fail_with_an_instance(world, ResultCode.NO_SUCH_INSTANCE)
    assert row.release_status == domain.RELEASED


def test_an_unexpected_failure_is_a_failed_attempt_and_the_window_still_ends_it(world):
    subscription_id = pay(world)
    delivery(world, subscription_id).product_id = "prd_gone"  # catalog answers NotFound
    world.uow.commit()
    assert sweep(world) == ["pending"]
    assert "NotFound" in delivery(world, subscription_id).last_error
    world.clock.advance(hours=3)
    assert sweep(world) == ["failed"]


def test_a_private_endpoint_is_refused_outside_development(world):
    policy = domain.DeliveryPolicy()
    subscription_id = pay(world, policy=policy)
    assert sweep(world, policy) == ["pending"]
    assert "private network" in delivery(world, subscription_id).last_error
    assert world.seller.calls == []


def test_the_seller_is_called_at_the_address_that_was_checked(world):
    world.catalog.endpoint = "https://8.8.8.8/saas"
    policy = domain.DeliveryPolicy()
    pay(world, policy=policy)
    assert sweep(world, policy) == ["succeeded"]
    # the client connects to the checked address, never looking the name up again
    assert world.seller.addresses and set(world.seller.addresses) == {"8.8.8.8"}


def test_a_seller_without_interface_credentials_is_not_called(world):
    world.uow.seller_keys.table("interface_keys").clear()
    subscription_id = pay(world)
    assert sweep(world) == ["pending"]
    assert "interface credentials" in delivery(world, subscription_id).last_error
    assert world.seller.calls == []


# -- what the buyer sees ---------------------------------------------------------------------


def reveal(world, who=BUYER, subscription_id=""):
    return usecases.reveal_credentials(
        world.uow,
        world.clock,
        buyer=who,
        subscription_id=subscription_id,
        correlation_id="corr",
        keyring=world.keyring,
        policy=POLICY,
    )


def test_a_reveal_opens_the_password_and_is_recorded(world):
    subscription_id = pay(world)
    sweep(world)
    assert reveal(world, subscription_id=subscription_id) == {
        "username": "buyer-admin",
        "password": "s3cret-pass",
    }
    [recorded] = world.uow.deliveries.table("reveals").values()
    assert (recorded.account_id, recorded.user_id, recorded.correlation_id) == (
        "acc_buyer",
        "usr_buyer",
        "corr",
    )


def test_reveals_are_rate_limited_per_minute(world):
    subscription_id = pay(world)
    sweep(world)
    for _ in range(POLICY.reveals_per_minute):
        reveal(world, subscription_id=subscription_id)
    with pytest.raises(RateLimited):
        reveal(world, subscription_id=subscription_id)
    world.uow.rollback()
    assert len(world.uow.deliveries.table("reveals")) == POLICY.reveals_per_minute
    world.clock.advance(minutes=1)
    reveal(world, subscription_id=subscription_id)


def test_another_buyers_app_does_not_exist_for_the_caller(world):
    subscription_id = pay(world)
    sweep(world)
    with pytest.raises(NotFound):
        usecases.application(world.uow, buyer=OTHER, subscription_id=subscription_id)
    with pytest.raises(NotFound):
        reveal(world, OTHER, subscription_id)
    assert usecases.application(world.uow, buyer=OPERATOR, subscription_id=subscription_id)


def test_a_license_has_no_password_to_reveal(world):
    subscription_id = pay(world, "license")
    sweep(world)
    with pytest.raises(NotFound, match="no password"):
        reveal(world, subscription_id=subscription_id)


# -- sellers' keys -----------------------------------------------------------------------------


def public_key(world, create):
    return usecases.license_public_key(
        world.uow,
        world.clock,
        seller_account_id=SELLER.account_id,
        keyring=world.keyring,
        create=create,
    )


def test_a_signing_key_is_made_only_for_the_seller_itself_and_then_kept(world):
    with pytest.raises(NotFound):
        public_key(world, create=False)
    assert world.uow.seller_keys.signing_key(SELLER.account_id) is None
    made = public_key(world, create=True)
    assert public_key(world, create=False) == made
    assert made["algorithm"] == "Ed25519"


def test_issuing_interface_credentials_again_replaces_the_pair(world):
    first = world.uow.seller_keys.interface_key(SELLER.account_id).access_key
    again = usecases.issue_interface_credentials(
        world.uow, world.clock, seller=SELLER, keyring=world.keyring
    )
    assert again["access_key"] != first
    assert world.uow.seller_keys.interface_key(SELLER.account_id).access_key == again["access_key"]


def test_a_retried_issue_answers_the_pair_it_issued_from_the_keyring(world):
    def issue(key: str) -> dict:
        return usecases.issue_interface_credentials(
            world.uow, world.clock, seller=SELLER, keyring=world.keyring, request_key=key
        )

    first = issue("k" * 64)
    world.clock.advance(minutes=1)
    again = issue("k" * 64)

    assert again == first  # the same pair, not replaced once more
    assert world.uow.seller_keys.interface_key(SELLER.account_id).access_key == first["access_key"]


def test_a_retried_issue_whose_pair_was_replaced_since_shows_no_secret(world):
    def issue(key: str) -> dict:
        return usecases.issue_interface_credentials(
            world.uow, world.clock, seller=SELLER, keyring=world.keyring, request_key=key
        )

    first = issue("a" * 64)
    rotated = issue("b" * 64)

    with pytest.raises(Conflict):
        issue("a" * 64)
    assert (
        world.uow.seller_keys.interface_key(SELLER.account_id).access_key == (rotated["access_key"])
    )
    assert rotated["access_key"] != first["access_key"]


# -- the state machine -------------------------------------------------------------------------


def test_a_delivery_that_is_not_pending_refuses_every_delivery_move(world):
    subscription_id = pay(world, "license")
    sweep(world)
    row = delivery(world, subscription_id)
    with pytest.raises(Conflict, match="the delivery is succeeded; fail needs it pending"):
        row.fail("late", world.clock.now())
    with pytest.raises(Conflict):
        row.retry_later("late", world.clock.now(), POLICY)
    with pytest.raises(Conflict):
        row.succeed(domain.Delivered(license_key="again"), world.clock.now())
    with pytest.raises(Conflict, match="instance release is none"):
        row.instance_released(world.clock.now())
    assert row.status == "succeeded" and row.take_events() == []
