"""provisioning's use cases: deliveries, their credentials, and the sellers' keys.

A delivery is a small saga driven from the database:

1. ``accept_paid_order`` (the order-paid event) records one ``pending`` delivery per
   subscription, in the event's inbox transaction; a repeated event adds nothing.
2. ``run_delivery`` claims a due delivery with a lease (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so replicas never work on the same one), then takes one step outside any
   transaction: sign a license key, or ask the seller's SaaS endpoint for an instance
   and its credentials. The step's outcome is written under the row lock.
3. A failed step is retried with exponential backoff until the delivery window passes
   (3 hours by default); then the delivery fails, ``provisioning.delivery.failed`` lets
   orders cancel the order and billing refund it, and the seller is asked to release
   any instance it created (recorded with the failure, asked again until it answers).

Exactly once: the seller's ``newInstance`` is idempotent on (order, order line), the
instance id is saved as soon as it is known, and a delivery completes at most once
(its status is checked under the lock). A crash anywhere leaves a ``pending`` row whose
lease runs out, and the sweep takes it up again.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import eventlet
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

import seller_interface
from mercato.clock import Clock
from mercato.db import insert_now, new_id
from mercato.errors import NotFound, RateLimited, ServiceUnavailable
from mercato.identity import Identity
from mercato.periods import subscription_expiry
from provisioning import endpoints, licenses, metrics
from provisioning.keyring import Keyring, Sealed
from provisioning.models import CredentialReveal, Delivery, SellerInterfaceKey, SellerSigningKey
from seller_interface import Activity, ResultCode, SellerCallError, SellerUnreachable

_log = logging.getLogger(__name__)

WAITING, PENDING, SUCCEEDED, FAILED = "waiting", "pending", "succeeded", "failed"
LICENSE, SAAS = "license", "saas"
# Images (cloud servers under an agency) and professional services (service
# supervision) are delivered by flows of their own; their deliveries wait for them.
DELIVERED_HERE = (LICENSE, SAAS)
MASKED_PASSWORD = "******"  # noqa: S105  (what the buyer sees instead)


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


class RetryLater(Exception):
    """This step did not deliver; ``reason`` is for operators (never a secret)."""

    def __init__(self, reason: str, *, processing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.processing = processing


SellerClientFactory = Callable[[str, str, str], seller_interface.SellerClient]


# -- accepting paid orders ---------------------------------------------------------


# built once, on the table's columns (see mercato.db)
_DELIVERIES = Delivery.__table__
_DELIVERY_OF_SUBSCRIPTION = sa.select(_DELIVERIES.c.id).where(
    _DELIVERIES.c.subscription_id == sa.bindparam("subscription_id")
)


def accept_paid_order(
    uow, clock: Clock, *, order: dict[str, Any], policy: DeliveryPolicy
) -> list[str]:
    """Record a delivery per subscription of a paid order (the caller's transaction
    commits them with the event's inbox row); answers the ids of those due now."""
    now = clock.now()
    due = []
    for item in order.get("subscriptions") or []:
        known = uow.session.scalar(
            _DELIVERY_OF_SUBSCRIPTION, {"subscription_id": item["subscription_id"]}
        )
        if known is not None:
            continue
        delivered_here = item["delivery_method"] in DELIVERED_HERE
        period = item.get("period") or {}
        delivery = Delivery(
            id=new_id("dlv"),
            subscription_id=item["subscription_id"],
            order_id=order["order_id"],
            order_line_id=item["order_line_id"],
            account_id=order["account_id"],
            product_id=item["product_id"],
            product_name=item["product_name"],
            seller_account_id=item["seller_account_id"],
            specification_id=item["specification_id"],
            specification_name=item["specification_name"],
            delivery_method=item["delivery_method"],
            service_supervision=item["service_supervision"],
            billing_mode=item["billing_mode"],
            period_unit=period.get("unit"),
            period_count=period.get("count"),
            quantity=item["quantity"],
            expires_at=_aware(item.get("expires_at")),
            status=PENDING if delivered_here else WAITING,
            attempts=0,
            release_attempts=0,
            next_attempt_at=now if delivered_here else None,
            deadline_at=now + policy.window,
            created_at=now,
            updated_at=now,
        )
        insert_now(uow.session, delivery)
        if delivered_here:
            due.append(delivery.id)
    return due


def _aware(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


# -- running deliveries ---------------------------------------------------------------


def claim_due(uow, clock: Clock, policy: DeliveryPolicy, *, limit: int = 1) -> list[Delivery]:
    """Lease up to ``limit`` due deliveries to this worker. One at a
    time by default: a lease covers one step (at most a catalog call and two seller
    calls), never a queue of them that could outlast it."""
    now = clock.now()
    query = (
        sa.select(Delivery)
        .where(
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    claimed = list(uow.session.scalars(query))
    for delivery in claimed:
        delivery.lease_until = now + policy.lease
        if delivery.starts_at is None:
            # the subscription's period runs from its first delivery attempt: the expiry
            # the seller is told and the license carries, and the one orders keeps
            delivery.starts_at = now
            delivery.expires_at = subscription_expiry(
                now, delivery.billing_mode, delivery.period_unit, delivery.period_count
            )
    uow.commit()
    return claimed


def run_delivery(
    uow,
    clock: Clock,
    delivery: Delivery,
    *,
    keyring: Keyring,
    catalog,
    seller_client: SellerClientFactory,
    policy: DeliveryPolicy,
) -> str:
    """One step of a claimed delivery; answers its status afterwards."""
    try:
        if delivery.delivery_method == LICENSE:
            _deliver_license(uow, clock, delivery, keyring)
        else:
            _deliver_saas(uow, clock, delivery, keyring, catalog, seller_client, policy)
        return SUCCEEDED
    except RetryLater as exc:
        return _retry_or_fail(uow, clock, delivery, exc, keyring, catalog, seller_client, policy)
    except ServiceUnavailable as exc:  # catalog did not answer
        return _retry_or_fail(
            uow, clock, delivery, RetryLater(str(exc)), keyring, catalog, seller_client, policy
        )
    except Exception as exc:
        # anything else (the product gone from catalog, a key missing from the keyring,
        # a bug) is a failed attempt too, so the delivery window still ends every saga
        _log.exception("delivery %s: unexpected failure", delivery.id)
        uow.rollback()
        reason = RetryLater(f"unexpected {type(exc).__name__}: {exc}")
        return _retry_or_fail(uow, clock, delivery, reason, keyring, catalog, seller_client, policy)


def _locked(uow, delivery_id: str) -> Delivery:
    delivery = uow.session.scalar(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert delivery is not None
    return delivery


def _deliver_license(uow, clock: Clock, claimed: Delivery, keyring: Keyring) -> None:
    now = clock.now()
    key_id, private_key = _signing_key(uow, keyring, claimed.seller_account_id, now)
    claims = {
        "iss": "mercato",
        "key_id": key_id,
        "license_id": claimed.id,
        "subscription_id": claimed.subscription_id,
        "account_id": claimed.account_id,
        "seller_account_id": claimed.seller_account_id,
        "product_id": claimed.product_id,
        "specification_id": claimed.specification_id,
        "quantity": claimed.quantity,
        "expires_at": claimed.expires_at.isoformat() if claimed.expires_at else None,
        "issued_at": now.isoformat(),
    }
    _complete(uow, clock, claimed.id, license_key=licenses.issue(private_key, claims))


def _deliver_saas(
    uow,
    clock: Clock,
    claimed: Delivery,
    keyring: Keyring,
    catalog,
    seller_client,
    policy: DeliveryPolicy,
) -> None:
    client = _seller_client(uow, claimed, keyring, catalog, seller_client, policy)
    try:
        instance_id = claimed.instance_id
        if instance_id is None:
            answer = _call(
                client, Activity.NEW_INSTANCE, _new_instance_fields(claimed), policy.call_budget
            )
            instance_id = answer.data.get("instanceId")
            if not isinstance(instance_id, str) or not 0 < len(instance_id) <= 64:
                raise RetryLater("newInstance answered no usable instanceId")
            # saved at once: the next attempt queries it instead of asking again
            current = _locked(uow, claimed.id)
            if current.status != PENDING:  # ended meanwhile (the window passed)
                uow.commit()
                return
            current.instance_id = instance_id
            uow.commit()
        answer = _call(
            client,
            Activity.QUERY_INSTANCE,
            {"instanceId": instance_id, "testFlag": "0"},
            policy.call_budget,
        )
    finally:
        client.close()
    app = answer.data.get("appInfo")
    if not isinstance(app, dict) or not all(
        isinstance(app.get(field), str) and app.get(field)
        for field in seller_interface.APP_INFO_FIELDS
    ):
        raise RetryLater("queryInstance answered without frontEndUrl, adminUrl, userName, password")
    sealed = keyring.seal(app["password"], bound_to=_password_binding(claimed))
    _complete(
        uow,
        clock,
        claimed.id,
        instance_id=instance_id,
        username=app["userName"],
        management_url=app["adminUrl"],
        frontend_url=app["frontEndUrl"],
        password=sealed,
    )


def _seller_client(
    uow, delivery: Delivery, keyring: Keyring, catalog, seller_client, policy: DeliveryPolicy
) -> seller_interface.SellerClient:
    """The signed client for the product's endpoint. The reads end their transaction
    before returning: no database transaction stays open while a seller answers."""
    settings = catalog.delivery_settings(delivery.product_id)
    endpoint = settings.get("saas_endpoint_url")
    if not endpoint:
        raise RetryLater("the product has no SaaS endpoint")
    if not policy.allow_private_endpoints and endpoints.is_private(endpoint):
        raise RetryLater(
            "the SaaS endpoint is on loopback or a private network, refused outside "
            "development (PROVISIONING_ALLOW_PRIVATE_SELLER_ENDPOINTS)"
        )
    key = uow.session.get(SellerInterfaceKey, delivery.seller_account_id)
    try:
        if key is None:
            raise RetryLater("the seller has not issued its SaaS interface credentials")
        secret = keyring.open(
            Sealed(key.secret_key_id, key.secret_sealed), bound_to=_interface_binding(key)
        )
        access_key = key.access_key
    finally:
        uow.commit()  # nothing written: ends the read transaction
    return seller_client(endpoint, access_key, secret)


def _new_instance_fields(delivery: Delivery) -> dict[str, Any]:
    return {
        "businessId": new_id("biz"),
        "orderId": delivery.order_id,
        "orderLineId": delivery.order_line_id,
        "productId": delivery.product_id,
        "specificationId": delivery.specification_id,
        "specificationName": delivery.specification_name,
        "customerId": delivery.account_id,
        "customerName": delivery.account_id,
        "chargingMode": delivery.billing_mode,
        "periodUnit": delivery.period_unit,
        "periodCount": delivery.period_count,
        "quantity": delivery.quantity,
        "expireTime": seller_interface.rfc3339(delivery.expires_at)
        if delivery.expires_at
        else None,
        "testFlag": "0",
    }


def _call(client, activity: Activity, fields: dict[str, Any], budget: dt.timedelta):
    try:
        with eventlet.Timeout(
            budget.total_seconds(),
            SellerUnreachable(
                f"no whole answer within {budget.total_seconds():g} s", activity.value
            ),
        ):
            answer = client.call(activity.value, fields)
    except SellerCallError as exc:
        result = {
            "SellerUnreachable": "unreachable",
            "SellerBadSignature": "bad_signature",
        }.get(type(exc).__name__, "bad_answer")
        metrics.SELLER_CALLS.labels(activity.value, result).inc()
        raise RetryLater(f"{activity.value}: {exc.reason}") from None
    metrics.SELLER_CALLS.labels(activity.value, answer.result_code).inc()
    metrics.SELLER_CALL_DURATION.labels(activity.value).observe(answer.elapsed_seconds)
    if answer.result_code == ResultCode.PROCESSING:
        raise RetryLater(f"{activity.value}: the seller is still creating it", processing=True)
    if answer.result_code != ResultCode.SUCCESS:
        raise RetryLater(f"{activity.value} answered {answer.result_code} {answer.result_msg}")
    return answer


def _complete(
    uow,
    clock: Clock,
    delivery_id: str,
    *,
    instance_id: str | None = None,
    license_key: str | None = None,
    username: str | None = None,
    management_url: str | None = None,
    frontend_url: str | None = None,
    password: Sealed | None = None,
) -> None:
    delivery = _locked(uow, delivery_id)
    if delivery.status != PENDING:  # another worker finished it first
        uow.commit()
        return
    now = clock.now()
    delivery.status = SUCCEEDED
    delivery.instance_id = instance_id or delivery.instance_id
    delivery.license_key = license_key
    delivery.username = username
    delivery.management_url = management_url
    delivery.frontend_url = frontend_url
    if password is not None:
        delivery.password_key_id = password.key_id
        delivery.password_sealed = password.ciphertext
    delivery.delivered_at = now
    delivery.updated_at = now
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.last_error = None
    uow.emit(
        "provisioning.delivery.succeeded",
        subject=delivery.subscription_id,
        account_id=delivery.account_id,
        data={
            **_identifying(delivery),
            "service_supervision": delivery.service_supervision,
            "application": {
                "instance_id": delivery.instance_id,
                "username": delivery.username,
                "management_url": delivery.management_url,
                "frontend_url": delivery.frontend_url,
                "license_key": delivery.license_key,
                "has_password": delivery.password_sealed is not None,
            },
            "starts_at": delivery.starts_at,
            "expires_at": delivery.expires_at,
            "delivered_at": now,
        },
    )
    uow.commit()
    metrics.DELIVERIES.labels(delivery.delivery_method, "succeeded").inc()
    _log.info("delivered %s (%s)", delivery.subscription_id, delivery.delivery_method)


def _identifying(delivery: Delivery) -> dict[str, Any]:
    """What every delivery event says about which delivery it is."""
    return {
        "delivery_id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "order_id": delivery.order_id,
        "order_line_id": delivery.order_line_id,
        "account_id": delivery.account_id,
        "delivery_method": delivery.delivery_method,
    }


def _retry_or_fail(
    uow, clock, claimed: Delivery, exc: RetryLater, keyring, catalog, seller_client, policy
) -> str:
    delivery = _locked(uow, claimed.id)
    if delivery.status != PENDING:
        uow.commit()
        return delivery.status
    now = clock.now()
    delivery.attempts += 1
    delivery.last_error = exc.reason[:2000]
    delivery.lease_until = None
    delivery.updated_at = now
    if now >= delivery.deadline_at:
        instance_id = delivery.instance_id
        hours = (delivery.deadline_at - delivery.created_at).total_seconds() / 3600
        delivery.status = FAILED
        delivery.next_attempt_at = None
        delivery.failure_reason = (
            f"The seller's system did not deliver {delivery.product_name} within "
            f"{hours:g} hours, so the order is cancelled and the payment refunded."
        )
        uow.emit(
            "provisioning.delivery.failed",
            subject=delivery.subscription_id,
            account_id=delivery.account_id,
            data={
                **_identifying(delivery),
                "reason": delivery.failure_reason,
                "failed_at": now,
            },
        )
        if instance_id is not None:
            # the compensation on the seller's side, recorded with the failure so that a
            # crash cannot lose it: the sweep asks until the seller releases it
            delivery.release_due_at = now
        uow.commit()
        metrics.DELIVERIES.labels(delivery.delivery_method, "failed").inc()
        _log.warning("delivery %s failed: %s", delivery.id, exc.reason)
        if instance_id is not None:
            release_instance(
                uow,
                clock,
                delivery,
                keyring=keyring,
                catalog=catalog,
                seller_client=seller_client,
                policy=policy,
            )
        return FAILED
    if exc.processing:
        delay = policy.processing_poll
    else:
        delay = min(policy.first_retry * 2 ** min(delivery.attempts - 1, 20), policy.max_retry)
    # the last try falls on the deadline, not after it
    delivery.next_attempt_at = min(now + delay, delivery.deadline_at)
    uow.commit()
    metrics.DELIVERIES.labels(delivery.delivery_method, "retried").inc()
    _log.info("delivery %s retried at %s: %s", delivery.id, delivery.next_attempt_at, exc.reason)
    return PENDING


def claim_due_release(uow, clock: Clock, policy: DeliveryPolicy) -> Delivery | None:
    """Lease one failed delivery whose seller instance is still to be released."""
    now = clock.now()
    delivery = uow.session.scalar(
        sa.select(Delivery)
        .where(
            Delivery.status == FAILED,
            Delivery.release_due_at <= now,
            sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .order_by(Delivery.release_due_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if delivery is not None:
        delivery.lease_until = now + policy.lease
    uow.commit()
    return delivery


def release_instance(
    uow,
    clock: Clock,
    claimed: Delivery,
    *,
    keyring: Keyring,
    catalog,
    seller_client,
    policy: DeliveryPolicy,
) -> bool:
    """Compensation: ask the seller to release the instance it created for an order that
    is now cancelled (``releaseInstance``; "no such instance" counts as released). A
    failure is asked again with backoff for as long as the delivery window was, then
    left to an operator (logged)."""
    try:
        with _seller_client(uow, claimed, keyring, catalog, seller_client, policy) as client:
            try:
                _call(
                    client,
                    Activity.RELEASE_INSTANCE,
                    {
                        "instanceId": claimed.instance_id,
                        "orderId": claimed.order_id,
                        "testFlag": "0",
                    },
                    policy.call_budget,
                )
            except RetryLater as exc:
                if ResultCode.NO_SUCH_INSTANCE.value not in exc.reason:
                    raise
        released, error = True, None
    except Exception as exc:
        released, error = False, str(exc)
    delivery = _locked(uow, claimed.id)
    now = clock.now()
    delivery.lease_until = None
    delivery.release_attempts += 1
    if released:
        delivery.release_due_at = None
        delivery.released_at = now
        _log.info("released instance %s of failed delivery %s", delivery.instance_id, delivery.id)
    elif now - delivery.deadline_at >= delivery.deadline_at - delivery.created_at:
        delivery.release_due_at = None
        _log.error(
            "gave up releasing instance %s of failed delivery %s: %s",
            delivery.instance_id,
            delivery.id,
            error,
        )
    else:
        delay = min(
            policy.first_retry * 2 ** min(delivery.release_attempts - 1, 20), policy.max_retry
        )
        delivery.release_due_at = now + delay
        _log.warning(
            "releasing instance %s failed, again at %s: %s",
            delivery.instance_id,
            delivery.release_due_at,
            error,
        )
    uow.commit()
    return released


# -- what the buyer sees ------------------------------------------------------------


def _own_delivery(uow, buyer: Identity, subscription_id: str, *, lock: bool = False) -> Delivery:
    """The caller's delivery; ``lock`` holds its row until commit, so concurrent reveals
    of one app are counted one after the other against the rate limit."""
    query = sa.select(Delivery).where(Delivery.subscription_id == subscription_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    delivery = uow.session.scalar(query)
    if delivery is None or (
        delivery.account_id != buyer.account_id and not buyer.has_role("operator")
    ):
        raise NotFound("no delivery for this purchased app")
    return delivery


def application(uow, *, buyer: Identity, subscription_id: str) -> dict[str, Any]:
    """The purchased app's application information, its password masked."""
    delivery = _own_delivery(uow, buyer, subscription_id)
    return {
        "subscription_id": delivery.subscription_id,
        "delivery_status": delivery.status,
        "delivery_method": delivery.delivery_method,
        "instance_id": delivery.instance_id,
        "username": delivery.username,
        "password": MASKED_PASSWORD if delivery.password_sealed is not None else None,
        "management_url": delivery.management_url,
        "frontend_url": delivery.frontend_url,
        "license_key": delivery.license_key,
        "failure_reason": delivery.failure_reason,
        "delivered_at": delivery.delivered_at,
    }


def reveal_credentials(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    subscription_id: str,
    correlation_id: str | None,
    keyring: Keyring,
    policy: DeliveryPolicy,
) -> dict[str, str]:
    """The eye icon: the delivered password, recorded (who, when) and rate limited."""
    delivery = _own_delivery(uow, buyer, subscription_id, lock=True)
    if delivery.password_sealed is None or delivery.password_key_id is None:
        raise NotFound("this purchased app has no password to reveal")
    now = clock.now()
    recent = uow.session.scalar(
        sa.select(sa.func.count())
        .select_from(CredentialReveal)
        .where(
            CredentialReveal.account_id == buyer.account_id,
            CredentialReveal.revealed_at > now - dt.timedelta(minutes=1),
        )
    )
    if (recent or 0) >= policy.reveals_per_minute:
        metrics.CREDENTIAL_REVEALS.labels("rate_limited").inc()
        raise RateLimited(
            f"at most {policy.reveals_per_minute} password reveals a minute; try again shortly"
        )
    password = keyring.open(
        Sealed(delivery.password_key_id, delivery.password_sealed),
        bound_to=_password_binding(delivery),
    )
    uow.session.add(
        CredentialReveal(
            subscription_id=delivery.subscription_id,
            account_id=buyer.account_id,
            user_id=buyer.user_id,
            correlation_id=correlation_id,
            revealed_at=now,
        )
    )
    uow.commit()
    metrics.CREDENTIAL_REVEALS.labels("revealed").inc()
    _log.info("credentials of %s revealed to user %s", subscription_id, buyer.user_id)
    return {"username": delivery.username or "", "password": password}


def _password_binding(delivery: Delivery) -> str:
    return f"password|{delivery.account_id}|{delivery.subscription_id}"


# -- sellers' keys --------------------------------------------------------------------


def _interface_binding(key: SellerInterfaceKey) -> str:
    return f"interface-secret|{key.seller_account_id}|{key.access_key}"


def issue_interface_credentials(
    uow, clock: Clock, *, seller: Identity, keyring: Keyring
) -> dict[str, Any]:
    """A new access key and secret for the seller's SaaS endpoint; the secret is shown
    this once. A second call replaces the pair (rotation)."""
    now = clock.now()
    access_key = seller_interface.new_access_key()
    secret = seller_interface.new_secret()
    row = SellerInterfaceKey(seller_account_id=seller.account_id, access_key=access_key)
    sealed = keyring.seal(secret, bound_to=_interface_binding(row))
    values = {
        "seller_account_id": seller.account_id,
        "access_key": access_key,
        "secret_key_id": sealed.key_id,
        "secret_sealed": sealed.ciphertext,
        "created_at": now,
    }
    # one statement, so two concurrent first issues cannot collide: the last pair wins
    insert = _dialect_insert(uow, SellerInterfaceKey).values(**values)
    uow.session.execute(
        insert.on_conflict_do_update(
            index_elements=[SellerInterfaceKey.seller_account_id],
            set_={name: insert.excluded[name] for name in values if name != "seller_account_id"},
        )
    )
    uow.commit()
    return {
        "seller_account_id": seller.account_id,
        "access_key": access_key,
        "secret": secret,
        "created_at": now,
    }


def _dialect_insert(uow, model):
    """INSERT with ON CONFLICT, which PostgreSQL and SQLite both have."""
    dialect = uow.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _signing_binding(seller_account_id: str) -> str:
    return f"signing-key|{seller_account_id}"


def _signing_key(uow, keyring: Keyring, seller_account_id: str, now: dt.datetime):
    """The seller's license signing key, made on first use (a concurrent first use by
    another worker wins quietly: ``ON CONFLICT DO NOTHING``)."""
    row = uow.session.get(SellerSigningKey, seller_account_id)
    if row is None:
        private, public = licenses.new_signing_key()
        sealed = keyring.seal(
            base64.b64encode(private).decode(), bound_to=_signing_binding(seller_account_id)
        )
        uow.session.execute(
            _dialect_insert(uow, SellerSigningKey)
            .values(
                seller_account_id=seller_account_id,
                key_id=new_id("lk"),
                public_key=public,
                private_key_id=sealed.key_id,
                private_sealed=sealed.ciphertext,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        row = uow.session.get(SellerSigningKey, seller_account_id, populate_existing=True)
        assert row is not None
    private = base64.b64decode(
        keyring.open(
            Sealed(row.private_key_id, row.private_sealed),
            bound_to=_signing_binding(seller_account_id),
        )
    )
    return row.key_id, private


def license_public_key(
    uow, clock: Clock, *, seller_account_id: str, keyring: Keyring, create: bool
) -> dict[str, Any]:
    """The seller's published key. It is made at the seller's first sale of a license,
    or when the seller itself asks for it first (``create``); anyone else asking for a
    key that does not exist gets NotFound and creates nothing."""
    row = uow.session.get(SellerSigningKey, seller_account_id)
    if row is None:
        if not create:
            raise NotFound("this seller has no license signing key yet")
        _signing_key(uow, keyring, seller_account_id, clock.now())
        uow.commit()
        row = uow.session.get(SellerSigningKey, seller_account_id)
        assert row is not None
    return licenses.public_key_document(seller_account_id, row.key_id, row.public_key)
