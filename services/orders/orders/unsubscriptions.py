"""orders' unsubscription use cases (guide section 7: table 7-1 and 7.2).

A buyer asks to unsubscribe from a purchased app (``request_unsubscription``). A license,
a professional service or a supervised SaaS product may be, by negotiation, while its
first order is in the transaction guarantee period (not completed): the request waits
for the seller's review with the refund the buyer negotiated (at most what the first
order paid for the line). The seller approves it (``approve``: in one transaction the
request is approved, the first order cancelled with that refund, which billing pays back
to the payer and after which supervision closes the flow, and the subscription
released) or rejects it (``reject``: nothing changes; the buyer may ask again). An image
follows the cloud's rule: the unused part of its yearly/monthly period is refunded at
once, approved with no review. billing's ``billing.refund.completed`` of the cancelled
order makes the approved request ``refunded`` (``refund_completed``).

Every decision locks the first order, then the subscription, then the request (the
order of locks of every writer of orders): two approvals, an approval and a rejection,
an approval and the acceptance that completes the order (``supervision.flow.completed``),
two requests of one subscription: each is decided once, the later one seeing what the
first did.

An RPC's use case commits; ``refund_completed`` (an event handler's) does not: the inbox
commits it with the event.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from mercato.identity import Identity
from mercato.terms import APPROVED, CANCELLED, PENDING_REVIEW
from orders import domain, metrics
from orders.models import Unsubscription

_log = logging.getLogger(__name__)

NOT_ALLOWED = "UNSUBSCRIPTION_NOT_ALLOWED"
REFUND_ABOVE_PAID = "REFUND_ABOVE_PAID"


def _refused(rule: str) -> BusinessRuleViolation:
    metrics.UNSUBSCRIPTIONS.labels("refused").inc()
    return BusinessRuleViolation(
        f"this purchased app cannot be unsubscribed from ({rule}): "
        f"{domain.NOT_ALLOWED_RULES[rule]}",
        code=NOT_ALLOWED,
        fields={"subscription_id": [rule]},
    )


def eligible(uow, clock: Clock, *, buyer: Identity, page: int, page_size: int) -> dict[str, Any]:
    """ "My Unsubscriptions": the buyer's purchased apps that may be unsubscribed from
    now, each with the most it refunds (``max_refundable``)."""
    now = clock.now()
    found = uow.unsubscriptions.page_of_eligible(
        buyer.account_id, now, page=page, page_size=page_size
    )
    return found.view(lambda subscription: domain.eligible_view(subscription, now))


def request_unsubscription(
    uow, clock: Clock, *, buyer: Identity, request: dict[str, Any]
) -> dict[str, Any]:
    """The buyer asks to unsubscribe (``POST /v1/unsubscriptions``): 422
    UNSUBSCRIPTION_NOT_ALLOWED naming the rule, 422 REFUND_ABOVE_PAID, 400 for a refund
    missing or in another currency, 404 for a subscription not the buyer's. An image's
    request is approved at once for the unused part of its period."""
    subscription_id = request["subscription_id"]
    order_id = uow.orders.order_of_subscription(subscription_id)
    order = uow.orders.lock(order_id) if order_id is not None else None
    subscription = uow.orders.lock_subscription(subscription_id) if order is not None else None
    if order is None or subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    now = clock.now()
    pending = uow.unsubscriptions.has_pending(subscription_id)
    rule = domain.unsubscription_refusal(subscription, order, pending=pending, now=now)
    if rule is not None:
        raise _refused(rule)
    line = subscription.line
    maximum = domain.max_refundable(subscription, now)
    automatic = domain.follows_cloud_rule(line)
    if automatic:
        amount = maximum
    else:
        amount = _negotiated_refund(request.get("refund"), line.currency, maximum)
    unsubscription = Unsubscription(
        id=new_id("uns"),
        subscription_id=subscription.id,
        order_id=order.id,
        account_id=subscription.account_id,
        payer_account_id=order.payer_account_id,
        seller_account_id=line.seller_account_id,
        product_name=line.product_name,
        specification_name=subscription.specification_name or line.specification_name,
        delivery_method=line.delivery_method,
        refund_amount=amount,
        max_refundable=maximum,
        currency=line.currency,
        reason=request["reason"],
        reason_detail=request.get("reason_detail"),
        share_contact=request.get("share_contact") is True,
        status=PENDING_REVIEW,
        requested_at=now,
        updated_at=now,
    )
    if automatic:
        domain.approve_unsubscription(unsubscription, subscription, order, now, automatic=True)
    else:
        domain.record_unsubscription_requested(subscription, unsubscription)
    uow.unsubscriptions.add(unsubscription)
    uow.emit_recorded(order)
    uow.emit_recorded(subscription)
    view = domain.unsubscription_view(unsubscription)
    uow.commit()
    metrics.UNSUBSCRIPTIONS.labels("requested").inc()
    if automatic:
        metrics.UNSUBSCRIPTIONS.labels(APPROVED).inc()
        metrics.ORDERS.labels(CANCELLED).inc()
    return view


def _negotiated_refund(refund: dict[str, Any] | None, currency: str, maximum: int) -> int:
    if refund is None:
        raise ValidationError(
            "the negotiated refund is required", {"refund": ["is required (0 < refund <= paid)"]}
        )
    if refund["currency"] != currency:
        raise ValidationError(
            f"the refund must be in {currency}, the order's currency",
            {"refund": [f"must be in {currency}, the order's currency"]},
        )
    if refund["amount"] > maximum:
        metrics.UNSUBSCRIPTIONS.labels("refused").inc()
        raise BusinessRuleViolation(
            f"the refund {refund['amount']} is above what the first order paid for it "
            f"({maximum} {currency}, renewals excluded)",
            code=REFUND_ABOVE_PAID,
            fields={"refund": [f"must be at most {maximum} {currency}"]},
        )
    return int(refund["amount"])


def list_own(
    uow, *, buyer: Identity, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    found = uow.unsubscriptions.page_of_account(
        buyer.account_id, status=status, page=page, page_size=page_size
    )
    return found.view(domain.unsubscription_view)


def get_own(uow, *, buyer: Identity, unsubscription_id: str) -> dict[str, Any]:
    found = uow.unsubscriptions.get(unsubscription_id)
    if found is None or found.account_id != buyer.account_id:
        raise NotFound("unsubscription request not found")
    return domain.unsubscription_view(found)


def list_for_seller(
    uow, *, seller: Identity, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    """The requests of the seller's products, newest first; each buyer as ``{account_id,
    shared_contact}`` (the gateway names it)."""
    found = uow.unsubscriptions.page_of_seller(
        seller.account_id, status=status, page=page, page_size=page_size
    )
    return found.view(domain.unsubscription_seller_view)


def _locked_for_review(uow, seller: Identity, unsubscription_id: str):
    """The request of the seller's product with its first order and subscription, all
    locked (the order first); NotFound for any other seller's."""
    found = uow.unsubscriptions.get(unsubscription_id)
    if found is None or found.seller_account_id != seller.account_id:
        raise NotFound("unsubscription request not found")
    order = uow.orders.lock(found.order_id)
    subscription = uow.orders.lock_subscription(found.subscription_id)
    unsubscription = uow.unsubscriptions.lock(unsubscription_id)
    if unsubscription.status != PENDING_REVIEW:
        raise Conflict(
            f"the unsubscription request is {unsubscription.status}, not {PENDING_REVIEW}"
        )
    return unsubscription, order, subscription


def approve(uow, clock: Clock, *, seller: Identity, unsubscription_id: str) -> dict[str, Any]:
    """The seller approves: one transaction approves the request, cancels the first
    order with the negotiated refund and releases the subscription. 409 when the request
    is not pending review; 422 UNSUBSCRIPTION_NOT_ALLOWED when the order completed (the
    buyer accepted first: ``transaction_completed``) or the subscription was released
    meanwhile."""
    unsubscription, order, subscription = _locked_for_review(uow, seller, unsubscription_id)
    now = clock.now()
    rule = domain.unsubscription_refusal(subscription, order, pending=False, now=now)
    if rule is not None:
        raise _refused(rule)
    domain.approve_unsubscription(unsubscription, subscription, order, now)
    uow.emit_recorded(order)
    uow.emit_recorded(subscription)
    view = domain.unsubscription_view(unsubscription)
    uow.commit()
    metrics.UNSUBSCRIPTIONS.labels(APPROVED).inc()
    metrics.ORDERS.labels(CANCELLED).inc()
    return view


def reject(
    uow, clock: Clock, *, seller: Identity, unsubscription_id: str, reason: str
) -> dict[str, Any]:
    """The seller rejects, with its reason: nothing is refunded, nothing released; the
    buyer may ask again. 409 when the request is not pending review."""
    unsubscription, _order, subscription = _locked_for_review(uow, seller, unsubscription_id)
    domain.reject_unsubscription(unsubscription, subscription, reason, clock.now())
    uow.emit_recorded(subscription)
    view = domain.unsubscription_view(unsubscription)
    uow.commit()
    metrics.UNSUBSCRIPTIONS.labels("rejected").inc()
    return view


def close_pending(uow, subscriptions, reason: str, now: dt.datetime) -> int:
    """Close the requests awaiting review of ``subscriptions`` (locked by the caller)
    with no review: they were released, or their first order completed (the guarantee
    period is over), so no decision can approve them. One statement for them all (the
    lifecycle sweep passes a batch); each closed request is ``rejected`` with ``reason``
    and its ``orders.unsubscription.rejected`` recorded on its subscription: the caller
    emits the subscriptions' events and commits, all in its transaction."""
    by_id = {subscription.id: subscription for subscription in subscriptions}
    closed = uow.unsubscriptions.close_pending_of(list(by_id), reason, now)
    for request_id, subscription_id in closed:
        domain.unsubscription_closed(request_id, by_id[subscription_id], reason, now)
    if closed:
        metrics.UNSUBSCRIPTIONS.labels("rejected").inc(len(closed))
    return len(closed)


def refund_completed(uow, clock: Clock, *, order_id: str) -> None:
    """billing refunded an order: the approved unsubscription that cancelled it (if one
    did) is refunded. The caller (the inbox) commits."""
    now = clock.now()
    for unsubscription in uow.unsubscriptions.lock_approved_of_order(order_id):
        domain.unsubscription_refunded(unsubscription, now)
        metrics.UNSUBSCRIPTIONS.labels("refunded").inc()


def refresh_refund_age(uow, clock: Clock) -> float:
    """Set the gauge of the oldest approved request's wait for its refund (0 when
    none); answers it in seconds."""
    oldest = uow.unsubscriptions.oldest_approved_at()
    uow.rollback()
    age = 0.0 if oldest is None else max((clock.now() - oldest) / dt.timedelta(seconds=1), 0.0)
    metrics.UNSUBSCRIPTION_REFUND_OLDEST_APPROVED.set(age)
    return age
