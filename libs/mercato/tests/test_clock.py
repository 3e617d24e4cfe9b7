"""The clock every time-dependent rule reads: tests move it instead of sleeping."""

import datetime as dt

import pytest

from mercato.clock import ManualClock, SystemClock, utc

START = dt.datetime(2025, 3, 25, 23, 59, tzinfo=dt.UTC)


def test_manual_clock_stands_still_until_moved():
    clock = ManualClock(START)

    assert clock.now() == START
    assert clock.now() == START


def test_manual_clock_advances_by_a_delta_or_by_keywords():
    clock = ManualClock(START)

    assert clock.advance(dt.timedelta(minutes=1)) == dt.datetime(2025, 3, 26, tzinfo=dt.UTC)
    assert clock.advance(days=30, hours=1) == dt.datetime(2025, 4, 25, 1, tzinfo=dt.UTC)
    assert clock.now() == dt.datetime(2025, 4, 25, 1, tzinfo=dt.UTC)


def test_manual_clock_reports_utc_whatever_zone_it_is_set_in():
    beijing = dt.timezone(dt.timedelta(hours=8))
    clock = ManualClock(dt.datetime(2026, 1, 1, 8, tzinfo=beijing))

    assert clock.now() == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert clock.now().utcoffset() == dt.timedelta(0)
    clock.set(dt.datetime(2026, 2, 1, 8, tzinfo=beijing))
    assert clock.now().tzinfo == dt.UTC
    assert clock.now().hour == 0


def test_manual_clock_refuses_a_naive_start():
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(dt.datetime(2026, 1, 1))


def test_system_clock_is_timezone_aware_utc():
    assert SystemClock().now().utcoffset() == dt.timedelta(0)


def test_utc_reads_a_zoneless_database_value_as_utc():
    assert utc(dt.datetime(2026, 1, 1, 12)) == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert utc(dt.datetime(2026, 1, 1, 14, tzinfo=plus_two)) == dt.datetime(
        2026, 1, 1, 12, tzinfo=dt.UTC
    )
