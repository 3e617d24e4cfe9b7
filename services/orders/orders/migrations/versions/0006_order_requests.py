"""order_requests: the requests (place, pay, cancel) an account made under each of its
downstream keys, so that a retry of one answers the order it made or changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_requests",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("request_key", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("account_id", "request_key"),
    )
    op.create_index("ix_order_requests_order_id", "order_requests", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_requests_order_id", table_name="order_requests")
    op.drop_table("order_requests")
