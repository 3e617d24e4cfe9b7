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
        "deployments", sa.Column("enterprise_project_id", sa.String(length=64), nullable=True)
    )
    # the deployments there are have no moves; new rows get theirs from the model
    op.add_column(
        "deployments",
        sa.Column("project_moves", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )
    # SQLite alters a column by copying the table (batch mode)
    with op.batch_alter_table("deployments") as batch:
        batch.alter_column(
            "project_moves", existing_type=sa.JSON(), existing_nullable=False, server_default=None
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("project_moves")
        batch.drop_column("enterprise_project_id")
