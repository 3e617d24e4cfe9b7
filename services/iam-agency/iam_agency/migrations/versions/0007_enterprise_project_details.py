"""enterprise_projects: type, description, updated_at and revision; names unique per
account whatever their case

Every project so far is an account's ``default``: commercial, no description, last
changed when it was created, at revision 1.

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
    with op.batch_alter_table("enterprise_projects") as batch:
        batch.add_column(
            sa.Column("type", sa.String(16), nullable=False, server_default="commercial")
        )
        batch.add_column(
            sa.Column("description", sa.String(500), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE enterprise_projects SET updated_at = created_at")
    with op.batch_alter_table("enterprise_projects") as batch:
        batch.alter_column("updated_at", existing_type=UTCDateTime(), nullable=False)
    op.create_index(
        "uq_enterprise_projects_account_id_name",
        "enterprise_projects",
        ["account_id", sa.text("lower(name)")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_enterprise_projects_account_id_name", table_name="enterprise_projects")
    with op.batch_alter_table("enterprise_projects") as batch:
        batch.drop_column("revision")
        batch.drop_column("updated_at")
        batch.drop_column("description")
        batch.drop_column("type")
