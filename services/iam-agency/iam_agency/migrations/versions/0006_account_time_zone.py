"""accounts.time_zone: the IANA time zone an account's subscriptions are reckoned in

Every account is in UTC until it chooses another zone (``PATCH /v1/account``).

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
    op.add_column(
        "accounts", sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC")
    )


def downgrade() -> None:
    op.drop_column("accounts", "time_zone")
