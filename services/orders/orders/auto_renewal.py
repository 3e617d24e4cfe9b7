"""Automatic renewal of licenses and professional services billed yearly/monthly.

The buyer turns it on for a period (``set_auto_renew``); the subscription is then due
at 03:00 account time 7 days before its expiry's local date (``next_auto_renew_at``).
The sweep (``sweep``, a timer of every replica) claims the due subscriptions with FOR
UPDATE SKIP LOCKED and, per subscription and period, places one renewal order
(``orders.auto_renewal_key``) priced by the catalog now, and pays it through billing
from the balance, then the credit (a reseller's customer's: by its reseller).

Exactly once per period: the order is unique per period, billing keeps one payment per
order (a second pay answers the first payment), and the payment applies to the
subscription in ``usecases.record_payment`` (the renewal's application), which a repeat
leaves alone. The claim commits a lease (``next_auto_renew_at`` moved ahead by
``LEASE``) and the order's payment mark before billing is asked, so a replica that dies
between billing's charge and the extension leaves an order that billing's
``billing.payment.succeeded`` event, or the sweep once the lease is over, completes.

A refused payment (402 from both), or a renewal the catalog no longer prices (its
period or configuration withdrawn: no order), is a failed attempt: tried again at 03:00
local the next day while before the expiry (the order's payment deadline is the
expiry), counted in ``auto_renew_failures`` and announced
(``orders.subscription.auto_renew_failed``). Each subscription is claimed in its own
savepoint: one that cannot be handled never holds back the batch's others.

A payment attempt in progress is left alone: an order whose payment mark is younger than
``LEASE`` (the buyer paying it by card, say) is not asked for again, and billing
answering "pending" is an attempt in progress, not a failure.

Locks: order first, then subscription, as on the pay path (``usecases.record_payment``);
the sweep, holding the subscriptions it claimed, takes their orders only if no one holds
them (``uow.auto_renewals.lock_order_unless_held``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mercato.clock import Clock
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    MercatoError,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    ValidationError,
)
from mercato.identity import BUYER, Identity
from mercato.terms import BALANCE, CREDIT, ENABLED, RELEASED, RESELLER, UNPAID, YEARLY_MONTHLY
from orders import domain, metrics, renewals, usecases
from orders.models import Order, Subscription

_log = logging.getLogger(__name__)

# how long a claimed attempt holds its subscription: past it, an attempt that did not
# finish (its process died) is taken up again by the next sweep; a payment mark younger
# than this is an attempt in progress, left alone
LEASE = dt.timedelta(minutes=10)
SWITCHED_OFF = "auto-renew was switched off or its period changed"
PENDING = "pending"


def _own(uow, buyer: Identity, subscription_id: str) -> Subscription:
    subscription = uow.orders.subscription(subscription_id)
    if subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    return subscription


def view(subscription: Subscription) -> dict[str, Any]:
    unit = subscription.auto_renew_period_unit
    return {
        "subscription_id": subscription.id,
        "auto_renew": subscription.auto_renew,
        "auto_renew_period": {"unit": unit, "count": subscription.auto_renew_period_count}
        if unit
        else None,
        "next_auto_renew_at": subscription.next_auto_renew_at if subscription.auto_renew else None,
        "expires_at": subscription.expires_at,
    }


def _price(catalog, subscription: Subscription, period: dict[str, Any]) -> dict[str, Any]:
    """The catalog's price now of the subscription's current configuration for
    ``period`` (its ``amount``)."""
    return catalog.quote(
        {
            "product_id": subscription.line.product_id,
            "specification_id": subscription.current_specification_id(),
            "billing_mode": YEARLY_MONTHLY,
            "period": period,
            "quantity": subscription.current_quantity(),
        }
    )


def _refusal_text(exc: MercatoError) -> str:
    detail = "; ".join(f"{name}: {', '.join(map(str, why))}" for name, why in exc.fields.items())
    return f"{exc.message} ({detail})" if detail else exc.message


def set_auto_renew(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    subscription_id: str,
    request: dict[str, Any],
    catalog,
) -> dict[str, Any]:
    """Turn automatic renewal on for ``period`` (one the catalog sells for the current
    configuration, else 400 naming ``period``), change its period, or turn it off (at
    any time). An unpaid automatic renewal order waiting for its next attempt is
    cancelled when it is turned off or its period changes."""
    subscription = _own(uow, buyer, subscription_id)
    line = subscription.line
    if not domain.may_auto_renew(line.delivery_method, line.billing_mode):
        raise BusinessRuleViolation(
            "auto-renew is offered for licenses and professional services billed "
            f"yearly/monthly; this one is a {line.delivery_method}, {line.billing_mode}",
            code="AUTO_RENEW_NOT_SUPPORTED",
        )
    period: dict[str, Any] = request.get("period") or {}
    if request["enabled"]:
        _refuse_if_released(subscription)
        try:
            _price(catalog, subscription, period)  # asked before any row is locked
        except ValidationError as exc:
            raise ValidationError(
                f"this period cannot be renewed automatically: {_refusal_text(exc)}",
                {"period": [f"not offered for this product: {_refusal_text(exc)}"]},
            ) from exc
    uow.rollback()  # nothing locked while the catalog was asked; now: orders, then the row
    waiting = uow.auto_renewals.lock_unpaid_orders_of(subscription_id)
    subscription = uow.orders.lock_subscription(subscription_id)
    if subscription is None:
        raise NotFound("purchased app not found")
    now = clock.now()
    if request["enabled"]:
        _refuse_if_released(subscription)
        changed = subscription.auto_renew and (
            subscription.auto_renew_period_unit != period["unit"]
            or subscription.auto_renew_period_count != period["count"]
        )
        if changed:
            _cancel_waiting_orders(uow, waiting, now)
        subscription.auto_renew = True
        subscription.auto_renew_period_unit = period["unit"]
        subscription.auto_renew_period_count = period["count"]
        subscription.auto_renew_failures = 0
        subscription.next_auto_renew_at = (
            domain.auto_renew_at(
                subscription.expires_at, uow.orders.time_zone_of(subscription.account_id), now
            )
            if subscription.expires_at is not None
            else None
        )
    else:
        if subscription.auto_renew:
            _cancel_waiting_orders(uow, waiting, now)
        subscription.auto_renew = False
        subscription.auto_renew_period_unit = None
        subscription.auto_renew_period_count = None
        subscription.next_auto_renew_at = None
    subscription.updated_at = now
    answer = view(subscription)
    uow.commit()
    return answer


def _refuse_if_released(subscription: Subscription) -> None:
    if subscription.status == RELEASED:
        raise Conflict(
            "the purchased app was released; it can no longer be renewed",
            code="SUBSCRIPTION_RELEASED",
        )


def _cancel_waiting_orders(uow, waiting, now: dt.datetime) -> None:
    """Cancel the subscription's unpaid automatic renewal orders (``waiting``, locked)
    that no payment attempt marks, and free their period's key for a new order."""
    for order in waiting:
        if order.payment_started_at is not None:
            continue  # billing is being asked: its answer decides
        order.cancel(SWITCHED_OFF, now)
        order.auto_renewal_key = None
        uow.emit_recorded(order)
        metrics.ORDERS.labels("cancelled").inc()


# -- the sweep -------------------------------------------------------------------------


def sweep(uow, clock: Clock, *, catalog, billing_as, batch_size: int = 50) -> int:
    """Attempt every automatic renewal due now, one batch after another; answers how
    many payments were attempted. ``billing_as(payer)``: billing, asked as ``payer``
    (the order's buyer, carrying its reseller). Safe with two replicas."""
    attempted = 0
    while True:
        claimed = claim_due(uow, clock, catalog=catalog, batch_size=batch_size)
        for order_id in claimed.to_pay:
            try:
                attempted += pay_renewal(uow, clock, order_id=order_id, billing_as=billing_as)
            except Exception:
                # the claim's lease keeps it until the next sweep after it asks again
                uow.rollback()
                _log.exception(
                    "automatic renewal order %s not settled; asked again later", order_id
                )
        if claimed.count < batch_size:
            break
    metrics.RENEWALS_DUE.set(uow.auto_renewals.count_due(clock.now()))
    uow.rollback()
    return attempted


class Claimed:
    """One claimed batch: how many subscriptions it held, and the orders to pay."""

    def __init__(self) -> None:
        self.count = 0
        self.to_pay: list[str] = []


def claim_due(uow, clock: Clock, *, catalog, batch_size: int = 50) -> Claimed:
    """Claim one batch of due subscriptions (locked, skipping those another replica
    holds): each gets its period's renewal order (placed now if it has none), the
    order's payment mark and a lease, each in its own savepoint; committed."""
    now = clock.now()
    claimed = Claimed()
    for subscription in uow.auto_renewals.claim_due(now, limit=batch_size):
        claimed.count += 1
        try:
            with uow.auto_renewals.savepoint():
                order = _order_to_pay(uow, subscription, catalog, now)
                if order is None:
                    continue
                subscription.next_auto_renew_at = now + LEASE
                order.payment_started_at = now
                uow.orders.mark_payment_started(order)
        except Exception:
            # what this subscription changed is undone; the others go on. Not asked
            # again before the lease is over (a fault must not hold the batch's head).
            _log.exception(
                "automatic renewal of %s not claimed; tried again later", subscription.id
            )
            subscription.next_auto_renew_at = now + LEASE
            continue
        claimed.to_pay.append(order.id)
    uow.commit()
    return claimed


def _order_to_pay(uow, subscription: Subscription, catalog, now: dt.datetime) -> Order | None:
    """The unpaid renewal order of the subscription's current period, placed if it has
    none; None when nothing is to be paid now (the subscription is rescheduled, or the
    order is held by a payment being applied or attempted)."""
    assert subscription.expires_at is not None
    time_zone = uow.orders.time_zone_of(subscription.account_id)
    due_at = domain.auto_renew_due_at(subscription.expires_at, time_zone)
    if now >= subscription.expires_at:
        subscription.next_auto_renew_at = subscription.expires_at  # none left this period
        return None
    if due_at > now:
        # renewed meanwhile (by hand, or by billing's event): the next period's time
        subscription.next_auto_renew_at = due_at
        return None
    key = domain.auto_renewal_key(subscription.id, subscription.expires_at)
    order_id = uow.auto_renewals.order_id_of_period(key)
    if order_id is None:
        return _place_renewal_order(uow, subscription, catalog, key, time_zone, now)
    order = uow.auto_renewals.lock_order_unless_held(order_id)
    if order is None:
        return None  # a payment is being applied to it: the next sweep sees how it ended
    if order.status != UNPAID:
        # paid (the extension is applied in the same transaction) or cancelled
        subscription.next_auto_renew_at = subscription.expires_at
        return None
    started = order.payment_started_at
    if started is not None and now - started < LEASE:
        # a payment attempt is in progress (the buyer's card payment, say): its outcome
        # decides; looked at again once the mark is old
        subscription.next_auto_renew_at = started + LEASE
        return None
    return order


def _place_renewal_order(
    uow, subscription: Subscription, catalog, key: str, time_zone: str, now: dt.datetime
) -> Order | None:
    """The period's renewal order (``renewals.build_renewal_order``) at the catalog's
    price now; unpaid until the expiry, paid by whoever paid the subscription's first
    order. A period or configuration the catalog no longer sells is a failed attempt
    (None)."""
    assert subscription.expires_at is not None
    unit, count = subscription.auto_renew_period_unit, subscription.auto_renew_period_count
    assert unit is not None and count is not None
    period = {"unit": unit, "count": count}
    try:
        priced = _price(catalog, subscription, period)
    except ServiceUnavailable:
        raise  # the catalog does not answer: the claim is tried again after the lease
    except MercatoError as exc:
        _log.warning("auto-renewal of %s could not be priced: %s", subscription.id, exc)
        next_attempt = domain.next_auto_renew_attempt(subscription.expires_at, time_zone, now)
        reason = f"the renewal could not be priced: {_refusal_text(exc)}"
        domain.auto_renew_failed(subscription, None, reason, next_attempt, now)
        uow.emit_recorded(subscription)
        metrics.AUTO_RENEW_FAILURES.inc()
        return None
    first = uow.orders.get(subscription.order_id)
    order = renewals.build_renewal_order(
        subscription,
        period=period,
        amount=priced["amount"]["amount"],
        currency=priced["amount"]["currency"],
        payer=payer_identity(first),
        now=now,
        payment_deadline=subscription.expires_at,
        auto_renewal_key=key,
    )
    order.place()
    uow.orders.add(order)
    uow.emit_recorded(order)
    metrics.ORDERS.labels(UNPAID).inc()
    return order


def payer_identity(order: Order) -> Identity:
    """Who billing is asked as for ``order``: its buyer (carrying its reseller, who pays
    a reseller's customer's orders)."""
    return Identity(
        account_id=order.account_id,
        user_id="svc_orders",
        account_type=BUYER,
        roles=(BUYER,),
        reseller_account_id=order.payer_account_id if order.paid_by_reseller else None,
    )


def pay_renewal(uow, clock: Clock, *, order_id: str, billing_as) -> int:
    """Pay one claimed renewal order: the balance, then the credit (a reseller's
    customer's: its reseller). Paid: the subscription is extended (``record_payment``)
    and due again 7 days before its new expiry. Pending: an attempt in progress
    (billing's event settles it). Refused: the order stays unpaid for the next attempt
    and the failure is announced. Billing not answering: the lease runs out and the
    next sweep asks again (billing charges an order once). Answers 1 if billing was
    asked."""
    order = uow.orders.get(order_id)
    if order is None:
        uow.rollback()
        return 0
    # what billing is asked, copied before the transaction ends: none stays open
    # (idle) while billing answers
    payer, parties, amount = payer_identity(order), order.parties(), order.amount()
    methods = (RESELLER,) if order.paid_by_reseller else (BALANCE, CREDIT)
    uow.rollback()
    billing = billing_as(payer)
    payment, reasons = None, []
    for method in methods:
        try:
            answer = billing.pay_order({**parties, "amount": amount, "payment_method": method})
        except PaymentRequired as exc:
            reasons.append(f"{method}: {exc}")
            continue
        except ServiceUnavailable:
            _log.warning("billing did not answer for renewal order %s; asked again later", order_id)
            return 1
        except Conflict as exc:  # cancelled meanwhile: billing charges it no more
            _log.warning("renewal order %s was not paid: %s", order_id, exc)
            uow.orders.clear_payment_mark(order_id)
            uow.commit()
            return 1
        if answer["status"] == PENDING:
            # a payment in progress (the buyer's card, say): billing's event settles it;
            # the mark stays, so nothing cancels the order under it
            _log.info("renewal order %s has a payment in progress", order_id)
            return 1
        if answer["status"] == "succeeded":
            payment = answer
            break
        reasons.append(f"{method}: {answer.get('failure_reason') or answer['status']}")
    if payment is not None:
        _paid(uow, clock, order_id, payment)
    else:
        _refused(uow, clock, order_id, "; ".join(reasons) or "the payment was refused")
    return 1


def _paid(uow, clock: Clock, order_id: str, payment: dict[str, Any]) -> None:
    order = usecases.record_payment(
        uow,
        clock,
        order_id=order_id,
        payment_id=payment["id"],
        payment_method=payment["payment_method"],
    )
    subscription = uow.orders.lock_subscription(order.subscription_id)
    if subscription is not None:
        _reschedule(uow, clock, subscription)
    uow.commit()


def _reschedule(uow, clock: Clock, subscription: Subscription) -> None:
    """Due again 7 days before its (new) expiry, failures forgotten."""
    now = clock.now()
    subscription.auto_renew_failures = 0
    if subscription.auto_renew and subscription.expires_at is not None:
        subscription.next_auto_renew_at = domain.auto_renew_at(
            subscription.expires_at, uow.orders.time_zone_of(subscription.account_id), now
        )
    subscription.updated_at = now


def _refused(uow, clock: Clock, order_id: str, reason: str) -> None:
    uow.orders.clear_payment_mark(order_id)
    order = uow.orders.lock(order_id)
    subscription = uow.orders.lock_subscription(order.subscription_id) if order else None
    metrics.AUTO_RENEW_FAILURES.inc()
    if order is None or subscription is None or order.status != UNPAID:
        uow.commit()
        return
    now = clock.now()
    assert subscription.expires_at is not None
    next_attempt = (
        domain.next_auto_renew_attempt(
            subscription.expires_at, uow.orders.time_zone_of(subscription.account_id), now
        )
        if subscription.status == ENABLED
        else None
    )
    domain.auto_renew_failed(subscription, order.id, reason, next_attempt, now)
    uow.emit_recorded(subscription)
    uow.commit()
