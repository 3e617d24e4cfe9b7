"""refunds, the refund's journal entries and the simulated card gateway's refunds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payer_account_id", sa.String(length=40), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index(op.f("ix_refunds_account_id"), "refunds", ["account_id"], unique=False)
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"], unique=False)
    op.create_index(
        "ix_refunds_status_updated_at", "refunds", ["status", "updated_at"], unique=False
    )
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("refund_id", sa.String(length=40), nullable=True))
        batch.create_unique_constraint("journal_entries_refund_id_key", ["refund_id"])
        batch.create_foreign_key("journal_entries_refund_id_fkey", "refunds", ["refund_id"], ["id"])
    op.create_table(
        "card_gateway_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        op.f("ix_card_gateway_refunds_charge_id"),
        "card_gateway_refunds",
        ["charge_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_card_gateway_refunds_charge_id"), table_name="card_gateway_refunds")
    op.drop_table("card_gateway_refunds")
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_constraint("journal_entries_refund_id_fkey", type_="foreignkey")
        batch.drop_constraint("journal_entries_refund_id_key", type_="unique")
        batch.drop_column("refund_id")
    op.drop_index("ix_refunds_status_updated_at", table_name="refunds")
    op.drop_index(op.f("ix_refunds_order_id"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_account_id"), table_name="refunds")
    op.drop_table("refunds")
