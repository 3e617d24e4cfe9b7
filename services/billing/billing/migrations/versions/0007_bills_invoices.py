"""Bills and invoices: every journal entry and refund names the enterprise project its
money is booked to (backfilled from the payments); ``billed_orders`` keeps what each
order was for (from ``orders.order.created``); ``invoices`` with the orders they cover
(an order on one live invoice at a time), their issued PDFs and the yearly number
counters

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("enterprise_project_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("enterprise_project_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_journal_entries_account_id_created_at",
        "journal_entries",
        ["account_id", "created_at"],
        unique=False,
    )
    # what was charged and refunded so far stays booked where its payment was
    op.execute(
        "UPDATE refunds SET enterprise_project_id = (SELECT payments.enterprise_project_id "
        "FROM payments WHERE payments.id = refunds.payment_id)"
    )
    op.execute(
        "UPDATE journal_entries SET enterprise_project_id = (SELECT "
        "payments.enterprise_project_id FROM payments "
        "WHERE payments.id = journal_entries.payment_id) WHERE payment_id IS NOT NULL"
    )
    op.execute(
        "UPDATE journal_entries SET enterprise_project_id = (SELECT "
        "refunds.enterprise_project_id FROM refunds "
        "WHERE refunds.id = journal_entries.refund_id) WHERE refund_id IS NOT NULL"
    )

    op.create_table(
        "billed_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payer_account_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_project_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("seller_account_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_billed_orders_account_id", "billed_orders", ["account_id"], unique=False)

    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seller_account_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("tax_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=True),
        sa.Column("reissue_of", sa.String(length=40), nullable=True),
        sa.Column("reissued_as", sa.String(length=40), nullable=True),
        sa.Column("return_reason", sa.String(length=500), nullable=True),
        sa.Column("issue_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("issue_due_at", UTCDateTime(), nullable=True),
        sa.Column("issue_claimed_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=True),
        sa.Column("returned_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number", name="uq_invoices_number"),
    )
    op.create_index("ix_invoices_account_id_created_at", "invoices", ["account_id", "created_at"])
    op.create_index("ix_invoices_issue_due_at", "invoices", ["issue_due_at"])

    op.create_table(
        "invoice_orders",
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("invoice_id", "order_id"),
    )
    op.create_index(
        "uq_invoice_orders_live_order",
        "invoice_orders",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )

    op.create_table(
        "invoice_documents",
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("invoice_id"),
    )

    op.create_table(
        "invoice_number_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )


def downgrade() -> None:
    op.drop_table("invoice_number_counters")
    op.drop_table("invoice_documents")
    op.drop_index("uq_invoice_orders_live_order", table_name="invoice_orders")
    op.drop_table("invoice_orders")
    op.drop_index("ix_invoices_issue_due_at", table_name="invoices")
    op.drop_index("ix_invoices_account_id_created_at", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_billed_orders_account_id", table_name="billed_orders")
    op.drop_table("billed_orders")
    op.drop_index("ix_journal_entries_account_id_created_at", table_name="journal_entries")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("enterprise_project_id")
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_column("enterprise_project_id")
