"""provisioning's use cases after the purchase: what a subscription's life (frozen,
renewed, released, upgraded in orders) does to what was delivered.

A durable queue in provisioning's database (``instance_actions``), driven like the
deliveries:

1. ``enqueue`` (an orders.subscription.* event) records the actions the event asks of
   the subscription's delivery (``domain.planned_actions``), in the event's inbox
   transaction, at the time orders made the move (``occurred_at``); (cause event,
   kind) is unique, so a redelivered event adds nothing. A subscription provisioning
   never delivered gets nothing. The events come on four queues: an action older than a
   recorded move that undoes it is recorded superseded, never run, and a release
   supersedes what is pending before it (``domain.overridden``, ``domain.supersedes``).
2. ``run_due`` claims a batch of due actions in one statement (``FOR UPDATE SKIP
   LOCKED``: replicas never claim the same one), only the first unfinished action of
   each subscription in the order of orders' moves, so one subscription's actions run
   in order (a freeze before a later unfreeze and refresh) while different
   subscriptions never wait on each other;
   it leases them and commits. The seller's and the cloud's calls then run outside any
   transaction, several at once; the outcomes are written in one transaction, under
   the lease (an action another replica took over after the lease ran out is left to
   it), with one executemany UPDATE.
3. A seller that does not answer (timeout, HTTP error, bad signature, 000004, 000005)
   is asked again with exponential backoff (``INSTANCE_ACTION_RETRY_SECONDS`` doubling
   to ``INSTANCE_ACTION_RETRY_MAX_SECONDS``); ``domain.seller_outcome`` says what every
   answer makes of an action. An upgrade ends with ``provisioning.instance.upgraded``
   or, refused or not confirmed within ``policy.upgrade_window``,
   ``provisioning.instance.upgrade_failed`` (orders refunds it).

What each delivery method gets: SaaS, the seller's activities (updateInstanceStatus
FREEZE/UNFREEZE, refreshInstance, upgradeInstance, releaseInstance); a license, its
key signed again with the new expiry; an image, its servers stopped and started and
its deployment released (the deployment timer deletes the stack); a professional
service, nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import eventlet

import seller_interface
from mercato.clock import Clock
from mercato.errors import MercatoError
from provisioning import deploying, deployments, domain, endpoints, metrics, usecases
from provisioning.cloud.driver import CloudDriver, CloudError, CloudNotFound, PolicyDenied
from provisioning.domain import InstanceActionPolicy as InstanceActionPolicy
from provisioning.keyring import Keyring, Sealed
from seller_interface import SellerCallError

_log = logging.getLogger(__name__)

SellerClientFactory = Callable[[str, str, str, str | None], seller_interface.SellerClient]


# -- recording ---------------------------------------------------------------------------


def enqueue(uow, clock: Clock, *, event) -> list[str]:
    """Record the actions an orders.subscription.* event asks of the subscription's
    delivery, due now, at the time orders made the move; answers the kinds queued to
    run. Does not commit: the event handler commits them with the event's inbox row.

    The events come on four queues, so one may be taken after a later move's: an action
    older than a recorded move that undoes it (a freeze older than a renewal, anything
    older than the release) is recorded ``superseded`` and never runs, and a new move
    supersedes what is still pending (and not being called) before it; an upgrade that
    will never run is announced failed, so orders refunds it. The delivery's row is held
    meanwhile: two replicas' events of one subscription are checked and inserted one
    after the other."""
    data = event.data
    subscription_id = data["subscription_id"]
    delivery = uow.deliveries.of_subscription(subscription_id, lock=True)
    delivered = (
        None
        if delivery is None
        else domain.SubscriptionDelivered(
            delivery_method=delivery.delivery_method,
            status=delivery.status,
            instance_id=delivery.instance_id,
        )
    )
    planned = domain.planned_actions(event.type, data, delivered)
    if not planned:
        return []
    assert delivery is not None
    now = clock.now()
    moved_at = domain.move_time(event.type, data, getattr(event, "occurred_at", None) or now)
    recorded = uow.instance_actions.moves_of(subscription_id)
    if any(row.cause_event_id == event.id for row in recorded):
        return []  # a redelivered event
    moves = [(row.kind, row.occurred_at) for row in recorded]
    rows, queued, dropped = [], [], []
    for kind, payload in planned:
        undone = domain.overridden(kind, moved_at, moves)
        note = None
        if undone is not None:
            note = (
                f"superseded: its move ({moved_at.isoformat()}) is older than the "
                f"{undone[0]} of {undone[1].isoformat()}"
                if undone[1] > moved_at
                else f"superseded: the subscription's {undone[0]} is recorded already"
            )
            dropped.append((kind, payload))
        else:
            queued.append(kind)
        rows.append(
            {
                "subscription_id": subscription_id,
                "kind": kind,
                "payload": payload,
                "cause_event_id": event.id,
                "occurred_at": moved_at,
                "status": domain.ACTION_SUPERSEDED if note else domain.ACTION_PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": note,
                "created_at": now,
                "updated_at": now,
                "finished_at": now if note else None,
            }
        )
    stale = [
        row.seq
        for row in recorded
        if row.status == domain.ACTION_PENDING
        and any(domain.supersedes(kind, moved_at, row.kind, row.occurred_at) for kind in queued)
    ]
    superseded = uow.instance_actions.supersede(
        stale, reason=f"superseded by the {event.type} of {moved_at.isoformat()}", now=now
    )
    uow.instance_actions.add_all(rows)
    for kind, payload in dropped + [(row.kind, row.payload) for row in superseded]:
        if kind == domain.UPGRADE:
            _upgrade_failed(
                uow, subscription_id, delivery.account_id, payload,
                domain.UPGRADE_RELEASED_REASON, now,
            )  # fmt: skip
    _log.info(
        "%s of %s (moved at %s): %s queued%s%s",
        event.type,
        subscription_id,
        moved_at.isoformat(),
        ", ".join(queued) or "nothing",
        f"; {', '.join(kind for kind, _ in dropped)} superseded on arrival" if dropped else "",
        f"; {len(superseded)} pending superseded" if superseded else "",
    )
    return queued


# -- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Delivered:
    """A delivery as the calls need it, read before the transaction ends."""

    subscription_id: str
    account_id: str
    status: str
    instance_id: str | None
    product_id: str
    seller_account_id: str
    order_id: str
    order_line_id: str
    quantity: int


@dataclass
class _Job:
    """One claimed action, its call's inputs and its outcome."""

    seq: int
    kind: str
    subscription_id: str
    payload: dict[str, Any]
    attempts: int
    created_at: dt.datetime | None = None
    delivered: _Delivered | None = None
    # the seller's endpoint, access key, secret and checked address (SaaS actions)
    target: tuple[str, str, str, str | None] | None = None
    # the cloud credentials and the servers (image actions)
    cloud: tuple[Any, list[str]] | None = None
    outcome: str = domain.ACTION_PENDING
    error: str | None = None
    ready: bool = False  # set when the inputs of its call are all there
    result: dict[str, Any] = field(default_factory=dict)

    def retry(self, reason: str) -> None:
        self.outcome, self.error = domain.ACTION_PENDING, reason

    def done(self, note: str | None = None) -> None:
        self.outcome, self.error = domain.ACTION_DONE, note

    def fail(self, reason: str) -> None:
        self.outcome, self.error = domain.ACTION_FAILED, reason


def run_due(
    uow,
    clock: Clock,
    policy: InstanceActionPolicy,
    *,
    keyring: Keyring,
    catalog,
    seller_client: SellerClientFactory,
    iam_agency,
    driver,
    allow_private_endpoints: bool = False,
) -> int:
    """Claim a batch of due actions, run them, record their outcomes; answers how many
    were claimed (0: nothing is due). Three transactions: the claim and its lease; the
    reads the calls need (catalog's endpoint, the seller's key, the cloud's
    credentials); the outcomes, with the local actions (a license signed again, a
    deployment's release) and the upgrade events."""
    now = clock.now()
    claimed = uow.instance_actions.lock_due(now, policy.batch)
    if not claimed:
        uow.commit()
        return 0
    lease_until = now + policy.lease
    uow.instance_actions.lease([action.seq for action in claimed], lease_until)
    jobs = [
        _Job(
            seq=action.seq,
            kind=action.kind,
            subscription_id=action.subscription_id,
            payload=dict(action.payload or {}),
            attempts=action.attempts,
            created_at=action.created_at,
        )
        for action in claimed
    ]
    found = uow.deliveries.of_subscriptions(sorted({job.subscription_id for job in jobs}))
    for job in jobs:
        delivery = found.get(job.subscription_id)
        if delivery is not None:
            job.delivered = _Delivered(
                subscription_id=delivery.subscription_id,
                account_id=delivery.account_id,
                status=delivery.status,
                instance_id=delivery.instance_id,
                product_id=delivery.product_id,
                seller_account_id=delivery.seller_account_id,
                order_id=delivery.order_id,
                order_line_id=delivery.order_line_id,
                quantity=delivery.quantity,
            )
    servers = _servers_of(uow, [job for job in jobs if job.kind in domain.CLOUD_ACTIONS])
    uow.commit()  # the lease

    _prepare(uow, jobs, servers, keyring, catalog, iam_agency, allow_private_endpoints)
    remote = [job for job in jobs if job.ready]
    if remote:
        pool = eventlet.GreenPool(max(1, policy.concurrency))
        for job in remote:
            pool.spawn_n(_run_remote, job, seller_client, driver, policy)
        pool.waitall()

    _finish(uow, clock, jobs, lease_until, keyring, policy)
    return len(claimed)


def _servers_of(uow, jobs: list[_Job]) -> dict[str, tuple[str, str, list[str]]]:
    """Each image subscription's deployment: (status, buyer account, server ids)."""
    found = uow.deployments.of_subscriptions(sorted({job.subscription_id for job in jobs}))
    return {
        subscription_id: (
            deployment.status,
            deployment.account_id,
            [
                str(resource["id"])
                for resource in deployment.resources or []
                if resource.get("type") == "server" and resource.get("id")
            ],
        )
        for subscription_id, deployment in found.items()
    }


def _prepare(
    uow,
    jobs: list[_Job],
    servers: dict[str, tuple[str, str, list[str]]],
    keyring: Keyring,
    catalog,
    iam_agency,
    allow_private_endpoints: bool,
) -> None:
    """The inputs of each remote call, asked once per product, seller and buyer account
    of the batch; a job whose inputs cannot be had is decided here (asked again later,
    or done when there is nothing to act on)."""
    endpoints_by_product: dict[str, tuple[str, str | None] | str] = {}
    keys_by_seller: dict[str, tuple[str, str] | str] = {}
    creds_by_account: dict[str, Any] = {}
    try:
        for job in jobs:
            if job.kind in domain.SELLER_ACTIONS:
                _prepare_seller_call(
                    uow,
                    job,
                    keyring,
                    catalog,
                    allow_private_endpoints,
                    endpoints_by_product,
                    keys_by_seller,
                )
            elif job.kind in domain.CLOUD_ACTIONS:
                _prepare_cloud_call(job, servers, iam_agency, creds_by_account)
    finally:
        uow.rollback()  # reads only


def _prepare_seller_call(
    uow,
    job: _Job,
    keyring: Keyring,
    catalog,
    allow_private_endpoints: bool,
    endpoints_by_product: dict[str, tuple[str, str | None] | str],
    keys_by_seller: dict[str, tuple[str, str] | str],
) -> None:
    delivered = job.delivered
    if delivered is None or delivered.instance_id is None:
        if delivered is not None and delivered.status == domain.PENDING:
            job.retry("the instance is still being delivered")
        elif job.kind == domain.UPGRADE:
            job.fail("The subscription has no SaaS instance to upgrade.")
        else:
            job.done("the subscription has no SaaS instance")
        return
    endpoint = endpoints_by_product.get(delivered.product_id)
    if endpoint is None:
        endpoint = endpoints_by_product[delivered.product_id] = _endpoint(
            catalog, delivered.product_id, allow_private_endpoints
        )
    if isinstance(endpoint, str):  # why there is none
        job.retry(endpoint)
        return
    key = keys_by_seller.get(delivered.seller_account_id)
    if key is None:
        key = keys_by_seller[delivered.seller_account_id] = _interface_key(
            uow, keyring, delivered.seller_account_id
        )
    if isinstance(key, str):
        job.retry(key)
        return
    job.target = (endpoint[0], key[0], key[1], endpoint[1])
    job.ready = True


def _endpoint(catalog, product_id: str, allow_private: bool) -> tuple[str, str | None] | str:
    """(endpoint, the address to connect to: None in development), or why not."""
    try:
        settings = catalog.delivery_settings(product_id)
    except MercatoError as exc:
        return f"catalog did not give the product's delivery settings: {exc}"
    except Exception as exc:  # a broken answer: this product's actions wait, no others
        _log.exception("catalog's delivery settings of %s", product_id)
        return f"catalog's delivery settings failed: {type(exc).__name__}: {exc}"
    url = settings.get("saas_endpoint_url")
    if not url:
        return "the product has no SaaS endpoint"
    if allow_private:
        return (url, None)
    address = endpoints.public_address(url)
    if address is None:
        return "the SaaS endpoint is on loopback or a private network, refused outside development"
    return (url, address)


def _interface_key(uow, keyring: Keyring, seller_account_id: str) -> tuple[str, str] | str:
    key = uow.seller_keys.interface_key(seller_account_id)
    if key is None:
        return "the seller has not issued its SaaS interface credentials"
    try:
        secret = keyring.open(
            Sealed(key.secret_key_id, key.secret_sealed),
            bound_to=domain.interface_binding(key.seller_account_id, key.access_key),
        )
    except Exception as exc:  # a key the keyring no longer holds: an operator's to fix
        _log.exception("the interface secret of seller %s", seller_account_id)
        return f"the seller's interface secret cannot be opened: {type(exc).__name__}"
    return (key.access_key, secret)


def _prepare_cloud_call(
    job: _Job,
    servers: dict[str, tuple[str, str, list[str]]],
    iam_agency,
    creds_by_account: dict[str, Any],
) -> None:
    found = servers.get(job.subscription_id)
    if found is None:
        job.done("the subscription has no deployment")
        return
    status, account_id, server_ids = found
    if status in (deployments.PENDING, deployments.CREATING):
        job.retry(f"the deployment is {status}")
        return
    if status != deployments.ACTIVE or not server_ids:
        job.done(f"the deployment is {status} and has no server to act on")
        return
    creds = creds_by_account.get(account_id)
    if creds is None:
        try:
            creds = creds_by_account[account_id] = deploying.credentials(
                iam_agency, account_id, check=False
            )
        except deploying.AgencyRefused as exc:
            creds = creds_by_account[account_id] = f"the agency refused: {exc.code} {exc.message}"
        except MercatoError as exc:
            creds = creds_by_account[account_id] = f"iam-agency did not answer: {exc}"
    if isinstance(creds, str):
        job.retry(creds)
        return
    job.cloud = (creds, server_ids)
    job.ready = True


def _run_remote(job: _Job, seller_client: SellerClientFactory, driver: CloudDriver, policy) -> None:
    """One seller or cloud call, no transaction open; never raises."""
    try:
        if job.kind in domain.SELLER_ACTIONS:
            _call_seller(job, seller_client, policy)
        else:
            _call_cloud(job, driver)
    except Exception as exc:
        _log.exception("instance action %s (%s): unexpected failure", job.seq, job.kind)
        job.retry(f"unexpected {type(exc).__name__}: {exc}")


def _seller_fields(job: _Job) -> dict[str, Any]:
    delivered = job.delivered
    assert delivered is not None
    payload = job.payload
    fields: dict[str, Any] = {"instanceId": delivered.instance_id}
    if job.kind in (domain.FREEZE, domain.UNFREEZE):
        fields["status"] = payload.get("status") or job.kind.upper()
    elif job.kind == domain.REFRESH:
        fields.update(
            orderId=payload["renewal_order_id"],
            orderLineId=delivered.order_line_id,
            expireTime=seller_interface.rfc3339(dt.datetime.fromisoformat(payload["expires_at"])),
        )
    elif job.kind == domain.UPGRADE:
        fields.update(
            orderId=payload["upgrade_order_id"],
            orderLineId=delivered.order_line_id,
            specificationId=payload["specification_id"],
            quantity=payload.get("quantity") or delivered.quantity,
        )
        if payload.get("specification_name"):
            fields["specificationName"] = payload["specification_name"]
    elif job.kind == domain.RELEASE_INSTANCE:
        fields["orderId"] = delivered.order_id
    fields["testFlag"] = "0"
    return fields


def _call_seller(job: _Job, seller_client: SellerClientFactory, policy) -> None:
    assert job.target is not None
    activity = domain.SELLER_ACTIONS[job.kind]
    fields = _seller_fields(job)
    budget = policy.call_budget.total_seconds()
    code: str | None = None
    message = ""
    try:
        with (
            seller_client(*job.target) as client,
            eventlet.Timeout(
                budget,
                seller_interface.SellerUnreachable(f"no whole answer within {budget:g} s"),
            ),
        ):
            answer = client.call(activity, fields)
    except SellerCallError as exc:
        metrics.SELLER_CALLS.labels(activity, _call_error(exc)).inc()
        message = exc.reason
    else:
        metrics.SELLER_CALLS.labels(activity, answer.result_code).inc()
        metrics.SELLER_CALL_DURATION.labels(activity).observe(answer.elapsed_seconds)
        code, message = answer.result_code, answer.result_msg
    outcome = domain.seller_outcome(job.kind, code)
    said = f"{activity} answered {code} {message[:200]}" if code else f"{activity}: {message}"
    if outcome == domain.ACTION_DONE:
        job.done(None if code == seller_interface.ResultCode.SUCCESS else said)
        if job.kind == domain.UPGRADE:
            job.result["quantity"] = fields["quantity"]
    elif outcome == domain.ACTION_FAILED:
        if job.kind == domain.UPGRADE:
            job.fail(domain.upgrade_refused_reason(str(code), message))
        else:
            job.fail(said)
    else:
        job.retry(said)


def _call_error(exc: SellerCallError) -> str:
    return {
        "SellerUnreachable": "unreachable",
        "SellerBadSignature": "bad_signature",
    }.get(type(exc).__name__, "bad_answer")


def _call_cloud(job: _Job, driver: CloudDriver) -> None:
    """Stop or start the deployment's servers (``stop_servers``/``start_servers`` of the
    cloud driver)."""
    assert job.cloud is not None
    creds, server_ids = job.cloud
    power = driver.stop_servers if job.kind == domain.STOP_SERVERS else driver.start_servers
    try:
        power(creds, server_ids)
    except CloudNotFound as exc:
        job.done(f"the servers are gone: {exc}")
    except PolicyDenied as exc:  # the buyer may grant it (iam-agency policy version)
        job.retry(str(exc))
    except CloudError as exc:
        if exc.transient:
            job.retry(str(exc))
        else:
            job.fail(str(exc))
    else:
        job.done()


# -- recording outcomes ------------------------------------------------------------------


def _finish(
    uow,
    clock: Clock,
    jobs: list[_Job],
    lease_until: dt.datetime,
    keyring: Keyring,
    policy: InstanceActionPolicy,
) -> None:
    """The outcomes of the jobs still leased to this worker, in one transaction: the
    local actions run here, the deliveries take what the seller did, the upgrades are
    announced, and one executemany UPDATE finishes every action."""
    ours = uow.instance_actions.lock_leased([job.seq for job in jobs], lease_until)
    jobs = [job for job in jobs if job.seq in ours]
    now = clock.now()
    for job in jobs:
        # an upgrade the seller has not confirmed within its window fails (orders
        # refunds it once): the subscription's later actions must not wait for ever
        deadline = _upgrade_deadline(job, policy)
        if deadline is not None and job.outcome == domain.ACTION_PENDING and now >= deadline:
            job.fail(domain.upgrade_given_up_reason(policy.upgrade_window, job.error))
    touched = sorted(
        {
            job.subscription_id
            for job in jobs
            if job.kind == domain.REISSUE_LICENSE
            or (
                job.kind in (domain.REFRESH, domain.UPGRADE)
                and job.outcome != domain.ACTION_PENDING
            )
        }
    )
    deliveries = uow.deliveries.of_subscriptions(touched, lock=True)
    images = uow.deployments.of_subscriptions(
        sorted({job.subscription_id for job in jobs if job.kind == domain.RELEASE_DEPLOYMENT}),
        lock=True,
    )
    for job in jobs:
        delivery = deliveries.get(job.subscription_id)
        if job.kind in domain.LOCAL_ACTIONS:
            _run_local(uow, clock, job, delivery, images.get(job.subscription_id), keyring)
        elif job.kind == domain.REFRESH and job.outcome == domain.ACTION_DONE and delivery:
            delivery.expires_at = dt.datetime.fromisoformat(job.payload["expires_at"])
            delivery.updated_at = now
        elif job.kind == domain.UPGRADE and job.outcome != domain.ACTION_PENDING:
            _announce_upgrade(uow, job, delivery, now)
    uow.session.flush()  # the deliveries' and deployments' changes, before the bulk update
    # alike outcomes share one UPDATE: a sweep of a thousand done actions is one statement
    groups: dict[tuple[str, str | None, dt.datetime | None], list[int]] = {}
    for job in jobs:
        retry_at = None
        if job.outcome == domain.ACTION_PENDING:
            retry_at = now + policy.backoff(job.attempts + 1)
            deadline = _upgrade_deadline(job, policy)
            if deadline is not None:  # the last try at the window's end, not after it
                retry_at = min(retry_at, deadline)
        error = job.error[:2000] if job.error else None
        groups.setdefault((job.outcome, error, retry_at), []).append(job.seq)
    for (status, error, retry_at), seqs in groups.items():
        uow.instance_actions.finish(
            seqs, status=status, next_attempt_at=retry_at, last_error=error, now=now
        )
    uow.commit()
    _report(jobs)


def _upgrade_deadline(job: _Job, policy: InstanceActionPolicy) -> dt.datetime | None:
    if job.kind != domain.UPGRADE or job.created_at is None:
        return None
    return job.created_at + policy.upgrade_window


def _run_local(uow, clock: Clock, job: _Job, delivery, deployment, keyring: Keyring) -> None:
    """A local action in its own savepoint: one that fails (a signing key the keyring
    cannot open, say) is tried again later and counted, never holding up the batch."""
    savepoint = uow.session.begin_nested()
    try:
        if job.kind == domain.REISSUE_LICENSE:
            _reissue_license(uow, clock, job, delivery, keyring)
        else:
            _release_deployment(clock, job, deployment)
        savepoint.commit()
    except Exception as exc:
        savepoint.rollback()
        _log.exception("instance action %s (%s): unexpected failure", job.seq, job.kind)
        job.retry(f"unexpected {type(exc).__name__}: {exc}")


def _reissue_license(uow, clock: Clock, job: _Job, delivery, keyring: Keyring) -> None:
    """The license key signed again, carrying the renewed expiry (the same license id)."""
    if delivery is None:
        job.done("the subscription has no delivery")
        return
    if delivery.status == domain.PENDING:
        job.retry("the license is still being delivered")
        return
    if delivery.status != domain.SUCCEEDED:
        job.done(f"the delivery {delivery.status}: no license key to sign again")
        return
    delivery.expires_at = dt.datetime.fromisoformat(job.payload["expires_at"])
    delivered = usecases.sign_license(uow, clock, delivery, keyring)
    delivery.license_key = delivered.license_key
    delivery.updated_at = clock.now()
    job.done()


def _release_deployment(clock: Clock, job: _Job, deployment) -> None:
    """The image's deployment starts releasing (the deployment timer deletes its
    stack); one not yet active is waited for, one failed or released has nothing."""
    if deployment is None:
        job.done("the subscription has no deployment")
    elif deployment.status in (deployments.PENDING, deployments.CREATING):
        job.retry(f"the deployment is {deployment.status}")
    elif deployment.status == deployments.ACTIVE:
        deployment.release(clock.now())
        metrics.DEPLOYMENTS.labels(deployments.RELEASING).inc()
        job.done()
    else:
        job.done(f"the deployment is {deployment.status}")


def _announce_upgrade(uow, job: _Job, delivery, now: dt.datetime) -> None:
    payload = job.payload
    account_id = delivery.account_id if delivery is not None else None
    if job.outcome == domain.ACTION_DONE:
        quantity = int(job.result.get("quantity") or payload.get("quantity") or 0)
        if delivery is not None:
            delivery.specification_id = payload["specification_id"]
            if payload.get("specification_name"):
                delivery.specification_name = payload["specification_name"]
            delivery.quantity = quantity
            delivery.updated_at = now
        uow.emit(
            domain.INSTANCE_UPGRADED,
            subject=job.subscription_id,
            account_id=account_id,
            data={
                "subscription_id": job.subscription_id,
                "upgrade_order_id": payload["upgrade_order_id"],
                "specification_id": payload["specification_id"],
                "quantity": quantity,
                "upgraded_at": now,
            },
        )
    else:
        _upgrade_failed(
            uow,
            job.subscription_id,
            account_id,
            payload,
            job.error or "The seller's system refused the upgrade.",
            now,
        )


def _upgrade_failed(
    uow,
    subscription_id: str,
    account_id: str | None,
    payload: dict[str, Any],
    reason: str,
    now: dt.datetime,
) -> None:
    """provisioning.instance.upgrade_failed: orders cancels the upgrade order and refunds
    it (once: a repeat finds it no longer delivering)."""
    uow.emit(
        domain.INSTANCE_UPGRADE_FAILED,
        subject=subscription_id,
        account_id=account_id,
        data={
            "subscription_id": subscription_id,
            "upgrade_order_id": payload["upgrade_order_id"],
            "reason": reason,
            "failed_at": now,
        },
    )


def _report(jobs: list[_Job]) -> None:
    """Counted by action and outcome; one line for the batch, one per failure."""
    counts: dict[tuple[str, str], int] = {}
    for job in jobs:
        outcome = domain.ACTION_RETRIED if job.outcome == domain.ACTION_PENDING else job.outcome
        counts[(job.kind, outcome)] = counts.get((job.kind, outcome), 0) + 1
        if job.outcome == domain.ACTION_FAILED:
            _log.warning(
                "instance action %s %s of %s failed: %s",
                job.seq,
                job.kind,
                job.subscription_id,
                job.error,
            )
        elif job.outcome == domain.ACTION_PENDING:
            _log.info(
                "instance action %s %s of %s tried again later: %s",
                job.seq,
                job.kind,
                job.subscription_id,
                job.error,
            )
    for (kind, outcome), count in counts.items():
        metrics.INSTANCE_ACTIONS.labels(kind, outcome).inc(count)
    if jobs:
        _log.info(
            "instance actions: %s",
            ", ".join(f"{count} {kind} {outcome}" for (kind, outcome), count in counts.items()),
        )


# -- gauges ------------------------------------------------------------------------------


GAUGES_EVERY_SECONDS = 10.0  # a GROUP BY over the pending rows, not at every sweep
_gauges_refreshed_at: float | None = None


def refresh_gauges_if_due(uow, clock: Clock) -> None:
    """``refresh_gauges`` at most every ``GAUGES_EVERY_SECONDS`` in this process."""
    global _gauges_refreshed_at
    now = time.monotonic()
    if _gauges_refreshed_at is not None and now - _gauges_refreshed_at < GAUGES_EVERY_SECONDS:
        return
    _gauges_refreshed_at = now
    refresh_gauges(uow, clock)


def refresh_gauges(uow, clock: Clock) -> dict[str, int]:
    """``mercato_instance_actions_pending{action}`` and the age of the oldest pending
    action, from one GROUP BY (on the partial index of pending rows)."""
    pending = uow.instance_actions.pending_by_kind()
    oldest = uow.instance_actions.oldest_pending()
    uow.rollback()
    for kind in domain.ACTION_KINDS:
        metrics.INSTANCE_ACTIONS_PENDING.labels(kind).set(pending.get(kind, 0))
    age = 0.0 if oldest is None else max((clock.now() - oldest).total_seconds(), 0.0)
    metrics.INSTANCE_ACTION_OLDEST_PENDING.set(age)
    return pending
