"""What a buyer (or a seller) is told when orders announces a change to a subscription
after its purchase: expiry reminders, expiry, freeze, release, renewal, auto-renewal
failures, upgrades and unsubscriptions. One direct message per event, written from the
event's data alone. No nameko, no SQL.

Each message names the product and its specification, gives every time in RFC 3339 and
says what happens next and what the reader can do about it. ``notice_for(type, data)``
answers the message, or None for an event type that is not about a subscription.

For example ``orders.subscription.expired`` with ``expires_at`` 2026-02-14T23:59:59Z and
``grace_ends_at`` 2026-03-01T23:59:59Z tells the buyer::

    Northwind CRM (Standard) expired at 2026-02-14T23:59:59Z
    ... is still usable until 2026-03-01T23:59:59Z; renew from Renewals ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mercato.terms import IMAGE, SAAS

# how soon an approved unsubscription's refund reaches the payer (docs/api.md)
REFUND_PROMISE = dt.timedelta(hours=3)

# the buyer's reasons for an unsubscription (orders' contract), as the seller reads them
UNSUBSCRIPTION_REASONS = {
    "wrong_parameters": "incorrect parameters set during purchase",
    "redundant_after_deployment": "cloud services redundant after deployment",
    "tests_completed": "service tests completed",
    "low_usability": "low usability of the cloud service",
    "requirements_unsatisfied": "service deployment requirements unsatisfied",
    "unreliable_faults": "unreliable service faults",
    "other": "other",
}

# the subscription events this module writes messages for
SUBSCRIPTION_EVENTS = (
    "orders.subscription.expiring",
    "orders.subscription.expired",
    "orders.subscription.frozen",
    "orders.subscription.released",
    "orders.subscription.renewed",
    "orders.subscription.auto_renew_failed",
    "orders.subscription.upgraded",
    "orders.subscription.upgrade_failed",
    "orders.unsubscription.requested",
    "orders.unsubscription.approved",
    "orders.unsubscription.rejected",
)


@dataclass(frozen=True)
class Notice:
    """One direct message: to whom, its kind (``GET /v1/messages`` shows it), subject
    and body."""

    account_id: str
    kind: str
    subject: str
    body: str


def notice_for(event_type: str, data: dict[str, Any]) -> Notice | None:
    """The message an event of ``event_type`` with ``data`` (loaded by its contract)
    sends, or None when the type is none of these."""
    writer = _WRITERS.get(event_type)
    return writer(data) if writer is not None else None


# -- how values read ------------------------------------------------------------------------


def rfc3339(moment: dt.datetime | str | None) -> str:
    """A time as RFC 3339, to the second: ``2026-02-14T23:59:59Z`` in UTC, else with its
    offset (``2026-02-14T23:59:59+08:00``)."""
    if moment is None:
        return "-"
    moment = _moment(moment)
    if moment.utcoffset() == dt.timedelta(0):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


def _moment(value: dt.datetime | str) -> dt.datetime:
    """An aware datetime (an event's times are, once loaded; naive ones are UTC)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def money_text(amount: dict[str, Any] | None) -> str:
    """``{"amount": 12345, "currency": "USD"}`` -> ``123.45 USD``."""
    if not amount:
        return "-"
    return f"{amount['amount'] / 100:.2f} {amount['currency']}"


def _product(data: dict[str, Any]) -> str:
    """``Northwind CRM (Standard, 10 users)``."""
    specification = data.get("specification_name")
    name = data["product_name"]
    return f"{name} ({specification})" if specification else name


def _clause(text: str) -> str:
    """Free text (a reason) set inside a sentence: without its own closing full stop."""
    return str(text).strip().rstrip(".")


def _period(period: dict[str, Any] | None) -> str:
    if not period:
        return "-"
    count, unit = period["count"], period["unit"]
    return f"{count} {unit}{'s' if count != 1 else ''}"


def _subject(text: str) -> str:
    """A subject fits the messages table's 200 characters."""
    return text if len(text) <= 200 else text[:197] + "..."


def _buyer(data: dict[str, Any], kind: str, subject: str, body: str) -> Notice:
    return Notice(data["account_id"], kind, _subject(subject), body)


def _what_freezing_means(delivery_method: str) -> str:
    if delivery_method == SAAS:
        return "its SaaS tenant is frozen (your data is kept)"
    if delivery_method == IMAGE:
        return "its servers are stopped (disks and data are kept)"
    return "it can no longer be used (its data is kept)"


# -- one writer per event type ---------------------------------------------------------------


def _expiring(data: dict[str, Any]) -> Notice:
    product, expires = _product(data), rfc3339(data["expires_at"])
    if data["stage"] == "before_freeze":
        return _buyer(
            data,
            "subscription_freezing_soon",
            f"{product} will be frozen in 3 days",
            f"Your subscription {data['subscription_id']} to {product} expired at {expires} "
            f"and its grace period ends in 3 days: then "
            f"{_what_freezing_means(data['delivery_method'])} until the retention period "
            "ends, when it is released and its data deleted. Renew it from Renewals to keep "
            f"it running; the renewed period starts at {expires}.",
        )
    if data.get("auto_renew"):
        what_next = (
            "Auto-renewal is on: it is renewed automatically before then, paid from your "
            "balance, then your credit. Keep enough funds available; you are told if the "
            "renewal fails. You can change the period or turn auto-renewal off in Renewals."
        )
    else:
        what_next = (
            "Renew it from Renewals before then to keep using it without interruption. "
            "After it expires it stays usable during a grace period, then it is frozen, and "
            "at the end of the retention period it is released and its data deleted."
        )
    return _buyer(
        data,
        "subscription_expiring",
        f"{product} expires at {expires}",
        f"Your subscription {data['subscription_id']} to {product} expires at {expires}. "
        + what_next,
    )


def _expired(data: dict[str, Any]) -> Notice:
    product, expires = _product(data), rfc3339(data["expires_at"])
    grace_ends = rfc3339(data["grace_ends_at"])
    return _buyer(
        data,
        "subscription_expired",
        f"{product} expired at {expires}",
        f"Your subscription {data['subscription_id']} to {product} expired at {expires}. "
        f"It is still usable until {grace_ends}; renew from Renewals before then to keep "
        f"it running (the renewed period starts at {expires}). After {grace_ends} "
        f"{_what_freezing_means(data['delivery_method'])}.",
    )


def _frozen(data: dict[str, Any]) -> Notice:
    product, expires = _product(data), rfc3339(data["expires_at"])
    release_at = rfc3339(data["release_at"])
    return _buyer(
        data,
        "subscription_frozen",
        f"{product} is frozen; data kept until {release_at}",
        f"Your subscription {data['subscription_id']} to {product} expired at {expires} "
        f"and its grace period ended: since {rfc3339(data['frozen_at'])} "
        f"{_what_freezing_means(data['delivery_method'])}. The data is kept until "
        f"{release_at}. Renew from Renewals before then to unfreeze it (the renewed period "
        f"starts at {expires}); at {release_at} it is released and its data deleted.",
    )


def _released(data: dict[str, Any]) -> Notice:
    product, released_at = _product(data), rfc3339(data["released_at"])
    if data["reason"] == "expired":
        why = (
            f"Its retention period after expiry ended, so it was released at {released_at} "
            "and its resources and data deleted."
        )
    elif data["reason"] == "unsubscribed":
        why = (
            f"Following your approved unsubscription it was released at {released_at}; "
            "the refund is paid to the account that paid for the order."
        )
    else:
        why = f"It was released at {released_at} ({data['reason']})."
    return _buyer(
        data,
        "subscription_released",
        f"{product} was released",
        f"Your subscription {data['subscription_id']} to {product} has ended. {why} It can "
        "no longer be used or renewed; to use the product again, buy it from the catalog.",
    )


def _renewed(data: dict[str, Any]) -> Notice:
    product, expires = _product(data), rfc3339(data["expires_at"])
    how = "renewed automatically" if data.get("automatic") else "renewed"
    body = (
        f"Your subscription {data['subscription_id']} to {product} was {how} for "
        f"{_period(data.get('period'))} at {rfc3339(data['renewed_at'])}: "
        f"{money_text(data.get('amount'))} with the order {data['renewal_order_id']}. It now "
        f"expires at {expires} (the new period started at "
        f"{rfc3339(data['previous_expires_at'])})."
    )
    if data.get("previous_status") == "frozen":
        body += " It was frozen: it is being unfrozen and is usable again shortly."
    return _buyer(data, "subscription_renewed", f"{product} renewed until {expires}", body)


def _auto_renew_failed(data: dict[str, Any]) -> Notice:
    product, expires = _product(data), rfc3339(data["expires_at"])
    body = (
        f"The automatic renewal of your subscription {data['subscription_id']} to {product} "
        + (f"(order {data['renewal_order_id']}) " if data.get("renewal_order_id") else "")
        + f"failed: {_clause(data['reason'])}. "
    )
    if data.get("next_attempt_at") is not None:
        body += (
            f"It is tried again at {rfc3339(data['next_attempt_at'])}: top up your balance "
            "or credit before then, or renew it yourself from Renewals. "
        )
    else:
        body += "No automatic attempt is left: renew it yourself from Renewals. "
    body += f"It expires at {expires}."
    return _buyer(data, "auto_renew_failed", f"Auto-renewal of {product} failed", body)


def _upgraded(data: dict[str, Any]) -> Notice:
    product = data["product_name"]
    specification = data["specification_name"]
    return _buyer(
        data,
        "subscription_upgraded",
        f"{product} upgraded to {specification}",
        f"The upgrade of your subscription {data['subscription_id']} to {product} (order "
        f"{data['upgrade_order_id']}) was applied at {rfc3339(data['upgraded_at'])}: it is "
        f"now {specification}, quantity {data['quantity']} (it was quantity "
        f"{data['previous_quantity']}). Its expiry does not change.",
    )


def _upgrade_failed(data: dict[str, Any]) -> Notice:
    product, refund = _product(data), money_text(data.get("refund"))
    return _buyer(
        data,
        "upgrade_failed",
        f"Upgrade of {product} failed; {refund} refunded",
        f"The seller could not apply the upgrade of your subscription "
        f"{data['subscription_id']} to {product} (order {data['upgrade_order_id']}): "
        f"{_clause(data['reason'])}. The upgrade order is cancelled and {refund} is refunded the way "
        "it was paid; you are told when the refund is made. The subscription keeps its "
        "current configuration; you may ask for a new upgrade quote from the purchased app.",
    )


def _reason(data: dict[str, Any]) -> str:
    reason = UNSUBSCRIPTION_REASONS.get(data["reason"], data["reason"])
    detail = data.get("reason_detail")
    return f"{reason}: {_clause(detail)}" if detail else reason


def _unsubscription_requested(data: dict[str, Any]) -> Notice:
    product, refund = _product(data), money_text(data.get("refund"))
    contact = (
        "The buyer shares its contact details with you (see the request)."
        if data.get("share_contact")
        else "The buyer did not share its contact details."
    )
    return Notice(
        data["seller_account_id"],
        "unsubscription_requested",
        _subject(f"Unsubscription request for {product}: {refund} refund"),
        f"The buyer of the order {data['order_id']} asks, at "
        f"{rfc3339(data['requested_at'])}, to unsubscribe from {product} (subscription "
        f"{data['subscription_id']}, request {data['unsubscription_id']}) with a "
        f"negotiated refund of {refund}. Reason: {_reason(data)}. {contact} Approve or "
        "reject it in Seller Console > Orders > Unsubscriptions (POST "
        f"/v1/seller/unsubscriptions/{data['unsubscription_id']}/approval or /rejection). "
        "Once approved, the refund reaches the payer within 3 hours and the subscription "
        "is released.",
    )


def _unsubscription_approved(data: dict[str, Any]) -> Notice:
    product, refund = _product(data), money_text(data.get("refund"))
    approved_at = data["approved_at"]
    by = (
        "was approved under the cloud's unsubscription rule"
        if data.get("automatic")
        else "was approved by the seller"
    )
    refund_by = rfc3339(_moment(approved_at) + REFUND_PROMISE)
    return _buyer(
        data,
        "unsubscription_approved",
        f"Unsubscription from {product} approved: {refund} refund",
        f"Your unsubscription request {data['unsubscription_id']} for {product} "
        f"(subscription {data['subscription_id']}) {by} at {rfc3339(approved_at)}. "
        f"{refund} is refunded to the account that paid for the order {data['order_id']} "
        f"within 3 hours, by {refund_by}; you get a message when the refund is made. The "
        "subscription is released and can no longer be used.",
    )


def _unsubscription_rejected(data: dict[str, Any]) -> Notice:
    product = _product(data)
    return _buyer(
        data,
        "unsubscription_rejected",
        f"Unsubscription from {product} rejected",
        f"The seller rejected your unsubscription request {data['unsubscription_id']} for "
        f"{product} (subscription {data['subscription_id']}) at "
        f"{rfc3339(data['rejected_at'])}: {_clause(data['rejection_reason'])}. Nothing is refunded "
        "and the subscription stays as it is. You may agree on a refund with the seller "
        "and request again from My Unsubscriptions, or open an appeal on the order's "
        "supervision flow while it is not completed.",
    )


_WRITERS: dict[str, Callable[[dict[str, Any]], Notice]] = {
    "orders.subscription.expiring": _expiring,
    "orders.subscription.expired": _expired,
    "orders.subscription.frozen": _frozen,
    "orders.subscription.released": _released,
    "orders.subscription.renewed": _renewed,
    "orders.subscription.auto_renew_failed": _auto_renew_failed,
    "orders.subscription.upgraded": _upgraded,
    "orders.subscription.upgrade_failed": _upgrade_failed,
    "orders.unsubscription.requested": _unsubscription_requested,
    "orders.unsubscription.approved": _unsubscription_approved,
    "orders.unsubscription.rejected": _unsubscription_rejected,
}
assert set(_WRITERS) == set(SUBSCRIPTION_EVENTS)
