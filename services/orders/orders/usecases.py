"""orders' use cases. Each takes a unit of work (``uow.orders`` is the repository), a
clock, and the neighbours it asks (``catalog``, ``iam``, ``billing``: anything with the
methods of their RPC proxies), so it runs the same under nameko and in unit tests with
fakes.

A use case an RPC runs commits its own transaction. One an event handler runs does not:
the inbox wrapper commits its effect with the event's inbox row (``mercato.inbox``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    ValidationError,
)
from mercato.identity import OPERATOR, Identity
from mercato.money import require_marketplace_currency
from mercato.terms import (
    AWAITING_ACCEPTANCE,
    CANCELLED,
    COMPLETED,
    CREDIT_CARD,
    DELIVERING,
    ENABLING,
    PAID,
    PAY_PER_USE,
    PURCHASE,
    RENEWAL,
    RESELLER,
    UNPAID,
    UPGRADE,
)
from orders import domain, metrics, unsubscriptions
from orders.models import Order, OrderLine
from orders.projects import DEFAULT_PROJECT, ENABLED

_log = logging.getLogger(__name__)

# how long a pay request may still reach billing after it marked its attempt: past it,
# an attempt billing has no payment of is over (the orders-to-billing budget, with room)
DEFAULT_ATTEMPT_BUDGET = dt.timedelta(seconds=30)


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
    agencies=None,
    provisioning=None,
    request_key: str | None = None,
) -> dict[str, Any]:
    """Fix the quoted price into a new unpaid order.

    A reseller's customer does not pay: the reseller pays at once, so the answer is
    already ``paid``; a reseller payment billing refuses leaves nothing (no order, no
    event) and answers billing's error. Should billing not answer, the order stays
    unpaid, its attempt marked, and billing's event or the customer's pay request
    (which always charges the reseller) completes it.

    ``request_key`` (the caller's downstream key): a retry of the same request answers
    the order the first one placed, and places nothing.

    An image is deployed into the buyer's cloud account: before anything is placed
    its agencies must be authorised at Mercato's current policy version (``agencies``,
    iam-agency; 409 AGENCY_NOT_AUTHORIZED or AGENCY_REAUTHORIZATION_REQUIRED) and the
    account's quotas must hold the deployment (``provisioning``; 422 QUOTA_EXCEEDED);
    provisioning then keeps the deployment (its password sealed) for the paid order.
    """
    if request_key is not None:
        first = _first_request(uow, buyer.account_id, request_key, domain.PLACE)
        if first is not None:
            return first.view()
    if request["accept_terms"] is not True:
        raise BusinessRuleViolation(
            "the product's terms must be accepted to place an order", code="TERMS_NOT_ACCEPTED"
        )
    project_id = request.get("enterprise_project_id") or DEFAULT_PROJECT
    check_project_for_order(iam, project_id, request["billing_mode"])
    quote = _quote(catalog, request)
    require_marketplace_currency(quote["amount"]["currency"], "product_id")
    deployment = request.get("deployment")
    if deployment is not None:
        _check_deployable(buyer, deployment, quote, agencies, provisioning)
    order = _order_from_quote(quote, buyer, project_id, clock.now(), payment_window)
    order.share_contact = request.get("share_contact") is True
    if deployment is not None:
        line = order.lines[0]
        line.deployment_id = provisioning.prepare_deployment(
            {
                "order_id": order.id,
                "account_id": buyer.account_id,
                "product_id": line.product_id,
                "specification_id": line.specification_id,
                "deployment": deployment,
                "image": quote["image"],
            }
        )["deployment_id"]
    if order.paid_by_reseller:
        order.payment_started_at = order.created_at  # billing is asked at once
    order.place()
    uow.orders.add(order)
    if request_key is not None and not uow.orders.add_request(
        buyer.account_id, request_key, domain.PLACE, order.id, order.created_at
    ):
        uow.rollback()  # the same request, placed meanwhile: answer that one
        return _placed_first(uow, buyer.account_id, request_key)
    if order.paid_by_reseller:
        return _place_paid_by_reseller(uow, clock, order, billing)
    uow.emit_recorded(order)
    uow.commit()
    metrics.ORDERS.labels(UNPAID).inc()
    return order.view()


def check_project_for_order(iam, project_id: str, billing_mode: str) -> dict[str, Any]:
    """The rules of the enterprise project an order names (``iam``: the project lookup,
    ``orders.projects.ProjectLookup``): one of the buyer's (400 naming
    ``enterprise_project_id`` otherwise), enabled (400), and ``default`` for a
    pay-per-use order (422 ENTERPRISE_PROJECT_NOT_ALLOWED). Answers the project."""
    try:
        project = iam.get_enterprise_project(project_id)
    except NotFound:
        raise ValidationError(
            f"unknown enterprise project {project_id}",
            {"enterprise_project_id": ["unknown enterprise project"]},
        ) from None
    if project.get("status", ENABLED) != ENABLED:
        raise ValidationError(
            f"the enterprise project {project_id} is disabled",
            {"enterprise_project_id": ["enterprise project is disabled"]},
        )
    if billing_mode == PAY_PER_USE and project_id != DEFAULT_PROJECT:
        raise BusinessRuleViolation(
            "a pay-per-use order is accounted to the default enterprise project only",
            {"enterprise_project_id": ["pay_per_use orders use the default project"]},
            code="ENTERPRISE_PROJECT_NOT_ALLOWED",
        )
    return project


def _place_paid_by_reseller(uow, clock: Clock, order: Order, billing) -> dict[str, Any]:
    """Charge the reseller for its customer's new order, and commit the order with its
    payment, or nothing. The order's transaction stays open while billing charges the
    reseller (a movement in billing's books, no card gateway): a refusal rolls it back,
    so no order and no event remain; billing's event of the payment waits for the
    order's commit (its handler retries until it sees the order, then finds it paid)."""
    try:
        payment = billing.pay_order(
            {**order.parties(), "amount": order.amount(), "payment_method": RESELLER}
        )
    except ServiceUnavailable:
        # billing may have charged the reseller: the order is placed with its attempt
        # marked; billing's event or the customer's pay request completes it
        _log.warning("billing did not answer; reseller order %s stays unpaid", order.id)
        uow.emit_recorded(order)
        uow.commit()
        metrics.ORDERS.labels(UNPAID).inc()
        return order.view()
    except Exception:
        uow.rollback()
        raise
    if payment["status"] != "succeeded":  # a reseller payment never pends
        uow.rollback()
        raise PaymentRequired(
            f"the reseller's payment was refused: {payment.get('failure_reason') or 'no reason'}",
            code="PAYMENT_DECLINED",
        )
    uow.emit_recorded(order)
    metrics.ORDERS.labels(UNPAID).inc()
    paid = record_payment(
        uow,
        clock,
        order_id=order.id,
        payment_id=payment["id"],
        payment_method=payment["payment_method"],
    )
    uow.commit()
    return paid.view()


def _first_request(
    uow, account_id: str, request_key: str, action: str, order_id: str | None = None
) -> Order | None:
    """The order the account's request under ``request_key`` made or changed, if that
    request was ``action`` (on ``order_id``, when given); 422 IDEMPOTENCY_KEY_REUSED if
    the key named another request. None if the key is new."""
    made = uow.orders.request(account_id, request_key)
    if made is None:
        return None
    if made.action != action or (order_id is not None and made.order_id != order_id):
        raise BusinessRuleViolation(
            f"this Idempotency-Key was used for another request ({made.action} an order)",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return uow.orders.get(made.order_id)


def _placed_first(uow, account_id: str, request_key: str) -> dict[str, Any]:
    first = _first_request(uow, account_id, request_key, domain.PLACE)
    if first is None:  # the concurrent request rolled back: the key is free, try again
        raise Conflict("the same request is being placed; try again")
    return first.view()


def quote_order(*, request: dict[str, Any], catalog) -> dict[str, Any]:
    """What ``place_order`` would fix now, itemised (``POST /v1/orders/quotes``): the
    same checks of the configuration, nothing placed, no agency or quota asked."""
    quote = _quote(catalog, request)
    return {"amount_due": quote["amount"], "lines": quote["breakdown"]}


# what of a deployment sets its price: the catalog prices it
_SIZING = ("flavor_id", "system_disk_gb", "data_disks", "eip", "count")


def _quote(catalog, request: dict[str, Any]) -> dict[str, Any]:
    asked = {
        key: request[key]
        for key in ("product_id", "specification_id", "billing_mode", "period", "quantity")
        if request.get(key) is not None
    }
    deployment = request.get("deployment")
    if deployment is not None:
        asked["deployment"] = {key: deployment[key] for key in _SIZING if key in deployment}
    return catalog.quote(asked)


def _check_deployable(buyer: Identity, deployment, quote, agencies, provisioning) -> None:
    readiness = agencies.deployment_readiness(buyer.account_id)
    if not readiness["ready"]:
        raise Conflict(readiness["message"], code=readiness["error"])
    sizing = {key: value for key, value in deployment.items() if key != "admin_password"}
    check = provisioning.check_deployment(
        {"account_id": buyer.account_id, "deployment": sizing, "image": quote["image"]}
    )
    exceeded = check.get("quota_exceeded")
    if exceeded:
        raise BusinessRuleViolation(
            f"the cloud account's {exceeded['quota']} quota is too small: the deployment "
            f"needs {exceeded['needed']}, {exceeded['available']} left",
            code="QUOTA_EXCEEDED",
            fields={"deployment": [f"exceeds the {exceeded['quota']} quota"]},
        )


def _order_from_quote(
    quote: dict[str, Any],
    buyer: Identity,
    project_id: str,
    now: dt.datetime,
    payment_window: dt.timedelta,
) -> Order:
    order = Order(
        id=new_id("ord"),
        type=PURCHASE,
        subscription_id=None,
        account_id=buyer.account_id,
        payer_account_id=buyer.reseller_account_id or buyer.account_id,
        enterprise_project_id=project_id,
        status=UNPAID,
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
            breakdown=quote["breakdown"] if quote.get("image") else None,
        )
    ]
    return order


# -- paying ----------------------------------------------------------------------


def _own(order: Order | None, buyer: Identity) -> Order:
    if order is None or (order.account_id != buyer.account_id and not buyer.has_role(OPERATOR)):
        raise NotFound("order not found")
    return order


def pay_order(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    order_id: str,
    request: dict[str, Any],
    billing,
    request_key: str | None = None,
    attempt_budget: dt.timedelta = DEFAULT_ATTEMPT_BUDGET,
) -> dict[str, Any]:
    """Charge the order through billing (exactly once per order) and mark it paid.

    Three steps, each its own transaction: the order is marked as being paid and that
    is committed, so no row lock is held while billing (and a card gateway behind it)
    works and the expiry sweep leaves the order alone meanwhile; billing is asked; its
    answer is recorded.

    ``request_key`` (the caller's downstream key): a retry of a pay that paid the order
    answers the paid order (not a conflict) and charges nothing. A pay after the
    payment window of an order whose attempt is still marked answers what became of
    that attempt (``payment_of`` billing), never a second charge.
    """
    if request_key is not None:
        first = _first_request(uow, buyer.account_id, request_key, domain.PAY, order_id)
        if first is not None and first.paid_at is not None:
            return first.view()
    order = _own(uow.orders.lock(order_id), buyer)
    now = clock.now()
    if domain.is_expired(order.status, order.payment_deadline, now):
        if domain.payment_attempt_in_progress(order.payment_started_at):
            # the attempt started in time: its outcome decides, not the clock
            uow.rollback()
            return _pay_after_the_window(
                uow, clock, buyer=buyer, order_id=order_id, billing=billing, budget=attempt_budget
            )
        order.cancel(domain.PAYMENT_WINDOW_PASSED, now)
        uow.emit_recorded(order)
        uow.commit()
        metrics.ORDERS.labels(CANCELLED).inc()
        raise Conflict("the payment window of this order has passed; it is cancelled")
    if not order.may_pay():
        raise Conflict(f"the order is {order.status}, not unpaid")
    if order.type == RENEWAL and uow.orders.is_released(order.subscription_id):
        # refused before charging: nothing to renew any more
        order.cancel(domain.SUBSCRIPTION_GONE, now)
        uow.emit_recorded(order)
        uow.commit()
        metrics.ORDERS.labels(CANCELLED).inc()
        raise Conflict(
            "the purchased app was released; it can no longer be renewed",
            code="SUBSCRIPTION_RELEASED",
        )
    if order.type == UPGRADE:
        from orders import upgrades  # it imports this module

        # refused before charging, as a renewal of a released app (review 9, finding 9)
        refusal = upgrades.refusal_before_charging(uow, order)
        if refusal is not None:
            order.cancel(f"Not charged: {refusal}", now)
            uow.emit_recorded(order)
            uow.commit()
            metrics.ORDERS.labels(CANCELLED).inc()
            raise refusal
    method = RESELLER if order.paid_by_reseller else request["payment_method"]
    order.payment_started_at = now
    uow.orders.mark_payment_started(order)
    if request_key is not None:
        uow.orders.add_request(buyer.account_id, request_key, domain.PAY, order.id, now)
    uow.commit()

    try:
        payment = billing.pay_order(
            {
                **order.parties(),
                "amount": order.amount(),
                "payment_method": method,
                **({"card": request["card"]} if method == CREDIT_CARD else {}),
            }
        )
    except ServiceUnavailable:
        # billing may still complete the payment: keep the mark, so the expiry sweep
        # leaves the order alone until billing's event arrives (or billing says it has
        # no payment of it)
        raise
    except Exception:
        uow.orders.clear_payment_mark(order.id)
        uow.commit()
        raise
    if payment["status"] == "pending":
        # the card gateway has not answered yet: billing settles it and announces the
        # outcome (billing.payment.succeeded or .failed), which completes this order
        return order.view()
    if payment["status"] != "succeeded":
        uow.orders.clear_payment_mark(order.id)
        uow.commit()
        raise PaymentRequired(
            f"payment declined: {payment.get('failure_reason') or 'no reason given'}",
            code="PAYMENT_DECLINED",
        )
    paid = record_payment(
        uow,
        clock,
        order_id=order.id,
        payment_id=payment["id"],
        payment_method=payment["payment_method"],
    )
    uow.commit()
    if paid.status == CANCELLED:
        raise Conflict(
            "the order was cancelled while it was being paid; billing refunds the payment",
            code="ORDER_CANCELLED",
        )
    return paid.view()


def _pay_after_the_window(
    uow, clock: Clock, *, buyer: Identity, order_id: str, billing, budget: dt.timedelta
) -> dict[str, Any]:
    """A pay of an order past its window whose payment attempt is marked: answer what
    became of the attempt (paid, or still pending), or cancel the order as its window
    passed if billing took no payment."""
    order = settle_payment_attempt(
        uow,
        clock,
        order_id=order_id,
        payment_of=lambda order: _payment_of(billing, order.id),
        budget=budget,
    )
    uow.commit()
    if order is None:
        raise NotFound("order not found")
    if order.status == CANCELLED:
        raise Conflict("the payment window of this order has passed; it is cancelled")
    if order.status == UNPAID and order.payment_started_at is None:
        raise Conflict("the payment window of this order has passed")
    return order.view()


def _payment_of(billing, order_id: str) -> dict[str, Any] | None:
    """The order's payment as billing has it, None if billing has none."""
    try:
        return billing.get_payment(order_id)
    except NotFound:
        return None


def settle_payment_attempt(
    uow, clock: Clock, *, order_id: str, payment_of, budget: dt.timedelta
) -> Order | None:
    """Decide an unpaid order's marked payment attempt from what billing has of it
    (``payment_of(order)``: its payment, or None), asked with no lock held:

    - a succeeded payment pays the order (``record_payment``);
    - a pending one leaves the order as it is: billing's event will settle it;
    - no payment, while the pay request may still be on its way (``budget``), leaves
      it as it is too;
    - a failed payment, or none once the request can no longer arrive, ends the
      attempt: the mark is cleared, and an order past its window is cancelled (billing
      then refuses a pay of it, and refunds one that lands anyway).

    Answers the order (None if there is none); the caller commits.
    """
    order = uow.orders.lock(order_id)
    if order is None or order.status != UNPAID or order.payment_started_at is None:
        return order
    asked_about = order.payment_started_at
    uow.rollback()  # hold no connection while billing is asked
    payment = payment_of(order)
    order = uow.orders.lock(order_id)
    if order is None or order.status != UNPAID or order.payment_started_at != asked_about:
        return order  # settled meanwhile, or a new attempt started
    now = clock.now()
    status = payment["status"] if payment is not None else None
    if status == "succeeded":
        return record_payment(
            uow,
            clock,
            order_id=order_id,
            payment_id=payment["id"],
            payment_method=payment["payment_method"],
        )
    if status == "pending" or (
        status is None and domain.request_may_be_in_flight(asked_about, now, budget)
    ):
        return order
    uow.orders.clear_payment_mark(order.id)
    order.payment_started_at = None
    if domain.is_expired(order.status, order.payment_deadline, now):
        order.cancel(domain.PAYMENT_WINDOW_PASSED, now)
        uow.emit_recorded(order)
        metrics.ORDERS.labels(CANCELLED).inc()
    return order


def is_payment_recorded(uow, *, order_id: str, payment_id: str) -> bool:
    """Whether the order is already paid by this payment. Once set, an order's payment
    never changes (a refund cancels the order but keeps it), so a True answer holds for
    every later delivery of the payment's event."""
    recorded = uow.orders.payment_of(order_id)
    return recorded is not None and recorded == payment_id


def record_payment(
    uow, clock: Clock, *, order_id: str, payment_id: str, payment_method: str
) -> Order:
    """Mark the order paid by ``payment_id`` and create its subscriptions; a repeat
    changes nothing. Both the pay request (billing answered at once) and billing's
    payment event (a payment the request did not see finish) come here; the caller
    commits."""
    order = uow.orders.lock(order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if order.is_paid_by(payment_id):
        return order
    if not order.may_pay():
        if order.payment_id is not None:
            _log.error(
                "order %s paid by %s was paid again by %s", order.id, order.payment_id, payment_id
            )
        elif order.status == CANCELLED:
            # billing took the money after the order was cancelled: the order stays
            # cancelled, and billing, which heard of the cancellation, refunds it once
            _log.warning(
                "payment %s arrived for cancelled order %s; billing refunds it",
                payment_id,
                order.id,
            )
        return order
    uow.orders.load_lines(order)
    if order.type != PURCHASE:
        return _record_subscription_payment(uow, clock, order, payment_id, payment_method)
    subscriptions = order.pay(
        payment_id,
        payment_method,
        clock.now(),
        [new_id("sub") for _line in order.lines],
        time_zone=uow.orders.time_zone_of(order.account_id),
    )
    if not uow.orders.mark_paid(order):  # the row lock makes this the last guard only
        raise Conflict(f"order {order.id} was changed while it was being paid")
    uow.orders.add_subscriptions(order, subscriptions)
    uow.emit_recorded(order)
    metrics.ORDERS.labels(PAID).inc()
    return order


def _record_subscription_payment(
    uow, clock: Clock, order: Order, payment_id: str, payment_method: str
) -> Order:
    """A renewal or an upgrade paid (every pay path comes here through
    ``record_payment``): no subscription, no ``orders.order.paid``; the payment applies
    to the subscription in the same transaction."""
    order.pay_for_subscription(payment_id, payment_method, clock.now())
    if not uow.orders.mark_paid(order):
        raise Conflict(f"order {order.id} was changed while it was being paid")
    metrics.ORDERS.labels(PAID).inc()
    if order.type == RENEWAL:
        from orders import renewals

        renewals.apply_renewal(uow, clock, order)
    elif order.type == UPGRADE:
        from orders import upgrades

        upgrades.upgrade_paid(uow, clock, order)
    uow.emit_recorded(order)
    return order


def clear_failed_payment(uow, *, order_id: str) -> None:
    """A payment billing could not settle at once has failed: the order may be paid
    again or cancelled (the mark no longer guards it). The caller commits."""
    uow.orders.clear_payment_mark(order_id)


# -- delivering ------------------------------------------------------------------


def _locked_order_of(uow, subscription_id: str) -> Order:
    order_id = uow.orders.order_of_subscription(subscription_id)
    order = uow.orders.lock(order_id) if order_id is not None else None
    if order is None:
        raise NotFound(f"subscription {subscription_id} not found")
    return order


def deliver_subscription(
    uow,
    clock: Clock,
    *,
    subscription_id: str,
    starts_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> None:
    """provisioning delivered a subscription. Without service supervision it is enabled
    at once (for the period provisioning delivered, ``starts_at`` to ``expires_at``);
    with supervision it waits for the buyer's acceptance and its order shows
    ``awaiting_acceptance``. The order completes when every one of its subscriptions is
    enabled. A repeat changes nothing. The caller commits."""
    order = _locked_order_of(uow, subscription_id)
    subscription = uow.orders.lock_subscription(subscription_id)
    if not order.accepts_delivery():
        _log.warning(
            "delivery of %s arrived for %s order %s", subscription_id, order.status, order.id
        )
        return
    if subscription.status != ENABLING:
        return
    now = clock.now()
    if subscription.line.service_supervision:
        if order.status != AWAITING_ACCEPTANCE:
            order.await_acceptance(now)
            metrics.ORDERS.labels(AWAITING_ACCEPTANCE).inc()
        return
    subscription.enable(now, starts_at, expires_at)
    uow.emit_recorded(subscription)
    if uow.orders.count_not_enabled(order.id) == 0:
        order.complete(now)
        uow.emit_recorded(order)
        _close_pending_unsubscriptions(uow, order, now)
        metrics.ORDERS.labels(COMPLETED).inc()


def cancel_undelivered_order(uow, clock: Clock, *, subscription_id: str, reason: str) -> None:
    """provisioning could not deliver: the order is cancelled with the reason the buyer
    reads, its subscriptions released, and the cancellation tells billing what to
    refund (a compensation, exactly once: a cancelled order is not cancelled again).
    The caller commits."""
    order = _locked_order_of(uow, subscription_id)
    if not order.accepts_delivery():
        return
    now = clock.now()
    released = uow.orders.lock_subscriptions_of(order.id)
    for subscription in released:
        subscription.release(now, domain.RELEASED_CANCELLED)
    unsubscriptions.close_pending(uow, released, domain.CLOSED_RELEASED, now)
    for subscription in released:
        uow.emit_recorded(subscription)
    order.cancel_undelivered(f"Delivery failed: {reason}", now)
    uow.emit_recorded(order)
    metrics.ORDERS.labels(CANCELLED).inc()


# -- service supervision ------------------------------------------------------------


def _locked_order(uow, order_id: str) -> Order | None:
    order = uow.orders.lock(order_id)
    if order is None:
        _log.warning("supervision reported on order %s, which orders does not have", order_id)
    return order


def supervision_started(uow, clock: Clock, *, order_id: str, step: str) -> None:
    """A supervised order's flow started: a service's order is ``delivering`` while its
    seller works (a license's flow starts at acceptance; its delivery moves the order).
    The caller commits."""
    order = _locked_order(uow, order_id)
    if order is None or step == AWAITING_ACCEPTANCE or order.status != PAID:
        return
    order.start_delivering(clock.now())
    metrics.ORDERS.labels(DELIVERING).inc()


def supervised_service_provided(uow, clock: Clock, *, order_id: str) -> None:
    """The seller provided the service (or the SaaS tenant was delivered): the order
    awaits the buyer's acceptance. The caller commits."""
    order = _locked_order(uow, order_id)
    if order is None or order.status not in (PAID, DELIVERING):
        return
    order.await_acceptance(clock.now())
    metrics.ORDERS.labels(AWAITING_ACCEPTANCE).inc()


def supervision_completed(uow, clock: Clock, *, subscription_id: str) -> None:
    """The buyer accepted (or the acceptance period passed, or an operator decided):
    the subscription is enabled, for its period from now, and the order completes. A
    repeat changes nothing. The caller commits."""
    order = _locked_order_of(uow, subscription_id)
    subscription = uow.orders.lock_subscription(subscription_id)
    if not order.accepts_delivery() or subscription.status != ENABLING:
        return
    now = clock.now()
    subscription.enable(now)
    uow.emit_recorded(subscription)
    if uow.orders.count_not_enabled(order.id) == 0:
        order.complete(now)
        uow.emit_recorded(order)
        _close_pending_unsubscriptions(uow, order, now)
        metrics.ORDERS.labels(COMPLETED).inc()


def _close_pending_unsubscriptions(uow, order: Order, now: dt.datetime) -> None:
    """The order completed: its transaction guarantee period is over, so the requests to
    unsubscribe from its subscriptions that await review are closed (rejected, the
    buyer told why) in this transaction."""
    subscriptions = uow.orders.lock_subscriptions_of(order.id)
    unsubscriptions.close_pending(uow, subscriptions, domain.CLOSED_TRANSACTION_COMPLETED, now)
    for subscription in subscriptions:
        uow.emit_recorded(subscription)


def refund_on_appeal(uow, clock: Clock, *, order_id: str, refund_amount: int, reason: str) -> None:
    """An operator resolved an appeal with a refund: the order is cancelled, its
    subscriptions released, and billing refunds ``refund_amount`` (at most what was
    paid; supervision checked it, billing checks it again). The caller commits."""
    order = _locked_order(uow, order_id)
    if order is None or not order.accepts_delivery():
        return
    now = clock.now()
    released = uow.orders.lock_subscriptions_of(order.id)
    for subscription in released:
        subscription.release(now, domain.RELEASED_CANCELLED)
    unsubscriptions.close_pending(uow, released, domain.CLOSED_RELEASED, now)
    for subscription in released:
        uow.emit_recorded(subscription)
    order.cancel_undelivered(reason, now, refund_amount)
    uow.emit_recorded(order)
    metrics.ORDERS.labels(CANCELLED).inc()


# -- cancelling ------------------------------------------------------------------


def cancel_order(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    order_id: str,
    billing=None,
    request_key: str | None = None,
    attempt_budget: dt.timedelta = DEFAULT_ATTEMPT_BUDGET,
) -> dict[str, Any]:
    """The buyer cancels an unpaid order that no payment is under way for. A payment
    attempt still marked is asked about first (``settle_payment_attempt``): one billing
    has no payment of (any more) no longer holds the order. ``request_key``: a retry of
    the same cancel answers the cancelled order."""
    if request_key is not None:
        first = _first_request(uow, buyer.account_id, request_key, domain.CANCEL, order_id)
        if first is not None and first.status == CANCELLED:
            return first.view()
    order = _own(uow.orders.lock(order_id), buyer)
    if (
        order.status == UNPAID
        and domain.payment_attempt_in_progress(order.payment_started_at)
        and billing is not None
    ):
        uow.rollback()
        settle_payment_attempt(
            uow,
            clock,
            order_id=order_id,
            payment_of=lambda order: _payment_of(billing, order.id),
            budget=attempt_budget,
        )
        uow.commit()
        order = _own(uow.orders.lock(order_id), buyer)
    now = clock.now()
    if order.status != UNPAID:
        raise Conflict(f"only an unpaid order can be cancelled; this one is {order.status}")
    if domain.payment_attempt_in_progress(order.payment_started_at):
        raise Conflict("a payment of this order is in progress")
    order.cancel(domain.CANCELLED_BY_BUYER, now)
    uow.emit_recorded(order)
    if request_key is not None:
        uow.orders.add_request(buyer.account_id, request_key, domain.CANCEL, order.id, now)
    view = order.view()
    uow.commit()
    metrics.ORDERS.labels(CANCELLED).inc()
    return view


def cancel_expired_orders(uow, clock: Clock, *, batch_size: int = 100) -> int:
    """Cancel one batch of unpaid orders whose payment window passed and that no
    payment attempt marks; how many were cancelled. Safe with two replicas: each claims
    rows the other does not hold."""
    now = clock.now()
    cancelled = 0
    for order in uow.orders.unpaid_past_deadline(now, limit=batch_size):
        order.cancel(domain.PAYMENT_WINDOW_PASSED, now)
        uow.emit_recorded(order)
        cancelled += 1
    uow.commit()
    metrics.ORDERS.labels(CANCELLED).inc(cancelled)
    return cancelled


def settle_expired_attempts(
    uow, clock: Clock, *, payment_of, budget: dt.timedelta, batch_size: int = 100
) -> int:
    """Ask billing about the marked payment attempts of unpaid orders past their window
    (marked longer ago than ``budget``) and settle each (``settle_payment_attempt``):
    paid, left pending, or cancelled. ``payment_of(order)`` asks billing as the order's
    buyer. An attempt billing does not answer for stays as it is until the next sweep.
    Answers how many were asked about."""
    now = clock.now()
    order_ids = uow.orders.attempted_past_deadline(
        now, started_before=now - budget, limit=batch_size
    )
    uow.rollback()
    for order_id in order_ids:
        try:
            settle_payment_attempt(
                uow, clock, order_id=order_id, payment_of=payment_of, budget=budget
            )
            uow.commit()
        except ServiceUnavailable:
            uow.rollback()
            _log.warning("billing did not answer about order %s; asking again later", order_id)
    return len(order_ids)


# -- reading ---------------------------------------------------------------------


def get_order(uow, *, buyer: Identity, order_id: str) -> dict[str, Any]:
    return _own(uow.orders.get(order_id), buyer).view()


def list_orders(
    uow, *, buyer: Identity, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    found = uow.orders.page_of_account(
        buyer.account_id, status=status, page=page, page_size=page_size
    )
    return found.view(Order.view)


def list_seller_orders(
    uow, *, seller: Identity, status: str | None, page: int, page_size: int
) -> dict[str, Any]:
    """The orders of the seller's products, newest first, as the seller sees them."""
    found = uow.orders.page_of_seller(
        seller.account_id, status=status, page=page, page_size=page_size
    )
    return found.view(lambda order: order.seller_view(seller.account_id))


def get_seller_order(uow, *, seller: Identity, order_id: str) -> dict[str, Any]:
    """One order of the seller's products; NotFound for any other order, so that a
    seller learns nothing of orders that are not of its products."""
    order = uow.orders.get(order_id)
    if order is None or not order.lines_of_seller(seller.account_id):
        raise NotFound("order not found")
    return order.seller_view(seller.account_id)


def list_purchased_apps(
    uow,
    *,
    buyer: Identity,
    page: int,
    page_size: int,
    periods: domain.LifecyclePeriods = domain.DEFAULT_PERIODS,
) -> dict[str, Any]:
    found = uow.orders.page_of_subscriptions(buyer.account_id, page=page, page_size=page_size)
    return found.view(lambda subscription: subscription.view(periods))


def get_purchased_app(
    uow,
    *,
    buyer: Identity,
    subscription_id: str,
    periods: domain.LifecyclePeriods = domain.DEFAULT_PERIODS,
) -> dict[str, Any]:
    subscription = uow.orders.subscription(subscription_id)
    if subscription is None or subscription.account_id != buyer.account_id:
        raise NotFound("purchased app not found")
    return subscription.view(periods)


# -- account time zones -------------------------------------------------


def keep_time_zone(uow, *, account_id: str, time_zone: str, changed_at: dt.datetime) -> None:
    """iam-agency announced the account's time zone: keep it (a newer change wins). The
    caller commits."""
    uow.orders.set_time_zone(account_id, time_zone, changed_at)
