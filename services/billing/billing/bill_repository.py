"""Bills and cost analysis: their reads and the writes that feed them.

``BillRepository`` is ``uow.bills`` (``service.py`` declares it). A bill's lines are the
journal entries of an account's payments and refunds (what the ledger moved, never
``billed_orders``' figures); ``billed_orders`` only names the product of a line, and
``enterprise_projects`` (billing's copy of iam-agency's) the project. Every sum is a
``GROUP BY`` in the database, over the entries of the period.

Periods are half-open UTC ranges ``[start, end)`` of ``journal_entries.created_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing import domain
from billing.models import BilledOrder, EnterpriseProject, JournalEntry
from mercato.db import Page, fetch_page, insert_or_ignore

# the journal entries that are bill lines: a top-up moves money but buys nothing
BILL_KINDS = (domain.PAYMENT_ENTRY, domain.REFUND_ENTRY)
DEFAULT_PROJECT_ID = "default"
# a line's bill amount: a charge positive, a refund negative (the statement's
# ``amount`` is signed from the account's side: a payment takes money, a refund gives)
_BILL_AMOUNT = -JournalEntry.amount
_PROJECT_ID = sa.func.coalesce(JournalEntry.enterprise_project_id, DEFAULT_PROJECT_ID)


class BillLine(NamedTuple):
    txn_id: str
    kind: str
    order_id: str | None
    buyer_account_id: str | None
    order_type: str | None
    product_id: str | None
    product_name: str | None
    enterprise_project_id: str
    enterprise_project_name: str | None  # None: no copy of the project yet
    amount: int  # charge positive, refund negative
    currency: str
    payment_method: str | None
    occurred_at: dt.datetime


class ProjectTotal(NamedTuple):
    buyer_account_id: str | None  # None: the account's own project; else its customer's
    enterprise_project_id: str
    enterprise_project_name: str | None
    charges: int  # positive
    refunds: int  # negative (or 0)
    currency: str


class SeriesPoint(NamedTuple):
    key: str | None
    name: str | None
    amount: int  # net of refunds
    currency: str


def _project_join() -> Any:
    """The copy of the project a line is booked to: the buyer's (a reseller pays its
    customers' orders, booked to the customers' projects)."""
    return sa.and_(
        EnterpriseProject.account_id == JournalEntry.buyer_account_id,
        EnterpriseProject.project_id == _PROJECT_ID,
    )


class BillRepository:
    """billed_orders, the copy of the enterprise projects, and the bills' reads."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- what feeds the bills -----------------------------------------------------------

    def add_billed_order(self, values: dict[str, Any]) -> bool:
        """Record what an order was for, once: a repeat (or a second delivery racing the
        first) changes nothing. True when the row was written."""
        if self.session.get(BilledOrder, values["order_id"]) is not None:
            return False
        return insert_or_ignore(self.session, BilledOrder, values, unique=["order_id"])

    def billed_order(self, order_id: str) -> BilledOrder | None:
        return self.session.get(BilledOrder, order_id)

    def unknown_orders(
        self, account_id: str, start: dt.datetime, end: dt.datetime, limit: int
    ) -> list[str]:
        """The orders of the account's bill lines of ``[start, end)`` that have no
        ``billed_orders`` row (at most ``limit``)."""
        return list(
            self.session.scalars(
                sa.select(JournalEntry.order_id)
                .outerjoin(BilledOrder, BilledOrder.order_id == JournalEntry.order_id)
                .where(
                    *self._lines_of(account_id, start, end, None),
                    JournalEntry.order_id.is_not(None),
                    BilledOrder.order_id.is_(None),
                )
                .group_by(JournalEntry.order_id)
                .order_by(JournalEntry.order_id)
                .limit(limit)
            )
        )

    def read_one_snapshot(self) -> None:
        """On PostgreSQL, the statements from here to the end of the transaction read
        one snapshot (``REPEATABLE READ``, read only): a bill page's lines and totals
        agree with each other. Called first in a transaction (the caller rolls back
        before); SQLite's one writer needs nothing."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        self.session.execute(sa.text("SET TRANSACTION READ ONLY"))

    def keep_project(self, values: dict[str, Any]) -> bool:
        """Write the copy of a project when ``values["revision"]`` is newer than the one
        kept (or none is kept): one upsert, so two deliveries out of order leave the
        newest. True when the copy changed."""
        table = EnterpriseProject.__table__
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(table).values(**values)
        changes = {name: insert.excluded[name] for name in values if name not in _PROJECT_KEY}
        statement = insert.on_conflict_do_update(
            index_elements=list(_PROJECT_KEY),
            set_=changes,
            where=table.c.revision < insert.excluded.revision,
        )
        return bool(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def project(self, account_id: str, project_id: str) -> EnterpriseProject | None:
        return self.session.get(EnterpriseProject, (account_id, project_id))

    # -- bills --------------------------------------------------------------------------

    def _lines_of(
        self, account_id: str, start: dt.datetime, end: dt.datetime, project_id: str | None
    ) -> list[Any]:
        conditions = [
            JournalEntry.account_id == account_id,
            JournalEntry.kind.in_(BILL_KINDS),
            JournalEntry.created_at >= start,
            JournalEntry.created_at < end,
        ]
        if project_id is not None:
            conditions.append(_PROJECT_ID == project_id)
        return conditions

    def bill_lines(
        self,
        account_id: str,
        start: dt.datetime,
        end: dt.datetime,
        project_id: str | None,
        page: int,
        page_size: int,
    ) -> Page:
        """The account's charges and refunds of ``[start, end)``, oldest first."""
        query = (
            sa.select(
                JournalEntry.txn_id,
                JournalEntry.kind,
                JournalEntry.order_id,
                JournalEntry.buyer_account_id,
                BilledOrder.type,
                BilledOrder.product_id,
                BilledOrder.product_name,
                _PROJECT_ID,
                EnterpriseProject.name,
                _BILL_AMOUNT,
                JournalEntry.currency,
                JournalEntry.payment_method,
                JournalEntry.created_at,
            )
            .outerjoin(BilledOrder, BilledOrder.order_id == JournalEntry.order_id)
            .outerjoin(EnterpriseProject, _project_join())
            .where(*self._lines_of(account_id, start, end, project_id))
            .order_by(JournalEntry.created_at, JournalEntry.id)
        )
        result = fetch_page(self.session, query, page, page_size, scalars=False)
        return result._replace(items=[BillLine(*row) for row in result.items])

    def project_totals(
        self, account_id: str, start: dt.datetime, end: dt.datetime, project_id: str | None
    ) -> list[ProjectTotal]:
        """Per project, the charges (positive) and refunds (negative) of ``[start, end)``,
        summed by the database: the account's own projects by id, and (a reseller's
        bill) its customers' by customer and id, each customer's ``default`` apart."""
        other_buyer = sa.case(
            (JournalEntry.buyer_account_id != account_id, JournalEntry.buyer_account_id),
            else_=None,
        )
        charges = sa.func.coalesce(
            sa.func.sum(
                sa.case((JournalEntry.kind == domain.PAYMENT_ENTRY, _BILL_AMOUNT), else_=0)
            ),
            0,
        )
        refunds = sa.func.coalesce(
            sa.func.sum(sa.case((JournalEntry.kind == domain.REFUND_ENTRY, _BILL_AMOUNT), else_=0)),
            0,
        )
        rows = self.session.execute(
            sa.select(
                other_buyer,
                _PROJECT_ID.label("project"),
                sa.func.min(EnterpriseProject.name),
                charges,
                refunds,
                JournalEntry.currency,
            )
            .outerjoin(EnterpriseProject, _project_join())
            .where(*self._lines_of(account_id, start, end, project_id))
            .group_by(other_buyer, _PROJECT_ID, JournalEntry.currency)
            .order_by(sa.nulls_first(other_buyer), _PROJECT_ID, JournalEntry.currency)
        ).all()
        return [
            ProjectTotal(buyer, project, name, int(charged), int(refunded), currency)
            for buyer, project, name, charged, refunded, currency in rows
        ]

    # -- cost analysis ------------------------------------------------------------------

    def cost_series(
        self, account_id: str, start: dt.datetime, end: dt.datetime, group_by: str
    ) -> list[SeriesPoint]:
        """The account's net spending (charges less refunds) of ``[start, end)`` per
        ``group_by`` (``enterprise_project``, ``product`` or ``month``, a UTC month
        ``YYYY-MM``), summed by the database, ordered by key."""
        key: Any
        name: Any
        query = sa.select(JournalEntry.id).where(
            *self._lines_of(account_id, start, end, project_id=None)
        )
        if group_by == "enterprise_project":
            key = _PROJECT_ID
            name = sa.func.min(EnterpriseProject.name)
            query = query.outerjoin(EnterpriseProject, _project_join())
        elif group_by == "product":
            key = BilledOrder.product_id
            name = sa.func.min(BilledOrder.product_name)
            query = query.outerjoin(BilledOrder, BilledOrder.order_id == JournalEntry.order_id)
        elif group_by == "month":
            key = self._utc_month(JournalEntry.created_at)
            name = key
        else:
            raise ValueError(f"unknown grouping {group_by!r}")
        query = (
            query.with_only_columns(
                key, name, sa.func.coalesce(sa.func.sum(_BILL_AMOUNT), 0), JournalEntry.currency
            )
            .group_by(key, JournalEntry.currency)
            .order_by(key, JournalEntry.currency)
        )
        return [
            SeriesPoint(point_key, point_name, int(amount), currency)
            for point_key, point_name, amount, currency in self.session.execute(query)
        ]

    def _utc_month(self, column: Any) -> Any:
        """``YYYY-MM`` of a UTC time, in SQL."""
        if self.session.get_bind().dialect.name == "postgresql":
            return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")
        return sa.func.strftime("%Y-%m", column)  # SQLite keeps UTC without a zone


_PROJECT_KEY = ("account_id", "project_id")
