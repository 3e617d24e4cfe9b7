"""Renewals in a real orders container on PostgreSQL and RabbitMQ (its neighbours
replaced, as in ``test_service``): quotes, orders from them, their payment applied."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from mercato.errors import BusinessRuleViolation, Conflict, NotFound
from mercato.periods import renewed_expiry
from mercato_testing.interface import count_rows, publish_event, wait_for
from orders.tests import test_service
from orders.tests.test_service import (
    BUYER,
    CUSTOMER,
    ORDER,
    OTHER,
    PRICE,
    START,
    FakeBilling,
    as_caller,
    subscription_ids_of,
)

pytestmark = pytest.mark.interface

orders_container = test_service.orders  # the ``orders`` fixture: the service and its fakes

EXPIRES = dt.datetime(2027, 1, 26, 23, 59, 59, tzinfo=dt.UTC)
MONTH = {"unit": "month", "count": 1}


def _execute(config, statement: str, **params) -> list:
    engine = sa.create_engine(config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def bought(config, caller=BUYER, status="enabled", **order) -> str:
    """A paid purchase whose subscription is in ``status`` and expires at EXPIRES."""
    with as_caller(config, caller) as service:
        placed = service.place_order({**ORDER, **order})
        if placed["status"] == "unpaid":
            service.pay_order(placed["id"], {"payment_method": "balance"})
    (subscription_id,) = subscription_ids_of(config, placed["id"])
    _execute(
        config,
        "UPDATE subscriptions SET status = :status, expires_at = :expires WHERE id = :id",
        status=status,
        expires=EXPIRES
        if order.get("billing_mode", "yearly_monthly") == "yearly_monthly"
        else None,
        id=subscription_id,
    )
    return subscription_id


def outbox(config, event_type) -> list[dict]:
    rows = _execute(
        config,
        "SELECT payload FROM outbox_messages WHERE event_type = :type ORDER BY id",
        type=event_type,
    )
    return [row[0] for row in rows]


def test_a_quote_prices_the_current_configuration_from_the_current_expiry(orders_container):
    config, clock, _ = orders_container
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": {"unit": "year", "count": 1}})
    assert quote["id"].startswith("rnq_")
    assert quote["amount_due"] == {"amount": PRICE * 1 * 3, "currency": "USD"}
    assert (
        quote["new_expires_at"] == dt.datetime(2028, 1, 26, 23, 59, 59, tzinfo=dt.UTC).isoformat()
    )
    assert quote["valid_until"] == (clock.now() + dt.timedelta(minutes=30)).isoformat()
    assert quote["period"] == {"unit": "year", "count": 1}


def test_renewing_from_grace_continues_from_the_original_expiry(orders_container):
    config, clock, _ = orders_container
    subscription_id = bought(config, status="expired")
    clock.set(EXPIRES + dt.timedelta(days=5))
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        order = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        assert (order["type"], order["subscription_id"], order["status"]) == (
            "renewal",
            subscription_id,
            "unpaid",
        )
        assert order["amount_due"] == quote["amount_due"]
        (line,) = order["lines"]
        assert line["period"] == MONTH and line["quantity"] == 3
        paid = service.pay_order(order["id"], {"payment_method": "balance"})
        app = service.get_purchased_app(subscription_id)
    assert paid["status"] == "completed"
    assert app["status"] == "enabled"
    assert app["expires_at"] == dt.datetime(2027, 2, 26, 23, 59, 59, tzinfo=dt.UTC).isoformat()
    assert count_rows(config, "subscriptions") == 1  # a renewal creates no subscription
    (renewed,) = outbox(config, "orders.subscription.renewed")
    assert renewed["data"]["previous_status"] == "expired"
    assert renewed["data"]["previous_expires_at"] == EXPIRES.isoformat()
    assert renewed["data"]["renewal_order_id"] == order["id"]
    assert renewed["data"]["automatic"] is False
    paid_events = [e["data"]["order_id"] for e in outbox(config, "orders.order.paid")]
    assert order["id"] not in paid_events  # a renewal is nothing to deliver
    completed = [e["data"]["order_id"] for e in outbox(config, "orders.order.completed")]
    assert order["id"] in completed
    created = [e for e in outbox(config, "orders.order.created") if e["subject"] == order["id"]]
    assert created[0]["data"]["type"] == "renewal"


def test_renewing_a_frozen_app_says_it_was_frozen(orders_container):
    config, clock, _ = orders_container
    subscription_id = bought(config, status="frozen")
    clock.set(EXPIRES + dt.timedelta(days=20))
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": {"unit": "month", "count": 3}})
        order = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        service.pay_order(order["id"], {"payment_method": "balance"})
        app = service.get_purchased_app(subscription_id)
    assert app["status"] == "enabled"
    assert app["expires_at"] == renewed_expiry(EXPIRES, "month", 3, "UTC").isoformat()
    (renewed,) = outbox(config, "orders.subscription.renewed")
    assert renewed["data"]["previous_status"] == "frozen"


@pytest.mark.parametrize(
    ("status", "order", "error", "code"),
    [
        ("released", {}, Conflict, "SUBSCRIPTION_RELEASED"),
        ("enabling", {}, BusinessRuleViolation, "RENEWAL_NOT_SUPPORTED"),
        (
            "enabled",
            {"billing_mode": "pay_per_use", "period": None},
            BusinessRuleViolation,
            "RENEWAL_NOT_SUPPORTED",
        ),
    ],
)
def test_only_a_yearly_monthly_app_in_use_or_unrenewed_can_be_renewed(
    orders_container, status, order, error, code
):
    config, _clock, _ = orders_container
    subscription_id = bought(config, status=status, **order)
    with as_caller(config, BUYER) as service, pytest.raises(error) as raised:
        service.quote_renewal(subscription_id, {"period": MONTH})
    assert raised.value.code == code
    assert count_rows(config, "renewal_quotes") == 0


def test_a_quote_binds_until_valid_until_then_is_refused(orders_container):
    config, clock, _ = orders_container
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        clock.advance(minutes=31)
        with pytest.raises(BusinessRuleViolation) as raised:
            service.place_renewal(subscription_id, {"quote_id": quote["id"]})
    assert raised.value.code == "QUOTE_EXPIRED"
    assert count_rows(config, "orders") == 1  # the purchase only


def test_a_quote_makes_one_order_and_a_second_names_it(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        first = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        with pytest.raises(Conflict) as raised:
            service.place_renewal(subscription_id, {"quote_id": quote["id"]})
    assert raised.value.code == "QUOTE_USED"
    assert first["id"] in raised.value.message


def test_a_retry_with_the_same_key_answers_the_same_order(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config)
    keyed = {**BUYER, "request_key": "k-renew"}
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
    with as_caller(config, keyed) as service:
        first = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        again = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
    assert again["id"] == first["id"]
    assert count_rows(config, "orders") == 2


def test_another_buyers_app_and_quote_are_not_found(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config)
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
    with as_caller(config, OTHER) as service:
        with pytest.raises(NotFound):
            service.quote_renewal(subscription_id, {"period": MONTH})
        with pytest.raises(NotFound):
            service.place_renewal(subscription_id, {"quote_id": quote["id"]})


def test_a_resellers_customer_renewal_is_paid_by_the_reseller_at_once(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config, caller=CUSTOMER, status="expired")
    with as_caller(config, CUSTOMER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        order = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        app = service.get_purchased_app(subscription_id)
    assert order["status"] == "completed" and order["paid_by_reseller"] is True
    assert app["status"] == "enabled"
    assert FakeBilling.calls[-1]["payment_method"] == "reseller"
    assert FakeBilling.calls[-1]["payer_account_id"] == "acc_reseller"


def test_a_renewal_paid_after_its_app_was_released_is_cancelled_and_refunded(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config, status="frozen")
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        order = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
    _execute(
        config, "UPDATE subscriptions SET status = 'released' WHERE id = :id", id=subscription_id
    )
    # a payment billing settled anyway (a late card), announced by billing's event
    publish_event(
        config["AMQP_URI"],
        "billing.payment.succeeded",
        {
            "payment_id": "pay_late",
            "order_id": order["id"],
            "account_id": BUYER["account_id"],
            "payer_account_id": BUYER["account_id"],
            "payment_method": "credit_card",
            "amount": order["amount_due"],
            "enterprise_project_id": "default",
        },
        subject="pay_late",
    )
    with as_caller(config, BUYER) as service:
        cancelled = wait_for(
            lambda: (o := service.get_order(order["id"]))["status"] == "cancelled" and o,
            "the renewal order to be cancelled",
            timeout=15,
        )
    assert cancelled["cancel_reason"]
    (event,) = [e for e in outbox(config, "orders.order.cancelled") if e["subject"] == order["id"]]
    assert event["data"]["refund"] == order["amount_due"]
    assert outbox(config, "orders.subscription.renewed") == []


def test_paying_a_renewal_of_a_released_app_is_refused_before_charging(orders_container):
    config, _clock, _ = orders_container
    subscription_id = bought(config, status="expired")
    with as_caller(config, BUYER) as service:
        quote = service.quote_renewal(subscription_id, {"period": MONTH})
        order = service.place_renewal(subscription_id, {"quote_id": quote["id"]})
        _execute(
            config,
            "UPDATE subscriptions SET status = 'released' WHERE id = :id",
            id=subscription_id,
        )
        calls = len(FakeBilling.calls)
        with pytest.raises(Conflict) as raised:
            service.pay_order(order["id"], {"payment_method": "balance"})
    assert raised.value.code == "SUBSCRIPTION_RELEASED"
    assert len(FakeBilling.calls) == calls


def test_the_renewals_list_shows_what_expires_soon_and_what_is_unrenewed(orders_container):
    config, clock, _ = orders_container
    soon = bought(config)
    expired = bought(config, status="expired")
    later = bought(config)
    _execute(
        config,
        "UPDATE subscriptions SET expires_at = :at WHERE id = :id",
        at=EXPIRES + dt.timedelta(days=200),
        id=later,
    )
    clock.set(EXPIRES - dt.timedelta(days=10, hours=1))
    with as_caller(config, BUYER) as service:
        page = service.list_renewals({"days": "30"})
        apps = service.list_purchased_apps({})
    ids = [item["subscription_id"] for item in page["items"]]
    assert sorted(ids) == sorted([soon, expired]) and later not in ids
    item = next(i for i in page["items"] if i["subscription_id"] == soon)
    assert item["days_left"] == 11
    assert item["grace_ends_at"] == (EXPIRES + dt.timedelta(days=15)).isoformat()
    assert item["release_at"] == (EXPIRES + dt.timedelta(days=30)).isoformat()
    app = next(a for a in apps["items"] if a["id"] == soon)
    assert app["grace_ends_at"] == item["grace_ends_at"]
    assert app["quantity"] == 3 and app["upgrading"] is False


def test_a_new_subscription_takes_the_accounts_time_zone(orders_container):
    config, _clock, _ = orders_container
    publish_event(
        config["AMQP_URI"],
        "iam_agency.account.time_zone_changed",
        {
            "account_id": BUYER["account_id"],
            "time_zone": "Asia/Shanghai",
            "changed_at": START,
        },
        subject=BUYER["account_id"],
    )
    wait_for(
        lambda: count_rows(config, "account_time_zones") == 1,
        "orders to keep the time zone",
        timeout=15,
    )
    with as_caller(config, BUYER) as service:
        order = service.place_order(ORDER)
        service.pay_order(order["id"], {"payment_method": "balance"})
    (subscription_id,) = subscription_ids_of(config, order["id"])
    ((zone, expires),) = _execute(
        config, "SELECT time_zone, expires_at FROM subscriptions WHERE id = :id", id=subscription_id
    )
    assert zone == "Asia/Shanghai"
    # paid 2026-11-27 17:00 in Shanghai for 2 months: 2027-01-26 23:59:59 +08:00
    assert expires == dt.datetime(2027, 1, 26, 15, 59, 59, tzinfo=dt.UTC)
