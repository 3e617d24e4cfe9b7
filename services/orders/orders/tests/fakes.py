"""In-memory stand-ins for orders' repository and neighbours, for use-case tests.

``FakeOrderRepository`` answers the methods of ``orders.repository.OrderRepository``
from dicts, with the same rules a test can observe: ``mark_paid`` is a compare-and-set
on ``unpaid``, pages are newest first, a rollback undoes what was not committed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from mercato.db import Page
from mercato.errors import NotFound, PaymentRequired
from mercato.terms import ENABLED, UNPAID
from mercato_testing.fakes import InMemoryRepository
from orders.domain import NewSubscription
from orders.models import Order, OrderRequest, Subscription

KNOWN_PRODUCTS = ("prd_known", "prd_supervised", "prd_image")
# what the tests' buyers order, unless a test says otherwise
ORDER_REQUEST = {
    "product_id": "prd_known",
    "specification_id": "spc_std",
    "billing_mode": "yearly_monthly",
    "period": {"unit": "month", "count": 2},
    "quantity": 3,
    "accept_terms": True,
}
PRICE = 2500  # per month and unit


def quote_for(payload: dict[str, Any]) -> dict[str, Any]:
    """What catalog's ``quote`` answers for the two products the tests know."""
    if payload["product_id"] not in KNOWN_PRODUCTS:
        raise NotFound("product not found")
    period = payload.get("period")
    count = period["count"] if period else 1
    quantity = payload.get("quantity", 1)
    return {
        "product_id": payload["product_id"],
        "product_name": "Known App",
        "seller_account_id": "acc_seller",
        "seller_company_name": "Seller Co",
        "delivery_method": "saas",
        "service_supervision": payload["product_id"] == "prd_supervised",
        "product_guide_url": "https://seller.example.com/guide",
        "specification_id": payload["specification_id"],
        "specification_name": "Standard",
        "billing_mode": payload["billing_mode"],
        "period": period,
        "quantity": quantity,
        "unit_price": {"amount": PRICE, "currency": "USD"},
        "amount": {"amount": PRICE * count * quantity, "currency": "USD"},
        "breakdown": [
            {
                "item": "product",
                "description": "Standard",
                "quantity": quantity,
                "unit_price": {"amount": PRICE, "currency": "USD"},
                "amount": {"amount": PRICE * count * quantity, "currency": "USD"},
            }
        ],
        "image": None,
        **(_image_quote(payload, count) if payload["product_id"] == "prd_image" else {}),
    }


IMAGE = {"image_id": "img-known", "flavors": ["s6.large.2"], "min_system_disk_gb": 40}
SERVER_PRICE = 4800  # a month


def _image_quote(payload: dict[str, Any], count: int) -> dict[str, Any]:
    """An image is priced with its servers (catalog's breakdown, shortened)."""
    if "deployment" not in payload:
        from mercato.errors import ValidationError

        raise ValidationError("invalid", {"deployment": ["is required for an image product"]})
    servers = payload["deployment"].get("count", 1)
    lines = [
        ("image", PRICE * count * servers),
        ("servers", SERVER_PRICE * count * servers),
    ]
    return {
        "delivery_method": "image",
        "service_supervision": False,
        "quantity": 1,
        "amount": {"amount": sum(amount for _, amount in lines), "currency": "USD"},
        "breakdown": [
            {
                "item": item,
                "description": item,
                "quantity": servers,
                "unit_price": {"amount": amount // servers, "currency": "USD"},
                "amount": {"amount": amount, "currency": "USD"},
            }
            for item, amount in lines
        ],
        "image": IMAGE,
    }


def enterprise_project(project_id: str) -> dict[str, Any]:
    """What iam-agency's ``get_enterprise_project`` answers for the tests' buyers."""
    if project_id not in ("default", "proj_a"):
        raise NotFound("no such project")
    return {"id": project_id, "name": project_id, "status": "enabled"}


def payment_answer(
    payload: dict[str, Any],
    status: str,
    *,
    payment_id: str | None = None,
    payment_method: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """What billing's ``pay_order`` answers for ``payload``: its payment, in ``status``."""
    return {
        "id": payment_id or f"pay_{uuid.uuid4().hex}",
        "order_id": payload["order_id"],
        "status": status,
        "payment_method": payment_method or payload["payment_method"],
        "amount": payload["amount"],
        "failure_reason": failure_reason,
    }


class Catalog:
    def quote(self, payload):
        return quote_for(payload)


class Iam:
    def get_enterprise_project(self, project_id):
        return enterprise_project(project_id)


class Agencies:
    """iam-agency's ``deployment_readiness``: ready unless a test says why not."""

    def __init__(self) -> None:
        self.error: str | None = None

    def deployment_readiness(self, account_id):
        if self.error is None:
            return {"ready": True, "error": None, "message": "both agencies are authorised"}
        return {"ready": False, "error": self.error, "message": f"{self.error} for {account_id}"}


class Provisioning:
    """provisioning's pre-order check and the deployments it keeps."""

    def __init__(self) -> None:
        self.quota_exceeded: dict[str, Any] | None = None
        self.prepared: list[dict[str, Any]] = []
        self.checked: list[dict[str, Any]] = []

    def check_deployment(self, payload):
        self.checked.append(payload)
        return {"ok": self.quota_exceeded is None, "quota_exceeded": self.quota_exceeded}

    def prepare_deployment(self, payload):
        self.prepared.append(payload)
        return {"deployment_id": f"dep_{payload['order_id']}"}


class Billing:
    """Charges each order once; answers as the test tells it to (``next_status``)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.next_status = "succeeded"
        self.refuse: Exception | None = None
        # each order's payment as billing keeps it (``get_payment``); a test may settle one
        self.payments: dict[str, dict[str, Any]] = {}

    def pay_order(self, payload):
        self.calls.append(payload)
        if self.refuse is not None:
            raise self.refuse
        answer = payment_answer(
            payload,
            self.next_status,
            payment_id=f"pay_{payload['order_id']}",
            failure_reason="card declined" if self.next_status == "failed" else None,
        )
        self.payments[payload["order_id"]] = answer
        return answer

    def get_payment(self, order_id):
        if order_id not in self.payments:
            raise NotFound(f"no payment for order {order_id}")
        return self.payments[order_id]


INSUFFICIENT = PaymentRequired("the balance is short")


class FakeOrderRepository(InMemoryRepository):
    @property
    def _orders(self) -> dict[str, Order]:
        return self.table("orders")

    @property
    def _subscriptions(self) -> dict[str, Subscription]:
        return self.table("subscriptions")

    # -- orders --

    def add(self, order: Order) -> None:
        self._orders[order.id] = order

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    lock = get

    def load_lines(self, order: Order) -> None:
        pass  # an in-memory order always has its lines

    def mark_payment_started(self, order: Order) -> None:
        pass  # the object is the row

    def clear_payment_mark(self, order_id: str) -> None:
        order = self._orders.get(order_id)
        if order is not None and order.status == UNPAID:
            order.payment_started_at = None

    def mark_paid(self, order: Order) -> bool:
        return True  # the object is the row: ``pay`` moved it, under the use case's lock

    def payment_of(self, order_id: str) -> str | None:
        order = self._orders.get(order_id)
        return order.payment_id if order else None

    def unpaid_past_deadline(self, now: dt.datetime, *, limit: int) -> Sequence[Order]:
        due = [
            o
            for o in self._orders.values()
            if o.status == UNPAID and o.payment_deadline <= now and o.payment_started_at is None
        ]
        return sorted(due, key=lambda o: o.payment_deadline)[:limit]

    def attempted_past_deadline(
        self, now: dt.datetime, *, started_before: dt.datetime, limit: int
    ) -> list[str]:
        due = [
            o
            for o in self._orders.values()
            if o.status == UNPAID
            and o.payment_deadline <= now
            and o.payment_started_at is not None
            and o.payment_started_at < started_before
        ]
        return [o.id for o in sorted(due, key=lambda o: o.payment_deadline)][:limit]

    def forget_unplaced(self, order: Order) -> None:
        self._orders.pop(order.id, None)
        requests = self.table("order_requests")
        for key in [key for key, row in requests.items() if row.order_id == order.id]:
            del requests[key]

    def request(self, account_id: str, request_key: str) -> OrderRequest | None:
        return self.table("order_requests").get((account_id, request_key))

    def add_request(
        self, account_id: str, request_key: str, action: str, order_id: str, now: dt.datetime
    ) -> bool:
        requests = self.table("order_requests")
        if (account_id, request_key) in requests:
            return False
        requests[(account_id, request_key)] = OrderRequest(
            account_id=account_id,
            request_key=request_key,
            action=action,
            order_id=order_id,
            created_at=now,
        )
        return True

    def page_of_account(
        self, account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        found = [
            o
            for o in self._orders.values()
            if o.account_id == account_id and (not status or o.status == status)
        ]
        return _page(sorted(found, key=lambda o: o.created_at, reverse=True), page, page_size)

    def page_of_seller(
        self, seller_account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        found = [
            o
            for o in self._orders.values()
            if any(line.seller_account_id == seller_account_id for line in o.lines)
            and (not status or o.status == status)
        ]
        return _page(sorted(found, key=lambda o: o.created_at, reverse=True), page, page_size)

    # -- subscriptions --

    def add_subscriptions(self, order: Order, subscriptions: Sequence[NewSubscription]) -> None:
        for new in subscriptions:
            row = self._subscriptions[new.id] = Subscription.of(order, new)
            row.line = new.line
            row.time_zone = new.time_zone

    def time_zone_of(self, account_id: str) -> str:
        return self.table("account_time_zones").get(account_id, "UTC")

    def set_time_zone(self, account_id: str, time_zone: str, changed_at) -> None:
        self.table("account_time_zones")[account_id] = time_zone

    def is_released(self, subscription_id: str | None) -> bool:
        subscription = self._subscriptions.get(subscription_id or "")
        return subscription is not None and subscription.status == "released"

    def order_of_subscription(self, subscription_id: str) -> str | None:
        subscription = self._subscriptions.get(subscription_id)
        return subscription.order_id if subscription else None

    def lock_subscription(self, subscription_id: str) -> Subscription | None:
        return self._subscriptions.get(subscription_id)

    def lock_subscriptions_of(self, order_id: str) -> Sequence[Subscription]:
        return [s for s in self._subscriptions.values() if s.order_id == order_id]

    def count_not_enabled(self, order_id: str) -> int:
        return sum(1 for s in self.lock_subscriptions_of(order_id) if s.status != ENABLED)

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self._subscriptions.get(subscription_id)

    def page_of_subscriptions(self, account_id: str, *, page: int, page_size: int) -> Page:
        found = [s for s in self._subscriptions.values() if s.account_id == account_id]
        return _page(sorted(found, key=lambda s: s.created_at, reverse=True), page, page_size)


def _page(rows: list[Any], page: int, page_size: int) -> Page:
    start = (page - 1) * page_size
    return Page(rows[start : start + page_size], len(rows), page, page_size)


# -- unsubscriptions ------------------------------------------------------------------


class FakeUnsubscriptionRepository(InMemoryRepository):
    """``uow.unsubscriptions`` with no requests: what the order use cases ask of it (the
    pending requests a release or a completion closes: none here)."""

    def close_pending_of(self, subscription_ids, reason, now):
        return []
