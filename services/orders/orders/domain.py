"""Rules of orders and subscriptions: their state machines, what each move records, and
what an order looks like to its buyer and to its sellers. No nameko, no SQL.

An order's moves::

    unpaid --pay--> paid --deliver--> delivering --await_acceptance--> awaiting_acceptance
      |               |                     |                                   |
      |               +-------------------complete---------------------------+--+--> completed
      +--cancel--> cancelled              (paid, delivering or awaiting acceptance)
                       ^--------cancel_undelivered-----------------------------+   (refunded)

``delivering`` is a supervised service's order while the seller works on it (its
supervision flow before acceptance); ``awaiting_acceptance`` waits for the buyer's
acceptance, which completes it.

``OrderRules`` and ``SubscriptionRules`` are mixed into the mapped classes of
``orders.models``: the columns live there, the moves here. A move that the entity's
status does not allow is refused with ``Conflict``; a move records the events it causes,
which the use case emits in the same transaction (``uow.emit_recorded``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mercato.domain import RecordsEvents, StateMachine
from mercato.errors import BusinessRuleViolation, Conflict
from mercato.money import money
from mercato.periods import YEARLY_MONTHLY as TIMED_BILLING_MODE
from mercato.periods import add_months, renewed_expiry, subscription_expiry, zone
from mercato.terms import (
    APPROVED,
    AWAITING_ACCEPTANCE,
    CANCELLED,
    COMPLETED,
    DELIVERING,
    ENABLED,
    ENABLING,
    EXPIRED,
    FROZEN,
    IMAGE,
    LICENSE,
    ONE_TIME,
    PAID,
    PAY_PER_USE,
    PENDING_REVIEW,
    PROFESSIONAL_SERVICE,
    REFUNDED,
    REJECTED,
    RELEASED,
    SAAS,
    UNPAID,
    YEARLY_MONTHLY,
)

__all__ = ["add_months", "subscription_expiry"]  # the period rules, shared with provisioning

ORDER = StateMachine(
    "order",
    {
        "pay": ((UNPAID,), PAID),
        "deliver": ((PAID,), DELIVERING),
        "await_acceptance": ((PAID, DELIVERING), AWAITING_ACCEPTANCE),
        "complete": ((PAID, DELIVERING, AWAITING_ACCEPTANCE), COMPLETED),
        "cancel": ((UNPAID,), CANCELLED),
        # paid but not delivered: cancelled with a refund of what was paid
        "cancel_undelivered": ((PAID, DELIVERING, AWAITING_ACCEPTANCE), CANCELLED),
        # an approved unsubscription: cancelled with the negotiated refund (an image's
        # order is completed once deployed: the cloud's rule refunds its unused period)
        "unsubscribe": ((PAID, DELIVERING, AWAITING_ACCEPTANCE, COMPLETED), CANCELLED),
    },
)

SUBSCRIPTION = StateMachine(
    "subscription",
    {
        "enable": ((ENABLING,), ENABLED),
        "release": ((ENABLING, ENABLED, EXPIRED, FROZEN), RELEASED),
        # the lifecycle after the expiry (orders.lifecycle), and a paid renewal
        "expire": ((ENABLED,), EXPIRED),
        "freeze": ((EXPIRED,), FROZEN),
        "renew": ((ENABLED, EXPIRED, FROZEN), ENABLED),
    },
)

# why a subscription was released (``subscriptions.released_reason``)
RELEASED_EXPIRED, RELEASED_UNSUBSCRIBED, RELEASED_CANCELLED = "expired", "unsubscribed", "cancelled"

# renewal reminders (``subscriptions.reminded_stage``): 7 days before the expiry, and 3
# days before an expired subscription is frozen
BEFORE_EXPIRY, BEFORE_FREEZE = "before_expiry", "before_freeze"
REMINDED_NONE, REMINDED_BEFORE_EXPIRY, REMINDED_BEFORE_FREEZE = 0, 1, 2
REMIND_BEFORE_EXPIRY = dt.timedelta(days=7)
REMIND_BEFORE_FREEZE = dt.timedelta(days=3)
RENEWABLE = (ENABLED, EXPIRED, FROZEN)
# the lifecycle's moves, as the sweep makes them in batches (``orders.lifecycle``)
EXPIRE, FREEZE, RELEASE_EXPIRED = "expire", "freeze", "release"
REMIND_FREEZE, REMIND_EXPIRY = "remind_freeze", "remind_expiry"
SUBSCRIPTION_STATUSES_SHOWN = (ENABLING, ENABLED, EXPIRED, FROZEN, RELEASED)


@dataclass(frozen=True)
class LifecyclePeriods:
    """How long an expired subscription stays usable (``grace``) and then frozen with
    its data kept (``retention``) before it is released (settings
    SUBSCRIPTION_GRACE_DAYS, SUBSCRIPTION_RETENTION_DAYS)."""

    grace: dt.timedelta = dt.timedelta(days=15)
    retention: dt.timedelta = dt.timedelta(days=15)

    def grace_ends_at(self, expires_at: dt.datetime) -> dt.datetime:
        return expires_at + self.grace

    def release_at(self, expires_at: dt.datetime) -> dt.datetime:
        return expires_at + self.grace + self.retention


DEFAULT_PERIODS = LifecyclePeriods()

CANCELLED_BY_BUYER = "cancelled by the buyer"
SUBSCRIPTION_GONE = "the purchased app was released before this order was paid"
PAYMENT_WINDOW_PASSED = "the payment window passed before the order was paid"

# the requests a downstream key (``caller.request_key``) may name
PLACE, PAY, CANCEL = "place", "pay", "cancel"


def payment_deadline(created_at: dt.datetime, window: dt.timedelta) -> dt.datetime:
    return created_at + window


def is_expired(status: str, deadline: dt.datetime, now: dt.datetime) -> bool:
    return status == UNPAID and now >= deadline


def payment_attempt_in_progress(started_at: dt.datetime | None) -> bool:
    """A payment attempt is marked (``payment_started_at``) from the pay request until
    billing's answer or event says how it ended: for as long as it is, the order is not
    cancelled under it, however long that takes (a card gateway that answers late)."""
    return started_at is not None


def request_may_be_in_flight(
    started_at: dt.datetime, now: dt.datetime, budget: dt.timedelta
) -> bool:
    """Whether the pay request that marked an attempt may still reach billing: within
    the orders-to-billing budget it may; after it, a billing that has no payment of the
    order never will (the request expired, or its caller gave up)."""
    return now - started_at < budget


# -- what was bought -------------------------------------------------------------------


class LineRules:
    """An order line: one configuration bought, at the price fixed when it was placed."""

    id: str
    product_id: str
    product_name: str
    product_guide_url: str | None
    seller_account_id: str
    seller_company_name: str
    specification_id: str
    specification_name: str
    delivery_method: str
    service_supervision: bool
    billing_mode: str
    period_unit: str | None
    period_count: int | None
    quantity: int
    unit_price: int
    amount: int
    currency: str
    # the price itemised (an image's servers, disks, EIP) and an image's deployment
    breakdown: list[dict[str, Any]] | None
    deployment_id: str | None

    def period(self) -> dict[str, Any] | None:
        if self.period_unit is None:
            return None
        return {"unit": self.period_unit, "count": self.period_count}

    def configuration(self) -> dict[str, Any]:
        """What was bought, as the order shows it and as it is delivered."""
        return {
            "product_id": self.product_id,
            "product_name": self.product_name,
            "seller_account_id": self.seller_account_id,
            "specification_id": self.specification_id,
            "specification_name": self.specification_name,
            "delivery_method": self.delivery_method,
            "service_supervision": self.service_supervision,
            "billing_mode": self.billing_mode,
            "period": self.period(),
            "quantity": self.quantity,
        }

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.configuration(),
            "unit_price": money(self.unit_price, self.currency),
            "amount": money(self.amount, self.currency),
            "breakdown": self.breakdown
            or [
                {
                    "item": "product",
                    "description": self.specification_name,
                    "quantity": self.quantity,
                    "unit_price": money(self.unit_price, self.currency),
                    "amount": money(self.amount, self.currency),
                }
            ],
            "deployment_id": self.deployment_id,
        }

    def expiry_from(self, start: dt.datetime, time_zone: str | None = "UTC") -> dt.datetime | None:
        """23:59:59 in ``time_zone`` of the period's last day (``mercato.periods``)."""
        return subscription_expiry(
            start, self.billing_mode, self.period_unit, self.period_count, time_zone
        )


@dataclass(frozen=True)
class NewSubscription:
    """A subscription a payment creates: one per order line, enabling until delivered."""

    id: str
    line: LineRules
    status: str
    activated_at: dt.datetime
    expires_at: dt.datetime | None
    time_zone: str = "UTC"  # the account's when it was bought


# -- the order -------------------------------------------------------------------------


class OrderRules(RecordsEvents):
    """An order's moves and its view. ``lines`` must be loaded for ``place``, ``pay``
    and ``view``."""

    id: str
    type: str  # purchase, renewal or upgrade
    subscription_id: str | None  # what a renewal or an upgrade is of
    quote_id: str | None
    auto_renewal_key: str | None
    account_id: str
    payer_account_id: str
    enterprise_project_id: str
    status: str
    amount_due: int
    currency: str
    payment_deadline: dt.datetime
    payment_started_at: dt.datetime | None
    payment_id: str | None
    payment_method: str | None
    paid_at: dt.datetime | None
    cancel_reason: str | None
    failure_reason: str | None
    share_contact: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: Sequence[LineRules]

    @property
    def paid_by_reseller(self) -> bool:
        return self.payer_account_id != self.account_id

    def parties(self) -> dict[str, Any]:
        """Which order, whose, who pays and which enterprise project it is accounted to:
        the fields the order's events and its payment request all begin with."""
        return {
            "order_id": self.id,
            "account_id": self.account_id,
            "payer_account_id": self.payer_account_id,
            "enterprise_project_id": self.enterprise_project_id,
        }

    def amount(self) -> dict[str, Any]:
        return money(self.amount_due, self.currency)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "subscription_id": self.subscription_id,
            "status": self.status,
            "account_id": self.account_id,
            "paid_by_reseller": self.paid_by_reseller,
            "enterprise_project_id": self.enterprise_project_id,
            "amount_due": self.amount(),
            "lines": [line.view() for line in self.lines],
            "payment_deadline": self.payment_deadline,
            "payment_method": self.payment_method,
            # a payment was started and its outcome is not known yet (a slow card gateway)
            "payment_pending": self.status == UNPAID and self.payment_started_at is not None,
            "paid_at": self.paid_at,
            "cancel_reason": self.cancel_reason,
            "failure_reason": self.failure_reason,
            "share_contact": self.share_contact,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def lines_of_seller(self, seller_account_id: str) -> list[LineRules]:
        return [line for line in self.lines if line.seller_account_id == seller_account_id]

    def seller_view(self, seller_account_id: str) -> dict[str, Any]:
        """The order as one of its sellers sees it: only that seller's lines and what
        they cost, and who bought. The buyer's name (and its email, when
        ``share_contact``) is iam-agency's: the caller adds it."""
        lines = self.lines_of_seller(seller_account_id)
        return {
            "id": self.id,
            "status": self.status,
            "buyer": {"account_id": self.account_id, "shared_contact": self.share_contact},
            "lines": [line.view() for line in lines],
            "amount": money(sum(line.amount for line in lines), self.currency),
            "paid_at": self.paid_at,
            "cancel_reason": self.cancel_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    # -- moves --

    def place(self) -> None:
        """The order exists, unpaid: record that it was created."""
        self.record(
            "orders.order.created", subject=self.id, account_id=self.account_id, data=self.facts()
        )

    def facts(self) -> dict[str, Any]:
        """What the order is (``orders.order.created``'s data; also ``order_facts``): its
        parties, amount, lines, payment deadline, type and subscription. Its lines loaded."""
        return {
            **self.parties(),
            "amount_due": self.amount(),
            "lines": [line.view() for line in self.lines],
            "payment_deadline": self.payment_deadline,
            "type": self.type,
            "subscription_id": self.subscription_id,
        }

    def pay_for_subscription(self, payment_id: str, payment_method: str, now: dt.datetime) -> None:
        """A renewal or an upgrade paid: no subscription is created and no
        ``orders.order.paid`` recorded (that event means a purchase to deliver); the
        payment applies to its subscription in the same transaction (``renewals``,
        ``upgrades``)."""
        self.status = ORDER.move("pay", self.status)
        self.payment_id, self.payment_method = payment_id, payment_method
        self.paid_at = self.updated_at = now
        self.payment_started_at = None

    def is_paid_by(self, payment_id: str) -> bool:
        return self.payment_id is not None and self.payment_id == payment_id

    def may_pay(self) -> bool:
        return ORDER.allows("pay", self.status)

    def pay(
        self,
        payment_id: str,
        payment_method: str,
        now: dt.datetime,
        subscription_ids: Sequence[str],
        time_zone: str = "UTC",
    ) -> list[NewSubscription]:
        """Paid by ``payment_id``: one subscription per line (``subscription_ids`` in line
        order), enabling until delivered, its period running from now and ending at
        23:59:59 in the buyer's ``time_zone``."""
        self.status = ORDER.move("pay", self.status)
        self.payment_id, self.payment_method = payment_id, payment_method
        self.paid_at = self.updated_at = now
        self.payment_started_at = None
        subscriptions = [
            NewSubscription(id, line, ENABLING, now, line.expiry_from(now, time_zone), time_zone)
            for id, line in zip(subscription_ids, self.lines, strict=True)
        ]
        self.record(
            "orders.order.paid",
            subject=self.id,
            account_id=self.account_id,
            data={
                **self.parties(),
                "payment_id": payment_id,
                "payment_method": payment_method,
                "amount": self.amount(),
                "paid_at": now,
                "subscriptions": [
                    {
                        "subscription_id": subscription.id,
                        "order_line_id": subscription.line.id,
                        **subscription.line.configuration(),
                        "expires_at": subscription.expires_at,
                        "time_zone": subscription.time_zone,
                    }
                    for subscription in subscriptions
                ],
            },
        )
        for subscription in subscriptions:
            line = subscription.line
            self.record(
                "orders.subscription.created",
                subject=subscription.id,
                account_id=self.account_id,
                data={
                    "subscription_id": subscription.id,
                    "order_id": self.id,
                    "order_line_id": line.id,
                    "account_id": self.account_id,
                    "enterprise_project_id": self.enterprise_project_id,
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
        return subscriptions

    def accepts_delivery(self) -> bool:
        """Whether a delivery may still change the order (not cancelled, not done)."""
        return ORDER.allows("complete", self.status)

    def start_delivering(self, now: dt.datetime) -> None:
        """A supervised service's seller works on it (its flow started)."""
        self.status = ORDER.move("deliver", self.status)
        self.updated_at = now

    def await_acceptance(self, now: dt.datetime) -> None:
        """Delivered, now the buyer's acceptance is awaited (service supervision)."""
        if self.status == AWAITING_ACCEPTANCE:
            return
        self.status = ORDER.move("await_acceptance", self.status)
        self.updated_at = now

    def complete(self, now: dt.datetime) -> None:
        self.status = ORDER.move("complete", self.status)
        self.updated_at = now
        self.record(
            "orders.order.completed",
            subject=self.id,
            account_id=self.account_id,
            data={"order_id": self.id, "account_id": self.account_id, "completed_at": now},
        )

    def cancel(self, reason: str, now: dt.datetime) -> None:
        """An unpaid order cancelled (by its buyer, or as its payment window passed)."""
        self.status = ORDER.move("cancel", self.status)
        self._cancelled(reason, now, refund=None)

    def cancel_undelivered(
        self, reason: str, now: dt.datetime, refund_amount: int | None = None
    ) -> None:
        """A paid order that cannot be delivered (or that an operator refunded on
        appeal): cancelled, and what was paid (or ``refund_amount`` of it) is to be
        refunded (billing acts on the event, once)."""
        self.status = ORDER.move("cancel_undelivered", self.status)
        refund = self.amount() if refund_amount is None else money(refund_amount, self.currency)
        self._cancelled(reason, now, refund=refund)

    def _cancelled(self, reason: str, now: dt.datetime, refund: dict[str, Any] | None) -> None:
        self.cancel_reason = reason
        self.updated_at = now
        self.record(
            "orders.order.cancelled",
            subject=self.id,
            account_id=self.account_id,
            data={
                "order_id": self.id,
                "account_id": self.account_id,
                "reason": reason,
                "payment_id": self.payment_id if refund else None,
                "refund": refund,
            },
        )


# -- the subscription ------------------------------------------------------------------


class SubscriptionRules(RecordsEvents):
    """A purchased app's moves and view. ``line`` is the order line it was bought on."""

    id: str
    order_id: str
    account_id: str
    enterprise_project_id: str
    status: str
    auto_renew: bool
    activated_at: dt.datetime
    expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    line: LineRules
    released_reason: str | None
    time_zone: str
    period_started_at: dt.datetime | None
    reminded_stage: int
    specification_id: str | None
    quantity: int | None
    auto_renew_period_unit: str | None
    auto_renew_period_count: int | None
    upgrading_order_id: str | None
    moved_at: dt.datetime | None

    def move_to_project(self, project_id: str, mode: str, now: dt.datetime) -> None:
        """Moved to another enterprise project of its account (``orders.moves`` checked
        that it may): its later renewals and upgrades are accounted there."""
        previous = self.enterprise_project_id
        self.enterprise_project_id = project_id
        self.moved_at = now
        self.updated_at = now
        self.record(
            "orders.subscription.moved",
            subject=self.id,
            account_id=self.account_id,
            data={
                "subscription_id": self.id,
                "account_id": self.account_id,
                "from_enterprise_project_id": previous,
                "to_enterprise_project_id": project_id,
                "mode": mode,
                "delivery_method": self.line.delivery_method,
                "moved_at": now,
            },
        )

    def enable(
        self,
        now: dt.datetime,
        starts_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
    ) -> None:
        """Delivered and in use. Its period is the one provisioning told the seller and
        signed into a license (``starts_at`` to ``expires_at``), or runs from now when
        the delivery does not say."""
        self.status = SUBSCRIPTION.move("enable", self.status)
        if starts_at is not None:
            self.activated_at, self.expires_at = starts_at, expires_at
        else:
            self.activated_at = now
            self.expires_at = self.line.expiry_from(now, self.time_zone)
        self.period_started_at = self.activated_at
        self.updated_at = now
        self.record(
            "orders.subscription.activated",
            subject=self.id,
            account_id=self.account_id,
            data={
                "subscription_id": self.id,
                "order_id": self.order_id,
                "account_id": self.account_id,
                "product_id": self.line.product_id,
                "delivery_method": self.line.delivery_method,
                "status": self.status,
                "activated_at": self.activated_at,
                "expires_at": self.expires_at,
            },
        )

    def facts(self) -> dict[str, Any]:
        """The fields every event of its life after the purchase begins with
        (``mercato.contracts.orders.SubscriptionFactsV1``)."""
        line = self.line
        return {
            "subscription_id": self.id,
            "order_id": self.order_id,
            "account_id": self.account_id,
            "seller_account_id": line.seller_account_id,
            "product_id": line.product_id,
            "product_name": line.product_name,
            "specification_name": getattr(self, "specification_name", None)
            or line.specification_name,
            "delivery_method": line.delivery_method,
            "billing_mode": line.billing_mode,
        }

    def release(self, now: dt.datetime, reason: str) -> None:
        """Ended for good (``reason``: ``expired``, ``unsubscribed`` or ``cancelled``):
        its resources are to be released (``orders.subscription.released``)."""
        self.status = SUBSCRIPTION.move("release", self.status)
        self.released_reason = reason
        self.updated_at = now
        self.record(
            "orders.subscription.released",
            subject=self.id,
            account_id=self.account_id,
            data={**self.facts(), "reason": reason, "released_at": now},
        )

    # -- the lifecycle after the expiry, and renewals --

    def current_specification_id(self) -> str:
        return self.specification_id or self.line.specification_id

    def current_quantity(self) -> int:
        return self.quantity or self.line.quantity

    def remind(self, stage: str, now: dt.datetime, periods: LifecyclePeriods) -> None:
        """Tell the buyer a deadline nears (once per stage and period)."""
        if stage == BEFORE_EXPIRY:
            self.reminded_stage = REMINDED_BEFORE_EXPIRY
        else:
            self.reminded_stage = REMINDED_BEFORE_FREEZE
        self.updated_at = now
        self.record(
            "orders.subscription.expiring",
            subject=self.id,
            account_id=self.account_id,
            data={
                **self.facts(),
                "expires_at": self.expires_at,
                "stage": stage,
                "auto_renew": bool(self.auto_renew),
            },
        )

    def expire(self, now: dt.datetime, periods: LifecyclePeriods) -> None:
        """Its expiry passed unrenewed: the grace period (still usable) begins."""
        self.status = SUBSCRIPTION.move("expire", self.status)
        self.updated_at = now
        assert self.expires_at is not None
        self.record(
            "orders.subscription.expired",
            subject=self.id,
            account_id=self.account_id,
            data={
                **self.facts(),
                "expires_at": self.expires_at,
                "grace_ends_at": periods.grace_ends_at(self.expires_at),
            },
        )

    def freeze(self, now: dt.datetime, periods: LifecyclePeriods) -> None:
        """The grace period ended: frozen, its data kept until the retention ends."""
        self.status = SUBSCRIPTION.move("freeze", self.status)
        self.updated_at = now
        assert self.expires_at is not None
        self.record(
            "orders.subscription.frozen",
            subject=self.id,
            account_id=self.account_id,
            data={
                **self.facts(),
                "expires_at": self.expires_at,
                "frozen_at": now,
                "release_at": periods.release_at(self.expires_at),
            },
        )

    def renewal_refusal(self) -> BusinessRuleViolation | Conflict | None:
        """Why it cannot be renewed now, if it cannot: only a yearly/monthly subscription
        that is enabled, expired or frozen can (released: 409 SUBSCRIPTION_RELEASED)."""
        if self.status == RELEASED:
            return Conflict(
                "the purchased app was released; it can no longer be renewed",
                code="SUBSCRIPTION_RELEASED",
            )
        if (
            self.line.billing_mode != TIMED_BILLING_MODE
            or self.status not in RENEWABLE
            or self.expires_at is None
        ):
            return BusinessRuleViolation(
                "only a yearly/monthly purchased app that is enabled, expired or frozen can "
                f"be renewed; this one is {self.line.billing_mode}, {self.status}",
                code="RENEWAL_NOT_SUPPORTED",
            )
        return None

    def renew(
        self,
        *,
        renewal_order_id: str,
        period: dict[str, Any],
        amount: dict[str, Any],
        time_zone: str,
        automatic: bool,
        now: dt.datetime,
    ) -> None:
        """A renewal paid: the new period starts at the previous expiry (also when it
        was expired or frozen: the grace and retention days are not given back) and ends
        at 23:59:59 of its last day in ``time_zone`` (the account's now)."""
        previous_status, previous_expires_at = self.status, self.expires_at
        assert previous_expires_at is not None
        self.status = SUBSCRIPTION.move("renew", self.status)
        self.expires_at = renewed_expiry(
            previous_expires_at, period["unit"], period["count"], time_zone
        )
        self.period_started_at = previous_expires_at
        self.time_zone = time_zone
        self.reminded_stage = REMINDED_NONE
        self.updated_at = now
        self.record(
            "orders.subscription.renewed",
            subject=self.id,
            account_id=self.account_id,
            data={
                **self.facts(),
                "renewal_order_id": renewal_order_id,
                "previous_status": previous_status,
                "previous_expires_at": previous_expires_at,
                "expires_at": self.expires_at,
                "period": period,
                "amount": amount,
                "automatic": automatic,
                "renewed_at": now,
            },
        )

    def lifecycle_view(self, periods: LifecyclePeriods) -> dict[str, Any]:
        """What the purchased app shows of its life after the purchase."""
        timed = self.line.billing_mode == TIMED_BILLING_MODE and self.expires_at is not None
        unit = getattr(self, "auto_renew_period_unit", None)
        return {
            "grace_ends_at": periods.grace_ends_at(self.expires_at)
            if timed and self.expires_at is not None
            else None,
            "release_at": periods.release_at(self.expires_at)
            if timed and self.expires_at is not None
            else None,
            "auto_renew_period": {"unit": unit, "count": self.auto_renew_period_count}
            if unit
            else None,
            "specification_id": self.current_specification_id(),
            "quantity": self.current_quantity(),
            "upgrading": getattr(self, "upgrading_order_id", None) is not None,
        }

    def view(self, periods: LifecyclePeriods = DEFAULT_PERIODS) -> dict[str, Any]:
        line = self.line
        return {
            **self.lifecycle_view(periods),
            "id": self.id,
            "order_id": self.order_id,
            "product_id": line.product_id,
            "product_name": line.product_name,
            "specification_name": getattr(self, "specification_name", None)
            or line.specification_name,
            "delivery_method": line.delivery_method,
            "status": self.status,
            "expires_at": self.expires_at,
            "billing_mode": line.billing_mode,
            "auto_renew": self.auto_renew,
            "enterprise_project_id": self.enterprise_project_id,
            "created_at": self.created_at,
            "activated_at": self.activated_at,
            "service_supervision": line.service_supervision,
            "product_guide_url": line.product_guide_url,
            "seller_account_id": line.seller_account_id,
            "seller_company_name": line.seller_company_name,
        }


# -- auto-renewal and upgrades ---------------------------------------------------
# (rules only; the use cases are orders.auto_renewal and orders.upgrades)

AUTO_RENEW_HOUR = 3  # an automatic renewal is tried at 03:00 in the subscription's zone
AUTO_RENEW_DAYS_BEFORE = 7  # ... this many days before its expiry's local date


def _at_auto_renew_hour(day: dt.date, time_zone: str | None) -> dt.datetime:
    """03:00 of ``day`` in ``time_zone`` (``mercato.periods.zone``: UTC when unknown)."""
    local = dt.datetime.combine(day, dt.time(AUTO_RENEW_HOUR), tzinfo=zone(time_zone))
    return local.astimezone(dt.UTC)


def auto_renew_due_at(expires_at: dt.datetime, time_zone: str | None) -> dt.datetime:
    """When an automatic renewal of a subscription expiring at ``expires_at`` is due:
    03:00 in ``time_zone``, 7 days before the expiry's local date."""
    local_day = expires_at.astimezone(zone(time_zone)).date()
    return _at_auto_renew_hour(local_day - dt.timedelta(days=AUTO_RENEW_DAYS_BEFORE), time_zone)


def auto_renew_at(expires_at: dt.datetime, time_zone: str | None, now: dt.datetime) -> dt.datetime:
    """When the next automatic renewal is tried: when it is due, or now if that passed."""
    return max(auto_renew_due_at(expires_at, time_zone), now)


def next_auto_renew_attempt(
    expires_at: dt.datetime, time_zone: str | None, now: dt.datetime
) -> dt.datetime | None:
    """After a failed attempt at ``now``: 03:00 local the next day, while that is before
    the expiry; None when no attempt is left."""
    next_day = now.astimezone(zone(time_zone)).date() + dt.timedelta(days=1)
    moment = _at_auto_renew_hour(next_day, time_zone)
    return moment if moment < expires_at else None


def auto_renewal_key(subscription_id: str, expires_at: dt.datetime) -> str:
    """One automatic renewal order per subscription and period it extends."""
    return f"{subscription_id}:{expires_at.astimezone(dt.UTC).isoformat()}"


def may_auto_renew(delivery_method: str, billing_mode: str) -> bool:
    """Licenses and professional services bought by the year or month."""
    return delivery_method in (LICENSE, PROFESSIONAL_SERVICE) and billing_mode == YEARLY_MONTHLY


def prorated(price: int, period_started_at: dt.datetime, expires_at: dt.datetime, now) -> int:
    """``price`` for the part of the period left at ``now`` (``(expires_at - now) /
    (expires_at - period_started_at)``), rounded half up to the minor unit."""
    whole = expires_at - period_started_at
    left = max(expires_at - now, dt.timedelta(0))
    whole_us = whole // dt.timedelta(microseconds=1)
    left_us = min(left, whole) // dt.timedelta(microseconds=1)
    if whole_us <= 0:
        return 0
    return (2 * price * left_us + whole_us) // (2 * whole_us)


@dataclass(frozen=True)
class UpgradePrice:
    """What an upgrade costs for the time left, itemised: the new configuration's value
    minus the current one's unused value, never below 0."""

    amount: int
    lines: list[dict[str, Any]]


def upgrade_price(
    *,
    target_price: int,
    current_price: int,
    currency: str,
    target: dict[str, Any],
    current: dict[str, Any],
    period_started_at: dt.datetime,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> UpgradePrice:
    """``target``/``current``: ``{specification_name, quantity}``."""
    new_value = prorated(target_price, period_started_at, expires_at, now)
    unused = prorated(current_price, period_started_at, expires_at, now)
    days_left = max((expires_at - now).days, 0)
    lines = [
        {
            "item": "new_configuration",
            "description": f"{target['specification_name']} x {target['quantity']} "
            f"until the expiry ({days_left} days left)",
            "quantity": target["quantity"],
            "amount": money(new_value, currency),
        },
        {
            "item": "unused_value",
            "description": f"the unused part of {current['specification_name']} x "
            f"{current['quantity']}",
            "quantity": current["quantity"],
            "amount": money(-unused, currency),
        },
    ]
    return UpgradePrice(max(new_value - unused, 0), lines)


def is_higher_configuration(
    *, current_specification_id: str, current_quantity: int, specification_id: str, quantity: int
) -> bool:
    """At least the quantity, and another specification or more of it (its price decides
    the rest)."""
    return quantity >= current_quantity and (
        specification_id != current_specification_id or quantity > current_quantity
    )


def current_configuration(subscription: SubscriptionRules) -> dict[str, Any]:
    """The configuration a subscription has now: the last upgrade's, or its line's."""
    line = subscription.line
    return {
        "specification_id": getattr(subscription, "specification_id", None)
        or line.specification_id,
        "specification_name": getattr(subscription, "specification_name", None)
        or line.specification_name,
        "quantity": getattr(subscription, "quantity", None) or line.quantity,
    }


def may_upgrade(subscription: SubscriptionRules) -> bool:
    """A SaaS subscription by the year or month, enabled, with no upgrade under way."""
    line = subscription.line
    return (
        line.delivery_method == SAAS
        and line.billing_mode == YEARLY_MONTHLY
        and subscription.status == ENABLED
        and getattr(subscription, "upgrading_order_id", None) is None
        and subscription.expires_at is not None
    )


def start_upgrade(
    subscription: Any, order: OrderRules, target: dict[str, Any], now: dt.datetime
) -> None:
    """A paid upgrade: the order is delivering while the seller applies ``target``
    (``{specification_id, specification_name, quantity}``); the subscription shows it
    under way."""
    current = current_configuration(subscription)
    if order.status == PAID:
        order.start_delivering(now)
    subscription.upgrading_order_id = order.id
    subscription.updated_at = now
    subscription.record(
        "orders.subscription.upgrading",
        subject=subscription.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "upgrade_order_id": order.id,
            **target,
            "previous_specification_id": current["specification_id"],
            "previous_quantity": current["quantity"],
            "expires_at": subscription.expires_at,
        },
    )


def apply_upgrade(
    subscription: Any, order: OrderRules, target: dict[str, Any], now: dt.datetime
) -> None:
    """The seller applied the upgrade: the subscription takes the new configuration (its
    expiry does not move) and the upgrade order completes."""
    current = current_configuration(subscription)
    subscription.specification_id = target["specification_id"]
    subscription.specification_name = target["specification_name"]
    subscription.quantity = target["quantity"]
    subscription.upgrading_order_id = None
    subscription.updated_at = now
    order.complete(now)
    subscription.record(
        "orders.subscription.upgraded",
        subject=subscription.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "upgrade_order_id": order.id,
            **target,
            "previous_specification_id": current["specification_id"],
            "previous_quantity": current["quantity"],
            "upgraded_at": now,
        },
    )


def refuse_upgrade(subscription: Any, order: OrderRules, reason: str, now: dt.datetime) -> None:
    """The upgrade cannot be applied: the order is cancelled and refunded in full, the
    subscription keeps its configuration."""
    if getattr(subscription, "upgrading_order_id", None) == order.id:
        subscription.upgrading_order_id = None
        subscription.updated_at = now
    order.cancel_undelivered(f"Upgrade failed: {reason}", now)
    subscription.record(
        "orders.subscription.upgrade_failed",
        subject=subscription.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "upgrade_order_id": order.id,
            "reason": reason,
            "refund": order.amount(),
        },
    )


def auto_renew_failed(
    subscription: Any,
    renewal_order_id: str | None,
    reason: str,
    next_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """An automatic renewal could not be paid, or not even priced (no order:
    ``renewal_order_id`` None): counted, tried again at ``next_attempt_at`` (None: not
    again this period) and announced to the buyer."""
    subscription.auto_renew_failures = (subscription.auto_renew_failures or 0) + 1
    if subscription.auto_renew:
        subscription.next_auto_renew_at = next_attempt_at or subscription.expires_at
    subscription.updated_at = now
    subscription.record(
        "orders.subscription.auto_renew_failed",
        subject=subscription.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "renewal_order_id": renewal_order_id,
            "reason": reason,
            "expires_at": subscription.expires_at,
            "next_attempt_at": next_attempt_at if subscription.auto_renew else None,
        },
    )


# -- unsubscriptions -----------------------------------------------------------------
# (rules only; the use cases are orders.unsubscriptions). Guide table 7-1 and 7.2: a
# license, a professional service or a supervised SaaS product may be unsubscribed from
# by negotiation during the transaction guarantee period (until its order is completed,
# i.e. the supervision flow completed), the seller reviewing the request; an image
# follows the cloud's rule: the unused part of a yearly/monthly period is refunded at
# once, no review. The request's row is ``orders.models.Unsubscription``; its events are
# recorded on the subscription (their fields begin with the subscription's facts).


UNSUBSCRIPTION = StateMachine(
    "unsubscription",
    {
        "approve": ((PENDING_REVIEW,), APPROVED),
        "reject": ((PENDING_REVIEW,), REJECTED),
        "refund": ((APPROVED,), REFUNDED),
    },
)

# why an unsubscription is refused (422 UNSUBSCRIPTION_NOT_ALLOWED names one)
NOT_ALLOWED_RELEASED = "released"  # the subscription was released already
NOT_ALLOWED_ALREADY_REQUESTED = "already_requested"  # a request of it awaits review
NOT_ALLOWED_PAY_PER_USE = "pay_per_use"  # pay-per-use resources cannot be unsubscribed
NOT_ALLOWED_ONE_TIME_IMAGE = "one_time_image"  # an image bought once has no unused period
NOT_ALLOWED_UNSUPERVISED_SAAS = "unsupervised_saas"  # no supervision: no guarantee period
NOT_ALLOWED_TRANSACTION_COMPLETED = "transaction_completed"  # the guarantee period is over
NOT_ALLOWED_PERIOD_ENDED = "period_ended"  # an image whose period has no unused part left
NOT_ALLOWED_RULES = {
    NOT_ALLOWED_RELEASED: "the subscription was released",
    NOT_ALLOWED_ALREADY_REQUESTED: "an unsubscription request of it awaits the seller's review",
    NOT_ALLOWED_PAY_PER_USE: "pay-per-use resources cannot be unsubscribed from",
    NOT_ALLOWED_ONE_TIME_IMAGE: "an image bought with a one-time payment cannot be "
    "unsubscribed from",
    NOT_ALLOWED_UNSUPERVISED_SAAS: "a SaaS product without service supervision cannot be "
    "unsubscribed from",
    NOT_ALLOWED_TRANSACTION_COMPLETED: "the transaction guarantee period ended when the "
    "order was completed (service supervision completed)",
    NOT_ALLOWED_PERIOD_ENDED: "the period the image's first order bought has no unused part "
    "left (it expired, or the subscription was renewed)",
}
# the orders whose transaction guarantee period is still running (not completed)
GUARANTEE_PERIOD_STATUSES = (PAID, DELIVERING, AWAITING_ACCEPTANCE)


def follows_cloud_rule(line: LineRules) -> bool:
    """An image: the cloud's unsubscription rule (refund of the unused period, at once)."""
    return line.delivery_method == IMAGE


def unsubscription_refusal(
    subscription: SubscriptionRules, order: OrderRules, *, pending: bool, now: dt.datetime
) -> str | None:
    """The rule that refuses unsubscribing from ``subscription`` (bought by ``order``, its
    first order) now, or None when it may be: ``pending`` says a request of it awaits
    review."""
    line = subscription.line
    if subscription.status == RELEASED or order.status == CANCELLED:
        return NOT_ALLOWED_RELEASED
    if pending:
        return NOT_ALLOWED_ALREADY_REQUESTED
    if line.billing_mode == PAY_PER_USE:
        return NOT_ALLOWED_PAY_PER_USE
    if follows_cloud_rule(line):
        if line.billing_mode == ONE_TIME:
            return NOT_ALLOWED_ONE_TIME_IMAGE
        if unused_value(subscription, now) <= 0:
            return NOT_ALLOWED_PERIOD_ENDED
        return None
    if line.delivery_method == SAAS and not line.service_supervision:
        return NOT_ALLOWED_UNSUPERVISED_SAAS
    if order.status not in GUARANTEE_PERIOD_STATUSES:
        return NOT_ALLOWED_TRANSACTION_COMPLETED
    return None


def was_renewed(subscription: SubscriptionRules) -> bool:
    """Whether the subscription's current period is a renewal's (it started after the
    first order's period began), i.e. the period the first order bought is over."""
    started = getattr(subscription, "period_started_at", None)
    return started is not None and started > subscription.activated_at


def unused_value(subscription: SubscriptionRules, now: dt.datetime) -> int:
    """An image's unused part of the period its first order bought, at ``now``: the
    first order's line amount pro rata of the period's seconds left, rounded down (0
    once it expired, and 0 once the subscription was renewed: that period is over and a
    renewal's money is not the first order's, so the cloud rule refunds nothing then)."""
    line = subscription.line
    if was_renewed(subscription):
        return 0
    started = getattr(subscription, "period_started_at", None) or subscription.activated_at
    expires = subscription.expires_at
    if expires is None or started is None or expires <= started:
        return 0
    whole = (expires - started) // dt.timedelta(microseconds=1)
    left = min(max(expires - now, dt.timedelta(0)), expires - started)
    return line.amount * (left // dt.timedelta(microseconds=1)) // whole


def max_refundable(subscription: SubscriptionRules, now: dt.datetime) -> int:
    """The most an unsubscription refunds: what the first order paid for the line
    (renewals excluded), or, for an image, the unused part of its period."""
    if follows_cloud_rule(subscription.line):
        return unused_value(subscription, now)
    return subscription.line.amount


def record_unsubscription_requested(subscription: SubscriptionRules, request: Any) -> None:
    """``request`` (an ``Unsubscription`` row) was made: the seller is to review it."""
    subscription.record(
        "orders.unsubscription.requested",
        subject=request.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "unsubscription_id": request.id,
            "refund": money(request.refund_amount, request.currency),
            "reason": request.reason,
            "reason_detail": request.reason_detail,
            "share_contact": request.share_contact,
            "requested_at": request.requested_at,
        },
    )


def approve_unsubscription(
    request: Any,
    subscription: SubscriptionRules,
    order: OrderRules,
    now: dt.datetime,
    *,
    automatic: bool = False,
) -> None:
    """Approved (by the seller, or ``automatic``: an image under the cloud's rule): the
    first order is cancelled with the refund (``orders.order.cancelled`` with
    ``payment_id`` and ``refund``: billing refunds the payer once, supervision closes the
    flow), the subscription released (``unsubscribed``), and the approval recorded."""
    request.status = UNSUBSCRIPTION.move("approve", request.status)
    request.reviewed_at = request.updated_at = now
    refund = money(request.refund_amount, request.currency)
    order.status = ORDER.move("unsubscribe", order.status)
    by = "under the cloud's unsubscription rule" if automatic else "by the seller"
    order._cancelled(
        f"Unsubscribed: the unsubscription request {request.id} was approved {by}; "
        f"{request.refund_amount / 100:.2f} {request.currency} is refunded to the payer.",
        now,
        refund=refund,
    )
    subscription.release(now, RELEASED_UNSUBSCRIBED)
    subscription.record(
        "orders.unsubscription.approved",
        subject=request.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "unsubscription_id": request.id,
            "refund": refund,
            "approved_at": now,
            "automatic": automatic,
        },
    )


def reject_unsubscription(
    request: Any, subscription: SubscriptionRules, reason: str, now: dt.datetime
) -> None:
    """The seller rejected it: nothing is refunded; the buyer may request again."""
    request.status = UNSUBSCRIPTION.move("reject", request.status)
    request.rejection_reason = reason
    request.reviewed_at = request.updated_at = now
    subscription.record(
        "orders.unsubscription.rejected",
        subject=request.id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "unsubscription_id": request.id,
            "rejection_reason": reason,
            "rejected_at": now,
        },
    )


# why a pending request was closed with no review (its ``rejection_reason``: the buyer
# reads it, supervision messages it)
CLOSED_RELEASED = "the subscription was released"
CLOSED_TRANSACTION_COMPLETED = (
    "the transaction guarantee period ended when the delivery was accepted"
)


def unsubscription_closed(
    request_id: str, subscription: SubscriptionRules, reason: str, now: dt.datetime
) -> None:
    """A pending request was closed with no review (written as ``rejected`` with
    ``reason`` by the caller's statement, see ``orders.unsubscriptions.close_pending``):
    the rejection is recorded so the buyer is told."""
    subscription.record(
        "orders.unsubscription.rejected",
        subject=request_id,
        account_id=subscription.account_id,
        data={
            **subscription.facts(),
            "unsubscription_id": request_id,
            "rejection_reason": reason,
            "rejected_at": now,
        },
    )


def unsubscription_refunded(request: Any, now: dt.datetime) -> None:
    """billing refunded the cancelled first order: the approved request is refunded."""
    request.status = UNSUBSCRIPTION.move("refund", request.status)
    request.refunded_at = request.updated_at = now


def unsubscription_view(request: Any) -> dict[str, Any]:
    """A request as its buyer sees it."""
    return {
        "id": request.id,
        "subscription_id": request.subscription_id,
        "order_id": request.order_id,
        "product_name": request.product_name,
        "specification_name": request.specification_name,
        "delivery_method": request.delivery_method,
        "seller_account_id": request.seller_account_id,
        "refund": money(request.refund_amount, request.currency),
        "max_refundable": money(request.max_refundable, request.currency),
        "reason": request.reason,
        "reason_detail": request.reason_detail,
        "share_contact": request.share_contact,
        "status": request.status,
        "rejection_reason": request.rejection_reason,
        "requested_at": request.requested_at,
        "reviewed_at": request.reviewed_at,
        "refunded_at": request.refunded_at,
    }


def unsubscription_seller_view(request: Any) -> dict[str, Any]:
    """A request as the seller reviewing it sees it: the buyer as ``{account_id,
    shared_contact}`` (the gateway names it, with its email only when shared)."""
    view = unsubscription_view(request)
    del view["seller_account_id"]
    return {
        **view,
        "buyer": {"account_id": request.account_id, "shared_contact": request.share_contact},
    }


def eligible_view(subscription: SubscriptionRules, now: dt.datetime) -> dict[str, Any]:
    """A row of "My Unsubscriptions": what may be unsubscribed from now, and at most how
    much it refunds."""
    line = subscription.line
    return {
        "subscription_id": subscription.id,
        "order_id": subscription.order_id,
        "product_id": line.product_id,
        "product_name": line.product_name,
        "specification_name": getattr(subscription, "specification_name", None)
        or line.specification_name,
        "quantity": getattr(subscription, "quantity", None) or line.quantity,
        "seller_account_id": line.seller_account_id,
        "seller_company_name": line.seller_company_name,
        "delivery_method": line.delivery_method,
        "billing_mode": line.billing_mode,
        "status": subscription.status,
        "created_at": subscription.created_at,
        "expires_at": subscription.expires_at,
        "automatic": follows_cloud_rule(line),
        "max_refundable": money(max_refundable(subscription, now), line.currency),
    }
