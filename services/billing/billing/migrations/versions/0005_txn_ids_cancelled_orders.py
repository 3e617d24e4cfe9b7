"""Opaque ledger transaction ids (``journal_entries.txn_id``) and the orders cancelled
before they were paid (``cancelled_orders``), whose late payments billing refunds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import uuid

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cancelled_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("txn_id", sa.String(length=40), nullable=True))
    entries = sa.table("journal_entries", sa.column("id"), sa.column("txn_id"))
    connection = op.get_bind()
    for (entry_id,) in connection.execute(sa.select(entries.c.id)).all():
        connection.execute(
            entries.update()
            .where(entries.c.id == entry_id)
            .values(txn_id=f"txn_{uuid.uuid4().hex}")
        )
    with op.batch_alter_table("journal_entries") as batch:
        batch.alter_column("txn_id", existing_type=sa.String(length=40), nullable=False)
        batch.create_unique_constraint("uq_journal_entries_txn_id", ["txn_id"])


def downgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_constraint("uq_journal_entries_txn_id", type_="unique")
        batch.drop_column("txn_id")
    op.drop_table("cancelled_orders")
