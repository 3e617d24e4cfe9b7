"""Renewing a yearly/monthly subscription: a binding quote, an order placed from it, and
its payment applied to the subscription (``apply_renewal``, which every pay path calls
for a paid renewal order through ``usecases.record_payment``).

The new period starts at the subscription's expiry, also when it is expired or frozen
(the grace and retention days are not given back), and ends at 23:59:59 of its last day
in the account's time zone (``mercato.periods.renewed_expiry``). A renewal order is paid
like any order; its payment emits no ``orders.order.paid`` (nothing is delivered) but
``orders.subscription.renewed`` and ``orders.order.completed``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, NotFound
from mercato.identity import Identity
from mercato.money import money
from mercato.periods import renewed_expiry
from mercato.terms import CANCELLED, COMPLETED, RENEWAL, UNPAID, YEARLY_MONTHLY
from orders import domain, metrics, usecases
from orders.models import Order, OrderLine, RenewalQuote

# the request a downstream key names for a renewal placed (``order_requests.action``)
RENEW = "renew"

QUOTE_VALID_KEY = "RENEWAL_QUOTE_VALID_MINUTES"
DEFAULT_QUOTE_VALID_MINUTES = 30
MIN_QUOTE_VALID_MINUTES = 15


def quote_validity(config) -> dt.timedelta:
    """How long a renewal quote binds (setting RENEWAL_QUOTE_VALID_MINUTES, at least 15:
    a smaller value is a configuration error)."""
    minutes = float(config.get(QUOTE_VALID_KEY, DEFAULT_QUOTE_VALID_MINUTES))
    if minutes < MIN_QUOTE_VALID_MINUTES:
        raise ValueError(
            f"{QUOTE_VALID_KEY} must be at least {MIN_QUOTE_VALID_MINUTES} minutes, not {minutes}"
        )
    return dt.timedelta(minutes=minutes)


def _own_subscription(uow, buyer: Identity, subscription_id: str, *, lock: bool = False):
    """The buyer's subscription (404 otherwise); ``lock``: read afresh and locked, so a
    move to another project waits for the order placed from it (or it for the move)."""
    find = uow.orders.lock_subscription if lock else uow.orders.subscription
    subscription = find(subscription_id)
    if subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    return subscription


def _quote_view(quote: RenewalQuote) -> dict[str, Any]:
    return {
        "id": quote.id,
        "subscription_id": quote.subscription_id,
        "amount_due": money(quote.amount, quote.currency),
        "period": {"unit": quote.period_unit, "count": quote.period_count},
        "new_expires_at": quote.new_expires_at,
        "valid_until": quote.valid_until,
        "created_at": quote.created_at,
    }


def quote_renewal(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    subscription_id: str,
    request: dict[str, Any],
    catalog,
    valid_for: dt.timedelta,
) -> dict[str, Any]:
    """The catalog's current price of the subscription's current configuration for the
    period asked, fixed until ``valid_until``; 422 RENEWAL_NOT_SUPPORTED unless it is a
    yearly/monthly subscription enabled, expired or frozen; 409 SUBSCRIPTION_RELEASED."""
    subscription = _own_subscription(uow, buyer, subscription_id)
    refusal = subscription.renewal_refusal()
    if refusal is not None:
        raise refusal
    _refuse_while_upgrading(subscription)
    period = request["period"]
    line = subscription.line
    priced = catalog.quote(
        {
            "product_id": line.product_id,
            "specification_id": subscription.current_specification_id(),
            "billing_mode": YEARLY_MONTHLY,
            "period": period,
            "quantity": subscription.current_quantity(),
        }
    )
    time_zone = uow.orders.time_zone_of(subscription.account_id)
    now = clock.now()
    quote = RenewalQuote(
        id=new_id("rnq"),
        subscription_id=subscription.id,
        account_id=buyer.account_id,
        period_unit=period["unit"],
        period_count=period["count"],
        amount=priced["amount"]["amount"],
        currency=priced["amount"]["currency"],
        new_expires_at=renewed_expiry(
            subscription.expires_at, period["unit"], period["count"], time_zone
        ),
        valid_until=now + valid_for,
        created_at=now,
        order_id=None,
    )
    uow.orders.add_renewal_quote(quote)
    view = _quote_view(quote)
    uow.commit()
    return view


def place_renewal(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    subscription_id: str,
    request: dict[str, Any],
    billing,
    payment_window: dt.timedelta,
    request_key: str | None = None,
) -> dict[str, Any]:
    """An unpaid renewal order from a quote: the current configuration for the quoted
    period at the quoted amount. One order per quote (409 QUOTE_USED naming it), before
    ``valid_until`` (422 QUOTE_EXPIRED). A reseller's customer's is paid by the reseller
    at once. ``request_key``: a retry answers the order the first request placed."""
    if request_key is not None:
        first = usecases._first_request(uow, buyer.account_id, request_key, RENEW)
        if first is not None:
            return first.view()
    # locked as an upgrade locks it (nothing else is locked yet; then the quote, then the
    # new order): the order is booked to the project the subscription is in when it
    # commits, never to one a move is taking it from (orders.moves)
    subscription = _own_subscription(uow, buyer, subscription_id, lock=True)
    quote = uow.orders.lock_renewal_quote(request["quote_id"])
    if (
        quote is None
        or quote.account_id != buyer.account_id
        or quote.subscription_id != subscription.id
    ):
        raise NotFound("renewal quote not found")
    if quote.order_id is not None:
        raise Conflict(
            f"this quote was already ordered: order {quote.order_id}",
            {"quote_id": [f"already ordered as {quote.order_id}"]},
            code="QUOTE_USED",
        )
    now = clock.now()
    if now > quote.valid_until:
        raise BusinessRuleViolation(
            f"the quote was valid until {quote.valid_until.isoformat()}; ask for a new one",
            {"quote_id": ["expired"]},
            code="QUOTE_EXPIRED",
        )
    refusal = subscription.renewal_refusal()
    if refusal is not None:
        raise refusal
    _refuse_while_upgrading(subscription)
    _refuse_if_upgraded_since(uow, subscription, quote)
    order = build_renewal_order(
        subscription,
        period={"unit": quote.period_unit, "count": quote.period_count},
        amount=quote.amount,
        currency=quote.currency,
        payer=buyer,
        now=now,
        payment_deadline=domain.payment_deadline(now, payment_window),
        quote_id=quote.id,
    )
    quote.order_id = order.id
    if order.paid_by_reseller:
        order.payment_started_at = order.created_at  # billing is asked at once
    order.place()
    uow.orders.add(order)
    if request_key is not None and not uow.orders.add_request(
        buyer.account_id, request_key, RENEW, order.id, now
    ):
        uow.rollback()  # the same request, placed meanwhile: answer that one
        first = usecases._first_request(uow, buyer.account_id, request_key, RENEW)
        if first is None:
            raise Conflict("the same request is being placed; try again")
        return first.view()
    if order.paid_by_reseller:
        return usecases._place_paid_by_reseller(uow, clock, order, billing)
    uow.emit_recorded(order)
    view = order.view()
    uow.commit()
    metrics.ORDERS.labels(UNPAID).inc()
    return view


def build_renewal_order(
    subscription,
    *,
    period: dict[str, Any],
    amount: int,
    currency: str,
    payer: Identity,
    now: dt.datetime,
    payment_deadline: dt.datetime,
    quote_id: str | None = None,
    auto_renewal_key: str | None = None,
) -> Order:
    """An unpaid renewal order (not yet placed nor added) of the subscription's current
    configuration for ``period`` at ``amount``: from a buyer's quote (``quote_id``) or
    an automatic renewal's price (``auto_renewal_key``). ``payer``: the buyer, carrying
    its reseller who pays a reseller's customer's orders."""
    line = subscription.line
    quantity = subscription.current_quantity()
    order = Order(
        id=new_id("ord"),
        type=RENEWAL,
        subscription_id=subscription.id,
        quote_id=quote_id,
        auto_renewal_key=auto_renewal_key,
        account_id=payer.account_id,
        payer_account_id=payer.reseller_account_id or payer.account_id,
        enterprise_project_id=subscription.enterprise_project_id,
        status=UNPAID,
        amount_due=amount,
        currency=currency,
        payment_deadline=payment_deadline,
        share_contact=False,
        created_at=now,
        updated_at=now,
    )
    order.lines = [
        OrderLine(
            id=new_id("oln"),
            order_id=order.id,
            position=0,
            product_id=line.product_id,
            product_name=line.product_name,
            product_guide_url=line.product_guide_url,
            seller_account_id=line.seller_account_id,
            seller_company_name=line.seller_company_name,
            specification_id=subscription.current_specification_id(),
            specification_name=subscription.facts()["specification_name"],
            delivery_method=line.delivery_method,
            service_supervision=line.service_supervision,
            billing_mode=YEARLY_MONTHLY,
            period_unit=period["unit"],
            period_count=period["count"],
            quantity=quantity,
            amount=amount,
            currency=currency,
            **line_price(
                amount,
                quantity,
                currency,
                f"{subscription.facts()['specification_name']} x {quantity}, renewed for "
                f"{period['count']} {period['unit']}(s)",
            ),
        )
    ]
    return order


def apply_renewal(uow, clock: Clock, order: Order) -> None:
    """A renewal order was paid (its lines loaded, the order locked and ``paid``): the
    subscription runs to its renewed expiry and is enabled, the order completes. A
    subscription released meanwhile cannot be renewed: the order is cancelled with a
    full refund (billing refunds it on ``orders.order.cancelled``). The caller emits the
    order's events and commits."""
    now = clock.now()
    subscription = uow.orders.lock_subscription(order.subscription_id)
    if subscription is None or subscription.renewal_refusal() is not None:
        order.cancel_undelivered(domain.SUBSCRIPTION_GONE, now)
        metrics.ORDERS.labels(CANCELLED).inc()
        return
    (line,) = order.lines
    if configuration_changed(subscription, line):
        order.cancel_undelivered(CONFIGURATION_CHANGED, now)  # refunded in full
        metrics.ORDERS.labels(CANCELLED).inc()
        return
    automatic = order.auto_renewal_key is not None
    subscription.renew(
        renewal_order_id=order.id,
        period=line.period() or {},
        amount=order.amount(),
        time_zone=uow.orders.time_zone_of(subscription.account_id),
        automatic=automatic,
        now=now,
    )
    uow.emit_recorded(subscription)
    order.complete(now)
    metrics.ORDERS.labels(COMPLETED).inc()
    metrics.RENEWALS.labels("automatic" if automatic else "manual").inc()


def list_renewals(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    days: int,
    page: int,
    page_size: int,
    periods: domain.LifecyclePeriods = domain.DEFAULT_PERIODS,
) -> dict[str, Any]:
    """The buyer's subscriptions to renew: enabled ones expiring within ``days``, and
    every expired or frozen one, soonest expiry first."""
    now = clock.now()
    found = uow.orders.page_of_renewals(
        buyer.account_id,
        expiring_before=now + dt.timedelta(days=days),
        page=page,
        page_size=page_size,
    )
    return found.view(lambda subscription: _renewal_item(subscription, now, periods))


def _renewal_item(subscription, now: dt.datetime, periods) -> dict[str, Any]:
    facts = subscription.facts()
    lifecycle = subscription.lifecycle_view(periods)
    left = (subscription.expires_at - now) / dt.timedelta(days=1)
    return {
        "subscription_id": subscription.id,
        "product_name": facts["product_name"],
        "specification_name": facts["specification_name"],
        "delivery_method": facts["delivery_method"],
        "status": subscription.status,
        "expires_at": subscription.expires_at,
        "days_left": max(0, math.ceil(left)),
        "auto_renew": bool(subscription.auto_renew),
        "auto_renew_period": lifecycle["auto_renew_period"],
        "grace_ends_at": lifecycle["grace_ends_at"],
        "release_at": lifecycle["release_at"],
    }


# -- review 9: a renewal and an upgrade in flight together (finding 6), order lines that
# add up (finding 11) --

CONFIGURATION_CHANGED = (
    "the purchased app's configuration changed (an upgrade) after this renewal was "
    "ordered; renew the new configuration"
)


def _refuse_while_upgrading(subscription) -> None:
    """No renewal while an upgrade is paid and not applied: the renewal would price the
    configuration the upgrade replaces (409 CONFLICT naming the upgrade order)."""
    if subscription.upgrading_order_id is not None:
        raise Conflict(
            f"an upgrade of the purchased app is under way (order "
            f"{subscription.upgrading_order_id}); renew once it is applied",
            {"subscription_id": [f"upgrade order {subscription.upgrading_order_id} under way"]},
        )


def _refuse_if_upgraded_since(uow, subscription, quote: RenewalQuote) -> None:
    """A quote made before an upgrade was applied priced the configuration the
    subscription no longer has (409 CONFLICT: ask for a new quote)."""
    upgrade_order_id = uow.upgrades.upgrade_completed_since(subscription.id, quote.created_at)
    if upgrade_order_id is not None:
        raise Conflict(
            f"the purchased app was upgraded (order {upgrade_order_id}) after this quote; "
            "ask for a new one",
            {"quote_id": [f"made before upgrade order {upgrade_order_id}"]},
        )


def configuration_changed(subscription, line: OrderLine) -> bool:
    """Whether a renewal order's line (the configuration it priced) no longer matches
    the subscription: upgraded meanwhile, or an upgrade under way."""
    return subscription.upgrading_order_id is not None or (
        line.specification_id,
        line.quantity,
    ) != (subscription.current_specification_id(), subscription.current_quantity())


def line_price(amount: int, quantity: int, currency: str, description: str) -> dict[str, Any]:
    """An order line's ``unit_price`` and ``breakdown`` for ``amount`` charged for
    ``quantity`` units: ``unit_price`` x ``quantity`` == ``amount`` when ``amount``
    divides by ``quantity``; otherwise ``unit_price`` is the price of all the units
    together, which the line's breakdown says (a remainder is never dropped)."""
    if quantity > 0 and amount % quantity == 0:
        return {"unit_price": amount // quantity, "breakdown": None}
    return {
        "unit_price": amount,
        "breakdown": [
            {
                "item": "product",
                "description": f"{description}; unit_price is the price of all {quantity} together",
                "quantity": 1,
                "unit_price": money(amount, currency),
                "amount": money(amount, currency),
            }
        ],
    }
