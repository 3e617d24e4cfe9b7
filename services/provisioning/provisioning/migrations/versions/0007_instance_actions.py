"""instance_actions: the durable queue of what is done to a delivered subscription's
instance after the purchase (freeze, unfreeze, refresh, upgrade, release a SaaS tenant;
re-sign a license key; stop, start, release an image's servers); and the buyer's time
zone on each delivery, where its expiry falls at 23:59:59

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

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False),
    )
    op.create_table(
        "instance_actions",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("cause_event_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("cause_event_id", "kind", name="uq_instance_actions_cause_kind"),
    )
    op.create_index(
        "ix_instance_actions_due",
        "instance_actions",
        ["next_attempt_at", "seq"],
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )
    op.create_index(
        "ix_instance_actions_subscription_id",
        "instance_actions",
        ["subscription_id", "occurred_at", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_instance_actions_subscription_id", table_name="instance_actions")
    op.drop_index("ix_instance_actions_due", table_name="instance_actions")
    op.drop_table("instance_actions")
    op.drop_column("deliveries", "time_zone")
