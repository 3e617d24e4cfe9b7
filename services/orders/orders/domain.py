"""Rules of orders and subscriptions. No nameko, no SQL."""

from __future__ import annotations

import datetime as dt

# when a subscription ends: shared with provisioning, so both always agree
from mercato.periods import add_months, subscription_expiry  # noqa: F401

# order statuses (API.md)
UNPAID, PAID, DELIVERING, AWAITING_ACCEPTANCE, COMPLETED, CANCELLED, FAILED = (
    "unpaid",
    "paid",
    "delivering",
    "awaiting_acceptance",
    "completed",
    "cancelled",
    "failed",
)
ORDER_STATUSES = (UNPAID, PAID, DELIVERING, AWAITING_ACCEPTANCE, COMPLETED, CANCELLED, FAILED)

# subscription statuses (API.md)
ENABLING, ENABLED, FROZEN, EXPIRED, RELEASED = (
    "enabling",
    "enabled",
    "frozen",
    "expired",
    "released",
)

YEARLY_MONTHLY, PAY_PER_USE, ONE_TIME = "yearly_monthly", "pay_per_use", "one_time"
PAYMENT_METHODS = ("balance", "credit_card", "credit")
RESELLER_PAYMENT = "reseller"

CANCELLED_BY_BUYER = "cancelled by the buyer"
PAYMENT_WINDOW_PASSED = "the payment window passed before the order was paid"

# how long an attempted payment keeps the expiry sweep away from its order
PAYMENT_ATTEMPT_GRACE = dt.timedelta(minutes=10)


def payment_deadline(created_at: dt.datetime, window: dt.timedelta) -> dt.datetime:
    return created_at + window


def is_expired(status: str, deadline: dt.datetime, now: dt.datetime) -> bool:
    return status == UNPAID and now >= deadline


def payment_attempt_in_progress(started_at: dt.datetime | None, now: dt.datetime) -> bool:
    return started_at is not None and now - started_at < PAYMENT_ATTEMPT_GRACE
