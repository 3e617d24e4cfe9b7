"""deployments: the order's enterprise project, where an image's resources start, and
orders' moves of the subscription to other projects, from which each resource's
project follows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deployments", sa.Column("enterprise_project_id", sa.String(length=40), nullable=True)
    )
    # the deployments there are have no moves; new rows get theirs from the model
    op.add_column(
        "deployments",
        sa.Column("project_moves", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )
    op.alter_column("deployments", "project_moves", server_default=None)


def downgrade() -> None:
    op.drop_column("deployments", "project_moves")
    op.drop_column("deployments", "enterprise_project_id")
