"""orders, order lines and subscriptions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

import mercato.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payer_account_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_project_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_deadline", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payment_started_at", mercato.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("payment_method", sa.String(length=16), nullable=True),
        sa.Column("paid_at", mercato.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_orders_account_id_created_at", "orders", ["account_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_orders_status_payment_deadline", "orders", ["status", "payment_deadline"], unique=False
    )
    op.create_table(
        "order_lines",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("product_guide_url", sa.String(length=500), nullable=True),
        sa.Column("seller_account_id", sa.String(length=40), nullable=False),
        sa.Column("seller_company_name", sa.String(length=200), nullable=False),
        sa.Column("specification_id", sa.String(length=40), nullable=False),
        sa.Column("specification_name", sa.String(length=200), nullable=False),
        sa.Column("delivery_method", sa.String(length=24), nullable=False),
        sa.Column("service_supervision", sa.Boolean(), nullable=False),
        sa.Column("billing_mode", sa.String(length=16), nullable=False),
        sa.Column("period_unit", sa.String(length=8), nullable=True),
        sa.Column("period_count", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_order_lines_order_id"), "order_lines", ["order_id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("order_line_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_project_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("activated_at", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mercato.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mercato.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_lines.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_line_id"),
    )
    op.create_index(
        "ix_subscriptions_account_id_created_at",
        "subscriptions",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_subscriptions_order_id"), "subscriptions", ["order_id"], unique=False)


def downgrade() -> None:

    op.drop_index(op.f("ix_subscriptions_order_id"), table_name="subscriptions")
    op.drop_index("ix_subscriptions_account_id_created_at", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_order_lines_order_id"), table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index("ix_orders_status_payment_deadline", table_name="orders")
    op.drop_index("ix_orders_account_id_created_at", table_name="orders")
    op.drop_table("orders")
