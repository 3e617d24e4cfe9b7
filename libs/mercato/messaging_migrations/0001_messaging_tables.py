"""The outbox, inbox and dead-letter tables, version 1: every service's first revision.

One file for every service's history (``mercato.migrations`` adds this folder to each
service's version locations): the tables are the kernel's (``mercato.tables``), the same
in every database. This is a frozen copy of those tables at version 1; a later change
to them gets a revision of its own in every service, never an edit here.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from mercato.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "outbox_messages",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.Column("headers", json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_outbox_messages_published_at_id", "outbox_messages", ["published_at", "id"])
    op.create_table(
        "inbox_messages",
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("payload", json, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dead_letters_handler_event_id", "dead_letters", ["handler", "event_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("inbox_messages")
    op.drop_table("outbox_messages")
