"""The gateway's tables: the messaging tables every service has, and the idempotency
records (``gateway.idempotency`` explains what each column keeps and why)."""

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
