"""The tables iam-agency owns."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mercato.tables import UTCDateTime, add_messaging_tables


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)


class Account(Base):
    """A marketplace account: a buyer, a seller, a reseller or an operator."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    type: Mapped[str] = mapped_column(sa.String(16))
    # set for a reseller's customer: the reseller pays for this account's orders
    reseller_account_id: Mapped[str | None] = mapped_column(
        sa.String(40), sa.ForeignKey("accounts.id"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    users: Mapped[list[User]] = relationship(back_populates="account")


class User(Base):
    """A person who signs in to an account. Sign-up creates the account's first user."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("accounts.id"), index=True)
    # stored lower-cased, so uniqueness ignores case
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    roles: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    account: Mapped[Account] = relationship(back_populates="users")


class ApiToken(Base):
    """A bearer token. Only its SHA-256 digest is stored: the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("users.id"), index=True)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class EnterpriseProject(Base):
    """A unit an account's spending is accounted to; every account has ``default``."""

    __tablename__ = "enterprise_projects"

    account_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True
    )
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(16), default="enabled")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
