"""When a subscription bought for a period ends. Shared by orders (the subscription) and
provisioning (the expiry it tells the seller and signs into a license key), so both
always agree.

A yearly/monthly period ends at 23:59:59 local time, in the account's time zone, of the
day before the same calendar day N months later: bought 2026-01-15T09:30Z for one month
in UTC, it expires 2026-02-14T23:59:59Z; in Asia/Shanghai, 2026-02-14T23:59:59+08:00
(15:59:59Z). A renewal for N months from an expiry E runs to 23:59:59 local of the day
N months after E's local date (Apr 22 23:59:59 -> May 22 23:59:59).

The month's end: a period whose last day would be the 28th or later of its month (or
that month has no such day) ends on that month's last day, and a period that ended on a
month's last day renews to the target month's last day. So month ends never drift (bought
Jan 31: Feb 28, then Mar 31, Apr 30, ...; bought on the 1st: each month's last day), the
buyer never loses a day (at most gains up to three, bought on the 29th to the 31st), and
N months bought or renewed at once end exactly where N renewals of one month end: an
expiry on the 1st to the 27th keeps its day in every month, one on the 28th or later is
always the month's last day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

YEARLY_MONTHLY = "yearly_monthly"
UTC = "UTC"
_LAST_SECOND = dt.time(23, 59, 59)
# a period that would end on this day of its month or later ends on the month's last day
MONTH_END_FROM_DAY = 28


def add_months(moment, months: int):
    """Calendar months later, clamped to the month's last day (Jan 31 + 1 month = Feb 28).
    Works on a datetime or a date."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@lru_cache(maxsize=256)
def zone(time_zone: str | None) -> ZoneInfo:
    """The IANA zone ``time_zone`` (None or an unknown name: UTC, so an expiry is always
    computable; iam-agency refuses unknown names when they are set)."""
    try:
        return ZoneInfo(time_zone or UTC)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(UTC)


def is_time_zone(time_zone: str) -> bool:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def end_of_day(day: dt.date, time_zone: str | None = UTC) -> dt.datetime:
    """23:59:59 of ``day`` in ``time_zone``, as a UTC datetime."""
    return dt.datetime.combine(day, _LAST_SECOND, tzinfo=zone(time_zone)).astimezone(dt.UTC)


def months_of(period_unit: str, period_count: int) -> int:
    return period_count * (12 if period_unit == "year" else 1)


def period_end_day(day: dt.date) -> dt.date:
    """The day a period whose last day would be ``day`` ends on: ``day``, or its month's
    last day when ``day`` is the 28th or later (the month's end, see above)."""
    if day.day < MONTH_END_FROM_DAY:
        return day
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def subscription_expiry(
    starts_at: dt.datetime,
    billing_mode: str,
    period_unit: str | None,
    period_count: int | None,
    time_zone: str | None = UTC,
) -> dt.datetime | None:
    """When a yearly/monthly subscription bought at ``starts_at`` ends: 23:59:59 local
    (``time_zone``) of the day before the same calendar day N months later, or of that
    month's last day when that day is the 28th or later or the month has no such day
    (Jan 31 + 1 month ends Feb 28, + 2 months Mar 31). Pay-per-use and one-time
    purchases do not expire by time (None)."""
    if billing_mode != YEARLY_MONTHLY or not period_unit or not period_count:
        return None
    start = starts_at.astimezone(zone(time_zone)).date()
    months = months_of(period_unit, period_count)
    same_day = add_months(start, months)
    if same_day.day != start.day:  # clamped: the month is shorter, its last day is the last
        last = same_day
    else:
        last = same_day - dt.timedelta(days=1)
    return end_of_day(period_end_day(last), time_zone)


def renewed_expiry(
    expires_at: dt.datetime, period_unit: str, period_count: int, time_zone: str | None = UTC
) -> dt.datetime:
    """The expiry after renewing for ``period_count`` ``period_unit`` from ``expires_at``:
    23:59:59 local of the day N months after the expiry's local date, or of the target
    month's last day when the expiry was on the 28th or later (a month's end stays one)."""
    day = expires_at.astimezone(zone(time_zone)).date()
    return end_of_day(
        period_end_day(add_months(day, months_of(period_unit, period_count))), time_zone
    )
