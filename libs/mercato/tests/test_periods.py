"""The end of a yearly/monthly period (``mercato.periods``): month ends do not drift, and
N months bought at once end where N renewals of one month end."""

import datetime as dt

import pytest

from mercato.periods import renewed_expiry, subscription_expiry


def _chain(start: dt.datetime, months: int, time_zone: str = "UTC") -> list[str]:
    expiry = subscription_expiry(start, "yearly_monthly", "month", 1, time_zone)
    days = [expiry]
    for _ in range(months - 1):
        expiry = renewed_expiry(expiry, "month", 1, time_zone)
        days.append(expiry)
    return days


def test_a_period_ending_on_a_months_last_day_renews_to_the_last_day():
    expiry = subscription_expiry(
        dt.datetime(2026, 1, 31, 9, 30, tzinfo=dt.UTC), "yearly_monthly", "month", 1
    )
    assert expiry == dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=dt.UTC)
    days = []
    for _ in range(4):
        expiry = renewed_expiry(expiry, "month", 1, "UTC")
        days.append(expiry.date().isoformat())
    assert days == ["2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30"]


def test_bought_on_the_first_each_period_ends_on_the_months_last_day():
    start = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert [e.date().isoformat() for e in _chain(start, 4)] == [
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
    ]


def test_an_ordinary_day_keeps_its_day_of_the_month():
    start = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
    assert [e.date().isoformat() for e in _chain(start, 3)] == [
        "2026-02-14",
        "2026-03-14",
        "2026-04-14",
    ]
    # the spec's example: Apr 22 23:59:59 + 1 month -> May 22 23:59:59
    april = dt.datetime(2026, 4, 22, 23, 59, 59, tzinfo=dt.UTC)
    assert renewed_expiry(april, "month", 1, "UTC") == dt.datetime(
        2026, 5, 22, 23, 59, 59, tzinfo=dt.UTC
    )


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize(
    "start",
    [dt.datetime(2025, 12, day, 9, 30, tzinfo=dt.UTC) for day in (1, 15, 27, 28, 29, 30, 31)]
    + [dt.datetime(2027, 12, day, 20, 0, tzinfo=dt.UTC) for day in (28, 29, 30, 31)],
)
def test_n_months_at_once_end_where_n_renewals_of_a_month_end(start, time_zone):
    for months in range(1, 27):
        at_once = subscription_expiry(start, "yearly_monthly", "month", months, time_zone)
        chained = _chain(start, months, time_zone)[-1]
        assert at_once == chained, (start, months)
    first = subscription_expiry(start, "yearly_monthly", "month", 1, time_zone)
    for months in range(1, 27):
        one_renewal = renewed_expiry(first, "month", months, time_zone)
        assert one_renewal == _chain(start, months + 1, time_zone)[-1], (start, months)
    assert subscription_expiry(start, "yearly_monthly", "year", 2, time_zone) == (
        subscription_expiry(start, "yearly_monthly", "month", 24, time_zone)
    )


def test_the_month_end_counts_from_the_28th_in_the_accounts_time_zone():
    # bought Mar 29 (Shanghai): the period would end Apr 28, the month's end: Apr 30
    start = dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
    expiry = subscription_expiry(start, "yearly_monthly", "month", 1, "Asia/Shanghai")
    assert expiry == dt.datetime(2026, 4, 30, 15, 59, 59, tzinfo=dt.UTC)
    # bought Mar 28: ends Apr 27, kept
    start = dt.datetime(2026, 3, 28, 1, 0, tzinfo=dt.UTC)
    expiry = subscription_expiry(start, "yearly_monthly", "month", 1, "Asia/Shanghai")
    assert expiry == dt.datetime(2026, 4, 27, 15, 59, 59, tzinfo=dt.UTC)
