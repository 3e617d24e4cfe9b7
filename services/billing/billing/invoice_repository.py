"""Invoices' statements: every read, lock and write of the invoice tables, behind a name
(``uow.invoices``; ``service.py`` declares it).

"An order is invoiced once" rests on the partial unique index of ``invoice_orders``
(one ``active`` row an order): ``add_invoice`` answers whether it won, and the request
that loses rolls back. Issuing claims invoices with ``SKIP LOCKED`` and a lease, so two
sweeps never work on the same one, and takes the number under the year's counter row's
lock in the transaction that issues the invoice, so numbers run without gaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from billing.models import (
    BilledOrder,
    Invoice,
    InvoiceDocument,
    InvoiceNumberCounter,
    InvoiceOrder,
    Payment,
    Refund,
)
from mercato.db import Page, fetch_page, insert_now, insert_or_ignore

REQUESTED, ISSUED, RETURNED, REISSUED = "requested", "issued", "returned", "reissued"
CANCELLED = "cancelled"


class OrderStanding(NamedTuple):
    """What an invoice request checks of one order, read in one query."""

    order_id: str
    account_id: str  # the buyer
    payer_account_id: str  # who the order was for to pay (the buyer, or its reseller)
    seller_account_id: str
    product_name: str
    payment_status: str | None
    payment_payer: str | None
    paid: int | None
    currency: str | None
    refund_status: str | None
    live_invoice_id: str | None


class InvoiceRepository:
    """Invoices, their orders, documents and number counters, in one worker's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the orders an invoice covers -------------------------------------------------

    def standings(self, order_ids: Iterable[str]) -> dict[str, OrderStanding]:
        """Each known order's buyer, seller, payment, refund and live invoice."""
        live = (
            sa.select(InvoiceOrder.order_id, InvoiceOrder.invoice_id)
            .where(InvoiceOrder.active.is_(True))
            .subquery()
        )
        rows = self.session.execute(
            sa.select(
                BilledOrder.order_id,
                BilledOrder.account_id,
                BilledOrder.payer_account_id,
                BilledOrder.seller_account_id,
                BilledOrder.product_name,
                Payment.status,
                Payment.payer_account_id,
                Payment.amount,
                Payment.currency,
                Refund.status,
                live.c.invoice_id,
            )
            .outerjoin(Payment, Payment.order_id == BilledOrder.order_id)
            .outerjoin(Refund, Refund.payment_id == Payment.id)
            .outerjoin(live, live.c.order_id == BilledOrder.order_id)
            .where(BilledOrder.order_id.in_(list(order_ids)))
        ).all()
        return {row[0]: OrderStanding(*row) for row in rows}

    def unknown_paid_orders(self, account_id: str, order_ids: Iterable[str]) -> list[str]:
        """Those of ``order_ids`` the account (the buyer) paid and billing has no
        ``billed_orders`` row of (``orders.order.created`` not consumed yet)."""
        return list(
            self.session.scalars(
                sa.select(Payment.order_id)
                .outerjoin(BilledOrder, BilledOrder.order_id == Payment.order_id)
                .where(
                    Payment.order_id.in_(list(order_ids)),
                    Payment.account_id == account_id,
                    Payment.status == "succeeded",
                    BilledOrder.order_id.is_(None),
                )
                .order_by(Payment.order_id)
            )
        )

    def product_names(self, order_ids: Iterable[str]) -> dict[str, str]:
        rows = self.session.execute(
            sa.select(BilledOrder.order_id, BilledOrder.product_name).where(
                BilledOrder.order_id.in_(list(order_ids))
            )
        ).all()
        return {order_id: name for order_id, name in rows}

    def billed_orders(self, order_ids: Iterable[str]) -> list[BilledOrder]:
        return list(
            self.session.scalars(
                sa.select(BilledOrder)
                .where(BilledOrder.order_id.in_(list(order_ids)))
                .order_by(BilledOrder.order_id)
            )
        )

    # -- invoices ---------------------------------------------------------------------

    def add_invoice(self, invoice: Invoice, orders: list[InvoiceOrder]) -> bool:
        """Write a requested invoice and its live orders. False when one of the orders
        is on another live invoice (its unique index): nothing of this one is written
        and the caller rolls back."""
        try:
            with self.session.begin_nested():
                insert_now(self.session, invoice, *orders)
        except IntegrityError:
            return False
        return True

    def invoice(self, invoice_id: str, account_id: str) -> Invoice | None:
        """The account's invoice (None for anyone else's), its orders loaded."""
        return self.session.scalar(
            sa.select(Invoice)
            .where(Invoice.id == invoice_id, Invoice.account_id == account_id)
            .options(selectinload(Invoice.orders))
            .execution_options(populate_existing=True)
        )

    def lock_invoice(self, invoice_id: str, account_id: str | None = None) -> Invoice | None:
        query = sa.select(Invoice).where(Invoice.id == invoice_id)
        if account_id is not None:
            query = query.where(Invoice.account_id == account_id)
        return self.session.scalar(
            query.with_for_update(of=Invoice).execution_options(populate_existing=True)
        )

    def lock_live_invoices_of(self, order_id: str) -> list[Invoice]:
        """The invoices the order is live on (requested or issued), locked, oldest first."""
        live = sa.select(InvoiceOrder.invoice_id).where(
            InvoiceOrder.order_id == order_id, InvoiceOrder.active.is_(True)
        )
        return list(
            self.session.scalars(
                sa.select(Invoice)
                .where(Invoice.id.in_(live))
                .order_by(Invoice.created_at, Invoice.id)
                .with_for_update(of=Invoice)
                .execution_options(populate_existing=True)
            )
        )

    def orders_of(self, invoice_id: str) -> list[InvoiceOrder]:
        return list(
            self.session.scalars(
                sa.select(InvoiceOrder)
                .where(InvoiceOrder.invoice_id == invoice_id)
                .order_by(InvoiceOrder.order_id)
                .execution_options(populate_existing=True)
            )
        )

    def free_orders(self, invoice_id: str) -> None:
        """The returned (or cancelled) invoice's orders may be invoiced again."""
        self.session.execute(
            sa.update(InvoiceOrder)
            .where(InvoiceOrder.invoice_id == invoice_id)
            .values(active=False)
            .execution_options(synchronize_session=False)
        )

    def page(self, account_id: str, status: str | None, page: int, page_size: int) -> Page:
        query = sa.select(Invoice).where(Invoice.account_id == account_id)
        if status is not None:
            query = query.where(Invoice.status == status)
        ordered = query.order_by(Invoice.created_at.desc(), Invoice.id.desc())
        return fetch_page(
            self.session, ordered.options(selectinload(Invoice.orders)), page, page_size
        )

    def document(self, invoice_id: str) -> InvoiceDocument | None:
        return self.session.get(InvoiceDocument, invoice_id)

    # -- issuing ----------------------------------------------------------------------

    def claim_due(
        self, now: dt.datetime, lease_until: dt.datetime, limit: int
    ) -> list[tuple[str, str, int]]:
        """``(id, seller, attempts so far)`` of requested invoices due by ``now`` that no
        other sweep holds (row lock or unexpired lease), leased to this one until
        ``lease_until``; oldest due first."""
        rows = list(
            self.session.execute(
                sa.select(Invoice.id, Invoice.seller_account_id, Invoice.issue_attempts)
                .where(
                    Invoice.status == REQUESTED,
                    Invoice.issue_due_at <= now,
                    sa.or_(
                        Invoice.issue_claimed_until.is_(None), Invoice.issue_claimed_until <= now
                    ),
                )
                .order_by(Invoice.issue_due_at, Invoice.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if rows:
            self.session.execute(
                sa.update(Invoice)
                .where(Invoice.id.in_([row[0] for row in rows]))
                .values(issue_claimed_until=lease_until)
                .execution_options(synchronize_session=False)
            )
        return [(invoice_id, seller, int(attempts)) for invoice_id, seller, attempts in rows]

    def issue_failed(self, invoice_id: str, lease_until: dt.datetime, retry_at: dt.datetime) -> int:
        """Back off: the invoice is tried again from ``retry_at`` (if this sweep still
        holds it). Answers its attempts so far."""
        attempts = self.session.scalar(
            sa.update(Invoice)
            .where(
                Invoice.id == invoice_id,
                Invoice.status == REQUESTED,
                Invoice.issue_claimed_until == lease_until,
            )
            .values(
                issue_attempts=Invoice.issue_attempts + 1,
                issue_due_at=retry_at,
                issue_claimed_until=None,
            )
            .returning(Invoice.issue_attempts)
        )
        return int(attempts or 0)

    def next_number(self, year: int) -> int:
        """The year's next invoice number, its counter row locked until the transaction
        ends (created on first use)."""
        insert_or_ignore(self.session, InvoiceNumberCounter, {"year": year, "last": 0})
        counter = self.session.scalars(
            sa.select(InvoiceNumberCounter)
            .where(InvoiceNumberCounter.year == year)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        counter.last += 1
        self.session.flush()
        return counter.last

    def add_document(self, document: InvoiceDocument) -> None:
        insert_now(self.session, document)

    def pending(self) -> int:
        """How many invoices wait to be issued."""
        return int(
            self.session.scalar(
                sa.select(sa.func.count()).select_from(Invoice).where(Invoice.status == REQUESTED)
            )
            or 0
        )

    def flush(self) -> None:
        self.session.flush()
