"""billing accounts, payments, top-ups, the double-entry ledger and the simulated card
gateway's charges

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite autoincrements INTEGER primary keys only
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("credit_used", sa.BigInteger(), nullable=False),
        sa.Column("credit_limit_set_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("credit_limit >= 0", name="ck_billing_accounts_credit_limit"),
        sa.CheckConstraint("credit_used >= 0", name="ck_billing_accounts_credit_used"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "card_gateway_charges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("card_brand", sa.String(length=16), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decline_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payer_account_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_project_id", sa.String(length=64), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("charge_key", sa.String(length=80), nullable=True),
        sa.Column("card_brand", sa.String(length=16), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index(op.f("ix_payments_account_id"), "payments", ["account_id"], unique=False)
    op.create_index(
        op.f("ix_payments_payer_account_id"), "payments", ["payer_account_id"], unique=False
    )
    op.create_index(
        "ix_payments_status_updated_at", "payments", ["status", "updated_at"], unique=False
    )
    op.create_table(
        "top_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("charge_key", sa.String(length=80), nullable=False),
        sa.Column("card_brand", sa.String(length=16), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_top_ups_amount"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_top_ups_account_key"),
    )
    op.create_index(
        "ix_top_ups_status_updated_at", "top_ups", ["status", "updated_at"], unique=False
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("top_up_id", sa.String(length=40), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("buyer_account_id", sa.String(length=40), nullable=True),
        sa.Column("payment_method", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("credit_used_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["top_up_id"],
            ["top_ups.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_id"),
        sa.UniqueConstraint("top_up_id"),
    )
    op.create_index(
        "ix_journal_entries_account_id_id", "journal_entries", ["account_id", "id"], unique=False
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("ledger_account", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_ledger_postings_entry_id"), "ledger_postings", ["entry_id"], unique=False
    )
    op.create_index(
        "ix_ledger_postings_ledger_account_account_id",
        "ledger_postings",
        ["ledger_account", "account_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_postings_ledger_account_account_id", table_name="ledger_postings")
    op.drop_index(op.f("ix_ledger_postings_entry_id"), table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_index("ix_journal_entries_account_id_id", table_name="journal_entries")
    op.drop_table("journal_entries")
    op.drop_index("ix_top_ups_status_updated_at", table_name="top_ups")
    op.drop_table("top_ups")
    op.drop_index("ix_payments_status_updated_at", table_name="payments")
    op.drop_index(op.f("ix_payments_payer_account_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_account_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_table("card_gateway_charges")
    op.drop_table("billing_accounts")
