"""Column types and tables every service's database has, whatever it owns.

``UTCDateTime`` stores timezone-aware UTC times on every backend. ``add_messaging_tables``
declares the outbox, the inbox and the dead letters (``mercato.outbox``,
``mercato.inbox``) in a service's metadata.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

OUTBOX = "outbox_messages"
INBOX = "inbox_messages"
DEAD_LETTERS = "dead_letters"


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Mercato stores UTC-aware times only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_Json = sa.JSON().with_variant(JSONB(), "postgresql")


def add_messaging_tables(metadata: sa.MetaData) -> None:
    """Declare the outbox, inbox and dead-letter tables in a service's metadata."""
    sa.Table(
        OUTBOX,
        metadata,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("headers", _Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Index("ix_outbox_messages_published_at_id", "published_at", "id"),
    )
    sa.Table(
        INBOX,
        metadata,
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        DEAD_LETTERS,
        metadata,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Index("ix_dead_letters_handler_event_id", "handler", "event_id"),
    )
