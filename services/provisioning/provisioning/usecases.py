"""provisioning's use cases: deliveries, their credentials, and the sellers' keys.

A delivery is a small saga driven from the database:

1. ``accept_paid_order`` (the order-paid event) records one ``pending`` delivery per
   subscription, in the event's inbox transaction; a repeated event adds nothing.
2. ``claim_due`` leases a due delivery to this worker (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so replicas never work on the same one); ``run_delivery`` then takes
   one step outside any transaction: sign a license key, or ask the seller's SaaS
   endpoint for an instance and its credentials. The step's outcome is written under
   the row lock.
3. A failed step is retried with exponential backoff until the delivery window passes
   (3 hours by default); then the delivery fails, ``provisioning.delivery.failed`` lets
   orders cancel the order and billing refund it, and the seller is asked to release
   any instance it created (recorded with the failure, asked again until it answers:
   ``claim_due_release``, ``release_instance``).

Exactly once: the seller's ``newInstance`` is idempotent on (order, order line), the
instance id is saved as soon as it is known, and a delivery completes at most once
(its status is checked under the lock, ``domain.DELIVERY``). A crash anywhere leaves a
``pending`` row whose lease runs out, and the sweep takes it up again.

The rules are ``provisioning.domain``'s, the statements ``provisioning.repository``'s
(``uow.deliveries``, ``uow.seller_keys``). Each transaction is committed in the use
case's own body, where its flow says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import eventlet

import seller_interface
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from mercato.identity import Identity
from mercato.request_keys import RequestKey
from mercato.terms import IMAGE, SAAS
from provisioning import deploying, domain, endpoints, licenses, metrics
from provisioning.deployments import DeploymentPolicy
from provisioning.domain import DeliveryPolicy as DeliveryPolicy  # the service builds it here
from provisioning.keyring import Keyring, Sealed
from provisioning.models import CredentialReveal, Delivery, SellerInterfaceKey, SellerSigningKey
from seller_interface import Activity, ResultCode, SellerCallError, SellerUnreachable

_log = logging.getLogger(__name__)

MASKED_PASSWORD = "******"  # noqa: S105  (what the buyer sees instead)
# a step's outcomes, as the deliveries metric counts them
SUCCEEDED, RETRIED, FAILED = domain.SUCCEEDED, "retried", domain.FAILED


class RetryLater(Exception):
    """This step did not deliver; ``reason`` is for operators (never a secret)."""

    def __init__(self, reason: str, *, processing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.processing = processing


# (endpoint, access key, secret, the checked address to connect to, None in development)
SellerClientFactory = Callable[[str, str, str, str | None], seller_interface.SellerClient]


# -- accepting paid orders ---------------------------------------------------------


def accept_paid_order(
    uow,
    clock: Clock,
    *,
    order: dict[str, Any],
    policy: DeliveryPolicy,
    deployment_policy: DeploymentPolicy | None = None,
) -> list[str]:
    """Record a delivery per subscription of a paid order; answers the ids of those due
    now. An image's delivery waits for its deployment, which starts now. Does not
    commit: the event handler commits them with the event's inbox row."""
    now = clock.now()
    due = []
    for item in order.get("subscriptions") or []:
        if uow.deliveries.exists_for(item["subscription_id"]):
            continue  # a repeated event starts nothing twice
        delivery = _new_delivery(order, item, now, policy)
        uow.deliveries.add(delivery)
        if delivery.status == domain.PENDING:
            due.append(delivery.id)
        elif delivery.delivery_method == IMAGE:
            deploying.start_deployment(
                uow,
                clock,
                deployment_policy or DeploymentPolicy(),
                delivery=delivery,
                enterprise_project_id=order.get("enterprise_project_id"),
            )
    return due


def _new_delivery(
    order: dict[str, Any], item: dict[str, Any], now: dt.datetime, policy: DeliveryPolicy
) -> Delivery:
    delivered_here = domain.starts_at_payment(item["delivery_method"], item["service_supervision"])
    period = item.get("period") or {}
    return Delivery(
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
        time_zone=item.get("time_zone") or "UTC",
        expires_at=_aware(item.get("expires_at")),
        status=domain.PENDING if delivered_here else domain.WAITING,
        attempts=0,
        release_attempts=0,
        next_attempt_at=now if delivered_here else None,
        deadline_at=now + policy.window,
        created_at=now,
        updated_at=now,
    )


def _aware(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def start_confirmed_delivery(
    uow, clock: Clock, policy: DeliveryPolicy, *, subscription_id: str
) -> str | None:
    """The seller confirmed a supervised SaaS request: its waiting delivery starts (the
    sweep creates the tenant). Anything else, or a repeat, changes nothing. The caller
    (the inbox) commits; the delivery's id when it started."""
    delivery = uow.deliveries.of_subscription(subscription_id, lock=True)
    if delivery is None:
        # the order-paid event that records it is still on its way (events are not
        # ordered): a transient error, so the inbox tries again with backoff
        raise ServiceUnavailable(f"the delivery of {subscription_id} is not recorded yet")
    if delivery.delivery_method != SAAS or not delivery.may("start"):
        return None
    delivery.start(clock.now(), policy)
    return delivery.id


# -- running deliveries ---------------------------------------------------------------


def claim_due(uow, clock: Clock, policy: DeliveryPolicy, *, limit: int = 1) -> list[Delivery]:
    """Lease up to ``limit`` due deliveries to this worker. One at a time by default: a
    lease covers one step (at most a catalog call and two seller calls), never a queue
    of them that could outlast it."""
    now = clock.now()
    claimed = uow.deliveries.lock_due(now, limit)
    for delivery in claimed:
        delivery.claim(now, policy)
    uow.commit()
    return claimed


def run_delivery(
    uow,
    clock: Clock,
    claimed: Delivery,
    *,
    keyring: Keyring,
    catalog,
    seller_client: SellerClientFactory,
    policy: DeliveryPolicy,
) -> str:
    """One step of a claimed delivery; answers its status afterwards.

    No transaction stays open while a seller answers, so a step commits up to three:

    1. (saas) the read of the seller's interface credentials, ended before the call;
    2. (saas) the instance id, as soon as the seller gives it, so that the next attempt
       queries that instance instead of asking for another;
    3. the outcome, under the row lock: delivered, tried again later, or failed once
       the window has passed (a license's signing key, made on first use, with it).

    A delivery that fails with an instance at the seller then has it released
    (``release_instance``, in transactions of its own).
    """
    delivered: domain.Delivered | None = None
    failure: RetryLater | None = None
    try:
        if claimed.delivery_method == domain.LICENSE:
            delivered = _license(uow, clock, claimed, keyring)
        else:
            client = _seller_client(uow, claimed, keyring, catalog, seller_client, policy)
            uow.commit()  # 1: nothing written
            with client:
                instance_id = claimed.instance_id
                if instance_id is None:
                    instance_id = _new_instance(client, claimed, policy)
                    current = uow.deliveries.lock(claimed.id)
                    ended = not current.may("record_instance")  # the window passed meanwhile
                    if not ended:
                        current.record_instance(instance_id)
                    uow.commit()  # 2
                    if ended:
                        return current.status
                delivered = _instance_delivered(client, claimed, instance_id, keyring, policy)
    except RetryLater as exc:
        failure = exc
    except ServiceUnavailable as exc:  # catalog did not answer
        failure = RetryLater(str(exc))
    except Exception as exc:
        # anything else (the product gone from catalog, a key missing from the keyring,
        # a bug) is a failed attempt too, so the delivery window still ends every saga
        _log.exception("delivery %s: unexpected failure", claimed.id)
        uow.rollback()
        failure = RetryLater(f"unexpected {type(exc).__name__}: {exc}")

    delivery = uow.deliveries.lock(claimed.id)
    now = clock.now()
    outcome = None  # stays None when another worker, or the window, ended it first
    if failure is None:
        assert delivered is not None
        if delivery.may("succeed"):
            delivery.succeed(delivered, now)
            outcome = SUCCEEDED
    elif delivery.may("retry_later"):  # still pending: the window decides
        if delivery.window_passed(now):
            delivery.fail(failure.reason, now)
            outcome = FAILED
        else:
            delivery.retry_later(failure.reason, now, policy, processing=failure.processing)
            outcome = RETRIED
    uow.emit_recorded(delivery)
    uow.commit()  # 3
    if outcome is not None:
        _report(delivery, outcome, failure)
    if outcome == FAILED and delivery.release_status == domain.RELEASE_DUE:
        release_instance(
            uow,
            clock,
            delivery,
            keyring=keyring,
            catalog=catalog,
            seller_client=seller_client,
            policy=policy,
        )
    return delivery.status


def _report(delivery: Delivery, outcome: str, failure: RetryLater | None) -> None:
    metrics.DELIVERIES.labels(delivery.delivery_method, outcome).inc()
    if failure is None:
        _log.info("delivered %s (%s)", delivery.subscription_id, delivery.delivery_method)
    elif outcome == RETRIED:
        _log.info(
            "delivery %s retried at %s: %s", delivery.id, delivery.next_attempt_at, failure.reason
        )
    else:
        _log.warning("delivery %s failed: %s", delivery.id, failure.reason)


def _license(uow, clock: Clock, claimed: Delivery, keyring: Keyring) -> domain.Delivered:
    """A license key signed with the seller's key (made at its first sale)."""
    now = clock.now()
    key = uow.seller_keys.signing_key(claimed.seller_account_id) or _new_signing_key(
        uow, keyring, claimed.seller_account_id, now
    )
    claims = {
        "iss": "mercato",
        "key_id": key.key_id,
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
    private = base64.b64decode(
        keyring.open(
            Sealed(key.private_key_id, key.private_sealed),
            bound_to=domain.signing_binding(key.seller_account_id),
        )
    )
    return domain.Delivered(license_key=licenses.issue(private, claims))


def sign_license(uow, clock: Clock, delivery: Delivery, keyring: Keyring) -> domain.Delivered:
    """The delivery's license key signed (again) with what it says now: a renewal's
    key carries the new expiry under the same license id."""
    return _license(uow, clock, delivery, keyring)


def _seller_client(
    uow, delivery: Delivery, keyring: Keyring, catalog, seller_client, policy: DeliveryPolicy
) -> seller_interface.SellerClient:
    """The signed client for the product's endpoint, with the seller's credentials
    read in this unit of work's transaction (the caller ends it before calling)."""
    settings = catalog.delivery_settings(delivery.product_id)
    endpoint = settings.get("saas_endpoint_url")
    if not endpoint:
        raise RetryLater("the product has no SaaS endpoint")
    address = None
    if not policy.allow_private_endpoints:
        # the client connects to the very address checked here (no second lookup)
        address = endpoints.public_address(endpoint)
        if address is None:
            raise RetryLater(
                "the SaaS endpoint is on loopback or a private network, refused outside "
                "development (PROVISIONING_ALLOW_PRIVATE_SELLER_ENDPOINTS)"
            )
    key = uow.seller_keys.interface_key(delivery.seller_account_id)
    if key is None:
        raise RetryLater("the seller has not issued its SaaS interface credentials")
    secret = keyring.open(
        Sealed(key.secret_key_id, key.secret_sealed),
        bound_to=domain.interface_binding(key.seller_account_id, key.access_key),
    )
    return seller_client(endpoint, key.access_key, secret, address)


def _new_instance(client, delivery: Delivery, policy: DeliveryPolicy) -> str:
    """Ask the seller for the order line's instance (``newInstance``); its id."""
    answer = _call(
        client, Activity.NEW_INSTANCE, _new_instance_fields(delivery), policy.call_budget
    )
    instance_id = answer.data.get("instanceId")
    if not isinstance(instance_id, str) or not 0 < len(instance_id) <= 64:
        raise RetryLater("newInstance answered no usable instanceId")
    return instance_id


def _instance_delivered(
    client, delivery: Delivery, instance_id: str, keyring: Keyring, policy: DeliveryPolicy
) -> domain.Delivered:
    """The instance, once the seller says it is ready, with its credentials (the
    password sealed to the buyer's subscription)."""
    answer = _call(
        client,
        Activity.QUERY_INSTANCE,
        {"instanceId": instance_id, "testFlag": "0"},
        policy.call_budget,
    )
    app = answer.data.get("appInfo")
    if not isinstance(app, dict) or not all(
        isinstance(app.get(field), str) and app.get(field)
        for field in seller_interface.APP_INFO_FIELDS
    ):
        raise RetryLater("queryInstance answered without frontEndUrl, adminUrl, userName, password")
    return domain.Delivered(
        instance_id=instance_id,
        username=app["userName"],
        management_url=app["adminUrl"],
        frontend_url=app["frontEndUrl"],
        password=keyring.seal(app["password"], bound_to=delivery.password_binding()),
    )


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


# -- releasing what a failed delivery left at the seller ---------------------------------


def claim_due_release(uow, clock: Clock, policy: DeliveryPolicy) -> Delivery | None:
    """Lease one failed delivery whose seller instance is still to be released."""
    now = clock.now()
    delivery = uow.deliveries.lock_due_release(now)
    if delivery is not None:
        delivery.claim_release(now, policy)
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
    left to an operator (logged).

    Two transactions, so that none stays open while the seller answers: the read of
    the seller's credentials, ended before the call; the answer, under the row lock.
    """
    try:
        client = _seller_client(uow, claimed, keyring, catalog, seller_client, policy)
        uow.commit()  # nothing written
        with client:
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
    delivery = uow.deliveries.lock(claimed.id)
    now = clock.now()
    due = delivery.release_status == domain.RELEASE_DUE  # else another worker answered first
    if due and released:
        delivery.instance_released(now)
    elif due:
        delivery.release_failed(now, policy)
    uow.commit()
    if due:
        _report_release(delivery, error)
    return released


def _report_release(delivery: Delivery, error: str | None) -> None:
    if delivery.release_status == domain.RELEASED:
        _log.info("released instance %s of failed delivery %s", delivery.instance_id, delivery.id)
    elif delivery.release_status == domain.RELEASE_ABANDONED:
        _log.error(
            "gave up releasing instance %s of failed delivery %s: %s",
            delivery.instance_id,
            delivery.id,
            error,
        )
    else:
        _log.warning(
            "releasing instance %s failed, again at %s: %s",
            delivery.instance_id,
            delivery.release_due_at,
            error,
        )


# -- what the buyer sees ------------------------------------------------------------


def _own_delivery(uow, viewer: Identity, subscription_id: str, *, lock: bool = False) -> Delivery:
    """The caller's delivery (an operator sees any); NotFound for anyone else's."""
    delivery = uow.deliveries.of_subscription(subscription_id, lock=lock)
    if delivery is None or not delivery.visible_to(viewer):
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
    """The eye icon: the delivered password, recorded (who, when) and rate limited.
    The delivery's row is locked until commit, so concurrent reveals of one app are
    counted one after the other."""
    delivery = _own_delivery(uow, buyer, subscription_id, lock=True)
    sealed = delivery.sealed_password()
    if sealed is None:
        raise NotFound("this purchased app has no password to reveal")
    now = clock.now()
    recent = uow.deliveries.reveals_since(buyer.account_id, now - domain.REVEAL_WINDOW)
    if recent >= policy.reveals_per_minute:
        metrics.CREDENTIAL_REVEALS.labels("rate_limited").inc()
        raise RateLimited(
            f"at most {policy.reveals_per_minute} password reveals a minute; try again shortly"
        )
    password = keyring.open(sealed, bound_to=delivery.password_binding())
    uow.deliveries.add_reveal(
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


# -- sellers' keys --------------------------------------------------------------------


def issue_interface_credentials(
    uow, clock: Clock, *, seller: Identity, keyring: Keyring, request_key: str | None = None
) -> dict[str, Any]:
    """A new access key and secret for the seller's SaaS endpoint; the secret is shown
    this once. A second call replaces the pair (rotation).

    A retry of the same request (``request_key``) answers the pair it issued, opened
    from the keyring, while that pair is still the seller's: the gateway never keeps
    this answer, so the secret lives only here, under the keyring's rotation. Once
    another request has replaced the pair, the retry is a Conflict: the secret it
    issued is no longer valid, and is not shown again."""
    kept = RequestKey.of(
        request_key, account_id=seller.account_id, operation="issue_interface_credentials"
    )
    issued = uow.request_keys.first_result(kept)
    if issued is not None:
        return _issued_interface_credentials(uow, seller, keyring, issued)
    now = clock.now()
    access_key = seller_interface.new_access_key()
    secret = seller_interface.new_secret()
    sealed = keyring.seal(secret, bound_to=domain.interface_binding(seller.account_id, access_key))
    uow.seller_keys.replace_interface_key(
        SellerInterfaceKey(
            seller_account_id=seller.account_id,
            access_key=access_key,
            secret_key_id=sealed.key_id,
            secret_sealed=sealed.ciphertext,
            created_at=now,
        )
    )
    uow.request_keys.keep(kept, access_key, now)
    uow.commit()
    return {
        "seller_account_id": seller.account_id,
        "access_key": access_key,
        "secret": secret,
        "created_at": now,
    }


def _issued_interface_credentials(
    uow, seller: Identity, keyring: Keyring, access_key: str
) -> dict[str, Any]:
    """The pair a first request issued, if it is still the seller's."""
    key = uow.seller_keys.interface_key(seller.account_id)
    if key is None or key.access_key != access_key:
        raise Conflict(
            "the credentials this request issued have been replaced since; issue new ones "
            "with a new Idempotency-Key"
        )
    secret = keyring.open(
        Sealed(key.secret_key_id, key.secret_sealed),
        bound_to=domain.interface_binding(seller.account_id, key.access_key),
    )
    return {
        "seller_account_id": seller.account_id,
        "access_key": key.access_key,
        "secret": secret,
        "created_at": key.created_at,
    }


def _new_signing_key(
    uow, keyring: Keyring, seller_account_id: str, now: dt.datetime
) -> SellerSigningKey:
    """The seller's license signing key, made now; a concurrent first use by another
    worker wins quietly, and its key is the one answered."""
    private, public = licenses.new_signing_key()
    sealed = keyring.seal(
        base64.b64encode(private).decode(), bound_to=domain.signing_binding(seller_account_id)
    )
    return uow.seller_keys.add_signing_key_if_missing(
        SellerSigningKey(
            seller_account_id=seller_account_id,
            key_id=new_id("lk"),
            public_key=public,
            private_key_id=sealed.key_id,
            private_sealed=sealed.ciphertext,
            created_at=now,
        )
    )


def license_public_key(
    uow, clock: Clock, *, seller_account_id: str, keyring: Keyring, create: bool
) -> dict[str, Any]:
    """The seller's published key. It is made at the seller's first sale of a license,
    or when the seller itself asks for it first (``create``); anyone else asking for a
    key that does not exist gets NotFound and creates nothing."""
    key = uow.seller_keys.signing_key(seller_account_id)
    if key is None and not create:
        raise NotFound("this seller has no license signing key yet")
    if key is None:
        key = _new_signing_key(uow, keyring, seller_account_id, clock.now())
    uow.commit()
    return licenses.public_key_document(seller_account_id, key.key_id, key.public_key)
