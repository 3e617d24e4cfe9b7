"""The tables billing owns. The entities' rules are in ``billing.domain``, mixed in.

Money columns are integer minor units (BIGINT) beside a currency code; never floats.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import mercato.contracts.billing  # noqa: F401  (registers billing's event types)
from billing import domain
from mercato.tables import UTCDateTime, add_messaging_tables

# SQLite autoincrements INTEGER primary keys only
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)


class BillingAccount(Base, domain.AccountFigures):
    """One per marketplace account, created on first use. Its figures are kept in step
    with its ledger postings (see ``billing.domain``), under a row lock."""

    __tablename__ = "billing_accounts"
    __table_args__ = (
        sa.CheckConstraint("credit_limit >= 0", name="ck_billing_accounts_credit_limit"),
        sa.CheckConstraint("credit_used >= 0", name="ck_billing_accounts_credit_used"),
    )

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # may go negative for a reseller, who settles with the marketplace outside Mercato
    balance: Mapped[int] = mapped_column(sa.BigInteger)
    credit_limit: Mapped[int] = mapped_column(sa.BigInteger)
    credit_used: Mapped[int] = mapped_column(sa.BigInteger)
    credit_limit_set_by: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Payment(Base, domain.PaymentLifecycle):
    """The payment of one order (``order_id`` is unique: an order is charged at most
    once). A failed attempt (a declined card) may be retried: ``attempt`` counts them
    and ``charge_key`` is the card gateway's idempotency key of the current one."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="ck_payments_amount"),
        sa.Index("ix_payments_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    payer_account_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    enterprise_project_id: Mapped[str] = mapped_column(sa.String(64))
    payment_method: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    charge_key: Mapped[str | None] = mapped_column(sa.String(80))
    card_brand: Mapped[str | None] = mapped_column(sa.String(16))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    failure_code: Mapped[str | None] = mapped_column(sa.String(40))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TopUp(Base, domain.TopUpLifecycle):
    """Money added to an account's balance from a card. ``idempotency_key`` (the
    caller's, optional) makes a retried top-up return the first one."""

    __tablename__ = "top_ups"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_top_ups_account_key"),
        sa.CheckConstraint("amount > 0", name="ck_top_ups_amount"),
        sa.Index("ix_top_ups_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    charge_key: Mapped[str] = mapped_column(sa.String(80))
    card_brand: Mapped[str] = mapped_column(sa.String(16))
    card_last4: Mapped[str] = mapped_column(sa.String(4))
    failure_code: Mapped[str | None] = mapped_column(sa.String(40))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Refund(Base, domain.RefundLifecycle):
    """The return of (part of) one payment, the compensation of an order cancelled
    after it was paid. ``payment_id`` is unique: a payment is refunded at most once,
    however often the cancellation is delivered.

    ``status``: ``succeeded`` (the ledger moved; ``completed_at`` set), ``pending`` (a
    card refund the card processor has not confirmed yet: billing asks again until it
    answers) or ``failed`` (the processor refused a card refund; ``failure_code``
    says why and nothing moved). A card refund's key at the processor is its ``id``.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount"),
        sa.Index("ix_refunds_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("payments.id"), unique=True
    )
    order_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    account_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    payer_account_id: Mapped[str] = mapped_column(sa.String(40))
    payment_method: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    # the order's cancel reason, as the buyer reads it
    reason: Mapped[str] = mapped_column(sa.String(500))
    # booked where its payment was, wherever the resource has moved since
    enterprise_project_id: Mapped[str | None] = mapped_column(sa.String(64))
    failure_code: Mapped[str | None] = mapped_column(sa.String(40))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class JournalEntry(Base):
    """One money movement: its postings sum to zero. It is also a line of the paying
    (or topped-up, or refunded) account's statement: ``amount`` signed from that
    account's side, and its figures after the movement. At most one entry per payment,
    per top-up and per refund (unique), a last guard against moving money twice. A
    refund's entry names its refund, not its payment (``payment_id`` stays the
    payment's own entry)."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        sa.Index("ix_journal_entries_account_id_id", "account_id", "id"),
        sa.Index("ix_journal_entries_account_id_created_at", "account_id", "created_at"),
        sa.UniqueConstraint("txn_id", name="uq_journal_entries_txn_id"),
    )

    # ``id`` orders the statement and joins the postings; ``txn_id`` (``txn_<random>``)
    # is what the statement shows, opaque like every other id
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(16))
    account_id: Mapped[str] = mapped_column(sa.String(40))
    payment_id: Mapped[str | None] = mapped_column(
        sa.String(40), sa.ForeignKey("payments.id"), unique=True
    )
    top_up_id: Mapped[str | None] = mapped_column(
        sa.String(40), sa.ForeignKey("top_ups.id"), unique=True
    )
    refund_id: Mapped[str | None] = mapped_column(
        sa.String(40), sa.ForeignKey("refunds.id"), unique=True
    )
    order_id: Mapped[str | None] = mapped_column(sa.String(64))
    buyer_account_id: Mapped[str | None] = mapped_column(sa.String(40))
    payment_method: Mapped[str | None] = mapped_column(sa.String(16))
    # the project a payment or refund is booked to (bills); None for a top-up
    enterprise_project_id: Mapped[str | None] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    credit_used_after: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    postings: Mapped[list[LedgerPosting]] = relationship(back_populates="entry")
    refund: Mapped[Refund | None] = relationship(lazy="joined")


class CancelledOrder(Base):
    """An order orders cancelled before it was paid (``orders.order.cancelled`` without
    a refund). billing charges it no more, and a payment of it that settles anyway (a
    card the gateway confirmed late, a pay that raced the cancellation) is refunded in
    full, once (``refund_payments_of_cancelled_orders``)."""

    __tablename__ = "cancelled_orders"

    order_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    reason: Mapped[str] = mapped_column(sa.String(500))
    cancelled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LedgerPosting(Base):
    """One side of a journal entry: a signed amount (debit positive) on a ledger
    account, per marketplace account for the per-account ledgers."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        sa.Index("ix_ledger_postings_ledger_account_account_id", "ledger_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("journal_entries.id"), index=True)
    ledger_account: Mapped[str] = mapped_column(sa.String(32))
    account_id: Mapped[str | None] = mapped_column(sa.String(40))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))

    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class BoundCard(Base):
    """A card the account keeps (the guide's bound card). The provider keeps the card
    itself; Mercato only its reference (``provider_card_id``), brand, last four digits
    and expiry. ``request_key`` (the binding request's Idempotency-Key digest) is unique
    per account, so a retried binding answers the first card."""

    __tablename__ = "bound_cards"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "request_key", name="uq_bound_cards_request_key"),
        sa.Index("ix_bound_cards_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    provider_card_id: Mapped[str] = mapped_column(sa.String(64))
    brand: Mapped[str] = mapped_column(sa.String(16))
    last4: Mapped[str] = mapped_column(sa.String(4))
    expiry: Mapped[str] = mapped_column(sa.String(5))
    request_key: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class BilledOrder(Base):
    """What an order was for, as ``orders.order.created`` told it: the product, seller
    and lines a bill line and an invoice show beside the ledger's figures. The money
    itself is never read from here: bills sum the journal entries."""

    __tablename__ = "billed_orders"

    order_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    payer_account_id: Mapped[str] = mapped_column(sa.String(40))
    enterprise_project_id: Mapped[str] = mapped_column(sa.String(64))
    type: Mapped[str] = mapped_column(sa.String(16))
    subscription_id: Mapped[str | None] = mapped_column(sa.String(64))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    product_id: Mapped[str] = mapped_column(sa.String(64))
    product_name: Mapped[str] = mapped_column(sa.String(200))
    # the order's lines as the event carried them (OrderLineV1)
    lines: Mapped[list] = mapped_column(sa.JSON)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Invoice(Base):
    """A buyer's invoice for paid orders of one seller. ``status``: ``requested`` (the
    issuing sweep picks it up from ``issue_due_at``), ``issued`` (``number`` given, the
    PDF kept in ``invoice_documents``), ``returned`` (its orders may be invoiced again)
    and ``reissued`` (returned, then replaced by ``reissued_as``)."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("number", name="uq_invoices_number"),
        sa.Index("ix_invoices_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    number: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    tax_id: Mapped[str] = mapped_column(sa.String(64))
    address: Mapped[str] = mapped_column(sa.String(500))
    email: Mapped[str] = mapped_column(sa.String(254))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # the seller's details as they stood when the invoice was issued
    seller: Mapped[dict | None] = mapped_column(sa.JSON)
    reissue_of: Mapped[str | None] = mapped_column(sa.String(40))
    reissued_as: Mapped[str | None] = mapped_column(sa.String(40))
    return_reason: Mapped[str | None] = mapped_column(sa.String(500))
    issue_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    issue_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    issue_claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    orders: Mapped[list[InvoiceOrder]] = relationship(
        back_populates="invoice", order_by="InvoiceOrder.order_id"
    )


class InvoiceOrder(Base):
    """One order an invoice covers, with the amount invoiced. ``active`` while the
    invoice is requested or issued; an order is on at most one active row (the partial
    unique index), which is what "an order is invoiced once" rests on."""

    __tablename__ = "invoice_orders"
    __table_args__ = (
        sa.Index(
            "uq_invoice_orders_live_order",
            "order_id",
            unique=True,
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active"),
        ),
    )

    invoice_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("invoices.id"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    active: Mapped[bool] = mapped_column(sa.Boolean)

    invoice: Mapped[Invoice] = relationship(back_populates="orders")


class InvoiceDocument(Base):
    """The PDF of an issued invoice, kept as issued (an invoice never changes once
    issued; a correction is a return and a reissue)."""

    __tablename__ = "invoice_documents"

    invoice_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("invoices.id"), primary_key=True
    )
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InvoiceNumberCounter(Base):
    """The last invoice number given in a year: numbers run without gaps, taken under
    this row's lock in the transaction that issues the invoice."""

    __tablename__ = "invoice_number_counters"

    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last: Mapped[int] = mapped_column(sa.Integer)


class EnterpriseProject(Base):
    """billing's copy of an account's enterprise project, kept from iam-agency's
    ``iam_agency.enterprise_project.*`` events (a newer ``revision`` replaces an older
    one, never the other way round): the names bills and cost analysis show. A project
    not copied yet shows its id (``default`` as "default")."""

    __tablename__ = "enterprise_projects"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    type: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    revision: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
