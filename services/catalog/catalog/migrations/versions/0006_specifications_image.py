"""specifications.image and .cloud_prices: what an image specification deploys and
what the cloud resources of a deployment cost

Both nullable JSON: only an image product's specifications have them. Plain ALTER
TABLEs on both backends (``specifications`` has no SQLite triggers).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("specifications", sa.Column("image", sa.JSON(), nullable=True))
    op.add_column("specifications", sa.Column("cloud_prices", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("specifications", "cloud_prices")
    op.drop_column("specifications", "image")
