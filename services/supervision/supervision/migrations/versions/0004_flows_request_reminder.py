"""flows: when the buyer's request is due, and whether the buyer was reminded

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import mercato.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_by", mercato.db.UTCDateTime(timezone=True), nullable=True)
        )
        # flows that exist already were not reminded
        batch_op.add_column(
            sa.Column("request_reminded", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_flows_step_request_by", ["step", "request_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_index("ix_flows_step_request_by")
        batch_op.drop_column("request_reminded")
        batch_op.drop_column("request_by")
