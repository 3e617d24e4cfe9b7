"""provisioning's rules: a delivery's life, how it is retried, and the release of what
a failed one left at the seller. No nameko, no SQL.

A delivery's statuses (``DELIVERY``):

- ``waiting``: delivered by a flow of its own (images: their deployment, which ends
  it with ``deployed`` or ``deployment_failed``; professional services: service
  supervision), or a supervised SaaS tenant waiting
  for its seller to confirm the buyer's request (``start``, on
  ``supervision.flow.confirmed``, makes it ``pending`` with a full window);
- ``pending``: claimed by the sweep and tried, step by step, until it succeeds or its
  window passes;
- ``succeeded``, ``failed``: final; each is announced (``provisioning.delivery.*``).

A failed delivery whose seller had already created an instance asks the seller to
release it (``RELEASE``): ``due`` until the seller answers (``released``) or, after
as long again as the delivery window was, left to an operator (``abandoned``).

The moves are methods of ``DeliveryLifecycle``, which ``models.Delivery`` mixes in;
each refuses a move its status does not allow (Conflict) and records the event it
causes, for the use case to emit in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mercato.domain import RecordsEvents, StateMachine
from mercato.identity import OPERATOR, Identity
from mercato.periods import subscription_expiry
from mercato.terms import IMAGE, LICENSE, SAAS
from provisioning.keyring import Sealed

WAITING, PENDING, SUCCEEDED, FAILED = "waiting", "pending", "succeeded", "failed"
# Images and professional services are delivered by flows of their own; their
# deliveries wait for them.
DELIVERED_HERE = (LICENSE, SAAS)


def starts_at_payment(delivery_method: str, service_supervision: bool) -> bool:
    """Delivered here from payment on: a license (its supervision flow starts at
    acceptance) and a SaaS tenant without supervision. A supervised SaaS tenant is
    created when the seller confirms the buyer's request."""
    if delivery_method not in DELIVERED_HERE:
        return False
    return delivery_method == LICENSE or not service_supervision


DELIVERY_SUCCEEDED = "provisioning.delivery.succeeded"
DELIVERY_FAILED = "provisioning.delivery.failed"

DELIVERY = StateMachine(
    "delivery",
    {
        "start": ((WAITING,), PENDING),
        # an image's delivery waits for its deployment, and ends with it
        "deployed": ((WAITING,), SUCCEEDED),
        "deployment_failed": ((WAITING,), FAILED),
        "claim": ((PENDING,), PENDING),
        "record_instance": ((PENDING,), PENDING),
        "succeed": ((PENDING,), SUCCEEDED),
        "retry_later": ((PENDING,), PENDING),
        "fail": ((PENDING,), FAILED),
    },
)

NO_RELEASE, RELEASE_DUE, RELEASED, RELEASE_ABANDONED = "none", "due", "released", "abandoned"
RELEASE = StateMachine(
    "instance release",
    {
        "claim_release": ((RELEASE_DUE,), RELEASE_DUE),
        "instance_released": ((RELEASE_DUE,), RELEASED),
        "retry_release": ((RELEASE_DUE,), RELEASE_DUE),
        "abandon_release": ((RELEASE_DUE,), RELEASE_ABANDONED),
    },
)

REVEAL_WINDOW = dt.timedelta(minutes=1)  # the rate limit of password reveals counts in it


@dataclass(frozen=True)
class DeliveryPolicy:
    window: dt.timedelta = dt.timedelta(hours=3)  # newInstance must succeed within it
    lease: dt.timedelta = dt.timedelta(seconds=60)  # longer than one step's calls
    first_retry: dt.timedelta = dt.timedelta(seconds=1)
    max_retry: dt.timedelta = dt.timedelta(minutes=5)
    processing_poll: dt.timedelta = dt.timedelta(seconds=1)  # seller answered 000004
    reveals_per_minute: int = 5
    # a whole seller call, connection and slow answer included (the client's own timeout
    # bounds each socket read only)
    call_budget: dt.timedelta = dt.timedelta(seconds=6)
    # a seller endpoint on loopback or a private network: only for `make run` and tests
    allow_private_endpoints: bool = False

    def backoff(self, attempts: int) -> dt.timedelta:
        """How long to wait after the ``attempts``-th failed try: doubling from
        ``first_retry``, at most ``max_retry``."""
        return min(self.first_retry * 2 ** min(attempts - 1, 20), self.max_retry)


@dataclass(frozen=True)
class Delivered:
    """What a step delivered: a license key, or a SaaS instance with its credentials
    (the password sealed); what a delivery method does not have is None."""

    license_key: str | None = None
    instance_id: str | None = None
    username: str | None = None
    management_url: str | None = None
    frontend_url: str | None = None
    password: Sealed | None = None


class DeliveryLifecycle(RecordsEvents):
    """A delivery's moves (``DELIVERY``, ``RELEASE``), mixed into ``models.Delivery``."""

    if TYPE_CHECKING:
        id: str
        subscription_id: str
        order_id: str
        order_line_id: str
        account_id: str
        product_name: str
        delivery_method: str
        service_supervision: bool
        billing_mode: str
        period_unit: str | None
        period_count: int | None
        time_zone: str
        starts_at: dt.datetime | None
        expires_at: dt.datetime | None
        status: str
        attempts: int
        next_attempt_at: dt.datetime | None
        lease_until: dt.datetime | None
        deadline_at: dt.datetime
        last_error: str | None
        failure_reason: str | None
        instance_id: str | None
        license_key: str | None
        username: str | None
        management_url: str | None
        frontend_url: str | None
        password_key_id: str | None
        password_sealed: bytes | None
        delivered_at: dt.datetime | None
        release_due_at: dt.datetime | None
        release_attempts: int
        released_at: dt.datetime | None
        created_at: dt.datetime
        updated_at: dt.datetime

    def may(self, move: str) -> bool:
        """Whether the delivery's status allows ``move`` (one of ``DELIVERY``'s) now:
        False once another worker, or the window passing, has ended it."""
        return DELIVERY.allows(move, self.status)

    def visible_to(self, viewer: Identity) -> bool:
        """Its buyer and operators see a delivery; to anyone else it does not exist."""
        return self.account_id == viewer.account_id or viewer.has_role(OPERATOR)

    # -- delivering -------------------------------------------------------------------

    def start(self, now: dt.datetime, policy: DeliveryPolicy) -> None:
        """A waiting supervised SaaS delivery starts: due now, with a whole window."""
        self.status = DELIVERY.move("start", self.status)
        self.next_attempt_at = now
        self.deadline_at = now + policy.window
        self.updated_at = now

    def claim(self, now: dt.datetime, policy: DeliveryPolicy) -> None:
        """Leased to one worker for one step. The subscription's period runs from the
        first attempt: the expiry the seller is told and the license carries, and the
        one orders keeps."""
        DELIVERY.move("claim", self.status)
        self.lease_until = now + policy.lease
        if self.starts_at is None:
            self.starts_at = now
            self.expires_at = subscription_expiry(
                now, self.billing_mode, self.period_unit, self.period_count, self.time_zone
            )

    def record_instance(self, instance_id: str) -> None:
        """The seller created the instance: the next attempt queries it instead of
        asking for another."""
        DELIVERY.move("record_instance", self.status)
        self.instance_id = instance_id

    def succeed(self, delivered: Delivered, now: dt.datetime) -> None:
        self.status = DELIVERY.move("succeed", self.status)
        self._succeeded(delivered, now)

    def _succeeded(self, delivered: Delivered, now: dt.datetime) -> None:
        self.instance_id = delivered.instance_id or self.instance_id
        self.license_key = delivered.license_key
        self.username = delivered.username
        self.management_url = delivered.management_url
        self.frontend_url = delivered.frontend_url
        if delivered.password is not None:
            self.password_key_id = delivered.password.key_id
            self.password_sealed = delivered.password.ciphertext
        self.delivered_at = now
        self.updated_at = now
        self.lease_until = None
        self.next_attempt_at = None
        self.last_error = None
        self.record(
            DELIVERY_SUCCEEDED,
            subject=self.subscription_id,
            account_id=self.account_id,
            data={
                **self._identifying(),
                "service_supervision": self.service_supervision,
                "application": {
                    "instance_id": self.instance_id,
                    "username": self.username,
                    "management_url": self.management_url,
                    "frontend_url": self.frontend_url,
                    "license_key": self.license_key,
                    "has_password": self.password_sealed is not None,
                },
                "starts_at": self.starts_at,
                "expires_at": self.expires_at,
                "delivered_at": now,
            },
        )

    def deployed(self, delivered: Delivered, now: dt.datetime) -> None:
        """An image's deployment is active: its waiting delivery succeeds, and the
        subscription's period runs from now."""
        self.status = DELIVERY.move("deployed", self.status)
        if self.starts_at is None:
            self.starts_at = now
            self.expires_at = subscription_expiry(
                now, self.billing_mode, self.period_unit, self.period_count, self.time_zone
            )
        self._succeeded(delivered, now)

    def deployment_failed(self, reason: str, now: dt.datetime) -> None:
        """An image's deployment failed (what it created is deleted): the delivery
        fails with the deployment's reason, so orders cancels and billing refunds once."""
        self.status = DELIVERY.move("deployment_failed", self.status)
        self._attempt_failed(reason, now)
        self.next_attempt_at = None
        self._failed(reason, now)

    def window_passed(self, now: dt.datetime) -> bool:
        return now >= self.deadline_at

    def retry_later(
        self, error: str, now: dt.datetime, policy: DeliveryPolicy, *, processing: bool = False
    ) -> None:
        """The step did not deliver (``error`` is for operators, never a secret): tried
        again after the backoff, or soon when the seller is still creating it
        (``processing``); the last try falls on the deadline, not after it."""
        DELIVERY.move("retry_later", self.status)
        self._attempt_failed(error, now)
        delay = policy.processing_poll if processing else policy.backoff(self.attempts)
        self.next_attempt_at = min(now + delay, self.deadline_at)

    def fail(self, error: str, now: dt.datetime) -> None:
        """The window passed without a delivery: the order is cancelled and refunded
        (orders and billing hear of it), and an instance the seller created is to be
        released, recorded with the failure so that a crash cannot lose it."""
        self.status = DELIVERY.move("fail", self.status)
        self._attempt_failed(error, now)
        hours = (self.deadline_at - self.created_at).total_seconds() / 3600
        self.next_attempt_at = None
        self._failed(
            f"The seller's system did not deliver {self.product_name} within "
            f"{hours:g} hours, so the order is cancelled and the payment refunded.",
            now,
        )
        if self.instance_id is not None:
            self.release_due_at = now

    def _failed(self, reason: str, now: dt.datetime) -> None:
        self.failure_reason = reason
        self.record(
            DELIVERY_FAILED,
            subject=self.subscription_id,
            account_id=self.account_id,
            data={**self._identifying(), "reason": self.failure_reason, "failed_at": now},
        )

    def _attempt_failed(self, error: str, now: dt.datetime) -> None:
        self.attempts += 1
        self.last_error = error[:2000]
        self.lease_until = None
        self.updated_at = now

    def _identifying(self) -> dict[str, Any]:
        """What every delivery event says about which delivery it is."""
        return {
            "delivery_id": self.id,
            "subscription_id": self.subscription_id,
            "order_id": self.order_id,
            "order_line_id": self.order_line_id,
            "account_id": self.account_id,
            "delivery_method": self.delivery_method,
        }

    # -- releasing a failed delivery's instance ------------------------------------------

    @property
    def release_status(self) -> str:
        """``RELEASE``'s status; ``none`` when there is nothing to release."""
        if self.released_at is not None:
            return RELEASED
        if self.release_due_at is not None:
            return RELEASE_DUE
        if self.status == FAILED and self.instance_id is not None:
            return RELEASE_ABANDONED
        return NO_RELEASE

    def claim_release(self, now: dt.datetime, policy: DeliveryPolicy) -> None:
        RELEASE.move("claim_release", self.release_status)
        self.lease_until = now + policy.lease

    def instance_released(self, now: dt.datetime) -> None:
        """The seller released the instance (or never had it)."""
        RELEASE.move("instance_released", self.release_status)
        self._release_asked()
        self.release_due_at = None
        self.released_at = now

    def release_failed(self, now: dt.datetime, policy: DeliveryPolicy) -> None:
        """The seller did not release it: asked again after the backoff for as long
        again as the delivery window was, then abandoned (an operator's to follow)."""
        if now - self.deadline_at >= self.deadline_at - self.created_at:
            RELEASE.move("abandon_release", self.release_status)
            self._release_asked()
            self.release_due_at = None
        else:
            RELEASE.move("retry_release", self.release_status)
            self._release_asked()
            self.release_due_at = now + policy.backoff(self.release_attempts)

    def _release_asked(self) -> None:
        self.lease_until = None
        self.release_attempts += 1

    # -- what its password is sealed to ---------------------------------------------------

    def sealed_password(self) -> Sealed | None:
        if self.password_sealed is None or self.password_key_id is None:
            return None
        return Sealed(self.password_key_id, self.password_sealed)

    def password_binding(self) -> str:
        return password_binding(self.account_id, self.subscription_id)


# What each sealed secret is bound to (the associated data of its AES-GCM seal), so
# that a ciphertext moved to another row does not open.


def password_binding(account_id: str, subscription_id: str) -> str:
    return f"password|{account_id}|{subscription_id}"


def interface_binding(seller_account_id: str, access_key: str) -> str:
    return f"interface-secret|{seller_account_id}|{access_key}"


def signing_binding(seller_account_id: str) -> str:
    return f"signing-key|{seller_account_id}"


# -- instance actions: what a subscription's life after the purchase does to what was
# delivered (provisioning.instance_actions runs them) -------------------------------------
#
# Each orders.subscription.* event becomes zero or more actions, queued in order; the
# delivery method decides which (``planned_actions``). A seller's answer decides an
# action's outcome (``seller_outcome``): done, tried again with backoff, or failed.

FREEZE, UNFREEZE, REFRESH, UPGRADE = "freeze", "unfreeze", "refresh", "upgrade"
RELEASE_INSTANCE = "release"  # (``RELEASE`` is the failed delivery's release above)
REISSUE_LICENSE = "reissue_license"
STOP_SERVERS, START_SERVERS, RELEASE_DEPLOYMENT = (
    "stop_servers",
    "start_servers",
    "release_deployment",
)
ACTION_KINDS = (
    FREEZE,
    UNFREEZE,
    REFRESH,
    UPGRADE,
    RELEASE_INSTANCE,
    REISSUE_LICENSE,
    STOP_SERVERS,
    START_SERVERS,
    RELEASE_DEPLOYMENT,
)
# the seller's activity each SaaS action calls
SELLER_ACTIONS = {
    FREEZE: "updateInstanceStatus",
    UNFREEZE: "updateInstanceStatus",
    REFRESH: "refreshInstance",
    UPGRADE: "upgradeInstance",
    RELEASE_INSTANCE: "releaseInstance",
}
CLOUD_ACTIONS = (STOP_SERVERS, START_SERVERS)
LOCAL_ACTIONS = (REISSUE_LICENSE, RELEASE_DEPLOYMENT)  # no call leaves provisioning

ACTION_PENDING, ACTION_DONE, ACTION_FAILED = "pending", "done", "failed"
# never run (or not run again): a later move of orders made it obsolete
ACTION_SUPERSEDED = "superseded"
# an attempt's outcome, as mercato_instance_actions_total counts it
ACTION_RETRIED = "retried"

SUBSCRIPTION_FROZEN = "orders.subscription.frozen"
SUBSCRIPTION_RENEWED = "orders.subscription.renewed"
SUBSCRIPTION_RELEASED = "orders.subscription.released"
SUBSCRIPTION_UPGRADING = "orders.subscription.upgrading"
INSTANCE_UPGRADED = "provisioning.instance.upgraded"
INSTANCE_UPGRADE_FAILED = "provisioning.instance.upgrade_failed"

# seller result codes (seller_interface.ResultCode, spelt here to keep the rules plain)
_SUCCESS, _NO_SUCH_INSTANCE, _PROCESSING, _INTERNAL_ERROR = "000000", "000003", "000004", "000005"
# the seller may fix its keys or its validation meanwhile: asked again, as deliveries do
_FIXABLE = ("000001", "000002")


@dataclass(frozen=True)
class InstanceActionPolicy:
    first_retry: dt.timedelta = dt.timedelta(seconds=30)  # INSTANCE_ACTION_RETRY_SECONDS
    max_retry: dt.timedelta = dt.timedelta(hours=1)  # INSTANCE_ACTION_RETRY_MAX_SECONDS
    lease: dt.timedelta = dt.timedelta(seconds=120)  # longer than one batch's calls
    batch: int = 200  # actions claimed by one statement
    concurrency: int = 20  # seller and cloud calls of a batch in flight at once
    call_budget: dt.timedelta = dt.timedelta(seconds=6)  # one whole seller call
    # an upgrade the seller has not confirmed by then fails (orders refunds it); the
    # delivery window by default (INSTANCE_ACTION_UPGRADE_WINDOW_SECONDS)
    upgrade_window: dt.timedelta = dt.timedelta(hours=3)

    def backoff(self, attempts: int) -> dt.timedelta:
        """After the ``attempts``-th failed try: doubling from ``first_retry``, at most
        ``max_retry``."""
        return min(self.first_retry * 2 ** min(max(attempts, 1) - 1, 20), self.max_retry)


@dataclass(frozen=True)
class SubscriptionDelivered:
    """What provisioning knows of a subscription's delivery when an event comes."""

    delivery_method: str
    status: str  # the delivery's
    instance_id: str | None


def planned_actions(
    event_type: str, data: dict[str, Any], delivered: SubscriptionDelivered | None
) -> list[tuple[str, dict[str, Any]]]:
    """The actions an orders.subscription.* event asks of what was delivered, in the
    order they must run, each with its payload. A subscription provisioning never
    delivered gets none; an upgrade is planned for any SaaS delivery, so that one
    without an instance fails it (and orders refunds it) instead of waiting forever."""
    if delivered is None:
        return []
    method = delivered.delivery_method
    # a tenant the seller has, or one being created (its window ends that within hours);
    # a supervised request the seller never confirmed has nothing to act on
    saas_live = method == SAAS and (
        delivered.instance_id is not None or delivered.status == PENDING
    )
    if event_type == SUBSCRIPTION_FROZEN:
        if method == SAAS and saas_live:
            return [(FREEZE, {"status": "FREEZE"})]
        if method == IMAGE:
            return [(STOP_SERVERS, {})]
        return []
    if event_type == SUBSCRIPTION_RENEWED:
        was_frozen = data.get("previous_status") == "frozen"
        expires_at = _iso(data["expires_at"])
        if method == SAAS and saas_live:
            refresh = (
                REFRESH,
                {"expires_at": expires_at, "renewal_order_id": data["renewal_order_id"]},
            )
            return [(UNFREEZE, {"status": "UNFREEZE"}), refresh] if was_frozen else [refresh]
        if method == LICENSE:
            return [(REISSUE_LICENSE, {"expires_at": expires_at})]
        if method == IMAGE and was_frozen:
            return [(START_SERVERS, {})]
        return []
    if event_type == SUBSCRIPTION_RELEASED:
        if method == SAAS and saas_live:
            return [(RELEASE_INSTANCE, {"reason": data.get("reason")})]
        if method == IMAGE:
            return [(RELEASE_DEPLOYMENT, {"reason": data.get("reason")})]
        return []
    if event_type == SUBSCRIPTION_UPGRADING and method == SAAS:
        return [
            (
                UPGRADE,
                {
                    "upgrade_order_id": data["upgrade_order_id"],
                    "specification_id": data["specification_id"],
                    "specification_name": data.get("specification_name"),
                    "quantity": data.get("quantity"),
                },
            )
        ]
    return []


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def seller_outcome(kind: str, result_code: str | None) -> str:
    """What a seller's answer (None: no usable answer: timeout, HTTP error, bad
    signature) makes of a SaaS action: ``done``, ``pending`` (asked again after the
    backoff) or ``failed``.

    Not answering, 000004 and 000005 are asked again. An upgrade refused any other way
    fails (orders refunds it). "No such instance" releases nothing, so a release is
    done; anything else has nothing to act on and fails. 000001 and 000002 of the other
    actions are asked again: the seller may fix its keys or its validation, and a
    freeze or a release must not be lost to that."""
    if result_code == _SUCCESS:
        return ACTION_DONE
    if result_code is None or result_code in (_PROCESSING, _INTERNAL_ERROR):
        return ACTION_PENDING
    if kind == UPGRADE:
        return ACTION_FAILED
    if result_code == _NO_SUCH_INSTANCE:
        return ACTION_DONE if kind == RELEASE_INSTANCE else ACTION_FAILED
    if result_code in _FIXABLE:
        return ACTION_PENDING
    return ACTION_FAILED


def upgrade_refused_reason(result_code: str, result_msg: str) -> str:
    return f"The seller's system refused the upgrade: {result_code} ({result_msg[:200]})."


def upgrade_given_up_reason(window: dt.timedelta, last_error: str | None) -> str:
    return f"The seller's system did not confirm the upgrade within {_span(window)}" + (
        f": {last_error[:300]}." if last_error else "."
    )


UPGRADE_RELEASED_REASON = "The subscription was released before its seller upgraded it."


def _span(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# -- the order of orders' moves ------------------------------------------------------------
#
# The four events come on four queues, so provisioning may take them in another order than
# orders made the moves (a renewal taken before the freeze it undoes). Each action carries
# its move's time on orders' clock (``move_time``); one subscription's actions run in that
# order, and an action older than a move that undoes it is never run (``overridden``):
# a freeze older than a renewal, a refresh older than a later refresh, anything older than
# the release. A release supersedes what is still pending before it (``supersedes``).

_MOVE_TIME_FIELD = {
    SUBSCRIPTION_FROZEN: "frozen_at",
    SUBSCRIPTION_RENEWED: "renewed_at",
    SUBSCRIPTION_RELEASED: "released_at",
}  # an upgrading event's move is its envelope's occurred_at

_POWER = (FREEZE, UNFREEZE, STOP_SERVERS, START_SERVERS)
_RENEWING = (UNFREEZE, REFRESH, REISSUE_LICENSE, START_SERVERS)  # what a renewal queues
_EXPIRY = (REFRESH, REISSUE_LICENSE)
RELEASING = (RELEASE_INSTANCE, RELEASE_DEPLOYMENT)
# the kinds of action whose newer move makes an older action of this kind obsolete
_UNDONE_BY: dict[str, tuple[str, ...]] = {
    FREEZE: _POWER + _RENEWING + RELEASING,
    STOP_SERVERS: _POWER + _RENEWING + RELEASING,
    UNFREEZE: _POWER + RELEASING,
    START_SERVERS: _POWER + RELEASING,
    REFRESH: _EXPIRY + RELEASING,
    REISSUE_LICENSE: _EXPIRY + RELEASING,
    UPGRADE: RELEASING,
    RELEASE_INSTANCE: RELEASING,
    RELEASE_DEPLOYMENT: RELEASING,
}


def move_time(event_type: str, data: dict[str, Any], occurred_at: dt.datetime) -> dt.datetime:
    """When orders made the move an event announces (its clock): the data's own time
    (frozen_at, renewed_at, released_at), else the envelope's ``occurred_at``."""
    value = data.get(_MOVE_TIME_FIELD.get(event_type, ""))
    if value is None:
        return occurred_at
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def overridden(
    kind: str, moved_at: dt.datetime, recorded: list[tuple[str, dt.datetime]]
) -> tuple[str, dt.datetime] | None:
    """The recorded move (kind, time) that makes a new action of ``kind`` moved at
    ``moved_at`` obsolete, or None: it is to run. After a release, only a release."""
    undone_by = _UNDONE_BY.get(kind, ())
    for other, at in recorded:
        if other in RELEASING and kind not in RELEASING:
            return (other, at)
        if other in undone_by and at > moved_at:
            return (other, at)
    return None


def supersedes(kind: str, moved_at: dt.datetime, older_kind: str, older_at: dt.datetime) -> bool:
    """Whether a new action of ``kind`` makes a pending action of ``older_kind``, moved
    at ``older_at``, obsolete: a release, everything before it. (A renewal does not drop
    a pending freeze: the freeze may have reached the seller on a try that got no
    answer, so it runs first, then the unfreeze.)"""
    return older_at < moved_at and kind in RELEASING and kind in _UNDONE_BY.get(older_kind, ())
