"""Time for every rule that depends on it, read through a clock tests can move.

Services take the clock as a dependency (``clock = ClockProvider()``, which
``mercato.service.MercatoService`` declares for every service) and ask
``self.clock.now()``; unit tests replace it with a ``ManualClock`` and ``advance()`` it.

A running system can be given a clock an operator moves: with
``MERCATO_CLOCK=controllable`` each process reads a ``ControllableClock``, the wall
clock plus an offset kept in the service's own database (``mercato.tables.clock_offsets``),
so every replica of a service reads the same time and a restart keeps it. The gateway's
``POST /v1/admin/clock`` moves every service's offset to the same value
(docs/operations.md, "The test clock"). Production refuses it: a process configured
with it and ``MERCATO_ENVIRONMENT=production`` does not start.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from mercato import config
from mercato.tables import clock_offsets

_log = logging.getLogger(__name__)

SYSTEM = "system"
CONTROLLABLE = "controllable"
CLOCKS = (SYSTEM, CONTROLLABLE)
DEVELOPMENT = "development"
PRODUCTION = "production"

# how long a process trusts the offset it read: a move is seen by every replica within it
OFFSET_CACHE_SECONDS = 1.0
# the one row of clock_offsets
_ROW = 1
# beyond this an offset would carry datetimes past what they can hold (year 9999)
MAX_OFFSET_SECONDS = 200 * 366 * 86400


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


class ClockRefused(RuntimeError):
    """The configured clock may not run here (production, or a setting that makes no sense):
    the process does not start."""


class ControllableClock:
    """The wall clock plus an offset in whole seconds, kept in the service's database.

    ``now()`` never touches the database: it adds the offset last read, which
    ``refresh()`` reads again once it is ``cache_seconds`` old. ``ClockProvider`` calls
    ``refresh()`` as each worker starts, before the worker holds a connection (a SQLite
    service has one connection for the whole process: a read in the middle of a worker's
    transaction would wait for itself).

    The offset only grows (``move_to``); the first one, when the database holds none, is
    ``start - wall clock`` (``start`` given) or 0.
    """

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        start: dt.datetime | None = None,
        wall: Clock | None = None,
        cache_seconds: float = OFFSET_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("a controllable clock's start needs a time zone")
        self._engine = engine
        self._start = start
        self._wall = wall or SystemClock()
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._offset: int | None = None
        self._read_at = -math.inf

    def now(self) -> dt.datetime:
        return self._wall.now() + dt.timedelta(seconds=self.offset_seconds)

    @property
    def offset_seconds(self) -> int:
        """The offset in effect (read from the database if it never was)."""
        if self._offset is None:
            self.refresh()
        assert self._offset is not None
        return self._offset

    def refresh(self) -> None:
        """Read the offset again if the one known is older than the cache allows."""
        if self._monotonic() - self._read_at >= self._cache_seconds:
            self.read()

    def read(self) -> int:
        """The offset stored now (storing the first one if there is none yet)."""
        with self._engine().begin() as connection:
            offset = self._stored(connection)
        return self._remember(offset)

    def move_to(self, offset_seconds: int) -> int:
        """Set the offset to ``offset_seconds`` unless it is already there or past it (time
        never goes back; the same move again changes nothing); answers the offset now in
        effect. Concurrent moves end at the largest of them."""
        if abs(offset_seconds) > MAX_OFFSET_SECONDS:
            raise ValueError(f"an offset is at most {MAX_OFFSET_SECONDS} seconds either way")
        with self._engine().begin() as connection:
            self._stored(connection)  # the row exists before it is updated
            connection.execute(
                sa.update(clock_offsets)
                .where(
                    clock_offsets.c.id == _ROW,
                    clock_offsets.c.offset_seconds < offset_seconds,
                )
                .values(offset_seconds=offset_seconds, updated_at=SystemClock().now())
            )
            offset = self._select(connection)
        assert offset is not None
        return self._remember(offset)

    def _remember(self, offset: int) -> int:
        self._offset = offset
        self._read_at = self._monotonic()
        return offset

    @staticmethod
    def _select(connection: sa.Connection) -> int | None:
        return connection.execute(
            sa.select(clock_offsets.c.offset_seconds).where(clock_offsets.c.id == _ROW)
        ).scalar_one_or_none()

    def _stored(self, connection: sa.Connection) -> int:
        offset = self._select(connection)
        if offset is not None:
            return offset
        # the first reader stores where the clock starts; replicas starting together
        # both try, the second insert does nothing and both read the first one's
        first = (
            0 if self._start is None else round((self._start - self._wall.now()).total_seconds())
        )
        dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(
            dialect.insert(clock_offsets)
            .values(id=_ROW, offset_seconds=first, updated_at=SystemClock().now())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        offset = self._select(connection)
        assert offset is not None
        return offset


def parse_start(value: str | None) -> dt.datetime | None:
    """``MERCATO_CLOCK_START``: an RFC 3339 instant with its offset, or nothing."""
    if value is None or not str(value).strip():
        return None
    try:
        start = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ClockRefused(
            f"{config.MERCATO_CLOCK_START}={value!r} is not an RFC 3339 instant "
            "(e.g. 2025-03-25T00:00:00Z)"
        ) from None
    if start.tzinfo is None:
        raise ClockRefused(f"{config.MERCATO_CLOCK_START}={value!r} needs its offset (Z or +hh:mm)")
    return start.astimezone(dt.UTC)


def clock_from_config(settings: Mapping[str, Any], engine: Callable[[], Engine]) -> Clock:
    """The clock a process's config asks for: the system clock, or a controllable one
    on ``engine``'s database. Raises ``ClockRefused`` for a controllable clock in
    production, or for a setting it does not know."""
    mode = str(settings.get(config.MERCATO_CLOCK) or SYSTEM).strip().lower()
    environment = str(settings.get(config.MERCATO_ENVIRONMENT) or DEVELOPMENT).strip().lower()
    if mode not in CLOCKS:
        raise ClockRefused(f"{config.MERCATO_CLOCK}={mode!r}: it is one of {', '.join(CLOCKS)}")
    if mode == SYSTEM:
        return SystemClock()
    if environment == PRODUCTION:
        raise ClockRefused(
            f"{config.MERCATO_CLOCK}={CONTROLLABLE} is refused in production "
            f"({config.MERCATO_ENVIRONMENT}={PRODUCTION}): an operator could move this "
            f"service's time; unset {config.MERCATO_CLOCK} or set it to {SYSTEM}"
        )
    return ControllableClock(engine, start=parse_start(settings.get(config.MERCATO_CLOCK_START)))


class ClockProvider(DependencyProvider):
    """Injects the process's clock: ``clock`` when given (a test's), else the one the
    service's config asks for (``MERCATO_CLOCK``). A controllable clock keeps its offset
    in the service's ``Database`` and reads it again as a worker starts, at most once
    a second."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._given = clock
        self.clock: Clock = clock or SystemClock()

    def setup(self) -> None:
        if self._given is not None:
            return
        from mercato.db import Database  # mercato.db imports what imports this module

        databases = [d for d in self.container.dependencies if isinstance(d, Database)]

        def engine() -> Engine:
            assert databases[0].engine is not None, "the database is set up before any worker"
            return databases[0].engine

        try:
            self.clock = clock_from_config(self.container.config, engine)
            if isinstance(self.clock, ControllableClock) and len(databases) != 1:
                raise ClockRefused(
                    "a controllable clock keeps its offset in the service's Database"
                )
        except ClockRefused as refused:
            _log.critical("%s does not start: %s", self.container.service_name, refused)
            raise
        if isinstance(self.clock, ControllableClock):
            _log.warning(
                "%s reads the test clock (%s=%s): an operator may move its time; never in "
                "production",
                self.container.service_name,
                config.MERCATO_CLOCK,
                CONTROLLABLE,
            )

    def worker_setup(self, worker_ctx) -> None:
        if isinstance(self.clock, ControllableClock):
            try:
                self.clock.refresh()
            except sa.exc.SQLAlchemyError as exc:
                # the database away (a restart, a failover): raised here, it would kill the
                # container and the process with it; the offset known stays in effect and
                # the worker's own queries fail as they would without a test clock
                _log.warning("the test clock's offset was not read again: %s", exc)

    def get_dependency(self, worker_ctx) -> Clock:
        return self.clock


class ContainerClock:
    """The clock a container's ``ClockProvider`` injects, for the service's other
    extensions (the gateway's idempotency records and token cache). Extensions are set
    up in any order, so the provider's clock is looked up each time; the system clock
    when the container has no provider (a test replaced it)."""

    def __init__(self, container) -> None:
        self._providers = [d for d in container.dependencies if isinstance(d, ClockProvider)]

    def now(self) -> dt.datetime:
        return self._providers[0].clock.now() if self._providers else SystemClock().now()
