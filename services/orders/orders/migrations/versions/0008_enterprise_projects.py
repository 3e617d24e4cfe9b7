"""Enterprise projects: orders' copy of the accounts' projects (fed by iam-agency's
events, the highest revision kept) and when a subscription last moved to another
project

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from mercato.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enterprise_projects",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False, server_default="commercial"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "project_id"),
    )
    op.add_column("subscriptions", sa.Column("moved_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("subscriptions", "moved_at")
    op.drop_table("enterprise_projects")
