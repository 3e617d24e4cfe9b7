"""SQLAlchemy 2 for nameko: one engine per container, one unit of work per worker.

A service declares ``db = Database(Base.metadata)`` and in an entrypoint::

    account = Account(...)
    self.db.session.add(account)
    self.db.emit("iam_agency.account.created", subject=account.id, data={...})
    self.db.commit()          # the row and its event commit together (outbox)

Nothing is committed unless the worker calls ``commit()``; whatever is left open is
rolled back when the worker ends. ``Database`` also runs the outbox relay of its
service (``mercato.outbox``), woken by every commit that emitted an event.

The statements a hot path runs are built once, at import, their values bound per call
(``sa.bindparam``): building a statement anew costs more than running it, because
SQLAlchemy derives a cache key from every new statement object and then fits the
cached compiled form to it. There, too, rows are written and changed with Core
statements on the table (``insert_now``; prebuilt UPDATEs, the loaded object kept in
step with ``set_committed_value``), and a single value is read from the table's
column rather than the mapped class's: through the unit of work, a flushed change
cost about three times its statement, and an ORM read of one column ran the ORM's
compile and result stages for nothing.

PostgreSQL runs through psycopg2 made cooperative by psycogreen; SQLite (the embedded
default) through one shared connection per process, because a SQLite writer blocking
in C would stall every green thread of the process (see ``_sqlite_engine``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from pathlib import Path
from typing import Any, cast

import eventlet
import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from mercato import config
from mercato.contracts import Envelope, new_envelope
from mercato.identity import (
    CAUSATION_EVENT_ID,
    CORRELATION_ID,
    IDENTITY_KEYS,
    ensure_correlation_id,
)

_log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 3.0


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Mercato stores UTC-aware times only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def insert_now(session: Session, *rows: Any) -> None:
    """Write ``rows`` (new ORM instances, not added to the session) at once, one cached
    Core INSERT each: for a row written once and not changed in the same transaction,
    the unit of work's flush cost about three times the statement it ran. Only the
    attributes that were set are written, so column defaults apply to the rest; an
    autoincremented key is set on the instance from the insert. Objects the session
    holds pending are flushed first, so that a row may refer to them.
    """
    if session.new:
        session.flush()
    for row in rows:
        mapper = sa.inspect(type(row))
        state = sa.inspect(row)
        values = {
            column.key: state.dict[attribute]
            for attribute, column in _column_attributes(mapper)
            if attribute in state.dict
        }
        result = session.execute(cached_insert(mapper.local_table), values)
        keys = _primary_key_attributes(mapper)
        if any(attribute not in state.dict for attribute in keys):  # autoincremented
            inserted = cast(sa.CursorResult, result).inserted_primary_key
            assert inserted is not None
            for attribute, value in zip(keys, inserted, strict=True):
                setattr(row, attribute, value)


@functools.cache
def _column_attributes(mapper) -> tuple[tuple[str, sa.Column], ...]:
    return tuple((prop.key, prop.columns[0]) for prop in mapper.column_attrs)


@functools.cache
def _primary_key_attributes(mapper) -> tuple[str, ...]:
    return tuple(
        mapper.get_property_by_column(column).key for column in mapper.local_table.primary_key
    )


@functools.lru_cache(maxsize=256)
def cached_insert(table: sa.Table) -> sa.Insert:
    """One INSERT statement per table, built once, its values passed per call."""
    return table.insert()


def new_id(prefix: str) -> str:
    """An opaque id, e.g. ``acc_3f0c…``: the prefix tells a reader what it names."""
    return f"{prefix}_{uuid.uuid4().hex}"


def _is_green() -> bool:
    return bool(eventlet.patcher.is_monkey_patched("socket"))


def create_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql") and _is_green():
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_engine(url: str) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One connection, handed from green thread to green thread through a green lock:
    # two connections would mean a writer waiting in SQLite's C busy-loop while the
    # green thread holding the lock can never run to release it.
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=30,
        # SQLAlchemy's recipe: let SQLAlchemy, not pysqlite, say BEGIN, so reads run
        # inside the transaction and SAVEPOINT works.
        connect_args={"check_same_thread": False, "timeout": 15, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        # WAL with NORMAL sync: a crashed process loses nothing committed; only a power
        # cut may lose the last commits. The embedded default is for laptops;
        # production runs PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # straight to the driver: through SQLAlchemy's statement execution, this one
        # word cost more than many of the statements it opens
        connection.connection.dbapi_connection.execute("BEGIN")

    return engine


class UnitOfWork:
    """One worker's session, its pending events and its commit."""

    def __init__(self, database: Database, worker_ctx) -> None:
        self._database = database
        self._worker_ctx = worker_ctx
        self._session: Session | None = None
        self._emitted = False

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._database.sessionmaker()
        return self._session

    def emit(
        self,
        event_type: str,
        *,
        subject: str,
        data: dict[str, Any],
        account_id: str | None = None,
        version: int | None = None,
    ) -> Envelope:
        """Add an event to the outbox, in this unit of work's transaction.

        ``data`` is checked against the event's contract here (``ContractViolation``,
        a ``ValueError``), so an event that would break subscribers fails the
        producer's request instead.
        """
        context = self._worker_ctx.data
        envelope = new_envelope(
            event_type,
            version=version,
            subject=subject,
            data=data,
            account_id=account_id if account_id is not None else context.get("account_id"),
            correlation_id=ensure_correlation_id(self._worker_ctx),
            causation_id=context.get(CAUSATION_EVENT_ID) or self._worker_ctx.call_id,
        )
        # the context the consumer's worker will inherit: caller, correlation, cause
        headers = {key: context[key] for key in IDENTITY_KEYS if context.get(key)}
        headers[CORRELATION_ID] = envelope.correlation_id
        headers[CAUSATION_EVENT_ID] = envelope.id
        self._database.outbox.add(self.session, envelope, headers)
        self._emitted = True
        return envelope

    def table(self, name: str) -> sa.Table:
        return self._database.metadata.tables[name]

    def commit(self) -> None:
        if self._session is None:
            return
        self._session.commit()
        if self._emitted:
            self._emitted = False
            self._database.outbox.wake()

    def rollback(self) -> None:
        self._emitted = False
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()  # rolls back whatever was not committed
            self._session = None


class Database(DependencyProvider):
    """SQLAlchemy engine of one service, its units of work and its outbox relay."""

    def __init__(self, metadata: sa.MetaData) -> None:
        self.metadata = metadata
        self.engine: Engine | None = None

    def setup(self):
        from mercato.outbox import OutboxRelay

        url = self.container.config[config.DATABASE_URL]
        self.engine = create_engine(url)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.outbox = OutboxRelay(
            engine=self.engine,
            metadata=self.metadata,
            service_name=self.container.service_name,
            amqp_uri=self.container.config[config.AMQP_URI],
            container_config=self.container.config,
            sweep_seconds=float(self.container.config.get(config.OUTBOX_SWEEP_SECONDS, 2.0)),
        )
        self._units: dict[int, UnitOfWork] = {}

    def start(self):
        self.outbox.start()

    def stop(self):
        self.outbox.stop()
        if self.engine is not None:
            self.engine.dispose()

    def kill(self):
        self.outbox.kill()
        if self.engine is not None:
            self.engine.dispose()

    def get_dependency(self, worker_ctx):
        unit = UnitOfWork(self, worker_ctx)
        self._units[id(worker_ctx)] = unit
        return unit

    def worker_teardown(self, worker_ctx):
        unit = self._units.pop(id(worker_ctx), None)
        if unit is not None:
            unit.close()

    def readiness(self) -> str | None:
        """None when the database answers a trivial query in time."""
        assert self.engine is not None
        try:
            with eventlet.Timeout(READINESS_TIMEOUT_SECONDS):
                with self.engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
        except (Exception, eventlet.Timeout) as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None
