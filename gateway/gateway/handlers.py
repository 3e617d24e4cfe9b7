"""The routes whose answer is more than one RPC's: each handler composes it here.

A handler is called as a route's RPC would be, after the gateway and the request:
``handler(gateway, request, *path_ids, payload)``. It answers data for the route's
response schema, or a whole ``Response`` (the operations endpoints).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from gateway import openapi, probes
from gateway.attachments import content_disposition
from gateway.auth import bearer_token
from gateway.errors import json_response
from gateway.idempotency import downstream_key
from mercato.clock import ControllableClock, SystemClock
from mercato.contracts.common import ClockResponse
from mercato.errors import Forbidden, NotFound, ServiceUnavailable
from mercato.terms import IMAGE
from mercato.topology import SERVICES
from mercato.validation import dump

# -- accounts ---------------------------------------------------------------------------


def sign_out(gateway: Any, request: Request) -> None:
    """Revoke the request's token at iam-agency and forget it in this replica."""
    gateway.auth.sign_out(bearer_token(request), gateway.iam_agency)


# -- catalog ----------------------------------------------------------------------------


def product_details(gateway: Any, request: Request, product_id: str) -> dict[str, Any]:
    """From this replica's copy of a published product, else from catalog."""
    product = gateway.products.get(product_id)
    if product is None:
        product = gateway.catalog.get_product(product_id)
        gateway.products.put(product_id, product)
    return product


# -- billing ----------------------------------------------------------------------------


def top_up(gateway: Any, request: Request, payload: dict[str, Any]) -> dict[str, Any]:
    """Billing keeps the request's Idempotency-Key (its digest) with the top-up, so the
    card is charged once for it even past the gateway's own memory of the key."""
    key = downstream_key(request)
    return gateway.billing.top_up(payload if key is None else {**payload, "idempotency_key": key})


def invoice_pdf(gateway: Any, request: Request, invoice_id: str) -> Response:
    """An issued invoice's PDF as billing kept it, saved by the browser as its number
    (``attachments.content_disposition``), never cached."""
    found = gateway.billing.get_invoice_pdf(invoice_id)
    body = base64.b64decode(found["content_base64"])
    response = Response(body, status=200, content_type=found["content_type"])
    response.headers["Content-Length"] = str(len(body))
    response.headers["Content-Disposition"] = content_disposition(found["filename"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the seller's orders ------------------------------------------------------------------


def seller_orders(gateway: Any, request: Request, query: dict[str, Any]) -> dict[str, Any]:
    """The orders of the seller's products (orders'), their buyers named by iam-agency
    in one call for the whole page."""
    page = gateway.orders.list_seller_orders(query)
    return {**page, "items": _with_flows(gateway, _with_buyers_named(gateway, page["items"]))}


def seller_order(gateway: Any, request: Request, order_id: str) -> dict[str, Any]:
    """One order of the seller's products (NotFound for any other), its buyer named."""
    (order,) = _with_flows(
        gateway, _with_buyers_named(gateway, [gateway.orders.get_seller_order(order_id)])
    )
    return order


def _with_flows(gateway: Any, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order's supervision flow id (supervision's, one call for the page); null for
    an order with none, or for all when supervision does not answer."""
    if not orders:
        return orders
    try:
        answer = gateway.supervision.flows_of_orders({"order_ids": [o["id"] for o in orders]})
        flows = {item["order_id"]: item["flow_id"] for item in answer["items"]}
    except ServiceUnavailable:
        flows = {}
    return [{**order, "flow_id": flows.get(order["id"])} for order in orders]


def _with_buyers_named(gateway: Any, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order's buyer as ``{account_id, name}``, with ``email`` for an order whose
    buyer shared its contact with it (orders says which: ``shared_contact``). A buyer
    may have shared with one order and not another, so iam-agency is asked for the
    emails of those who shared anywhere on the page and each order shows one only when
    its own buyer shared it there. Should iam-agency not answer, the page still shows
    the orders, with no names."""
    if not orders:
        return orders
    buyers = [order["buyer"] for order in orders]
    account_ids = list(dict.fromkeys(buyer["account_id"] for buyer in buyers))
    contacts = list(
        dict.fromkeys(buyer["account_id"] for buyer in buyers if buyer.get("shared_contact"))
    )
    try:
        answer = gateway.iam_agency.account_cards(
            {"account_ids": account_ids, "contact_account_ids": contacts}
        )
        cards = {card["account_id"]: card for card in answer["items"]}
    except ServiceUnavailable:
        cards = {}
    named = []
    for order in orders:
        buyer = order["buyer"]
        card = cards.get(buyer["account_id"], {})
        shown = {"account_id": buyer["account_id"], "name": card.get("name")}
        if buyer.get("shared_contact") and card.get("email"):
            shown["email"] = card["email"]
        named.append({**order, "buyer": shown})
    return named


# -- unsubscriptions ---------------------------------------------------------


def seller_unsubscriptions(gateway: Any, request: Request, query: dict[str, Any]) -> dict[str, Any]:
    """The unsubscription requests of the seller's products (orders'), their buyers named
    by iam-agency as the seller's orders are: the email only with a request whose buyer
    shared its contact."""
    page = gateway.orders.list_seller_unsubscriptions(query)
    return {**page, "items": _with_buyers_named(gateway, page["items"])}


# -- purchased apps ---------------------------------------------------------------------


def purchased_app(gateway: Any, request: Request, subscription_id: str) -> dict[str, Any]:
    """The subscription is orders' (NotFound if not the caller's); the delivered
    application (provisioning) and the seller's contact (catalog) are added when they
    answer: the page shows what it can."""
    subscription = gateway.orders.get_purchased_app(subscription_id)
    try:
        delivered = gateway.provisioning.get_application(subscription_id)
    except NotFound:  # paid a moment ago: provisioning has not heard of it yet
        delivered = {"delivery_status": "pending"}
    except ServiceUnavailable:
        delivered = {"delivery_status": "unknown"}
    try:
        seller = gateway.catalog.delivery_settings(subscription["product_id"])["seller"]
    except (NotFound, ServiceUnavailable):
        seller = {"company_name": subscription.get("seller_company_name")}
    extra: dict[str, Any] = {}
    if subscription["delivery_method"] == IMAGE:
        try:
            extra["deployment"] = gateway.provisioning.deployment_of_subscription(subscription_id)
        except NotFound:  # paid a moment ago: provisioning has not heard of it yet
            extra["deployment"] = {"status": "pending", "steps": [], "resources": []}
        except ServiceUnavailable:
            extra["deployment"] = None
    return {
        **subscription,
        **extra,
        "application": {**delivered, "product_guide_url": subscription.get("product_guide_url")},
        "basic": {
            "specification_name": subscription["specification_name"],
            "delivery_method": subscription["delivery_method"],
            "resource_status": subscription["status"],
            "billing_mode": subscription["billing_mode"],
            "auto_renew": subscription["auto_renew"],
        },
        "seller": seller,
    }


# -- the buyer's cloud -------------------------------------------------------------------


def cloud_resources(kind: str) -> Callable[..., dict[str, Any]]:
    """A handler answering the buyer's ``kind`` (flavors, vpcs, subnets, security
    groups), read by provisioning in the buyer's own cloud account."""

    def listed(gateway: Any, request: Request, query: dict[str, Any] | None = None) -> Any:
        return gateway.provisioning.list_cloud_resources({"kind": kind, **(query or {})})

    return listed


# -- the test clock ---------------------------------------------------------------------


def clock(gateway: Any, request: Request) -> dict[str, Any]:
    """The test clock as every service has it: the least offset among them (they differ
    only after a move that some did not answer, until it is sent again)."""
    return _clock_at(min(_clock_offsets(gateway)))


def advance_clock(gateway: Any, request: Request, payload: dict[str, Any]) -> dict[str, Any]:
    """Move every service's clock, and the gateway's own, to one offset: the least they
    have plus ``advance_seconds``. Answered only when every one has moved. One that does
    not answer is a 503 and leaves the others moved: the same move sent again aims at
    the same offset (the laggards' plus the advance), and a service already there stays
    (an offset never goes back), so a repeated move ends every service on the time the
    first one meant. A service left behind by more than that (its database was reset) is
    brought up to the others: the target is never below the largest offset."""
    offsets = _clock_offsets(gateway)
    target = max(min(offsets) + payload["advance_seconds"], max(offsets))
    move = {"offset_seconds": target}
    moved = [
        getattr(gateway, process.name).move_clock(move)["offset_seconds"] for process in SERVICES
    ]
    # a concurrent move may have taken a service further: the gateway follows the furthest
    return _clock_at(_gateway_clock(gateway).move_to(max(target, *moved)))


def _gateway_clock(gateway: Any) -> ControllableClock:
    own = gateway.clock
    if not isinstance(own, ControllableClock):
        raise NotFound("no test clock here: the system runs on the system clock")
    return own


def _clock_offsets(gateway: Any) -> list[int]:
    """The offset of the gateway's clock and of every service's, as stored now
    (NotFound if one reads the system clock; ServiceUnavailable if one does not answer)."""
    offsets = [_gateway_clock(gateway).read()]
    for process in SERVICES:
        offsets.append(getattr(gateway, process.name).clock_state()["offset_seconds"])
    return offsets


def _clock_at(offset_seconds: int) -> dict[str, Any]:
    now = SystemClock().now() + dt.timedelta(seconds=offset_seconds)
    return dump(ClockResponse, {"now": now, "offset_seconds": offset_seconds})


# -- operations -------------------------------------------------------------------------


def healthz(gateway: Any, request: Request) -> dict[str, str]:
    return {"status": "ok"}


def readyz(gateway: Any, request: Request) -> Response:
    report = probes.readiness(gateway.observability, gateway.iam_probe, gateway.last_readiness)
    return json_response(200 if report["status"] == probes.READY else 503, report)


def openapi_document(gateway: Any, request: Request) -> Response:
    return json_response(200, openapi.document(type(gateway)))


def docs(gateway: Any, request: Request) -> Response:
    return openapi.docs_response(openapi.document(type(gateway)))


# -- service supervision -----------------------------------------------------------------


def supervision_flow(gateway: Any, request: Request, flow_id: str) -> dict[str, Any]:
    """The flow is supervision's (NotFound unless the caller is a party or an operator);
    the seller's request template (catalog) and, for a SaaS flow, the delivered
    application (provisioning, which shows it to the buyer only: the seller is refused)
    are added when they answer: the page shows what it can."""
    flow = gateway.supervision.get_flow(flow_id)
    try:
        template = gateway.catalog.get_request_template(flow["product"]["id"])
        flow["request_template"] = template.get("template")
    except (NotFound, ServiceUnavailable):
        flow["request_template"] = None
    flow["application"] = None
    if flow["delivery_method"] == "saas":
        try:
            application = gateway.provisioning.get_application(flow["subscription_id"])
            if application.get("delivery_status") == "succeeded":
                flow["application"] = application
        except (NotFound, Forbidden, ServiceUnavailable):
            pass
    return flow
