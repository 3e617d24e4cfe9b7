"""orders.share_contact, and order lines found by their seller

``share_contact``: the buyer lets the order's sellers see its email; the orders placed
before it shared nothing (``false``, also as the column's default, so an INSERT that
leaves it out stays valid while an older replica still runs during a rolling upgrade).

``ix_order_lines_seller_account_id_order_id``: a seller's orders are found through
its lines (``GET /v1/seller/orders``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("share_contact", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        "ix_order_lines_seller_account_id_order_id",
        "order_lines",
        ["seller_account_id", "order_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_order_lines_seller_account_id_order_id", table_name="order_lines")
    op.drop_column("orders", "share_contact")
