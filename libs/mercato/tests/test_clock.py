"""The clock every time-dependent rule reads: tests move it instead of sleeping; the test
clock an operator moves keeps its offset in the service's database."""

import datetime as dt

import pytest
import sqlalchemy as sa

from mercato.clock import (
    MAX_OFFSET_SECONDS,
    ClockProvider,
    ClockRefused,
    ControllableClock,
    ManualClock,
    SystemClock,
    clock_from_config,
    utc,
)
from mercato.db import create_engine
from mercato.tables import clock_offsets

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


# -- the controllable (test) clock ----------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves: how old the clock's cached offset is."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'clock.sqlite3'}")
    clock_offsets.create(engine)
    yield engine
    engine.dispose()


def controllable(engine, wall, ticks=None, start=None) -> ControllableClock:
    return ControllableClock(lambda: engine, wall=wall, monotonic=ticks or Ticks(), start=start)


def stored_offset(engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(clock_offsets.c.offset_seconds)).scalars())


def test_a_controllable_clock_is_the_wall_clock_until_moved_and_stores_its_first_offset(engine):
    wall = ManualClock(START)
    clock = controllable(engine, wall)

    assert clock.now() == START
    assert stored_offset(engine) == [0]
    wall.advance(seconds=30)
    assert clock.now() == START + dt.timedelta(seconds=30)


def test_a_move_adds_the_offset_for_every_reader_of_the_database(engine):
    wall = ManualClock(START)
    replica, restarted = controllable(engine, wall), controllable(engine, wall)

    assert replica.move_to(25 * 3600) == 25 * 3600
    assert replica.now() == START + dt.timedelta(hours=25)
    assert restarted.now() == START + dt.timedelta(hours=25)
    assert stored_offset(engine) == [25 * 3600]


def test_the_offset_is_read_again_once_the_cached_one_is_a_second_old(engine):
    wall, ticks = ManualClock(START), Ticks()
    reader = controllable(engine, wall, ticks)
    assert reader.now() == START
    controllable(engine, wall).move_to(3600)

    ticks.seconds = 0.9
    reader.refresh()
    assert reader.now() == START  # still the cached offset: no query on the hot path

    ticks.seconds = 1.0
    reader.refresh()
    assert reader.now() == START + dt.timedelta(hours=1)


def test_a_worker_starts_while_the_database_is_away_on_the_offset_known(engine, tmp_path):
    wall, ticks = ManualClock(START), Ticks()
    current = {"engine": engine}
    clock = ControllableClock(lambda: current["engine"], wall=wall, monotonic=ticks)
    clock.move_to(3600)
    provider = ClockProvider(clock)
    # a PostgreSQL restart, say: the offset cannot be read again
    current["engine"] = sa.create_engine(f"sqlite:///{tmp_path / 'gone' / 'clock.sqlite3'}")
    ticks.seconds = 5.0

    provider.worker_setup(None)  # a failure here would kill the service's container

    assert clock.now() == START + dt.timedelta(hours=1)


def test_time_never_goes_back_and_the_same_move_twice_changes_nothing(engine):
    clock = controllable(engine, ManualClock(START))
    clock.move_to(7200)

    assert clock.move_to(3600) == 7200
    assert clock.move_to(7200) == 7200
    assert clock.now() == START + dt.timedelta(hours=2)
    assert stored_offset(engine) == [7200]


def test_concurrent_moves_end_at_the_furthest(engine):
    wall = ManualClock(START)
    first, second = controllable(engine, wall), controllable(engine, wall)
    first.read()
    second.read()

    second.move_to(500)
    first.move_to(300)  # sent from an older reading: the clock stays at 500

    assert first.offset_seconds == second.read() == 500


def test_a_start_instant_sets_the_first_offset_only(engine):
    wall = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    before_the_rule = dt.datetime(2025, 3, 25, tzinfo=dt.UTC)
    clock = controllable(engine, wall, start=before_the_rule)

    assert clock.now() == before_the_rule
    wall.advance(hours=1)
    assert clock.now() == before_the_rule + dt.timedelta(hours=1)
    # a restart (or another replica) with another start keeps the stored offset
    later_start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert controllable(engine, wall, start=later_start).now() == clock.now()


def test_the_offset_is_bounded_so_datetimes_stay_valid(engine):
    with pytest.raises(ValueError, match="at most"):
        controllable(engine, ManualClock(START)).move_to(MAX_OFFSET_SECONDS + 1)


# -- which clock a process reads --------------------------------------------------------------


def never_connect():
    raise AssertionError("the system clock needs no database")


def test_the_system_clock_is_the_default():
    assert isinstance(clock_from_config({}, never_connect), SystemClock)
    assert isinstance(clock_from_config({"MERCATO_CLOCK": "system"}, never_connect), SystemClock)
    assert isinstance(clock_from_config({"MERCATO_CLOCK": ""}, never_connect), SystemClock)


def test_controllable_is_chosen_by_config_with_its_start(engine):
    clock = clock_from_config(
        {"MERCATO_CLOCK": "controllable", "MERCATO_CLOCK_START": "2025-03-25T08:00:00+08:00"},
        lambda: engine,
    )

    assert isinstance(clock, ControllableClock)
    # started at that instant, to the second (offsets are whole seconds)
    started = dt.datetime(2025, 3, 25, tzinfo=dt.UTC)
    assert abs(clock.now() - started) < dt.timedelta(seconds=2)


def test_production_refuses_the_controllable_clock():
    settings = {"MERCATO_CLOCK": "controllable", "MERCATO_ENVIRONMENT": "production"}

    with pytest.raises(ClockRefused, match="refused in production"):
        clock_from_config(settings, never_connect)
    # production runs the system clock as anywhere else
    production = {"MERCATO_CLOCK": "system", "MERCATO_ENVIRONMENT": "production"}
    assert isinstance(clock_from_config(production, never_connect), SystemClock)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MERCATO_CLOCK": "manual"}, "one of system, controllable"),
        ({"MERCATO_CLOCK": "controllable", "MERCATO_CLOCK_START": "yesterday"}, "RFC 3339"),
        ({"MERCATO_CLOCK": "controllable", "MERCATO_CLOCK_START": "2025-03-25T00:00"}, "offset"),
    ],
)
def test_settings_that_make_no_sense_are_refused(settings, message):
    with pytest.raises(ClockRefused, match=message):
        clock_from_config(settings, never_connect)
