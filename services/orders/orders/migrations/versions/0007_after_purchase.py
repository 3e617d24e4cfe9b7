"""After the purchase: order types, a subscription's life after delivery (time zone,
current configuration, reminders, auto-renewal, upgrades under way), the local copy of
accounts' time zones, renewal and upgrade quotes, and unsubscription requests

Uniqueness is kept by unique indexes rather than constraints, so that SQLite (``make
run``) adds them to existing tables without rebuilding them.

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
    # -- orders: what kind of order, and for which subscription ----------------------
    op.add_column(
        "orders",
        sa.Column("type", sa.String(length=16), nullable=False, server_default="purchase"),
    )
    op.add_column("orders", sa.Column("subscription_id", sa.String(length=40), nullable=True))
    op.add_column("orders", sa.Column("quote_id", sa.String(length=40), nullable=True))
    op.add_column("orders", sa.Column("auto_renewal_key", sa.String(length=120), nullable=True))
    op.create_index("ix_orders_subscription_id", "orders", ["subscription_id"])
    op.create_index("ix_orders_quote_id", "orders", ["quote_id"], unique=True)
    op.create_index("ix_orders_auto_renewal_key", "orders", ["auto_renewal_key"], unique=True)

    # -- subscriptions: their life after delivery ------------------------------------
    op.add_column(
        "subscriptions",
        sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC"),
    )
    op.add_column(
        "subscriptions", sa.Column("specification_id", sa.String(length=40), nullable=True)
    )
    op.add_column(
        "subscriptions", sa.Column("specification_name", sa.String(length=200), nullable=True)
    )
    op.add_column("subscriptions", sa.Column("quantity", sa.Integer(), nullable=True))
    op.add_column("subscriptions", sa.Column("period_started_at", UTCDateTime(), nullable=True))
    op.add_column(
        "subscriptions", sa.Column("released_reason", sa.String(length=16), nullable=True)
    )
    op.add_column(
        "subscriptions",
        sa.Column("reminded_stage", sa.SmallInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "subscriptions", sa.Column("auto_renew_period_unit", sa.String(length=8), nullable=True)
    )
    op.add_column(
        "subscriptions", sa.Column("auto_renew_period_count", sa.Integer(), nullable=True)
    )
    op.add_column("subscriptions", sa.Column("next_auto_renew_at", UTCDateTime(), nullable=True))
    op.add_column(
        "subscriptions",
        sa.Column("auto_renew_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "subscriptions", sa.Column("upgrading_order_id", sa.String(length=40), nullable=True)
    )
    op.create_index("ix_subscriptions_status_expires_at", "subscriptions", ["status", "expires_at"])
    op.create_index("ix_subscriptions_next_auto_renew_at", "subscriptions", ["next_auto_renew_at"])

    # -- accounts' time zones, as iam-agency announces them ---------------------------
    op.create_table(
        "account_time_zones",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )

    # -- binding quotes -----------------------------------------------------------------
    op.create_table(
        "renewal_quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("period_unit", sa.String(length=8), nullable=False),
        sa.Column("period_count", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("new_expires_at", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_renewal_quotes_subscription_id", "renewal_quotes", ["subscription_id"])
    op.create_index("ix_renewal_quotes_order_id", "renewal_quotes", ["order_id"], unique=True)
    op.create_table(
        "upgrade_quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("specification_id", sa.String(length=40), nullable=False),
        sa.Column("specification_name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_upgrade_quotes_subscription_id", "upgrade_quotes", ["subscription_id"])
    op.create_index("ix_upgrade_quotes_order_id", "upgrade_quotes", ["order_id"], unique=True)

    # -- unsubscription requests ----------------------------------------------------------
    op.create_table(
        "unsubscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("payer_account_id", sa.String(length=40), nullable=False),
        sa.Column("seller_account_id", sa.String(length=40), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("specification_name", sa.String(length=200), nullable=False),
        sa.Column("delivery_method", sa.String(length=24), nullable=False),
        sa.Column("refund_amount", sa.BigInteger(), nullable=False),
        sa.Column("max_refundable", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("reason_detail", sa.Text(), nullable=True),
        sa.Column("share_contact", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("refunded_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unsubscriptions_subscription_id", "unsubscriptions", ["subscription_id"])
    op.create_index("ix_unsubscriptions_order_id", "unsubscriptions", ["order_id"])
    op.create_index(
        "ix_unsubscriptions_account_id_requested_at",
        "unsubscriptions",
        ["account_id", "requested_at"],
    )
    op.create_index(
        "ix_unsubscriptions_seller_account_id_requested_at",
        "unsubscriptions",
        ["seller_account_id", "requested_at"],
    )
    op.create_index(
        "ix_unsubscriptions_status_reviewed_at", "unsubscriptions", ["status", "reviewed_at"]
    )


def downgrade() -> None:
    op.drop_table("unsubscriptions")
    op.drop_table("upgrade_quotes")
    op.drop_table("renewal_quotes")
    op.drop_table("account_time_zones")
    op.drop_index("ix_subscriptions_next_auto_renew_at", table_name="subscriptions")
    op.drop_index("ix_subscriptions_status_expires_at", table_name="subscriptions")
    with op.batch_alter_table("subscriptions") as batch:
        for column in (
            "upgrading_order_id",
            "auto_renew_failures",
            "next_auto_renew_at",
            "auto_renew_period_count",
            "auto_renew_period_unit",
            "reminded_stage",
            "released_reason",
            "period_started_at",
            "quantity",
            "specification_name",
            "specification_id",
            "time_zone",
        ):
            batch.drop_column(column)
    op.drop_index("ix_orders_auto_renewal_key", table_name="orders")
    op.drop_index("ix_orders_quote_id", table_name="orders")
    op.drop_index("ix_orders_subscription_id", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for column in ("auto_renewal_key", "quote_id", "subscription_id", "type"):
            batch.drop_column(column)
