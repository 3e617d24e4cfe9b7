"""Where orders keeps its orders, lines and subscriptions: every statement, lock and
page behind named methods (``uow.orders``).

The statements a purchase runs are built once, at import, with their values bound per
call, and rows written once go out as Core INSERTs (``insert_now``); a write the hot
path makes is a prebuilt Core UPDATE, after which the loaded object is kept in step
with what was written (``set_committed_value``), so the unit of work has nothing left to
flush for it. docs/performance.md has the measurements behind each choice.

Reads that decide something read the row afresh (``populate_existing``): the session
keeps objects across commits (``expire_on_commit=False``), and a decision on a stale
copy would ignore what another worker has changed meanwhile. An order's lines never
change once it is placed, so those reads leave them out (``lazyload``) and load them
only where they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from mercato.db import Page, fetch_page, insert_now, insert_or_ignore
from mercato.terms import (
    ENABLED,
    ENABLING,
    EXPIRED,
    FROZEN,
    RELEASED,
    UNPAID,
    YEARLY_MONTHLY,
)
from orders.auto_renewal_repository import AutoRenewalRepository
from orders.domain import (
    EXPIRE,
    FREEZE,
    RELEASE_EXPIRED,
    REMIND_BEFORE_EXPIRY,
    REMIND_BEFORE_FREEZE,
    REMIND_EXPIRY,
    REMIND_FREEZE,
    REMINDED_BEFORE_EXPIRY,
    REMINDED_BEFORE_FREEZE,
    NewSubscription,
)
from orders.models import (
    AccountTimeZone,
    Order,
    OrderLine,
    OrderRequest,
    RenewalQuote,
    Subscription,
)
from orders.project_repository import ProjectRepository
from orders.unsubscription_repository import UnsubscriptionRepository
from orders.upgrade_repository import UpgradeRepository


def _afresh(query):
    return query.options(lazyload(Order.lines)).execution_options(populate_existing=True)


_ORDERS = cast(sa.Table, Order.__table__)
_SUBSCRIPTIONS = cast(sa.Table, Subscription.__table__)
_ORDER = sa.select(Order).where(Order.id == sa.bindparam("order_id"))
_LOCKED_ORDER = _afresh(_ORDER).with_for_update()
_LINES_OF_ORDER = (
    sa.select(OrderLine)
    .where(OrderLine.order_id == sa.bindparam("order_id"))
    .order_by(OrderLine.position)
)
_START_PAYMENT = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("order_id"))
    .values(payment_started_at=sa.bindparam("started_at"))
)
# compare-and-set: only an unpaid order becomes paid. The UPDATE also takes the row's
# write lock (PostgreSQL re-checks the status once a concurrent writer commits).
_MARK_PAID = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("order_id"), _ORDERS.c.status == UNPAID)
    .values(
        status=sa.bindparam("status"),
        payment_id=sa.bindparam("payment_id"),
        payment_method=sa.bindparam("payment_method"),
        paid_at=sa.bindparam("paid_at"),
        payment_started_at=None,
        updated_at=sa.bindparam("paid_at"),
    )
)
_CLEAR_PAYMENT_MARK = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("order_id"), _ORDERS.c.status == UNPAID)
    .values(payment_started_at=None)
)
_PAID_FIELDS = ("status", "payment_id", "payment_method", "paid_at", "payment_started_at")
_PAYMENT_OF_ORDER = sa.select(_ORDERS.c.payment_id).where(_ORDERS.c.id == sa.bindparam("order_id"))
_ORDER_OF_SUBSCRIPTION = sa.select(_SUBSCRIPTIONS.c.order_id).where(
    _SUBSCRIPTIONS.c.id == sa.bindparam("subscription_id")
)
# the line is joined eagerly by default; PostgreSQL locks no outer join's nullable side
_LOCKED_SUBSCRIPTION = (
    sa.select(Subscription)
    .where(Subscription.id == sa.bindparam("subscription_id"))
    .options(lazyload(Subscription.line))
    .with_for_update()
    .execution_options(populate_existing=True)
)

_TIME_ZONES = cast(sa.Table, AccountTimeZone.__table__)
_TIME_ZONE_OF = sa.select(_TIME_ZONES.c.time_zone).where(
    _TIME_ZONES.c.account_id == sa.bindparam("account_id")
)
_SUBSCRIPTION_STATUS = sa.select(_SUBSCRIPTIONS.c.status).where(
    _SUBSCRIPTIONS.c.id == sa.bindparam("subscription_id")
)


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- orders --

    def add(self, order: Order) -> None:
        """A new order with its lines (set on ``order.lines``)."""
        insert_now(self.session, order, *order.lines)

    def get(self, order_id: str) -> Order | None:
        """The order with its lines, for reading."""
        return self.session.scalar(_ORDER, {"order_id": order_id})

    def lock(self, order_id: str) -> Order | None:
        """The order read afresh and locked until the transaction ends; its lines are
        loaded only if asked for (``load_lines``)."""
        return self.session.scalar(_LOCKED_ORDER, {"order_id": order_id})

    def load_lines(self, order: Order) -> None:
        """Load the order's lines with one SELECT, as its loaded collection."""
        lines = self.session.scalars(_LINES_OF_ORDER, {"order_id": order.id}).all()
        set_committed_value(order, "lines", lines)

    def mark_payment_started(self, order: Order) -> None:
        """Write the order's payment mark (``payment_started_at``, already set on it)."""
        self.session.execute(
            _START_PAYMENT, {"order_id": order.id, "started_at": order.payment_started_at}
        )
        set_committed_value(order, "payment_started_at", order.payment_started_at)

    def clear_payment_mark(self, order_id: str) -> None:
        """The payment attempt is over without a payment: an unpaid order may be paid
        again or cancelled."""
        self.session.execute(_CLEAR_PAYMENT_MARK, {"order_id": order_id})

    def mark_paid(self, order: Order) -> bool:
        """Write what ``order.pay`` set, if the row is still unpaid; False if it is not
        (then nothing was written)."""
        marked = self.session.execute(
            _MARK_PAID,
            {
                "order_id": order.id,
                "status": order.status,
                "payment_id": order.payment_id,
                "payment_method": order.payment_method,
                "paid_at": order.paid_at,
            },
        )
        if cast(sa.CursorResult, marked).rowcount != 1:
            return False
        for field in (*_PAID_FIELDS, "updated_at"):
            set_committed_value(order, field, getattr(order, field))
        return True

    def payment_of(self, order_id: str) -> str | None:
        """The id of the payment that paid the order, if one has."""
        return self.session.scalar(_PAYMENT_OF_ORDER, {"order_id": order_id})

    def unpaid_past_deadline(self, now, *, limit: int) -> Sequence[Order]:
        """Unpaid orders whose payment window has passed and that no payment attempt
        marks, oldest deadline first, locked; rows another worker holds are skipped
        (two replicas sweep side by side)."""
        return self.session.scalars(
            sa.select(Order)
            .where(
                Order.status == UNPAID,
                Order.payment_deadline <= now,
                Order.payment_started_at.is_(None),
            )
            .order_by(Order.payment_deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()

    def attempted_past_deadline(self, now, *, started_before, limit: int) -> list[str]:
        """Unpaid orders past their payment window with a payment attempt marked before
        ``started_before``: whether billing took the payment decides what becomes of
        them. Oldest deadline first; not locked (billing is asked first)."""
        return list(
            self.session.scalars(
                sa.select(Order.id)
                .where(
                    Order.status == UNPAID,
                    Order.payment_deadline <= now,
                    Order.payment_started_at < started_before,
                )
                .order_by(Order.payment_deadline)
                .limit(limit)
            )
        )

    def forget_unplaced(self, order: Order) -> None:
        """Delete an order that was never placed (its payer refused it) with its lines
        and requests: no event announced it, so nothing else knows of it."""
        for table, column in (
            (OrderRequest, OrderRequest.order_id),
            (OrderLine, OrderLine.order_id),
            (Order, Order.id),
        ):
            self.session.execute(sa.delete(table).where(column == order.id))

    # -- requests under a downstream key --

    def request(self, account_id: str, request_key: str) -> OrderRequest | None:
        """What the account did under ``request_key``, if anything."""
        return self.session.get(OrderRequest, (account_id, request_key), populate_existing=True)

    def add_request(
        self, account_id: str, request_key: str, action: str, order_id: str, now
    ) -> bool:
        """Keep that the account made ``action`` on ``order_id`` under ``request_key``.
        False if the key names a request already (a concurrent one waits for the first
        to end, then finds its row): roll back and read that one."""
        return insert_or_ignore(
            self.session,
            OrderRequest,
            {
                "account_id": account_id,
                "request_key": request_key,
                "action": action,
                "order_id": order_id,
                "created_at": now,
            },
            unique=["account_id", "request_key"],
        )

    def page_of_account(
        self, account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        query = sa.select(Order).where(Order.account_id == account_id)
        if status:
            query = query.where(Order.status == status)
        return fetch_page(
            self.session, query.order_by(Order.created_at.desc(), Order.id), page, page_size
        )

    def page_of_seller(
        self, seller_account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        """Orders with a line of the seller's, newest first (each once, however many
        of its lines are the seller's)."""
        of_seller = (
            sa.select(OrderLine.id)
            .where(OrderLine.order_id == Order.id, OrderLine.seller_account_id == seller_account_id)
            .exists()
        )
        query = sa.select(Order).where(of_seller)
        if status:
            query = query.where(Order.status == status)
        return fetch_page(
            self.session, query.order_by(Order.created_at.desc(), Order.id), page, page_size
        )

    # -- subscriptions --

    def add_subscriptions(self, order: Order, subscriptions: Sequence[NewSubscription]) -> None:
        rows = [Subscription.of(order, new) for new in subscriptions]
        for row, new in zip(rows, subscriptions, strict=True):
            row.time_zone = new.time_zone
        insert_now(self.session, *rows)

    def order_of_subscription(self, subscription_id: str) -> str | None:
        return self.session.scalar(_ORDER_OF_SUBSCRIPTION, {"subscription_id": subscription_id})

    def lock_subscription(self, subscription_id: str) -> Subscription | None:
        return self.session.scalar(_LOCKED_SUBSCRIPTION, {"subscription_id": subscription_id})

    def lock_subscriptions_of(self, order_id: str) -> Sequence[Subscription]:
        return self.session.scalars(
            sa.select(Subscription)
            .where(Subscription.order_id == order_id)
            .options(lazyload(Subscription.line))
            .with_for_update()
        ).all()

    def count_not_enabled(self, order_id: str) -> int:
        """How many of the order's subscriptions are not enabled (yet)."""
        self.session.flush()  # the changes of this transaction count
        return int(
            self.session.scalar(
                sa.select(sa.func.count())
                .select_from(Subscription)
                .where(Subscription.order_id == order_id, Subscription.status != ENABLED)
            )
            or 0
        )

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self.session.get(Subscription, subscription_id)

    def page_of_subscriptions(self, account_id: str, *, page: int, page_size: int) -> Page:
        """The account's purchased apps. One with service supervision is listed once its
        flow completed (it is enabled then); until then it is on the flow."""
        awaiting_supervision = sa.and_(
            Subscription.status == ENABLING,
            Subscription.order_line_id.in_(
                sa.select(OrderLine.id).where(OrderLine.service_supervision.is_(True))
            ),
        )
        query = (
            sa.select(Subscription)
            .where(Subscription.account_id == account_id, sa.not_(awaiting_supervision))
            .order_by(Subscription.created_at.desc(), Subscription.id)
        )
        return fetch_page(self.session, query, page, page_size)

    # -- account time zones --

    def time_zone_of(self, account_id: str) -> str:
        """The account's time zone as iam-agency last announced it; UTC without one."""
        return self.session.scalar(_TIME_ZONE_OF, {"account_id": account_id}) or "UTC"

    def set_time_zone(self, account_id: str, time_zone: str, changed_at) -> None:
        """Keep the account's zone, unless a newer change is kept already."""
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        statement = insert(_TIME_ZONES).values(
            account_id=account_id, time_zone=time_zone, updated_at=changed_at
        )
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[_TIME_ZONES.c.account_id],
                set_={"time_zone": time_zone, "updated_at": changed_at},
                where=_TIME_ZONES.c.updated_at < changed_at,
            )
        )

    def is_released(self, subscription_id: str | None) -> bool:
        return (
            self.session.scalar(_SUBSCRIPTION_STATUS, {"subscription_id": subscription_id})
            == RELEASED
        )

    # -- the lifecycle sweep (orders.lifecycle) --

    def claim_due(self, move: str, now, periods, *, limit: int) -> Sequence[Subscription]:
        """Up to ``limit`` subscriptions due for ``move`` (expire, freeze, release,
        remind_freeze, remind_expiry), earliest expiry first, with their lines, locked
        until the transaction ends; rows another worker holds are skipped (two replicas
        sweep side by side, each claiming its own)."""
        until, after = _due_window(move, now, periods)
        return (
            self.session.scalars(_CLAIM_DUE[move], {"until": until, "after": after, "limit": limit})
            .unique()
            .all()
        )

    def write_lifecycle(self, move: str, subscriptions: Sequence[Subscription], now) -> int:
        """Write one move of a claimed batch with one UPDATE (what the domain set on
        each: the same values for all), and keep the loaded objects in step, so nothing
        is left to flush. Answers how many rows changed."""
        if not subscriptions:
            return 0
        statement, values = _LIFECYCLE_WRITES[move]
        first = subscriptions[0]
        params = {f"new_{name}": getattr(first, name) for name in values}
        written = self.session.execute(
            statement,
            {"ids": [subscription.id for subscription in subscriptions], **params, "now": now},
        )
        for subscription in subscriptions:
            for name in (*values, "updated_at"):
                set_committed_value(subscription, name, getattr(subscription, name))
        return cast(sa.CursorResult, written).rowcount

    def count_by_status(self) -> dict[str, int]:
        return {status: count for status, count in self.session.execute(_COUNT_BY_STATUS)}

    # -- renewals (orders.renewals) --

    def add_renewal_quote(self, quote: RenewalQuote) -> None:
        insert_now(self.session, quote)

    def lock_renewal_quote(self, quote_id: str) -> RenewalQuote | None:
        return self.session.scalar(_LOCKED_RENEWAL_QUOTE, {"quote_id": quote_id})

    def page_of_renewals(
        self, account_id: str, *, expiring_before, page: int, page_size: int
    ) -> Page:
        """The account's yearly/monthly subscriptions to renew: enabled ones expiring
        before ``expiring_before``, and every expired or frozen one; soonest first."""
        query = (
            sa.select(Subscription)
            .join(OrderLine, OrderLine.id == Subscription.order_line_id)
            .where(
                Subscription.account_id == account_id,
                OrderLine.billing_mode == YEARLY_MONTHLY,
                Subscription.expires_at.is_not(None),
                sa.or_(
                    Subscription.status.in_((EXPIRED, FROZEN)),
                    sa.and_(
                        Subscription.status == ENABLED,
                        Subscription.expires_at <= expiring_before,
                    ),
                ),
            )
            .order_by(Subscription.expires_at, Subscription.id)
        )
        return fetch_page(self.session, query, page, page_size)


def _due_window(move: str, now, periods):
    """``(until, after)``: a subscription is due for ``move`` when its expiry is at or
    before ``until`` (and after ``after``, for a reminder of a deadline still ahead)."""
    if move == EXPIRE:
        return now, None
    if move == FREEZE:
        return now - periods.grace, None
    if move == RELEASE_EXPIRED:
        return now - periods.grace - periods.retention, None
    if move == REMIND_FREEZE:
        return now - periods.grace + REMIND_BEFORE_FREEZE, now - periods.grace
    return now + REMIND_BEFORE_EXPIRY, now  # REMIND_EXPIRY


def _claim(*where):
    return (
        sa.select(Subscription)
        .where(Subscription.expires_at <= sa.bindparam("until"), *where)
        .order_by(Subscription.expires_at)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True, of=_SUBSCRIPTIONS)
        .execution_options(populate_existing=True)
    )


_AFTER: sa.BindParameter = sa.bindparam("after")
_CLAIM_DUE = {
    EXPIRE: _claim(Subscription.status == ENABLED),
    FREEZE: _claim(Subscription.status == EXPIRED),
    RELEASE_EXPIRED: _claim(Subscription.status == FROZEN),
    REMIND_FREEZE: _claim(
        Subscription.status == EXPIRED,
        Subscription.reminded_stage < REMINDED_BEFORE_FREEZE,
        Subscription.expires_at > _AFTER,
    ),
    REMIND_EXPIRY: _claim(
        Subscription.status == ENABLED,
        Subscription.reminded_stage < REMINDED_BEFORE_EXPIRY,
        Subscription.expires_at > _AFTER,
    ),
}


def _write(from_status: str, *values: str):
    """One UPDATE of a batch: the ids, still in ``from_status``, get ``values``."""
    return (
        _SUBSCRIPTIONS.update()
        .where(
            _SUBSCRIPTIONS.c.id.in_(sa.bindparam("ids", expanding=True)),
            _SUBSCRIPTIONS.c.status == from_status,
        )
        .values(
            {
                **{name: sa.bindparam(f"new_{name}") for name in values},
                "updated_at": sa.bindparam("now"),
            }
        )
    ), values


_LIFECYCLE_WRITES = {
    EXPIRE: _write(ENABLED, "status"),
    FREEZE: _write(EXPIRED, "status"),
    RELEASE_EXPIRED: _write(FROZEN, "status", "released_reason"),
    REMIND_FREEZE: _write(EXPIRED, "reminded_stage"),
    REMIND_EXPIRY: _write(ENABLED, "reminded_stage"),
}
_COUNT_BY_STATUS = sa.select(_SUBSCRIPTIONS.c.status, sa.func.count()).group_by(
    _SUBSCRIPTIONS.c.status
)
_LOCKED_RENEWAL_QUOTE = (
    sa.select(RenewalQuote)
    .where(RenewalQuote.id == sa.bindparam("quote_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


# what a unit of work of orders offers its use cases: the orders and subscriptions, and
# the repositories of auto-renewal, upgrades, unsubscriptions and enterprise projects in
# their own modules
REPOSITORIES = {
    "orders": OrderRepository,
    "upgrades": UpgradeRepository,
    "auto_renewals": AutoRenewalRepository,
    "unsubscriptions": UnsubscriptionRepository,
    "projects": ProjectRepository,
}
