"""clock_offsets: the test clock's offset (``mercato.clock``), one row in every database.

The kernel's second revision, shared by every service's history like the first. It
branches from 0001, beside each service's own revisions, so its id names the kernel
(``messaging_0002``: a service's own revisions are numbered 0002, 0003, …) and each
service that has revisions of its own joins the two branches with an empty merge
revision (its ``…_merge_clock_offsets.py``).
A frozen copy of ``mercato.tables.clock_offsets`` at this version.

Revision ID: messaging_0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from mercato.tables import UTCDateTime

revision = "messaging_0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_offsets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("offset_seconds", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clock_offsets")
