"""Column types and tables every service's database has, whatever it owns.

``UTCDateTime`` stores timezone-aware UTC times on every backend. ``add_messaging_tables``
declares the outbox, the inbox and the dead letters (``mercato.outbox``,
``mercato.inbox``) and the test clock's offset (``mercato.clock``) in a service's
metadata.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

OUTBOX = "outbox_messages"
INBOX = "inbox_messages"
DEAD_LETTERS = "dead_letters"
CLOCK_OFFSETS = "clock_offsets"


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


# The controllable clock's offset (``mercato.clock``): one row, ``id`` = 1, in every
# service's own database, so that every replica of the service reads the same time and a
# restart keeps it. Unused (and empty) with the system clock.
clock_offsets = sa.Table(
    CLOCK_OFFSETS,
    sa.MetaData(),
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    # whole seconds added to the wall clock; negative when the clock started in the past
    sa.Column("offset_seconds", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),  # wall-clock time of the last move
)


def add_messaging_tables(metadata: sa.MetaData) -> None:
    """Declare the outbox, inbox, dead-letter and clock-offset tables in a service's
    metadata."""
    clock_offsets.to_metadata(metadata)
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
