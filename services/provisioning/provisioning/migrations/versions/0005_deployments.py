"""deployments of images into buyers' cloud accounts, and the KMS key made in each

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("specification_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("password_key_id", sa.String(length=32), nullable=False),
        sa.Column("password_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("step_deadline_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("stack_name", sa.String(length=64), nullable=False),
        sa.Column("stack_id", sa.String(length=64), nullable=True),
        sa.Column("stack_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("delete_requested_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("stack_vars", sa.JSON(), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("compensation_reason", sa.String(length=32), nullable=True),
        sa.Column("deletion_started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
        sa.UniqueConstraint("stack_name"),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployments_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deployments_subscription_id"), ["subscription_id"], unique=False
        )
        batch_op.create_index(
            "ix_deployments_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    op.create_table(
        "cloud_keys",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("cloud_keys")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_deployments_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_deployments_account_id"))
    op.drop_table("deployments")
