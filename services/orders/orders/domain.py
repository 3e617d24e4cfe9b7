"""Rules of orders and subscriptions. No nameko, no SQL."""

from __future__ import annotations

import calendar
import datetime as dt

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


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Calendar months later, clamped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def subscription_expiry(
    activated_at: dt.datetime, billing_mode: str, period_unit: str | None, period_count: int | None
) -> dt.datetime | None:
    """When a yearly/monthly subscription ends: the period bought, from activation.
    Pay-per-use and one-time purchases do not expire by time."""
    if billing_mode != YEARLY_MONTHLY or not period_unit or not period_count:
        return None
    months = period_count * (12 if period_unit == "year" else 1)
    return add_months(activated_at, months)


def payment_deadline(created_at: dt.datetime, window: dt.timedelta) -> dt.datetime:
    return created_at + window


def is_expired(status: str, deadline: dt.datetime, now: dt.datetime) -> bool:
    return status == UNPAID and now >= deadline


def payment_attempt_in_progress(started_at: dt.datetime | None, now: dt.datetime) -> bool:
    return started_at is not None and now - started_at < PAYMENT_ATTEMPT_GRACE
