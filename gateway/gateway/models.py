"""The gateway's tables: the messaging tables every service has, the idempotency
records (``gateway.idempotency`` explains what each column keeps and why) and the
sign-in and sign-up limits' counters (``gateway.ratelimits``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mercato.tables import UTCDateTime, add_messaging_tables

IN_FLIGHT = "in_flight"
COMPLETED = "completed"


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)


class IdempotencyRecord(Base):
    """One Idempotency-Key of one scope (an account, or the anonymous callers).

    The primary key is what makes two requests with one key do the work once: the
    first insert wins, the second gets an integrity error and waits its turn. No
    column holds a secret in the clear: ``fingerprint`` is an HMAC of the request and
    ``response`` is encrypted under a key only the same request can derive.
    """

    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    # in_flight while the first request runs, then completed with its response
    state: Mapped[str] = mapped_column(sa.String(16))
    # which claim holds the key, so a late finisher cannot overwrite a takeover
    lease: Mapped[str] = mapped_column(sa.String(32))
    # an in-flight claim older than this was abandoned (its replica died) and may be taken over
    locked_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    response: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class RateLimitWindow(Base):
    """How many attempts one bucket (a limit and whom it counts: an email's digest, a
    client's address) made in one fixed window (``gateway.ratelimits``). Replicas share
    the rows, so a limit holds whichever replica an attempt reaches."""

    __tablename__ = "rate_limit_windows"

    bucket: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    hits: Mapped[int] = mapped_column(sa.Integer)
    # the window's end: after it the row counts nothing and ``purge`` deletes it
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
