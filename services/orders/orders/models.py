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
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
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
            created_at=new.activated_at,
            updated_at=new.activated_at,
        )
