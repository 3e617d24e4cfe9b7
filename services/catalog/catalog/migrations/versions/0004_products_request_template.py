"""products.request_template: what a buyer writes in a service request for the product

Nullable: a product has none until its seller sets one. A plain ALTER TABLE on both
backends, as 0003's, so the SQLite search triggers on ``products`` are left alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("request_template", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("products", "request_template")
