"""In-memory stand-ins for a service's database, for use-case tests that run in
milliseconds (the interface tests run the same use cases on PostgreSQL).

A use case takes a unit of work and reaches its data only through the unit of work's
repositories (``uow.orders``), its events through ``emit`` and ``emit_recorded``, and
ends with ``commit``. ``FakeUnitOfWork`` offers the same, around repositories a
service's tests write on ``InMemoryRepository``::

    uow = FakeUnitOfWork(orders=FakeOrderRepository())
    usecases.cancel_order(uow, clock, buyer=BUYER, order_id="ord_1")
    assert uow.committed_event_types() == ["orders.order.cancelled"]

Commit and rollback behave as a transaction does: what a repository holds is copied at
each commit, and a rollback (or a unit of work closed without commit) goes back to the
copy, so a test can check that a refused request changed nothing. Emitted events are
checked against their contracts, as ``mercato.db.UnitOfWork.emit`` checks them, and are
kept only once committed.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from mercato.contracts import Envelope, new_envelope
from mercato.db import UnitOfWork
from mercato.errors import BusinessRuleViolation, Conflict
from mercato.request_keys import RequestKey


class InMemoryRepository:
    """Rows by table name, then by key; ``commit`` and ``rollback`` snapshot them."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {}
        self._committed: dict[str, dict[Any, Any]] = {}

    def table(self, name: str) -> dict[Any, Any]:
        return self.tables.setdefault(name, {})

    def commit(self) -> None:
        self._committed = copy.deepcopy(self.tables)

    def rollback(self) -> None:
        self.tables = copy.deepcopy(self._committed)


class FakeUnitOfWork:
    """``mercato.db.UnitOfWork``'s interface, with in-memory repositories."""

    def __init__(self, **repositories: Any) -> None:
        # every service's unit of work has its request keys (``mercato.request_keys``)
        repositories.setdefault("request_keys", InMemoryRequestKeys())
        self.repositories = repositories
        self.pending: list[Envelope] = []
        self.committed: list[Envelope] = []
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        repositories = self.__dict__.get("repositories", {})
        if name in repositories:
            return repositories[name]
        raise AttributeError(f"{type(self).__name__} has no repository {name!r}")

    @property
    def session(self):
        raise AssertionError("a use case reaches its data only through its repositories")

    def emit(
        self,
        event_type: str,
        *,
        subject: str,
        data: dict[str, Any],
        account_id: str | None = None,
        version: int | None = None,
    ) -> Envelope:
        envelope = new_envelope(
            event_type,
            version=version,
            subject=subject,
            data=data,
            account_id=account_id,
            correlation_id="test",
            causation_id=None,
        )
        self.pending.append(envelope)
        return envelope

    emit_recorded = UnitOfWork.emit_recorded  # it asks only ``self.emit``

    def commit(self) -> None:
        for repository in self.repositories.values():
            repository.commit()
        self.committed.extend(self.pending)
        self.pending.clear()
        self.commits += 1

    def rollback(self) -> None:
        for repository in self.repositories.values():
            repository.rollback()
        self.pending.clear()

    def close(self) -> None:
        self.rollback()

    def committed_event_types(self) -> list[str]:
        return [envelope.type for envelope in self.committed]

    def committed_events(self, event_type: str) -> list[Envelope]:
        return [envelope for envelope in self.committed if envelope.type == event_type]


class InMemoryRequestKeys(InMemoryRepository):
    """``mercato.request_keys.RequestKeys`` in memory (every fake unit of work has one)."""

    def first_result(self, kept: RequestKey | None) -> str | None:
        if kept is None:
            return None
        row = self.table("request_keys").get((kept.account_id, kept.key, kept.operation))
        if row is None:
            return None
        if row[0] != kept.fingerprint:
            raise BusinessRuleViolation(
                "this Idempotency-Key was used with another request; use a new key",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        return row[1]

    def keep(self, kept: RequestKey | None, result_id: str, now: dt.datetime) -> None:
        if kept is None:
            return
        rows = self.table("request_keys")
        where = (kept.account_id, kept.key, kept.operation)
        if where in rows:
            raise Conflict("another request with this Idempotency-Key is being handled")
        rows[where] = (kept.fingerprint, result_id)
