"""When a subscription bought for a period ends. Shared by orders (the subscription) and
provisioning (the expiry it tells the seller and signs into a license key), so both
always agree."""

from __future__ import annotations

import calendar
import datetime as dt

YEARLY_MONTHLY = "yearly_monthly"


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Calendar months later, clamped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def subscription_expiry(
    starts_at: dt.datetime, billing_mode: str, period_unit: str | None, period_count: int | None
) -> dt.datetime | None:
    """When a yearly/monthly subscription ends: the period bought, from its start.
    Pay-per-use and one-time purchases do not expire by time."""
    if billing_mode != YEARLY_MONTHLY or not period_unit or not period_count:
        return None
    months = period_count * (12 if period_unit == "year" else 1)
    return add_months(starts_at, months)
