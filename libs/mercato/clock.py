"""Time for every rule that depends on it, read through a clock tests can move.

Services take the clock as a dependency (``clock = ClockProvider()``) and ask
``self.clock.now()``; tests replace it with a ``ManualClock`` and ``advance()`` it.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from nameko.extensions import DependencyProvider


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock, always UTC and timezone-aware."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        self._now += delta if delta is not None else dt.timedelta(**kwargs)
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when.astimezone(dt.UTC)


def utc(value: dt.datetime) -> dt.datetime:
    """Read a datetime back from a database that may drop the zone (SQLite) as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ClockProvider(DependencyProvider):
    """Injects the process's clock (the system clock unless a test replaced it)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()

    def get_dependency(self, worker_ctx):
        return self.clock
