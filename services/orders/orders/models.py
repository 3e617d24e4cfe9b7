"""The tables orders owns: orders, their lines, and subscriptions (purchased apps).

Each mapped class takes its moves and views from ``orders.domain``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

import mercato.contracts.orders  # noqa: F401  (registers the events this service emits)
from mercato.tables import UTCDateTime, add_messaging_tables
from mercato.terms import PURCHASE
from orders.domain import LineRules, NewSubscription, OrderRules, SubscriptionRules


class Base(DeclarativeBase):
    metadata = sa.MetaData()


metadata = Base.metadata
add_messaging_tables(metadata)


class Order(Base, OrderRules):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_account_id_created_at", "account_id", "created_at"),
        sa.Index("ix_orders_status_payment_deadline", "status", "payment_deadline"),
        sa.Index("ix_orders_subscription_id", "subscription_id"),
        sa.Index("ix_orders_quote_id", "quote_id", unique=True),
        sa.Index("ix_orders_auto_renewal_key", "auto_renewal_key", unique=True),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    # purchase, renewal or upgrade (``mercato.terms.ORDER_TYPES``)
    type: Mapped[str] = mapped_column(sa.String(16), default=PURCHASE, server_default=PURCHASE)
    # the subscription a renewal or an upgrade is for; None for a purchase
    subscription_id: Mapped[str | None] = mapped_column(sa.String(40))
    # the binding quote a renewal or an upgrade was placed from (one order per quote)
    quote_id: Mapped[str | None] = mapped_column(sa.String(40))
    # an auto-renewal's "<subscription_id>:<expiry it extends>": one order per period
    auto_renewal_key: Mapped[str | None] = mapped_column(sa.String(120))
    account_id: Mapped[str] = mapped_column(sa.String(40))  # the buyer
    # who pays: the buyer, or the reseller of a reseller's customer
    payer_account_id: Mapped[str] = mapped_column(sa.String(40))
    enterprise_project_id: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(24))
    amount_due: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    payment_deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # set while a payment is being attempted, so the expiry sweep leaves the order alone
    payment_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    payment_id: Mapped[str | None] = mapped_column(sa.String(40))
    payment_method: Mapped[str | None] = mapped_column(sa.String(16))
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # the buyer lets the sellers of this order see its email
    share_contact: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.position", lazy="selectin"
    )


class OrderRequest(Base):
    """A request an account made under a downstream key (``caller.request_key``, the
    digest of its Idempotency-Key): placing, paying or cancelling an order. A retry of
    the same request finds it here and answers that order instead of doing the work
    again; one key names one request of one account."""

    __tablename__ = "order_requests"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    request_key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(16))  # place, pay or cancel
    order_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("orders.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OrderLine(Base, LineRules):
    """One configuration bought, with the price fixed when the order was placed."""

    __tablename__ = "order_lines"
    __table_args__ = (
        # a seller's orders: its lines, then their orders (``page_of_seller``)
        sa.Index("ix_order_lines_seller_account_id_order_id", "seller_account_id", "order_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    product_id: Mapped[str] = mapped_column(sa.String(40))
    product_name: Mapped[str] = mapped_column(sa.String(200))
    product_guide_url: Mapped[str | None] = mapped_column(sa.String(500))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    seller_company_name: Mapped[str] = mapped_column(sa.String(200))
    specification_id: Mapped[str] = mapped_column(sa.String(40))
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    delivery_method: Mapped[str] = mapped_column(sa.String(24))
    service_supervision: Mapped[bool] = mapped_column(sa.Boolean)
    billing_mode: Mapped[str] = mapped_column(sa.String(16))
    period_unit: Mapped[str | None] = mapped_column(sa.String(8))
    period_count: Mapped[int | None] = mapped_column(sa.Integer)
    quantity: Mapped[int] = mapped_column(sa.Integer)
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # an image's price itemised (catalog's breakdown) and its deployment in provisioning
    breakdown: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    deployment_id: Mapped[str | None] = mapped_column(sa.String(40))

    order: Mapped[Order] = relationship(back_populates="lines")


class Subscription(Base, SubscriptionRules):
    """A purchased app: one per paid order line."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.Index("ix_subscriptions_account_id_created_at", "account_id", "created_at"),
        # the lifecycle sweep: enabled/expired/frozen ones by how long ago they expired
        sa.Index("ix_subscriptions_status_expires_at", "status", "expires_at"),
        sa.Index("ix_subscriptions_next_auto_renew_at", "next_auto_renew_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("order_lines.id"), unique=True
    )
    account_id: Mapped[str] = mapped_column(sa.String(40))
    enterprise_project_id: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    auto_renew: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # the account's time zone when it was bought: expiries fall at 23:59:59 there
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    # the current configuration, once an upgrade changed it (None: the order line's)
    specification_id: Mapped[str | None] = mapped_column(sa.String(40))
    specification_name: Mapped[str | None] = mapped_column(sa.String(200))
    quantity: Mapped[int | None] = mapped_column(sa.Integer)
    # when the current period began (the first delivery, or the expiry a renewal extended)
    period_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # why it was released: expired, unsubscribed or cancelled
    released_reason: Mapped[str | None] = mapped_column(sa.String(16))
    # renewal reminders sent: 0 none, 1 "expires in 7 days", 2 "freezes in 3 days"
    reminded_stage: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    auto_renew_period_unit: Mapped[str | None] = mapped_column(sa.String(8))
    auto_renew_period_count: Mapped[int | None] = mapped_column(sa.Integer)
    # when the auto-renewal sweep next tries to renew it (None: auto-renew off, or done)
    next_auto_renew_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    auto_renew_failures: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # an upgrade paid and not yet applied by the seller
    upgrading_order_id: Mapped[str | None] = mapped_column(sa.String(40))
    # when it last moved to another enterprise project (``orders.moves``)
    moved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    line: Mapped[OrderLine] = relationship(lazy="joined")

    @classmethod
    def of(cls, order: Order, new: NewSubscription) -> Subscription:
        """The row of a subscription ``order.pay`` created."""
        return cls(
            id=new.id,
            order_id=order.id,
            order_line_id=new.line.id,
            account_id=order.account_id,
            enterprise_project_id=order.enterprise_project_id,
            status=new.status,
            auto_renew=False,
            activated_at=new.activated_at,
            expires_at=new.expires_at,
            period_started_at=new.activated_at,
            created_at=new.activated_at,
            updated_at=new.activated_at,
        )


class AccountTimeZone(Base):
    """orders' copy of an account's time zone, as iam-agency announces it
    (``iam_agency.account.time_zone_changed``); an account without a row is UTC."""

    __tablename__ = "account_time_zones"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EnterpriseProject(Base):
    """orders' copy of an account's enterprise project, as iam-agency announces it
    (``iam_agency.enterprise_project.*``) or answers it (``get_enterprise_project``):
    the highest ``revision`` seen is kept."""

    __tablename__ = "enterprise_projects"

    account_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # commercial or test: resources move only between projects of one type
    type: Mapped[str] = mapped_column(sa.String(16), server_default="commercial")
    status: Mapped[str] = mapped_column(sa.String(16))  # enabled or disabled
    revision: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RenewalQuote(Base):
    """A binding price for renewing a subscription for a period: the renewal order placed
    from it before ``valid_until`` costs ``amount``, whatever the catalog says then."""

    __tablename__ = "renewal_quotes"
    __table_args__ = (sa.Index("ix_renewal_quotes_order_id", "order_id", unique=True),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("subscriptions.id"), index=True
    )
    account_id: Mapped[str] = mapped_column(sa.String(40))
    period_unit: Mapped[str] = mapped_column(sa.String(8))
    period_count: Mapped[int] = mapped_column(sa.Integer)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    new_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    order_id: Mapped[str | None] = mapped_column(sa.String(40))  # the order placed from it


class UpgradeQuote(Base):
    """A binding price for moving a SaaS subscription to a higher configuration for the
    time it has left, itemised in ``lines``."""

    __tablename__ = "upgrade_quotes"
    __table_args__ = (sa.Index("ix_upgrade_quotes_order_id", "order_id", unique=True),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("subscriptions.id"), index=True
    )
    account_id: Mapped[str] = mapped_column(sa.String(40))
    specification_id: Mapped[str] = mapped_column(sa.String(40))
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    order_id: Mapped[str | None] = mapped_column(sa.String(40))


class Unsubscription(Base):
    """A buyer's request to unsubscribe with a negotiated refund, and the seller's review
    of it: pending_review, then approved (refund under way) and refunded, or rejected."""

    __tablename__ = "unsubscriptions"
    __table_args__ = (
        sa.Index("ix_unsubscriptions_account_id_requested_at", "account_id", "requested_at"),
        sa.Index(
            "ix_unsubscriptions_seller_account_id_requested_at",
            "seller_account_id",
            "requested_at",
        ),
        sa.Index("ix_unsubscriptions_status_reviewed_at", "status", "reviewed_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("subscriptions.id"), index=True
    )
    order_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # the first order
    account_id: Mapped[str] = mapped_column(sa.String(40))
    payer_account_id: Mapped[str] = mapped_column(sa.String(40))
    seller_account_id: Mapped[str] = mapped_column(sa.String(40))
    product_name: Mapped[str] = mapped_column(sa.String(200))
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    delivery_method: Mapped[str] = mapped_column(sa.String(24))
    refund_amount: Mapped[int] = mapped_column(sa.BigInteger)
    max_refundable: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str] = mapped_column(sa.String(32))
    reason_detail: Mapped[str | None] = mapped_column(sa.Text)
    share_contact: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    status: Mapped[str] = mapped_column(sa.String(16))
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
