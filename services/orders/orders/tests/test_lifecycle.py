"""The subscription lifecycle sweep (``orders.lifecycle``) on PostgreSQL: each move at its
time with its event, reminders once, two sweeps racing, and a crash mid-batch."""

from __future__ import annotations

import datetime as dt

import eventlet
import pytest
import sqlalchemy as sa

from mercato.clock import ManualClock
from mercato.db import create_engine, new_id
from mercato.standalone import standalone_unit_of_work
from orders import domain, lifecycle
from orders.models import Order, OrderLine, Subscription, metadata
from orders.repository import REPOSITORIES

pytestmark = pytest.mark.interface

EXPIRES = dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)
PERIODS = domain.LifecyclePeriods()  # 15 days' grace, 15 days' retention
DAY = dt.timedelta(days=1)


@pytest.fixture
def url(databases):
    return databases.fresh("orders")


@pytest.fixture
def uow(url):
    with standalone_unit_of_work(
        url, metadata, service_name="orders", command="test", repositories=REPOSITORIES
    ) as unit:
        yield unit


def add_subscriptions(url, count=1, *, billing_mode="yearly_monthly", expires_at=EXPIRES):
    """``count`` enabled subscriptions, each of its own paid order; their ids."""
    engine = create_engine(url)
    ids = []
    with engine.begin() as connection:
        for _ in range(count):
            order_id, line_id, subscription_id = new_id("ord"), new_id("oln"), new_id("sub")
            start = dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
            connection.execute(
                sa.insert(Order.__table__),
                {
                    "id": order_id,
                    "type": "purchase",
                    "account_id": "acc_buyer",
                    "payer_account_id": "acc_buyer",
                    "enterprise_project_id": "default",
                    "status": "completed",
                    "amount_due": 5000,
                    "currency": "USD",
                    "payment_deadline": start,
                    "share_contact": False,
                    "created_at": start,
                    "updated_at": start,
                },
            )
            connection.execute(
                sa.insert(OrderLine.__table__),
                {
                    "id": line_id,
                    "order_id": order_id,
                    "position": 0,
                    "product_id": "prd_known",
                    "product_name": "Known App",
                    "seller_account_id": "acc_seller",
                    "seller_company_name": "Seller Co",
                    "specification_id": "spc_std",
                    "specification_name": "Standard",
                    "delivery_method": "saas",
                    "service_supervision": False,
                    "billing_mode": billing_mode,
                    "period_unit": "month" if billing_mode == "yearly_monthly" else None,
                    "period_count": 2 if billing_mode == "yearly_monthly" else None,
                    "quantity": 1,
                    "unit_price": 5000,
                    "amount": 5000,
                    "currency": "USD",
                },
            )
            connection.execute(
                sa.insert(Subscription.__table__),
                {
                    "id": subscription_id,
                    "order_id": order_id,
                    "order_line_id": line_id,
                    "account_id": "acc_buyer",
                    "enterprise_project_id": "default",
                    "status": "enabled",
                    "auto_renew": False,
                    "activated_at": start,
                    "expires_at": expires_at if billing_mode == "yearly_monthly" else None,
                    "time_zone": "UTC",
                    "reminded_stage": 0,
                    "auto_renew_failures": 0,
                    "created_at": start,
                    "updated_at": start,
                },
            )
            ids.append(subscription_id)
    engine.dispose()
    return ids


def statuses(url) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, status FROM subscriptions")).all()
    engine.dispose()
    return dict(rows)


def events(url, event_type=None) -> list[dict]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT event_type, payload FROM outbox_messages ORDER BY id")
        ).all()
    engine.dispose()
    return [payload for kind, payload in rows if event_type is None or kind == event_type]


def test_a_subscription_lives_its_timeline_with_one_event_per_move(url, uow):
    (subscription_id,) = add_subscriptions(url)
    clock = ManualClock(EXPIRES - 8 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 0

    clock.set(EXPIRES - 6 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    assert lifecycle.run_due(uow, clock, PERIODS) == 0  # a reminder is sent once
    (expiring,) = events(url, "orders.subscription.expiring")
    assert expiring["data"]["stage"] == "before_expiry"
    assert expiring["data"]["subscription_id"] == subscription_id
    assert expiring["data"]["product_name"] == "Known App"

    clock.set(EXPIRES + dt.timedelta(seconds=1))
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    assert statuses(url) == {subscription_id: "expired"}
    (expired,) = events(url, "orders.subscription.expired")
    assert expired["data"]["grace_ends_at"] == (EXPIRES + 15 * DAY).isoformat()

    clock.set(EXPIRES + 13 * DAY)  # 2 days before it is frozen
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    stages = [e["data"]["stage"] for e in events(url, "orders.subscription.expiring")]
    assert stages == ["before_expiry", "before_freeze"]

    clock.set(EXPIRES + 15 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    assert statuses(url) == {subscription_id: "frozen"}
    (frozen,) = events(url, "orders.subscription.frozen")
    assert frozen["data"]["release_at"] == (EXPIRES + 30 * DAY).isoformat()

    clock.set(EXPIRES + 30 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    assert statuses(url) == {subscription_id: "released"}
    (released,) = events(url, "orders.subscription.released")
    assert released["data"]["reason"] == "expired"
    assert lifecycle.run_due(uow, clock, PERIODS) == 0


def test_a_clock_far_past_the_expiry_makes_every_move_in_order(url, uow):
    add_subscriptions(url)
    clock = ManualClock(EXPIRES + 40 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 3
    assert [e["type"] for e in events(url)] == [
        "orders.subscription.expired",
        "orders.subscription.frozen",
        "orders.subscription.released",
    ]


def test_pay_per_use_and_one_time_subscriptions_never_expire(url, uow):
    add_subscriptions(url, billing_mode="pay_per_use")
    add_subscriptions(url, billing_mode="one_time")
    clock = ManualClock(EXPIRES + 400 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 0
    assert set(statuses(url).values()) == {"enabled"}
    assert events(url) == []


def test_the_sweep_moves_many_in_batches(url, uow):
    ids = add_subscriptions(url, 25)
    clock = ManualClock(EXPIRES + dt.timedelta(hours=1))
    assert lifecycle.run_due(uow, clock, PERIODS, batch_size=10) == 25
    assert set(statuses(url).values()) == {"expired"}
    assert sorted(e["subject"] for e in events(url)) == sorted(ids)


def test_two_sweeps_racing_move_each_subscription_once(url):
    ids = add_subscriptions(url, 40)
    clock = ManualClock(EXPIRES + dt.timedelta(hours=1))
    moved = []

    def sweep():
        with standalone_unit_of_work(
            url, metadata, service_name="orders", command="test", repositories=REPOSITORIES
        ) as unit:
            moved.append(lifecycle.run_due(unit, clock, PERIODS, batch_size=3))

    threads = [eventlet.spawn(sweep) for _ in range(2)]
    for thread in threads:
        thread.wait()
    assert sum(moved) == 40
    assert set(statuses(url).values()) == {"expired"}
    subjects = [e["subject"] for e in events(url, "orders.subscription.expired")]
    assert sorted(subjects) == sorted(ids)  # each once


def test_a_batch_another_sweep_holds_is_skipped_not_waited_for(url):
    add_subscriptions(url, 10)
    clock = ManualClock(EXPIRES + dt.timedelta(hours=1))
    with (
        standalone_unit_of_work(
            url, metadata, service_name="orders", command="a", repositories=REPOSITORIES
        ) as first,
        standalone_unit_of_work(
            url, metadata, service_name="orders", command="b", repositories=REPOSITORIES
        ) as second,
    ):
        held = first.orders.claim_due(domain.EXPIRE, clock.now(), PERIODS, limit=4)
        assert len(held) == 4
        # the second sweep takes the six others at once, never the four held
        assert lifecycle.run_due(second, clock, PERIODS) == 6
        for subscription in held:
            subscription.expire(clock.now(), PERIODS)
        first.orders.write_lifecycle(domain.EXPIRE, held, clock.now())
        for subscription in held:
            first.emit_recorded(subscription)
        first.commit()
    assert set(statuses(url).values()) == {"expired"}
    assert len(events(url, "orders.subscription.expired")) == 10


def test_a_crash_mid_batch_changes_nothing_and_the_next_sweep_resumes(url, uow, monkeypatch):
    ids = add_subscriptions(url, 5)
    clock = ManualClock(EXPIRES + dt.timedelta(hours=1))

    def die(entities):
        # the batch's rows are updated, its events not yet written: the worker dies
        raise RuntimeError("the worker died")

    monkeypatch.setattr(uow, "emit_recorded_all", die)
    with pytest.raises(RuntimeError):
        lifecycle.run_due(uow, clock, PERIODS)
    assert set(statuses(url).values()) == {"enabled"}
    assert events(url) == []

    monkeypatch.undo()
    assert lifecycle.run_due(uow, clock, PERIODS) == 5
    assert sorted(e["subject"] for e in events(url)) == sorted(ids)


def test_a_renewed_subscription_is_reminded_again_for_its_new_period(url, uow):
    (subscription_id,) = add_subscriptions(url)
    clock = ManualClock(EXPIRES - 6 * DAY)
    lifecycle.run_due(uow, clock, PERIODS)
    subscription = uow.orders.lock_subscription(subscription_id)
    subscription.renew(
        renewal_order_id="ord_r",
        period={"unit": "month", "count": 1},
        amount={"amount": 2500, "currency": "USD"},
        time_zone="UTC",
        automatic=False,
        now=clock.now(),
    )
    uow.emit_recorded(subscription)
    uow.commit()
    assert subscription.expires_at == dt.datetime(2027, 2, 26, 23, 59, 59, tzinfo=dt.UTC)
    clock.set(subscription.expires_at - 6 * DAY)
    assert lifecycle.run_due(uow, clock, PERIODS) == 1
    assert len(events(url, "orders.subscription.expiring")) == 2


def test_the_gauge_counts_subscriptions_by_status(url, uow):
    from orders import metrics

    add_subscriptions(url, 3)
    add_subscriptions(url, 2, expires_at=EXPIRES + 100 * DAY)
    lifecycle.run_due(uow, ManualClock(EXPIRES + DAY), PERIODS)
    assert metrics.SUBSCRIPTIONS.labels("expired")._value.get() == 3
    assert metrics.SUBSCRIPTIONS.labels("enabled")._value.get() == 2
