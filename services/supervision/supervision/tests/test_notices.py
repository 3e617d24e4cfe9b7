"""The direct messages orders' after-purchase events send, without a database: to whom,
and that each names the product, gives its times in RFC 3339 and says what comes next."""

import datetime as dt

import pytest

from mercato.contracts.registry import contract_for
from supervision import notices

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
EXPIRES = dt.datetime(2026, 2, 14, 23, 59, 59, tzinfo=UTC)
FACTS = {
    "subscription_id": "sub_1",
    "order_id": "ord_1",
    "account_id": "acc_buyer",
    "seller_account_id": "acc_seller",
    "product_id": "prd_1",
    "product_name": "Northwind CRM",
    "specification_name": "Standard",
    "delivery_method": "saas",
    "billing_mode": "yearly_monthly",
}


def notice(event_type: str, **data) -> notices.Notice:
    found = notices.notice_for(event_type, {**FACTS, **data})
    assert found is not None
    assert len(found.subject) <= 200 and len(found.kind) <= 48
    return found


def test_times_read_as_rfc3339_in_utc_or_with_their_offset():
    assert notices.rfc3339(EXPIRES) == "2026-02-14T23:59:59Z"
    assert (
        notices.rfc3339(dt.datetime(2026, 2, 14, 23, 59, 59, tzinfo=SHANGHAI))
        == "2026-02-14T23:59:59+08:00"
    )
    assert notices.rfc3339("2026-02-14T23:59:59.250000+00:00") == "2026-02-14T23:59:59Z"
    assert notices.money_text({"amount": 12345, "currency": "USD"}) == "123.45 USD"


def test_an_expiry_reminder_says_when_and_how_to_renew_or_that_auto_renewal_is_on():
    manual = notice(
        "orders.subscription.expiring", expires_at=EXPIRES, stage="before_expiry", auto_renew=False
    )
    assert manual.account_id == "acc_buyer"
    assert manual.kind == "subscription_expiring"
    assert manual.subject == "Northwind CRM (Standard) expires at 2026-02-14T23:59:59Z"
    assert "Renew it from Renewals" in manual.body
    automatic = notice(
        "orders.subscription.expiring", expires_at=EXPIRES, stage="before_expiry", auto_renew=True
    )
    assert "Auto-renewal is on" in automatic.body
    freezing = notice(
        "orders.subscription.expiring", expires_at=EXPIRES, stage="before_freeze", auto_renew=False
    )
    assert freezing.kind == "subscription_freezing_soon"
    assert "frozen in 3 days" in freezing.subject
    assert "SaaS tenant is frozen" in freezing.body
    assert "the renewed period starts at 2026-02-14T23:59:59Z" in freezing.body


def test_expired_says_until_when_it_is_still_usable():
    grace_ends = EXPIRES + dt.timedelta(days=15)
    message = notice("orders.subscription.expired", expires_at=EXPIRES, grace_ends_at=grace_ends)
    assert message.subject == "Northwind CRM (Standard) expired at 2026-02-14T23:59:59Z"
    assert "still usable until 2026-03-01T23:59:59Z; renew from Renewals" in message.body


@pytest.mark.parametrize(
    ("method", "what"),
    [
        ("saas", "SaaS tenant is frozen"),
        ("image", "servers are stopped"),
        ("license", "can no longer be used"),
    ],
)
def test_frozen_says_until_when_the_data_is_kept(method, what):
    release_at = EXPIRES + dt.timedelta(days=30)
    message = notice(
        "orders.subscription.frozen",
        delivery_method=method,
        expires_at=EXPIRES,
        frozen_at=EXPIRES + dt.timedelta(days=15, seconds=1),
        release_at=release_at,
    )
    assert message.kind == "subscription_frozen"
    assert "data kept until 2026-03-16T23:59:59Z" in message.subject
    assert what in message.body
    assert "Renew from Renewals before then to unfreeze it" in message.body


@pytest.mark.parametrize(
    ("reason", "said"),
    [("expired", "retention period"), ("unsubscribed", "approved unsubscription")],
)
def test_released_says_why_and_that_it_cannot_be_renewed(reason, said):
    message = notice("orders.subscription.released", reason=reason, released_at=EXPIRES)
    assert message.kind == "subscription_released"
    assert said in message.body and "no longer be used or renewed" in message.body


def test_renewed_gives_the_new_expiry_the_amount_and_an_unfreeze():
    message = notice(
        "orders.subscription.renewed",
        renewal_order_id="ord_2",
        previous_status="frozen",
        previous_expires_at=EXPIRES,
        expires_at=dt.datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC),
        period={"unit": "month", "count": 1},
        amount={"amount": 9900, "currency": "USD"},
        automatic=True,
        renewed_at=EXPIRES + dt.timedelta(days=20),
    )
    assert message.subject == "Northwind CRM (Standard) renewed until 2026-03-14T23:59:59Z"
    assert "renewed automatically for 1 month" in message.body
    assert "99.00 USD with the order ord_2" in message.body
    assert "being unfrozen" in message.body


def test_a_failed_auto_renewal_gives_the_reason_and_the_next_attempt_or_none():
    next_attempt = dt.datetime(2026, 2, 9, 3, 0, tzinfo=UTC)
    again = notice(
        "orders.subscription.auto_renew_failed",
        renewal_order_id="ord_2",
        reason="insufficient balance and credit",
        expires_at=EXPIRES,
        next_attempt_at=next_attempt,
    )
    assert again.kind == "auto_renew_failed"
    assert "failed: insufficient balance and credit" in again.body
    assert "tried again at 2026-02-09T03:00:00Z" in again.body
    last = notice(
        "orders.subscription.auto_renew_failed",
        renewal_order_id="ord_2",
        reason="insufficient balance and credit",
        expires_at=EXPIRES,
        next_attempt_at=None,
    )
    assert "No automatic attempt is left" in last.body
    assert "expires at 2026-02-14T23:59:59Z" in last.body


def test_upgrades_tell_the_new_configuration_or_the_refund():
    upgraded = notice(
        "orders.subscription.upgraded",
        upgrade_order_id="ord_3",
        specification_id="spc_2",
        specification_name="Premium",
        quantity=3,
        previous_specification_id="spc_1",
        previous_quantity=1,
        upgraded_at=EXPIRES,
    )
    assert upgraded.subject == "Northwind CRM upgraded to Premium"
    assert "quantity 3 (it was quantity 1)" in upgraded.body
    failed = notice(
        "orders.subscription.upgrade_failed",
        upgrade_order_id="ord_3",
        reason="the seller refused",
        refund={"amount": 5000, "currency": "USD"},
    )
    assert failed.subject == "Upgrade of Northwind CRM (Standard) failed; 50.00 USD refunded"
    assert "the seller refused" in failed.body


def test_an_unsubscription_request_goes_to_the_seller_to_review():
    message = notice(
        "orders.unsubscription.requested",
        unsubscription_id="uns_1",
        refund={"amount": 10000, "currency": "USD"},
        reason="tests_completed",
        reason_detail="We are done.",
        share_contact=True,
        requested_at=EXPIRES,
    )
    assert message.account_id == "acc_seller"
    assert message.kind == "unsubscription_requested"
    assert "100.00 USD" in message.subject
    assert "Reason: service tests completed: We are done." in message.body
    assert "/v1/seller/unsubscriptions/uns_1/approval" in message.body


def test_an_approved_unsubscription_promises_the_refund_within_3_hours():
    message = notice(
        "orders.unsubscription.approved",
        unsubscription_id="uns_1",
        refund={"amount": 10000, "currency": "USD"},
        approved_at=EXPIRES,
        automatic=False,
    )
    assert message.account_id == "acc_buyer"
    assert "approved by the seller at 2026-02-14T23:59:59Z" in message.body
    assert "within 3 hours, by 2026-02-15T02:59:59Z" in message.body
    rejected = notice(
        "orders.unsubscription.rejected",
        unsubscription_id="uns_1",
        rejection_reason="The service was delivered in full.",
        rejected_at=EXPIRES,
    )
    assert rejected.kind == "unsubscription_rejected"
    assert "The service was delivered in full." in rejected.body


def test_other_events_send_nothing():
    assert notices.notice_for("orders.order.completed", {}) is None


@pytest.mark.parametrize("event_type", notices.SUBSCRIPTION_EVENTS)
def test_each_registered_example_makes_a_message(event_type):
    """The contracts' own examples, loaded as a subscriber loads them: the field names
    the messages read are the ones orders sends."""
    contract = contract_for(event_type)
    assert contract.example is not None
    data = contract.instance.load(contract.dump_data(contract.example))
    message = notices.notice_for(event_type, data)
    assert message is not None and data["product_name"] in message.subject
