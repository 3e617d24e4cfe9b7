"""orders' use cases. Each takes a unit of work and a clock, and the neighbours it asks
(``catalog``, ``iam``, ``billing``: anything with the same methods as their RPC
proxies), so it runs the same under nameko and in unit tests with fakes."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from mercato.clock import Clock
from mercato.db import insert_now, new_id
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    ValidationError,
)
from mercato.identity import Identity
from mercato.money import money
from orders import domain, metrics
from orders.models import Order, OrderLine, Subscription

_log = logging.getLogger(__name__)


def _period(line: OrderLine) -> dict[str, Any] | None:
    if line.period_unit is None:
        return None
    return {"unit": line.period_unit, "count": line.period_count}


def _configuration(line: OrderLine) -> dict[str, Any]:
    """What was bought on the line: in the order's view and in what is delivered."""
    return {
        "product_id": line.product_id,
        "product_name": line.product_name,
        "seller_account_id": line.seller_account_id,
        "specification_id": line.specification_id,
        "specification_name": line.specification_name,
        "delivery_method": line.delivery_method,
        "service_supervision": line.service_supervision,
        "billing_mode": line.billing_mode,
        "period": _period(line),
        "quantity": line.quantity,
    }


def _line_view(line: OrderLine) -> dict[str, Any]:
    return {
        "id": line.id,
        **_configuration(line),
        "unit_price": money(line.unit_price, line.currency),
        "amount": money(line.amount, line.currency),
    }


def _parties(order: Order) -> dict[str, Any]:
    """Which order, whose, who pays and which enterprise project it is accounted to:
    the fields the order's events and its payment request all begin with."""
    return {
        "order_id": order.id,
        "account_id": order.account_id,
        "payer_account_id": order.payer_account_id,
        "enterprise_project_id": order.enterprise_project_id,
    }


def order_view(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "account_id": order.account_id,
        "paid_by_reseller": order.payer_account_id != order.account_id,
        "enterprise_project_id": order.enterprise_project_id,
        "amount_due": money(order.amount_due, order.currency),
        "lines": [_line_view(line) for line in order.lines],
        "payment_deadline": order.payment_deadline,
        "payment_method": order.payment_method,
        # a payment was started and its outcome is not known yet (a slow card gateway)
        "payment_pending": order.status == domain.UNPAID and order.payment_started_at is not None,
        "paid_at": order.paid_at,
        "cancel_reason": order.cancel_reason,
        "failure_reason": order.failure_reason,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def subscription_view(subscription: Subscription) -> dict[str, Any]:
    line = subscription.line
    return {
        "id": subscription.id,
        "order_id": subscription.order_id,
        "product_id": line.product_id,
        "product_name": line.product_name,
        "specification_name": line.specification_name,
        "delivery_method": line.delivery_method,
        "status": subscription.status,
        "expires_at": subscription.expires_at,
        "billing_mode": line.billing_mode,
        "auto_renew": subscription.auto_renew,
        "enterprise_project_id": subscription.enterprise_project_id,
        "created_at": subscription.created_at,
        "activated_at": subscription.activated_at,
        "service_supervision": line.service_supervision,
        "product_guide_url": line.product_guide_url,
        "seller_account_id": line.seller_account_id,
        "seller_company_name": line.seller_company_name,
    }


# -- placing ---------------------------------------------------------------------


def place_order(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    request: dict[str, Any],
    catalog,
    iam,
    billing,
    payment_window: dt.timedelta,
) -> dict[str, Any]:
    """Fix the quoted price into a new unpaid order.

    A reseller's customer does not pay: the reseller pays at once, so the answer is
    already ``paid``. Should billing not answer, the order stays unpaid and the
    customer's pay request (which always charges the reseller) completes it.
    """
    if request["accept_terms"] is not True:
        raise BusinessRuleViolation(
            "the product's terms must be accepted to place an order", code="TERMS_NOT_ACCEPTED"
        )
    project_id = request.get("enterprise_project_id") or "default"
    try:
        iam.get_enterprise_project(project_id)
    except NotFound:
        raise ValidationError(
            f"unknown enterprise project {project_id}",
            {"enterprise_project_id": ["no such enterprise project in this account"]},
        ) from None
    quote = catalog.quote(
        {
            key: request[key]
            for key in ("product_id", "specification_id", "billing_mode", "period", "quantity")
            if request.get(key) is not None
        }
    )
    now = clock.now()
    order = Order(
        id=new_id("ord"),
        account_id=buyer.account_id,
        payer_account_id=buyer.reseller_account_id or buyer.account_id,
        enterprise_project_id=project_id,
        status=domain.UNPAID,
        amount_due=quote["amount"]["amount"],
        currency=quote["amount"]["currency"],
        payment_deadline=domain.payment_deadline(now, payment_window),
        created_at=now,
        updated_at=now,
    )
    period = quote.get("period") or {}
    order.lines = [
        OrderLine(
            id=new_id("oln"),
            order_id=order.id,
            position=0,
            product_id=quote["product_id"],
            product_name=quote["product_name"],
            product_guide_url=quote.get("product_guide_url"),
            seller_account_id=quote["seller_account_id"],
            seller_company_name=quote["seller_company_name"],
            specification_id=quote["specification_id"],
            specification_name=quote["specification_name"],
            delivery_method=quote["delivery_method"],
            service_supervision=quote["service_supervision"],
            billing_mode=quote["billing_mode"],
            period_unit=period.get("unit"),
            period_count=period.get("count"),
            quantity=quote["quantity"],
            unit_price=quote["unit_price"]["amount"],
            amount=quote["amount"]["amount"],
            currency=quote["amount"]["currency"],
        )
    ]
    insert_now(uow.session, order, *order.lines)
    view = order_view(order)
    uow.emit(
        "orders.order.created",
        subject=order.id,
        account_id=order.account_id,
        data={
            **_parties(order),
            "amount_due": view["amount_due"],
            "lines": view["lines"],
            "payment_deadline": order.payment_deadline,
        },
    )
    uow.commit()
    metrics.ORDERS.labels(domain.UNPAID).inc()
    if order.payer_account_id != order.account_id:
        try:
            return pay_order(
                uow,
                clock,
                buyer=buyer,
                order_id=order.id,
                request={"payment_method": domain.RESELLER_PAYMENT},
                billing=billing,
            )
        except ServiceUnavailable:
            _log.warning("billing did not answer; reseller order %s stays unpaid", order.id)
    return view


# -- paying ----------------------------------------------------------------------


def _afresh(query):
    """``query`` reading the row afresh: the session keeps objects across commits
    (``expire_on_commit=False``), and a decision on a stale copy would ignore what
    another worker has already changed.

    The order's lines are loaded only when used (``lazyload``), not with every such
    read: paying an order reads it twice (before and after billing) and the payment
    event once more, and the eager ``selectin`` load ran a second SELECT each time,
    although lines never change after the order is placed and a repeated payment
    event does not look at them at all."""
    return query.options(lazyload(Order.lines)).execution_options(populate_existing=True)


def _locked(query):
    """``query`` reading the row afresh (``_afresh``) under a row lock."""
    return _afresh(query).with_for_update()


# the statements every purchase runs, built once (see mercato.db)
_ORDERS = cast(sa.Table, Order.__table__)
_ORDER = sa.select(Order).where(Order.id == sa.bindparam("order_id"))
_LOCKED_ORDER = _locked(_ORDER)
_ORDER_AFRESH = _afresh(_ORDER)
_LINES_OF_ORDER = (
    sa.select(OrderLine)
    .where(OrderLine.order_id == sa.bindparam("order_id"))
    .order_by(OrderLine.position)
)
# the purchase's two writes of the order, as Core UPDATEs (see mercato.db)
_START_PAYMENT = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("order_id"))
    .values(payment_started_at=sa.bindparam("started_at"))
)
# compare-and-set: only an unpaid order becomes paid. The UPDATE takes the row's write
# lock (PostgreSQL re-checks the status once a concurrent writer commits), so whatever
# this transaction reads of the order afterwards holds until it commits.
_MARK_PAID = (
    _ORDERS.update()
    .where(_ORDERS.c.id == sa.bindparam("order_id"), _ORDERS.c.status == domain.UNPAID)
    .values(
        status=domain.PAID,
        payment_id=sa.bindparam("payment_id"),
        payment_method=sa.bindparam("payment_method"),
        paid_at=sa.bindparam("now"),
        payment_started_at=None,
        updated_at=sa.bindparam("now"),
    )
)
_PAYMENT_OF_ORDER = sa.select(_ORDERS.c.payment_id).where(_ORDERS.c.id == sa.bindparam("order_id"))
_SUBSCRIPTIONS = Subscription.__table__
_ORDER_OF_SUBSCRIPTION = sa.select(_SUBSCRIPTIONS.c.order_id).where(
    _SUBSCRIPTIONS.c.id == sa.bindparam("subscription_id")
)


def _locked_order(uow, order_id: str) -> Order | None:
    return uow.session.scalar(_LOCKED_ORDER, {"order_id": order_id})


def _own_order(uow, order_id: str, buyer: Identity, *, lock: bool = False) -> Order:
    order = uow.session.scalar(_LOCKED_ORDER if lock else _ORDER, {"order_id": order_id})
    if order is None or (order.account_id != buyer.account_id and not buyer.has_role("operator")):
        raise NotFound("order not found")
    return order


def pay_order(
    uow, clock: Clock, *, buyer: Identity, order_id: str, request: dict[str, Any], billing
) -> dict[str, Any]:
    """Charge the order through billing (exactly once per order) and mark it paid."""
    order = _own_order(uow, order_id, buyer, lock=True)
    now = clock.now()
    if domain.is_expired(order.status, order.payment_deadline, now):
        _cancel(uow, order, domain.PAYMENT_WINDOW_PASSED, now)
        uow.commit()
        raise Conflict("the payment window of this order has passed; it is cancelled")
    if order.status != domain.UNPAID:
        raise Conflict(f"the order is {order.status}, not unpaid")
    reseller_pays = order.payer_account_id != order.account_id
    method = domain.RESELLER_PAYMENT if reseller_pays else request["payment_method"]
    uow.session.execute(_START_PAYMENT, {"order_id": order.id, "started_at": now})
    set_committed_value(order, "payment_started_at", now)  # the row, as just written
    uow.commit()  # do not hold the row lock across the call to billing

    try:
        payment = billing.pay_order(
            {
                **_parties(order),
                "amount": money(order.amount_due, order.currency),
                "payment_method": method,
                **({"card": request["card"]} if method == "credit_card" else {}),
            }
        )
    except ServiceUnavailable:
        # billing may still complete the payment: keep the attempt mark, so the expiry
        # sweep leaves the order alone until billing's event arrives
        raise
    except Exception:
        _clear_payment_attempt(uow, order.id)
        raise
    if payment["status"] == "pending":
        # the card gateway has not answered yet: billing settles it and announces the
        # outcome (billing.payment.succeeded or .failed), which completes this order
        return order_view(uow.session.get(Order, order.id))
    if payment["status"] != "succeeded":
        _clear_payment_attempt(uow, order.id)
        raise PaymentRequired(
            f"payment declined: {payment.get('failure_reason') or 'no reason given'}",
            code="PAYMENT_DECLINED",
        )
    return record_payment(
        uow,
        clock,
        order_id=order.id,
        payment_id=payment["id"],
        payment_method=payment["payment_method"],
    )


def payment_recorded(uow, *, order_id: str, payment_id: str) -> bool:
    """Whether the order is already paid by this payment. Once set, an order's
    payment id never changes (a refund cancels the order but keeps it), so a True
    answer holds for every later delivery of the payment's event."""
    recorded = uow.session.scalar(_PAYMENT_OF_ORDER, {"order_id": order_id})
    return recorded is not None and recorded == payment_id


def record_failed_payment(uow, *, order_id: str) -> None:
    """A payment billing could not settle at once has failed: the order may be paid
    again or cancelled (the attempt mark no longer guards it)."""
    order = _locked_order(uow, order_id)
    if order is not None and order.status == domain.UNPAID:
        order.payment_started_at = None
    uow.commit()


def _clear_payment_attempt(uow, order_id: str) -> None:
    order = uow.session.get(Order, order_id)
    if order is not None:
        order.payment_started_at = None
        uow.commit()


def record_payment(
    uow, clock: Clock, *, order_id: str, payment_id: str, payment_method: str
) -> dict[str, Any]:
    """Mark the order paid and create its subscriptions; a repeat changes nothing.
    Answers the order.

    Reached both from the pay request (synchronously) and, through
    ``apply_payment``, from billing's payment-succeeded event (for payments the
    request did not see finish).
    """
    order = apply_payment(
        uow, clock, order_id=order_id, payment_id=payment_id, payment_method=payment_method
    )
    return order_view(order)


def apply_payment(
    uow, clock: Clock, *, order_id: str, payment_id: str, payment_method: str
) -> Order:
    """``record_payment`` without building the answer: the payment event's handler has
    no one to answer, and for the usual repeat (the pay request already recorded the
    payment) building it was the only reason to load the order's lines."""
    now = clock.now()
    marked = uow.session.execute(
        _MARK_PAID,
        {
            "order_id": order_id,
            "payment_id": payment_id,
            "payment_method": payment_method,
            "now": now,
        },
    )
    # read after the write, so no lock is needed: the row is this transaction's now
    order = uow.session.scalar(_ORDER_AFRESH, {"order_id": order_id})
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if cast(sa.CursorResult, marked).rowcount != 1:  # it was not unpaid
        if order.payment_id not in (None, payment_id):
            _log.error(
                "order %s paid by %s was paid again by %s", order.id, order.payment_id, payment_id
            )
        elif order.status == domain.CANCELLED:
            # billing took the money after the order was cancelled: it is refunded by the
            # refund flow (issue [3]); the order stays cancelled
            _log.error("payment %s arrived for cancelled order %s", payment_id, order.id)
        return order
    # one SELECT of the lines, kept as the loaded collection for the answer: the lazy
    # load of ``order.lines`` cost about twice as much for the same statement
    lines = uow.session.scalars(_LINES_OF_ORDER, {"order_id": order_id}).all()
    set_committed_value(order, "lines", lines)
    paid_subscriptions = []
    subscriptions: list[tuple[Subscription, OrderLine]] = []
    for line in lines:
        subscription = Subscription(
            id=new_id("sub"),
            order_id=order.id,
            order_line_id=line.id,
            account_id=order.account_id,
            enterprise_project_id=order.enterprise_project_id,
            status=domain.ENABLING,
            auto_renew=False,
            activated_at=now,
            expires_at=domain.subscription_expiry(
                now, line.billing_mode, line.period_unit, line.period_count
            ),
            created_at=now,
            updated_at=now,
        )
        subscriptions.append((subscription, line))
        paid_subscriptions.append(
            {
                "subscription_id": subscription.id,
                "order_line_id": line.id,
                **_configuration(line),
                "expires_at": subscription.expires_at,
            }
        )
    insert_now(uow.session, *(subscription for subscription, _line in subscriptions))
    uow.emit(
        "orders.order.paid",
        subject=order.id,
        account_id=order.account_id,
        data={
            **_parties(order),
            "payment_id": payment_id,
            "payment_method": payment_method,
            "amount": money(order.amount_due, order.currency),
            "subscriptions": paid_subscriptions,
        },
    )
    for subscription, line in subscriptions:
        uow.emit(
            "orders.subscription.created",
            subject=subscription.id,
            account_id=order.account_id,
            data={
                "subscription_id": subscription.id,
                "order_id": order.id,
                "order_line_id": line.id,
                "account_id": order.account_id,
                "enterprise_project_id": order.enterprise_project_id,
                "product_id": line.product_id,
                "specification_id": line.specification_id,
                "seller_account_id": line.seller_account_id,
                "delivery_method": line.delivery_method,
                "service_supervision": line.service_supervision,
                "billing_mode": line.billing_mode,
                "quantity": line.quantity,
                "status": subscription.status,
                "expires_at": subscription.expires_at,
            },
        )
    uow.commit()
    metrics.ORDERS.labels(domain.PAID).inc()
    return order


# -- delivering ------------------------------------------------------------------


# the line is joined eagerly by default; PostgreSQL locks no outer join's nullable side
_LOCKED_SUBSCRIPTION = (
    sa.select(Subscription)
    .where(Subscription.id == sa.bindparam("subscription_id"))
    .options(lazyload(Subscription.line))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _locked_subscription(uow, subscription_id: str) -> Subscription | None:
    return uow.session.scalar(_LOCKED_SUBSCRIPTION, {"subscription_id": subscription_id})


def apply_delivery(
    uow,
    clock: Clock,
    *,
    subscription_id: str,
    starts_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> None:
    """provisioning delivered a subscription. Without service supervision it is enabled
    at once; its period is the one provisioning told the seller and signed into a
    license (``starts_at`` to ``expires_at``: from the first delivery attempt), or runs
    from now when the event does not say. With supervision it waits for the buyer's
    acceptance (the supervision flow) and its order shows ``awaiting_acceptance``. The
    order completes when every one of its subscriptions is enabled. A repeat changes
    nothing."""
    order_id = uow.session.scalar(_ORDER_OF_SUBSCRIPTION, {"subscription_id": subscription_id})
    if order_id is None:
        raise NotFound(f"subscription {subscription_id} not found")
    order = _locked_order(uow, order_id)
    subscription = _locked_subscription(uow, subscription_id)
    assert order is not None and subscription is not None
    if order.status not in (domain.PAID, domain.DELIVERING, domain.AWAITING_ACCEPTANCE):
        _log.warning(
            "delivery of %s arrived for %s order %s", subscription_id, order.status, order_id
        )
        return
    if subscription.status != domain.ENABLING:
        return
    now = clock.now()
    line = subscription.line
    if line.service_supervision:
        if order.status != domain.AWAITING_ACCEPTANCE:
            order.status = domain.AWAITING_ACCEPTANCE
            order.updated_at = now
            metrics.ORDERS.labels(domain.AWAITING_ACCEPTANCE).inc()
        uow.commit()
        return
    subscription.status = domain.ENABLED
    if starts_at is not None:
        subscription.activated_at, subscription.expires_at = starts_at, expires_at
    else:
        subscription.activated_at = now
        subscription.expires_at = domain.subscription_expiry(
            now, line.billing_mode, line.period_unit, line.period_count
        )
    subscription.updated_at = now
    uow.emit(
        "orders.subscription.activated",
        subject=subscription.id,
        account_id=subscription.account_id,
        data={
            "subscription_id": subscription.id,
            "order_id": order.id,
            "account_id": subscription.account_id,
            "product_id": line.product_id,
            "delivery_method": line.delivery_method,
            "status": subscription.status,
            "activated_at": subscription.activated_at,
            "expires_at": subscription.expires_at,
        },
    )
    uow.session.flush()
    undelivered = uow.session.scalar(
        sa.select(sa.func.count())
        .select_from(Subscription)
        .where(Subscription.order_id == order.id, Subscription.status != domain.ENABLED)
    )
    if not undelivered:
        order.status = domain.COMPLETED
        order.updated_at = now
        uow.emit(
            "orders.order.completed",
            subject=order.id,
            account_id=order.account_id,
            data={"order_id": order.id, "account_id": order.account_id, "completed_at": now},
        )
        metrics.ORDERS.labels(domain.COMPLETED).inc()
    uow.commit()


def fail_delivery(uow, clock: Clock, *, subscription_id: str, reason: str) -> None:
    """provisioning could not deliver: the order is cancelled with the reason the buyer
    reads, its subscriptions released, and the cancellation tells billing what to
    refund (a compensation, exactly once: a cancelled order is not cancelled again)."""
    order_id = uow.session.scalar(_ORDER_OF_SUBSCRIPTION, {"subscription_id": subscription_id})
    if order_id is None:
        raise NotFound(f"subscription {subscription_id} not found")
    order = _locked_order(uow, order_id)
    assert order is not None
    if order.status not in (domain.PAID, domain.DELIVERING, domain.AWAITING_ACCEPTANCE):
        return
    now = clock.now()
    for subscription in uow.session.scalars(
        sa.select(Subscription)
        .where(Subscription.order_id == order.id)
        .options(lazyload(Subscription.line))
        .with_for_update()
    ):
        subscription.status = domain.RELEASED
        subscription.updated_at = now
    _cancel(
        uow,
        order,
        f"Delivery failed: {reason}",
        now,
        refund=money(order.amount_due, order.currency),
    )
    uow.commit()


# -- cancelling ------------------------------------------------------------------


def _cancel(
    uow, order: Order, reason: str, now: dt.datetime, *, refund: dict[str, Any] | None = None
) -> None:
    order.status = domain.CANCELLED
    order.cancel_reason = reason
    order.updated_at = now
    uow.emit(
        "orders.order.cancelled",
        subject=order.id,
        account_id=order.account_id,
        data={
            "order_id": order.id,
            "account_id": order.account_id,
            "reason": reason,
            "payment_id": order.payment_id if refund else None,
            "refund": refund,
        },
    )
    metrics.ORDERS.labels(domain.CANCELLED).inc()


def cancel_order(uow, clock: Clock, *, buyer: Identity, order_id: str) -> dict[str, Any]:
    order = _own_order(uow, order_id, buyer, lock=True)
    if order.status != domain.UNPAID:
        raise Conflict(f"only an unpaid order can be cancelled; this one is {order.status}")
    if domain.payment_attempt_in_progress(order.payment_started_at, clock.now()):
        raise Conflict("a payment of this order is in progress")
    _cancel(uow, order, domain.CANCELLED_BY_BUYER, clock.now())
    view = order_view(order)
    uow.commit()
    return view


def cancel_expired_orders(uow, clock: Clock, *, batch_size: int = 100) -> int:
    """Cancel unpaid orders whose payment window passed. Safe with two replicas:
    each claims its batch with FOR UPDATE SKIP LOCKED."""
    now = clock.now()
    orders = uow.session.scalars(
        sa.select(Order)
        .where(Order.status == domain.UNPAID, Order.payment_deadline <= now)
        .order_by(Order.payment_deadline)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    cancelled = 0
    for order in orders:
        if domain.payment_attempt_in_progress(order.payment_started_at, now):
            continue
        _cancel(uow, order, domain.PAYMENT_WINDOW_PASSED, now)
        cancelled += 1
    uow.commit()
    return cancelled


# -- reading ---------------------------------------------------------------------


def get_order(uow, *, buyer: Identity, order_id: str) -> dict[str, Any]:
    return order_view(_own_order(uow, order_id, buyer))


def _page(uow, query, page: int, page_size: int) -> tuple[list[Any], int]:
    total = uow.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = uow.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return list(rows), int(total or 0)


def list_orders(
    uow, *, buyer: Identity, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    query = sa.select(Order).where(Order.account_id == buyer.account_id)
    if status:
        query = query.where(Order.status == status)
    rows, total = _page(uow, query.order_by(Order.created_at.desc(), Order.id), page, page_size)
    return {
        "items": [order_view(order) for order in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
    }


def list_subscriptions(uow, *, buyer: Identity, page: int, page_size: int) -> dict[str, Any]:
    query = (
        sa.select(Subscription)
        .where(Subscription.account_id == buyer.account_id)
        .order_by(Subscription.created_at.desc(), Subscription.id)
    )
    rows, total = _page(uow, query, page, page_size)
    return {
        "items": [subscription_view(row) for row in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
    }


def get_subscription(uow, *, buyer: Identity, subscription_id: str) -> dict[str, Any]:
    subscription = uow.session.get(Subscription, subscription_id)
    if subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    return subscription_view(subscription)
