"""order_lines.breakdown and .deployment_id: an image's price itemised (servers, disks,
EIP) and its deployment in the buyer's cloud

Both nullable: other products' lines have one price and nothing deployed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("breakdown", sa.JSON(), nullable=True))
    op.add_column("order_lines", sa.Column("deployment_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("order_lines", "deployment_id")
    op.drop_column("order_lines", "breakdown")
