"""Upgrades of SaaS subscriptions: a binding quote for a higher configuration for the
time left, the upgrade order placed from it, what its payment starts (``upgrade_paid``,
called by the pay path for an order of type ``upgrade``) and provisioning's answer
(``instance_upgraded``, ``instance_upgrade_failed``).

The order of an upgrade is paid like any order and does not emit ``orders.order.paid``:
its payment makes it ``delivering`` and announces ``orders.subscription.upgrading``, on
which provisioning calls the seller's ``upgradeInstance``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, MercatoError, NotFound
from mercato.identity import Identity
from mercato.money import money
from mercato.terms import DELIVERING, PAID, RELEASED, UNPAID, UPGRADE
from orders import domain, metrics, renewals, usecases
from orders.models import Order, OrderLine, Subscription, UpgradeQuote

_log = logging.getLogger(__name__)

DEFAULT_QUOTE_VALIDITY = dt.timedelta(minutes=30)
# the request a downstream key names for an upgrade placed (``order_requests.action``)
UPGRADE_REQUEST = "upgrade"


def _own_subscription(uow, buyer: Identity, subscription_id: str) -> Subscription:
    subscription = uow.orders.lock_subscription(subscription_id)
    if subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    return subscription


def _require_upgradable(subscription: Subscription) -> None:
    if not domain.may_upgrade(subscription):
        raise BusinessRuleViolation(
            "only an enabled SaaS subscription billed yearly/monthly with no upgrade under "
            "way can be upgraded",
            code="UPGRADE_NOT_SUPPORTED",
        )


def _price(catalog, subscription: Subscription, period, specification_id: str, quantity: int):
    line = subscription.line
    return catalog.quote(
        {
            "product_id": line.product_id,
            "specification_id": specification_id,
            "billing_mode": line.billing_mode,
            "period": period,
            "quantity": quantity,
        }
    )


def _refuse_while_renewing(uow, subscription: Subscription, now: dt.datetime) -> None:
    """No upgrade while a renewal order of the subscription may still be paid: the
    renewal priced the current configuration for a period the upgrade does not pay for
    (409 CONFLICT naming the renewal order; pay or cancel it first)."""
    renewal_order_id = uow.upgrades.unpaid_renewal_order_id(subscription.id, now)
    if renewal_order_id is not None:
        raise Conflict(
            f"the purchased app has an unpaid renewal order {renewal_order_id}: pay or "
            "cancel it before upgrading",
            {"subscription_id": [f"renewal order {renewal_order_id} is unpaid"]},
        )


def _downgrade() -> BusinessRuleViolation:
    return BusinessRuleViolation(
        "an upgrade goes to a higher configuration: at least the quantity, and another "
        "specification or more of it, priced above the current one",
        code="DOWNGRADE_NOT_SUPPORTED",
    )


def quote_upgrade(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    subscription_id: str,
    request: dict[str, Any],
    catalog,
    validity: dt.timedelta = DEFAULT_QUOTE_VALIDITY,
) -> dict[str, Any]:
    """A binding price for moving the subscription to ``{specification_id, quantity}``
    for the time it has left (``POST /v1/purchased-apps/{id}/upgrade-quotes``)."""
    subscription = _own_subscription(uow, buyer, subscription_id)
    _require_upgradable(subscription)
    _refuse_while_renewing(uow, subscription, clock.now())
    current = domain.current_configuration(subscription)
    specification_id, quantity = request["specification_id"], request["quantity"]
    if not domain.is_higher_configuration(
        current_specification_id=current["specification_id"],
        current_quantity=current["quantity"],
        specification_id=specification_id,
        quantity=quantity,
    ):
        raise _downgrade()
    period = _period_priced(uow, subscription)
    uow.rollback()  # no lock held while catalog prices it
    target_quote = _price(catalog, subscription, period, specification_id, quantity)
    current_quote = _price(
        catalog, subscription, period, current["specification_id"], current["quantity"]
    )
    if target_quote["amount"]["amount"] <= current_quote["amount"]["amount"]:
        raise _downgrade()
    now = clock.now()
    assert subscription.expires_at is not None
    started = subscription.period_started_at or subscription.activated_at
    if now >= subscription.expires_at:
        raise BusinessRuleViolation(
            "the subscription's period has ended", code="UPGRADE_NOT_SUPPORTED"
        )
    target = {"specification_name": target_quote["specification_name"], "quantity": quantity}
    price = domain.upgrade_price(
        target_price=target_quote["amount"]["amount"],
        current_price=current_quote["amount"]["amount"],
        currency=target_quote["amount"]["currency"],
        target=target,
        current=current,
        period_started_at=started,
        expires_at=subscription.expires_at,
        now=now,
    )
    quote = UpgradeQuote(
        id=new_id("upq"),
        subscription_id=subscription.id,
        account_id=buyer.account_id,
        specification_id=specification_id,
        specification_name=target_quote["specification_name"],
        quantity=quantity,
        amount=price.amount,
        currency=target_quote["amount"]["currency"],
        lines=price.lines,
        valid_until=now + validity,
        created_at=now,
    )
    uow.upgrades.add_quote(quote)
    uow.commit()
    return quote_view(quote)


def _period_priced(uow, subscription: Subscription) -> dict[str, Any] | None:
    """The current period's: the last renewal's, or the purchase's."""
    return uow.upgrades.period_of_last_renewal(subscription.id) or subscription.line.period()


def quote_view(quote: UpgradeQuote) -> dict[str, Any]:
    return {
        "id": quote.id,
        "subscription_id": quote.subscription_id,
        "amount_due": money(quote.amount, quote.currency),
        "lines": quote.lines,
        "valid_until": quote.valid_until,
        "specification_id": quote.specification_id,
        "specification_name": quote.specification_name,
        "quantity": quote.quantity,
    }


def place_upgrade(
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
    """The upgrade order at the quoted amount (``POST /v1/purchased-apps/{id}/upgrades``):
    one per quote, until its ``valid_until`` (the last valid instant). A reseller's
    customer's is paid by the reseller at once, as any of its orders. ``request_key``:
    a retry answers the order the first request placed (as a renewal's)."""
    if request_key is not None:
        first = usecases._first_request(uow, buyer.account_id, request_key, UPGRADE_REQUEST)
        if first is not None:
            return first.view()
    if request["accept_terms"] is not True:
        raise BusinessRuleViolation(
            "the product's terms must be accepted to upgrade", code="TERMS_NOT_ACCEPTED"
        )
    subscription = _own_subscription(uow, buyer, subscription_id)
    quote = uow.upgrades.lock_quote(request["quote_id"])
    if quote is None or quote.subscription_id != subscription.id:
        raise NotFound("upgrade quote not found")
    if quote.order_id is not None:
        raise Conflict(
            f"this quote already made order {quote.order_id}",
            code="QUOTE_USED",
            fields={"quote_id": [f"already made order {quote.order_id}"]},
        )
    now = clock.now()
    if now > quote.valid_until:
        raise BusinessRuleViolation(
            f"the quote was valid until {quote.valid_until.isoformat()}; ask for a new one",
            {"quote_id": ["expired"]},
            code="QUOTE_EXPIRED",
        )
    _require_upgradable(subscription)
    _refuse_while_renewing(uow, subscription, now)
    order = _upgrade_order(
        subscription, quote, _period_priced(uow, subscription), buyer, now, payment_window
    )
    if order.paid_by_reseller:
        order.payment_started_at = order.created_at  # billing is asked at once
    order.place()
    uow.orders.add(order)
    uow.upgrades.mark_quote_ordered(quote, order.id)
    if request_key is not None and not uow.orders.add_request(
        buyer.account_id, request_key, UPGRADE_REQUEST, order.id, now
    ):
        uow.rollback()  # the same request, placed meanwhile: answer that one
        first = usecases._first_request(uow, buyer.account_id, request_key, UPGRADE_REQUEST)
        if first is None:
            raise Conflict("the same request is being placed; try again")
        return first.view()
    if order.paid_by_reseller:
        return usecases._place_paid_by_reseller(uow, clock, order, billing)
    uow.emit_recorded(order)
    uow.commit()
    metrics.ORDERS.labels(UNPAID).inc()
    return order.view()


def _upgrade_order(
    subscription: Subscription,
    quote: UpgradeQuote,
    period: dict[str, Any] | None,
    buyer: Identity,
    now: dt.datetime,
    payment_window: dt.timedelta,
) -> Order:
    line = subscription.line
    order = Order(
        id=new_id("ord"),
        type=UPGRADE,
        subscription_id=subscription.id,
        quote_id=quote.id,
        account_id=buyer.account_id,
        payer_account_id=buyer.reseller_account_id or buyer.account_id,
        enterprise_project_id=subscription.enterprise_project_id,
        status=UNPAID,
        amount_due=quote.amount,
        currency=quote.currency,
        payment_deadline=domain.payment_deadline(now, payment_window),
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
            specification_id=quote.specification_id,
            specification_name=quote.specification_name,
            delivery_method=line.delivery_method,
            service_supervision=line.service_supervision,
            billing_mode=line.billing_mode,
            # the period priced (the current one's): its time left is what is charged
            period_unit=(period or {}).get("unit"),
            period_count=(period or {}).get("count"),
            quantity=quote.quantity,
            amount=quote.amount,
            currency=quote.currency,
            **renewals.line_price(
                quote.amount,
                quote.quantity,
                quote.currency,
                f"{quote.specification_name} x {quote.quantity}, upgraded for the time "
                "left of the current period",
            ),
        )
    ]
    return order


def refusal_before_charging(uow, order: Order) -> MercatoError | None:
    """Why an unpaid upgrade order must not be charged (the pay path asks before calling
    billing; ``None``: it may be): its subscription was released (409
    SUBSCRIPTION_RELEASED) or can no longer be upgraded, expired or frozen, or another
    upgrade under way (422 UPGRADE_NOT_SUPPORTED). The caller cancels the order."""
    subscription = uow.orders.subscription(order.subscription_id)
    if subscription is None or subscription.status == RELEASED:
        return Conflict(
            "the purchased app was released; it can no longer be upgraded",
            code="SUBSCRIPTION_RELEASED",
        )
    if not domain.may_upgrade(subscription):
        return BusinessRuleViolation(
            f"the purchased app can no longer be upgraded (it is {subscription.status}"
            + (", another upgrade is under way" if subscription.upgrading_order_id else "")
            + ")",
            code="UPGRADE_NOT_SUPPORTED",
        )
    return None


def _target(quote: UpgradeQuote) -> dict[str, Any]:
    return {
        "specification_id": quote.specification_id,
        "specification_name": quote.specification_name,
        "quantity": quote.quantity,
    }


def upgrade_paid(uow, clock: Clock, order: Order) -> None:
    """An upgrade order was paid (the pay path calls this in the payment's transaction,
    ``order`` locked and marked paid): it becomes ``delivering``, the subscription shows
    the upgrade under way and ``orders.subscription.upgrading`` asks provisioning to
    apply it. A subscription that can no longer be upgraded (released meanwhile, or
    another upgrade under way) gets the order cancelled with a full refund. A repeat
    changes nothing. The caller commits."""
    now = clock.now()
    subscription = uow.orders.lock_subscription(order.subscription_id)
    quote = uow.upgrades.quote(order.quote_id)
    if subscription is None or quote is None:
        _log.error("upgrade order %s has no subscription or quote", order.id)
        return
    if subscription.upgrading_order_id == order.id or order.status != PAID:
        return  # already under way, or the order moved on
    if not domain.may_upgrade(subscription):
        domain.refuse_upgrade(
            subscription, order, "the subscription can no longer be upgraded", now
        )
        uow.emit_recorded(order)
        uow.emit_recorded(subscription)
        metrics.ORDERS.labels("cancelled").inc()
        return
    domain.start_upgrade(subscription, order, _target(quote), now)
    uow.emit_recorded(order)
    uow.emit_recorded(subscription)
    metrics.ORDERS.labels(DELIVERING).inc()


def _under_way(uow, subscription_id: str, order_id: str):
    order = uow.orders.lock(order_id)
    if order is None or order.type != UPGRADE or order.subscription_id != subscription_id:
        _log.warning("provisioning answered for upgrade order %s, which is unknown", order_id)
        return None, None
    if order.status != DELIVERING:
        return None, None  # applied or refused already: a repeat
    subscription = uow.orders.lock_subscription(subscription_id)
    return order, subscription


def instance_upgraded(uow, clock: Clock, *, subscription_id: str, order_id: str) -> None:
    """provisioning applied the upgrade: the subscription takes the new configuration,
    the order completes. A repeat changes nothing. The caller commits."""
    order, subscription = _under_way(uow, subscription_id, order_id)
    if order is None or subscription is None:
        return
    quote = uow.upgrades.quote(order.quote_id)
    now = clock.now()
    domain.apply_upgrade(subscription, order, _target(quote), now)
    uow.emit_recorded(order)
    uow.emit_recorded(subscription)
    metrics.ORDERS.labels("completed").inc()


def instance_upgrade_failed(
    uow, clock: Clock, *, subscription_id: str, order_id: str, reason: str
) -> None:
    """The seller refused the upgrade: the order is cancelled with a full refund (billing
    acts on ``orders.order.cancelled``); the subscription keeps its configuration. A
    repeat changes nothing. The caller commits."""
    order, subscription = _under_way(uow, subscription_id, order_id)
    if order is None or subscription is None:
        return
    domain.refuse_upgrade(subscription, order, reason, clock.now())
    uow.emit_recorded(order)
    uow.emit_recorded(subscription)
    metrics.ORDERS.labels("cancelled").inc()
