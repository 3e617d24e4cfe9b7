"""The tables supervision owns: flows with their records and submissions, appeals,
attachments' metadata (the bytes are in the object store) and direct messages."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import mercato.contracts.supervision  # noqa: F401  (registers supervision's event types)
from mercato.request_keys import add_request_keys_table
from mercato.tables import UTCDateTime, add_messaging_tables
from supervision import domain

# SQLite autoincrements INTEGER primary keys only
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)
add_request_keys_table(metadata)


class Flow(Base, domain.FlowRules):
    """One supervised paid order from payment to acceptance (or a refund).
    ``order_id`` is unique: a repeated order-paid event never starts a second flow."""

    __tablename__ = "flows"
    __table_args__ = (
        sa.Index("ix_flows_buyer_created", "buyer_account_id", "created_at"),
        sa.Index("ix_flows_seller_created", "seller_account_id", "created_at"),
        # what the timers look for
        sa.Index("ix_flows_step_accept_by", "step", "accept_by"),
        sa.Index("ix_flows_step_confirm_by", "step", "confirm_by"),
        sa.Index("ix_flows_step_request_by", "step", "request_by"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    buyer_account_id: Mapped[str] = mapped_column(sa.String(40))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    product_id: Mapped[str] = mapped_column(sa.String(40))
    product_name: Mapped[str] = mapped_column(sa.String(200))
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    delivery_method: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(16))  # license or service
    process: Mapped[str] = mapped_column(sa.String(16))  # 2025-03-26 or legacy
    step: Mapped[str] = mapped_column(sa.String(32))
    open_appeal_id: Mapped[str | None] = mapped_column(sa.String(40))
    paid_amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the seller should confirm by then (working days); reminded once
    confirm_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirm_reminded: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # the buyer should submit its request by then (working days); reminded once
    request_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    request_reminded: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    # accepted automatically then unless the buyer acts; told two days before
    accept_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    accept_notice_sent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    step_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FlowRecord(Base):
    """The operation record: who did what to a flow, when, with a note."""

    __tablename__ = "flow_records"
    __table_args__ = (sa.Index("ix_flow_records_flow_id", "flow_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    flow_id: Mapped[str] = mapped_column(sa.String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(16))  # buyer, seller, operator, system
    actor_account_id: Mapped[str | None] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(48))
    note: Mapped[str | None] = mapped_column(sa.Text)
    step_after: Mapped[str | None] = mapped_column(sa.String(32))  # when the action moved it


class Submission(Base):
    """A buyer's request or a seller's provision, with its attachments. A request the
    seller sent back keeps its ``rejected_reason``."""

    __tablename__ = "flow_submissions"
    __table_args__ = (sa.Index("ix_flow_submissions_flow_id", "flow_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    flow_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(16))  # request or provision
    author_account_id: Mapped[str] = mapped_column(sa.String(40))
    description: Mapped[str] = mapped_column(sa.Text)
    attachment_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    rejected_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Appeal(Base, domain.AppealRules):
    """An appeal; at most one open per flow (the partial unique index says so to the
    database too, so two concurrent appeals cannot both be opened)."""

    __tablename__ = "appeals"
    __table_args__ = (
        sa.Index(
            "uq_appeals_open_per_flow",
            "flow_id",
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_appeals_status_due_at", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    flow_id: Mapped[str] = mapped_column(sa.String(40))
    opened_by_account_id: Mapped[str] = mapped_column(sa.String(40))
    opened_by: Mapped[str] = mapped_column(sa.String(16))  # buyer or seller
    reason: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    attachment_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16))
    step_at_opening: Mapped[str] = mapped_column(sa.String(32))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_by_account_id: Mapped[str | None] = mapped_column(sa.String(40))
    decision: Mapped[str | None] = mapped_column(sa.String(16))
    message: Mapped[str | None] = mapped_column(sa.Text)
    refund_amount: Mapped[int | None] = mapped_column(sa.BigInteger)


class Attachment(Base):
    """An uploaded file's metadata; its bytes are in the object store under
    ``storage_key``. ``flow_id`` is set when a request, provision or appeal names it:
    from then on the flow's parties (and the operator of its appeal) may download it."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    uploader_account_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(128))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    flow_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Message(Base):
    """A direct message to an account. ``dedup_key`` makes a message a timer or an
    event sends exactly once, whichever replica or redelivery sends it again."""

    __tablename__ = "messages"
    __table_args__ = (sa.Index("ix_messages_account_created", "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(48))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    flow_id: Mapped[str | None] = mapped_column(sa.String(40))
    dedup_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
