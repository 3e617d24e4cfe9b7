"""The tables provisioning owns.

Nothing secret is stored in the clear: a delivered password, a seller's interface
secret and a seller's license signing key are each sealed with AES-GCM
(``provisioning.keyring``), with the id of the key that sealed them beside.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import mercato.contracts.provisioning  # noqa: F401  (registers provisioning's event types)
from mercato.request_keys import add_request_keys_table
from mercato.tables import UTCDateTime, add_messaging_tables
from provisioning import deployments, domain

# SQLite autoincrements INTEGER primary keys only
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)
add_request_keys_table(metadata)


class Delivery(Base, domain.DeliveryLifecycle):
    """The delivery of one subscription (one paid order line), from the order-paid event
    until it succeeds or its window passes. ``subscription_id`` is unique: a repeated
    event never starts a second delivery. Its moves are ``domain.DeliveryLifecycle``'s."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    order_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    order_line_id: Mapped[str] = mapped_column(sa.String(40))
    account_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # the buyer
    product_id: Mapped[str] = mapped_column(sa.String(40))
    product_name: Mapped[str] = mapped_column(sa.String(200))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    specification_id: Mapped[str] = mapped_column(sa.String(40))
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    delivery_method: Mapped[str] = mapped_column(sa.String(32))
    service_supervision: Mapped[bool] = mapped_column(sa.Boolean)
    billing_mode: Mapped[str] = mapped_column(sa.String(32))
    period_unit: Mapped[str | None] = mapped_column(sa.String(8))
    period_count: Mapped[int | None] = mapped_column(sa.Integer)
    quantity: Mapped[int] = mapped_column(sa.Integer)
    # the buyer's time zone (IANA) when it bought: the expiry falls at 23:59:59 there
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    # set at the first delivery attempt: the period bought runs from then
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # waiting (another flow delivers it), pending, succeeded, failed
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # a replica working on the delivery holds it until then (its HTTP calls run outside
    # any transaction); a crashed replica's lease simply runs out
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    # what was delivered
    instance_id: Mapped[str | None] = mapped_column(sa.String(64))
    license_key: Mapped[str | None] = mapped_column(sa.Text)
    username: Mapped[str | None] = mapped_column(sa.String(200))
    management_url: Mapped[str | None] = mapped_column(sa.String(2048))
    frontend_url: Mapped[str | None] = mapped_column(sa.String(2048))
    password_key_id: Mapped[str | None] = mapped_column(sa.String(32))
    password_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # a failed delivery whose seller instance must be released: when to ask next
    release_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    release_attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CredentialReveal(Base):
    """Each time a buyer opened the eye icon: who, when, through which request."""

    __tablename__ = "credential_reveals"
    __table_args__ = (
        sa.Index("ix_credential_reveals_account_revealed_at", "account_id", "revealed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    account_id: Mapped[str] = mapped_column(sa.String(40))
    user_id: Mapped[str | None] = mapped_column(sa.String(40))
    correlation_id: Mapped[str | None] = mapped_column(sa.String(128))
    revealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SellerInterfaceKey(Base):
    """The access key and secret with which Mercato signs its calls to a seller's SaaS
    endpoint (and checks the seller's answers). One pair per seller; issuing a new one
    replaces the old."""

    __tablename__ = "seller_interface_keys"

    seller_account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    access_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    secret_key_id: Mapped[str] = mapped_column(sa.String(32))
    secret_sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SellerSigningKey(Base):
    """A seller's Ed25519 key for license keys: the public half is published, the
    private half sealed."""

    __tablename__ = "seller_signing_keys"

    seller_account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    private_key_id: Mapped[str] = mapped_column(sa.String(32))
    private_sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Deployment(Base, deployments.DeploymentLifecycle):
    """An image's deployment into the buyer's cloud account, from the order being placed
    (``pending``) to ``active`` or ``failed``, and later ``released``. ``order_id`` is
    unique: preparing the same order again answers the same deployment. Its moves are
    ``deployments.DeploymentLifecycle``'s.

    ``spec`` is the order's ``deployment`` without its password, with the image it
    deploys; the password is sealed (``password_key_id``, ``password_sealed``) and
    opened only to encrypt it for the stack service under the buyer's KMS key.
    """

    __tablename__ = "deployments"
    __table_args__ = (
        sa.Index("ix_deployments_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    account_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # the buyer
    product_id: Mapped[str] = mapped_column(sa.String(40))
    specification_id: Mapped[str] = mapped_column(sa.String(40))
    # set when the order is paid
    subscription_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    delivery_id: Mapped[str | None] = mapped_column(sa.String(40))
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    password_key_id: Mapped[str] = mapped_column(sa.String(32))
    password_sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # pending, creating, compensating, active, failed, releasing, released
    status: Mapped[str] = mapped_column(sa.String(16))
    # [{name, status, started_at, finished_at, error}] in the order they run
    steps: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    step_deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    stack_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    stack_id: Mapped[str | None] = mapped_column(sa.String(64))
    # CreateStack was sent: a stack may exist and must be deleted on failure
    stack_requested: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    delete_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # the password as the stack service takes it: encrypted under a data key of the
    # buyer's KMS key (vars_structure); never the plaintext
    stack_vars: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    # [{type, id, name, status, addresses, enterprise_project_id}] once active
    resources: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    # the order's enterprise project, where its resources start (set when the order is
    # paid; None for a deployment paid before provisioning kept it)
    enterprise_project_id: Mapped[str | None] = mapped_column(sa.String(64))
    # orders' moves of the subscription to other projects, in orders' order:
    # [{from, to, mode, moved_at}] (``deployments.resources_in_projects`` replays them)
    project_moves: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # a replica working on it holds it until then; a crashed replica's lease runs out
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    compensation_reason: Mapped[str | None] = mapped_column(sa.String(32))
    deletion_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CloudKey(Base):
    """The KMS key Mercato made in a buyer's cloud account (once per account), under
    whose data keys deployments' passwords travel to the stack service."""

    __tablename__ = "cloud_keys"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InstanceAction(Base):
    """One thing to do to a delivered subscription's instance after the purchase (a
    durable queue, ``provisioning.instance_actions``): freeze, unfreeze, refresh,
    upgrade or release a SaaS tenant at its seller, re-sign a license key, stop or
    start an image's servers, release its deployment.

    ``occurred_at`` (then ``seq``) orders one subscription's actions (a freeze runs
    before a later unfreeze, whichever event provisioning took first);
    (``cause_event_id``, ``kind``) is unique, so a redelivered event adds nothing. The
    seller's or the cloud's call runs outside any transaction under a lease
    (``lease_until``); a crashed replica's lease runs out. The partial index keeps
    the sweep's claim on the pending rows only (a claim of 500 among 100,000 pending
    takes milliseconds: an index scan in claim order and one probe per row, no sort).
    """

    __tablename__ = "instance_actions"
    __table_args__ = (
        sa.UniqueConstraint("cause_event_id", "kind", name="uq_instance_actions_cause_kind"),
        # the claim walks the pending rows in its own order and stops at its batch
        sa.Index(
            "ix_instance_actions_due",
            "next_attempt_at",
            "seq",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        # a subscription's actions: "is an earlier one unfinished?" is one probe
        sa.Index("ix_instance_actions_subscription_id", "subscription_id", "occurred_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40))
    # freeze, unfreeze, refresh, upgrade, release, reissue_license, stop_servers,
    # start_servers, release_deployment
    kind: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    cause_event_id: Mapped[str] = mapped_column(sa.String(64))
    # when orders made the move that asked for it (its clock: frozen_at, renewed_at,
    # released_at, an upgrading event's occurred_at); a subscription's actions run in
    # this order, not in the order provisioning took the events
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # pending, done, failed, superseded (a later move made it obsolete: never run)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
