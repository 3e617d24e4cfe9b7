"""products.saas_endpoint_url: where Mercato calls a saas product's seller to deliver it

Nullable: a product of another delivery method has none, and a saas draft may be
saved before its endpoint is known (publishing asks for it). A plain ALTER TABLE on
both backends (SQLite drops a column natively since 3.35), so the SQLite search
triggers on ``products`` are left alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("saas_endpoint_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    op.drop_column("products", "saas_endpoint_url")
