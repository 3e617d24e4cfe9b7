"""The tables iam-agency owns."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mercato.request_keys import add_request_keys_table
from mercato.tables import UTCDateTime, add_messaging_tables


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)
add_request_keys_table(metadata)


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
    # the IANA time zone its subscriptions' expiries are reckoned in
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")

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
    # commercial or test: resources move only between projects of one type
    type: Mapped[str] = mapped_column(
        sa.String(16), default="commercial", server_default="commercial"
    )
    description: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # moves by one on every change, so the copies other services keep from the events
    # take only a newer one
    revision: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")


# names are unique in an account whatever their case
sa.Index(
    "uq_enterprise_projects_account_id_name",
    EnterpriseProject.account_id,
    sa.func.lower(EnterpriseProject.name),
    unique=True,
)


class CloudAccount(Base):
    """The buyer's account at the cloud that its images are deployed into (one per
    marketplace account), and the schedule of its agencies' checks."""

    __tablename__ = "cloud_accounts"

    account_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(sa.String(16))
    region: Mapped[str] = mapped_column(sa.String(64))
    domain_id: Mapped[str] = mapped_column(sa.String(64))
    project_id: Mapped[str] = mapped_column(sa.String(64))
    # names of agencies Mercato no longer uses, found in the account at the last look
    deprecated: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the scheduled check: due from check_due_at; a replica holds it until claimed_until
    check_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    check_claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Agency(Base):
    """One of the agencies an account authorised (``policies.AGENCIES``): what was
    granted, where it is in the cloud, and what the last check found."""

    __tablename__ = "agencies"

    account_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("cloud_accounts.account_id"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(32))
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    # the policy version granted (None before the first authorisation)
    policy_version: Mapped[int | None] = mapped_column(sa.Integer)
    # ids in the buyer's cloud account
    agency_id: Mapped[str | None] = mapped_column(sa.String(64))
    role_id: Mapped[str | None] = mapped_column(sa.String(64))
    authorized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    problems: Mapped[list[dict]] = mapped_column(sa.JSON, default=list)
    # moves on every change of status: a replica's cached credentials of an older
    # revision are not handed out
    revision: Mapped[int] = mapped_column(sa.Integer, server_default="0")
