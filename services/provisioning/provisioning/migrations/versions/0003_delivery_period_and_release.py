"""deliveries: the subscription's period from the first attempt, and the release of a
failed delivery's seller instance

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("starts_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("release_due_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("release_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("released_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("released_at")
        batch_op.drop_column("release_attempts")
        batch_op.drop_column("release_due_at")
        batch_op.drop_column("starts_at")
