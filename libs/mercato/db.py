"""SQLAlchemy 2 for nameko: one engine per container, one unit of work per worker.

A service declares its database with the repositories its use cases read and write
through, and a use case works through the unit of work it is given::

    class OrdersService(MercatoService):
        db = Database(metadata, repositories={"orders": OrderRepository})

    def cancel_order(uow, clock, *, order_id):
        order = uow.orders.lock(order_id)        # SQL lives in the repository
        order.cancel(CANCELLED_BY_BUYER, clock.now())  # the rule lives in the domain
        uow.orders.save_status(order)
        uow.emit_recorded(order)                 # its events go to the outbox ...
        uow.commit()                             # ... in the same transaction

Nothing is committed unless the use case calls ``commit()``; whatever is left open is
rolled back when the worker ends. ``Database`` also runs the outbox relay of its
service (``mercato.outbox``), woken by every commit that emitted an event.

Repositories build the statements a hot path runs once, at import, their values bound
per call (``sa.bindparam``), and write rows that are written once with ``insert_now``
(docs/performance.md says what each saves). ``insert_or_ignore`` and ``fetch_page`` are
the two statements every repository needs in the same form.

PostgreSQL runs through psycopg2 made cooperative by psycogreen; SQLite (the embedded
default) through one shared connection per process, because a SQLite writer blocking
in C would stall every green thread of the process (see ``_sqlite_engine``).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, cast

import eventlet
import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from mercato import config
from mercato.contracts import Envelope, new_envelope
from mercato.domain import RecordsEvents
from mercato.identity import (
    ACCOUNT_ID,
    CAUSATION_EVENT_ID,
    CORRELATION_ID,
    Identity,
    ensure_correlation_id,
)
from mercato.outbox import OutboxRelay
from mercato.tables import UTCDateTime as UTCDateTime  # the migrations name it here

_log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 3.0


def insert_now(session: Session, *rows: Any) -> None:
    """Write ``rows`` (new ORM instances, not added to the session) at once, one cached
    Core INSERT each, for rows written once and not changed in the same transaction:
    the unit of work's flush costs several times the statement it runs
    (docs/performance.md). Only the attributes that were set are written, so column
    defaults apply to the rest; an autoincremented key is set on the instance from the
    insert. Objects the session holds pending are flushed first, so that a row may
    refer to them.
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


def insert_or_ignore(
    session: Session, table: Any, values: Mapping[str, Any], *, unique: Sequence[str] | None = None
) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite both have it): two
    workers may insert the same row at once, the second waits for the first and then
    does nothing. ``table`` is a Table or a mapped class; ``unique`` names the columns
    of the constraint that may conflict (any, when omitted). True when a row was
    written. The statement differs per dialect and per set of values, so SQLAlchemy
    cannot cache it: a repository reads first and inserts only what is missing."""
    target = getattr(table, "__table__", table)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(target).values(**values).on_conflict_do_nothing(index_elements=unique)
    )
    return cast(sa.CursorResult, session.execute(statement)).rowcount == 1


class Page(NamedTuple):
    """One page of a list (the API's ``{items, total, page, page_size}``)."""

    items: list[Any]
    total: int
    page: int
    page_size: int

    def view(self, item_view: Callable[[Any], Any]) -> dict[str, Any]:
        """The page as the API shows it, each item through ``item_view``."""
        return {
            "items": [item_view(item) for item in self.items],
            "total": self.total,
            "page": self.page,
            "page_size": self.page_size,
        }


def fetch_page(
    session: Session, query: sa.Select, page: int, page_size: int, *, scalars: bool = True
) -> Page:
    """Page ``page`` (from 1) of ``query``'s rows, in its order, and how many rows it
    has in all. ``scalars``: the rows' first column (mapped objects), else whole rows."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    bounded = query.limit(page_size).offset((page - 1) * page_size)
    result = session.execute(bounded)
    rows = list(result.scalars() if scalars else result)
    return Page(rows, int(total or 0), page, page_size)


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
        # straight to the driver: SQLAlchemy's statement execution costs more than this
        # one word is worth (docs/performance.md, "SQLite: BEGIN straight to the driver")
        connection.connection.dbapi_connection.execute("BEGIN")

    return engine


class UnitOfWork:
    """One worker's session, its repositories, its pending events and its commit.

    ``uow.<name>`` is the repository the service declared under ``name``, made on first
    use around this unit of work's session.
    """

    def __init__(self, database: Database, worker_ctx) -> None:
        self._database = database
        self._worker_ctx = worker_ctx
        self._session: Session | None = None
        self._emitted = False
        self._repositories: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        factory = None if name.startswith("_") else self._database.repositories.get(name)
        if factory is None:
            raise AttributeError(f"{type(self).__name__} has no repository {name!r}")
        repository = self._repositories.get(name)
        if repository is None:
            repository = self._repositories[name] = factory(self.session)
        return repository

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
        envelope, headers = self._envelope(
            event_type, subject=subject, data=data, account_id=account_id, version=version
        )
        self._database.outbox.add(self.session, envelope, headers)
        self._emitted = True
        return envelope

    def _envelope(
        self,
        event_type: str,
        *,
        subject: str,
        data: dict[str, Any],
        account_id: str | None = None,
        version: int | None = None,
    ) -> tuple[Envelope, dict[str, Any]]:
        context = self._worker_ctx.data
        if account_id is None:
            caller = Identity.from_context(context)
            # the account asking, not a service working on its own (a timer, a handler)
            account_id = None if caller is None or caller.is_service else context[ACCOUNT_ID]
        envelope = new_envelope(
            event_type,
            version=version,
            subject=subject,
            data=data,
            account_id=account_id,
            correlation_id=ensure_correlation_id(self._worker_ctx),
            causation_id=context.get(CAUSATION_EVENT_ID) or self._worker_ctx.call_id,
        )
        # what the consumer's worker inherits: the correlation and the cause, never the
        # caller (its roles, its signature): subscribers read these headers, and an
        # event is a fact to act on, not a request made by someone (mercato.identity)
        headers = {
            CORRELATION_ID: envelope.correlation_id,
            CAUSATION_EVENT_ID: envelope.id,
        }
        return envelope, headers

    def emit_recorded(self, entity: RecordsEvents) -> None:
        """Emit, in this transaction, every event ``entity`` recorded since last asked."""
        for recorded in entity.take_events():
            self.emit(
                recorded.type,
                subject=recorded.subject,
                data=recorded.data,
                account_id=recorded.account_id,
            )

    def emit_recorded_all(self, entities: Iterable[RecordsEvents]) -> None:
        """``emit_recorded`` for many entities (a sweep's batch), their events written
        to the outbox with one statement instead of one each."""
        pending = [
            self._envelope(
                recorded.type,
                subject=recorded.subject,
                data=recorded.data,
                account_id=recorded.account_id,
            )
            for entity in entities
            for recorded in entity.take_events()
        ]
        if pending:
            self._database.outbox.add_many(self.session, pending)
            self._emitted = True

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

    def __init__(
        self,
        metadata: sa.MetaData,
        *,
        repositories: Mapping[str, Callable[[Session], Any]] | None = None,
    ) -> None:
        self.metadata = metadata
        self.repositories = dict(repositories or {})
        self.engine: Engine | None = None

    def setup(self):
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
