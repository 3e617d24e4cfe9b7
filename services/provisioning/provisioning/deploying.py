"""provisioning's use cases for images: deployments into the buyer's cloud account.

A deployment is a saga driven from the database, like a delivery:

1. ``prepare_deployment`` (orders, while placing an image order) stores the spec with
   the password sealed: ``pending``. ``check_deployment`` (orders, before placing)
   reads the account's quotas, flavors and image under the buyer's agency.
2. ``start_deployment`` (the order-paid event, in its inbox transaction, beside the
   image's ``waiting`` delivery) makes it ``creating``, its first step due now.
3. ``claim_due_deployments`` leases due deployments to this worker (``FOR UPDATE SKIP
   LOCKED``; a crashed replica's lease runs out); ``advance_deployment`` then makes one
   round of cloud calls outside any transaction and writes the outcome under the row
   lock: steps completed, looked at again soon, or compensating.
4. A failure (a cloud error, the stack failing, a step past its deadline, the policy
   refusing an action, the agency revoked) compensates: the stack is deleted and waited
   for, then the deployment fails and its delivery with it (``provisioning.delivery.
   failed``: orders cancels, billing refunds once). ``active`` delivers it.
5. ``release_deployment`` deletes an active deployment's stack (``releasing`` ->
   ``released``).

Exactly once: the stack's name is its client token (``mkp-<deployment id>``), so a
retried CreateStack adopts the stack instead of making a second; ``stack_requested`` is
committed before CreateStack is sent, so a crash after it still compensates; every move
is checked under the row lock (``deployments.DEPLOYMENT``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import (
    Conflict,
    Forbidden,
    MercatoError,
    NotFound,
    ServiceUnavailable,
    ValidationError,
)
from mercato.identity import Identity
from mercato.terms import IMAGE
from provisioning import deployments, domain, metrics
from provisioning.cloud.driver import (
    CloudCredentials,
    CloudDriver,
    CloudError,
    PolicyDenied,
    StackExists,
)
from provisioning.cloud.template import PASSWORD_VAR, build_template
from provisioning.deployments import DeploymentPolicy
from provisioning.keyring import Keyring, Sealed
from provisioning.models import CloudKey, Delivery, Deployment

_log = logging.getLogger(__name__)

AGENCY_ERRORS = ("AGENCY_NOT_AUTHORIZED", "AGENCY_BROKEN", "AGENCY_REAUTHORIZATION_REQUIRED")
DEPLOYMENT_COMPLETE, DEPLOYMENT_FAILED = "DEPLOYMENT_COMPLETE", "DEPLOYMENT_FAILED"
DELETION_IN_PROGRESS, DELETION_FAILED = "DELETION_IN_PROGRESS", "DELETION_FAILED"
CREATION_COMPLETE, CREATION_FAILED = "CREATION_COMPLETE", "CREATION_FAILED"


class AgencyRefused(Exception):
    """iam-agency refused the agency's credentials (not authorised, broken, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def credentials(iam_agency, account_id: str, *, check: bool) -> CloudCredentials:
    """The temporary credentials of the account's ``mkp_agency_trust`` from
    iam-agency; ``AgencyRefused`` when it refuses them."""
    try:
        answer = iam_agency.agency_credentials(account_id, check)
    except MercatoError as exc:
        if exc.code in AGENCY_ERRORS or isinstance(exc, Conflict):
            raise AgencyRefused(exc.code, exc.message) from None
        if isinstance(exc, NotFound):  # no cloud account linked
            raise AgencyRefused("AGENCY_NOT_AUTHORIZED", exc.message) from None
        raise
    return CloudCredentials.from_answer(answer)


# -- before the order is placed ------------------------------------------------------


def prepare_deployment(
    uow, clock: Clock, *, buyer: Identity, request: dict[str, Any], keyring: Keyring
) -> dict[str, Any]:
    """Keep an image order's deployment (password sealed) until the order is paid;
    the same order again answers the same deployment."""
    if request["account_id"] != buyer.account_id:
        raise Forbidden("a deployment is prepared for the caller's own account")
    existing = uow.deployments.of_order(request["order_id"])
    if existing is not None:
        if existing.account_id != buyer.account_id:
            raise NotFound("no such order")
        return {"deployment_id": existing.id}
    spec = dict(request["deployment"])
    password = spec.pop("admin_password")
    problems = deployments.password_problems(password, spec["server_name"])
    if problems:
        raise ValidationError(
            "the administrator password breaks the cloud's password rules",
            {"deployment.admin_password": problems},
        )
    spec["image"] = request["image"]
    now = clock.now()
    deployment_id = new_id("dep")
    sealed = keyring.seal(
        password, bound_to=deployments.password_binding(buyer.account_id, deployment_id)
    )
    uow.deployments.add(
        Deployment(
            id=deployment_id,
            order_id=request["order_id"],
            account_id=buyer.account_id,
            product_id=request["product_id"],
            specification_id=request["specification_id"],
            spec=spec,
            password_key_id=sealed.key_id,
            password_sealed=sealed.ciphertext,
            status=deployments.PENDING,
            steps=[],
            stack_name=deployments.stack_name(deployment_id),
            stack_requested=False,
            resources=[],
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    uow.commit()
    metrics.DEPLOYMENTS.labels(deployments.PENDING).inc()
    return {"deployment_id": deployment_id}


def check_deployment(*, request: dict[str, Any], iam_agency, driver: CloudDriver) -> dict[str, Any]:
    """Whether the buyer's cloud account can hold the deployment: the flavor and the
    image exist, and no quota is too small (ECS server limits, VPC quotas)."""
    spec, image = request["deployment"], request["image"]
    try:
        creds = credentials(iam_agency, request["account_id"], check=False)
    except AgencyRefused as exc:
        raise Conflict(exc.message, code=exc.code) from None
    try:
        flavors = {flavor["id"]: flavor for flavor in driver.flavors(creds)}
        flavor = flavors.get(spec["flavor_id"])
        if flavor is None:
            raise ValidationError(
                f"the cloud has no flavor {spec['flavor_id']}",
                {"deployment.flavor_id": ["no such flavor in the cloud account's region"]},
            )
        if driver.image(creds, image["image_id"]) is None:
            raise ValidationError(
                f"the cloud has no image {image['image_id']}",
                {"image.image_id": ["no such image in the cloud account's region"]},
            )
        available = {**driver.server_limits(creds), **driver.network_quotas(creds)}
    except CloudError as exc:
        raise _unavailable(exc) from None
    exceeded = deployments.first_exceeded(deployments.quota_needs(spec, flavor), available)
    return {"ok": exceeded is None, "quota_exceeded": exceeded}


CLOUD_KINDS = ("flavors", "vpcs", "subnets", "security_groups")


def list_cloud_resources(
    *, buyer: Identity, request: dict[str, Any], iam_agency, driver: CloudDriver
) -> dict[str, Any]:
    """What the buyer can choose from its own account, read under its agency."""
    try:
        creds = credentials(iam_agency, buyer.account_id, check=False)
    except AgencyRefused as exc:
        raise Conflict(exc.message, code=exc.code) from None
    kind = request["kind"]
    try:
        if kind == "flavors":
            items = driver.flavors(creds)
        elif kind == "vpcs":
            items = driver.vpcs(creds)
        elif kind == "subnets":
            items = driver.subnets(creds, request.get("vpc_id"))
        else:
            items = driver.security_groups(creds)
    except CloudError as exc:
        raise _unavailable(exc) from None
    return {"kind": kind, "items": items}


def _unavailable(exc: CloudError) -> MercatoError:
    if isinstance(exc, PolicyDenied):
        return Conflict(
            f"{exc.message}: authorise the agencies again", code="AGENCY_REAUTHORIZATION_REQUIRED"
        )
    return ServiceUnavailable(f"the cloud did not answer as expected: {exc}")


# -- paid: the deployment starts ------------------------------------------------------


def start_deployment(
    uow,
    clock: Clock,
    policy: DeploymentPolicy,
    *,
    delivery: Delivery,
    enterprise_project_id: str | None = None,
) -> str | None:
    """The image order is paid: its deployment starts beside the waiting delivery (in
    the order-paid event's transaction; the caller commits), its resources to be made in
    the order's ``enterprise_project_id``. A repeat starts nothing. The deployment's id
    when it started."""
    deployment = uow.deployments.of_order(delivery.order_id, lock=True)
    if deployment is None or not deployment.may("start"):
        return None
    deployment.start(
        clock.now(),
        policy,
        subscription_id=delivery.subscription_id,
        delivery_id=delivery.id,
        enterprise_project_id=enterprise_project_id,
    )
    uow.emit_recorded(deployment)
    metrics.DEPLOYMENTS.labels(deployments.CREATING).inc()
    return str(deployment.id)


# -- moved to another enterprise project ----------------------------------------------


def move_resources(uow, clock: Clock, *, move: dict[str, Any]) -> bool:
    """orders moved an image subscription to another enterprise project
    (``orders.subscription.moved``): its deployment's resources follow (``with_associated``:
    the servers with the volumes and EIPs in their project; ``independent``: the servers
    only). In the event's inbox transaction; the caller commits. Anything but an image,
    or the same move again, changes nothing; a move older than one already taken does
    not undo it (the moves are replayed in orders' order). Answers whether it moved
    anything."""
    if move["delivery_method"] != IMAGE:
        return False
    subscription_id = move["subscription_id"]
    deployment = uow.deployments.of_subscription(subscription_id, lock=True)
    if deployment is None:
        if uow.deliveries.exists_for(subscription_id):
            return False  # paid, but no deployment here: nothing to place
        # the order-paid event that starts the deployment is still on its way (events
        # are not ordered): a transient error, so the inbox tries again with backoff
        raise ServiceUnavailable(f"the deployment of {subscription_id} is not recorded yet")
    if deployment.account_id != move["account_id"]:
        _log.warning(
            "move of %s for account %s ignored: the deployment is %s's",
            subscription_id,
            move["account_id"],
            deployment.account_id,
        )
        return False
    moved = deployment.move_to_project(
        from_project=move["from_enterprise_project_id"],
        to_project=move["to_enterprise_project_id"],
        mode=move["mode"],
        moved_at=move["moved_at"],
        now=clock.now(),
    )
    if moved:
        _log.info(
            "deployment %s: moved %s to %s (%s)",
            deployment.id,
            subscription_id,
            move["to_enterprise_project_id"],
            move["mode"],
        )
    return moved


# -- the timer's rounds ---------------------------------------------------------------


def claim_due_deployments(
    uow, clock: Clock, policy: DeploymentPolicy, *, limit: int = 1
) -> list[Deployment]:
    now = clock.now()
    claimed = uow.deployments.lock_due(now, limit)
    for deployment in claimed:
        deployment.claim(now, policy)
    uow.commit()
    return claimed


@dataclass
class _Round:
    """What one round found out, applied under the row lock afterwards."""

    completed: list[str] = field(default_factory=list)
    stack_id: str | None = None
    stack_vars: list[dict[str, Any]] | None = None
    delete_requested: bool = False
    resend_delete: bool = False  # DeleteStack to be sent again on the next round
    retry: str | None = None  # a transient error: tried again after the backoff
    compensate: tuple[str, str] | None = None  # (reason, explanation)
    failed_step: str | None = None  # the step whose resource the stack could not create
    activate: list[dict[str, Any]] | None = None
    gone: bool = False  # the stack is deleted (compensation or release done)
    leftovers: str | None = None  # deleting gave up


def advance_deployment(
    uow,
    clock: Clock,
    claimed: Deployment,
    *,
    iam_agency,
    driver: CloudDriver,
    keyring: Keyring,
    policy: DeploymentPolicy,
) -> str:
    """One round of a claimed deployment; answers its status afterwards."""
    status = claimed.status
    found = _Round()
    try:
        if status == deployments.CREATING:
            _creating(uow, clock, claimed, found, iam_agency, driver, keyring, policy)
        else:
            _deleting(clock, claimed, found, iam_agency, driver, policy)
    except AgencyRefused as exc:
        if status == deployments.CREATING:
            found.compensate = (
                deployments.AGENCY,
                f"Mercato may no longer deploy into your cloud account ({exc.message}).",
            )
        else:
            found.retry = f"agency refused: {exc.code}"
    except PolicyDenied as exc:
        if status == deployments.CREATING:
            found.compensate = (
                deployments.POLICY_DENIED,
                f"The policy of your agency mkp_agency_trust does not allow {exc.action}, "
                "which the deployment needs; authorise the agencies again.",
            )
        else:
            found.retry = str(exc)
    except CloudError as exc:
        if exc.transient or status != deployments.CREATING:
            found.retry = str(exc)
        else:
            found.compensate = (deployments.CLOUD_ERROR, f"The cloud refused a request: {exc}.")
    except MercatoError as exc:  # iam-agency did not answer
        uow.rollback()
        found.retry = f"{exc.code}: {exc.message}"
    except Exception as exc:
        _log.exception("deployment %s: unexpected failure", claimed.id)
        uow.rollback()
        found.retry = f"unexpected {type(exc).__name__}: {exc}"
    return _apply(uow, clock, claimed.id, status, found, policy)


def _creating(
    uow,
    clock: Clock,
    claimed: Deployment,
    found: _Round,
    iam_agency,
    driver: CloudDriver,
    keyring: Keyring,
    policy: DeploymentPolicy,
) -> None:
    step = claimed.current_step
    if claimed.step_overdue(clock.now()):
        seconds = policy.deadline(step or "").total_seconds()
        found.compensate = (
            deployments.DEADLINE,
            f"The step {step} did not finish within {seconds:g} seconds.",
        )
        return
    creds = credentials(iam_agency, claimed.account_id, check=step == deployments.CHECK_AGENCY)
    if step == deployments.CHECK_AGENCY:
        found.completed.append(step)
    elif step == deployments.PREPARE_KEYS:
        key_id = _account_key(uow, clock, claimed.account_id, creds, driver)
        password = keyring.open(
            Sealed(claimed.password_key_id, claimed.password_sealed),
            bound_to=deployments.password_binding(claimed.account_id, claimed.id),
        )
        found.stack_vars = [driver.encrypt_var(creds, key_id, PASSWORD_VAR, password)]
        found.completed.append(step)
    elif step == deployments.CREATE_STACK:
        _create_stack(uow, claimed, found, creds, driver)
    else:
        _watch_stack(claimed, found, creds, driver)


def _account_key(uow, clock: Clock, account_id: str, creds, driver: CloudDriver) -> str:
    """The account's KMS key, made once and remembered (a key deleted in the cloud
    since is made again)."""
    key = uow.deployments.cloud_key(account_id)
    uow.commit()
    if key is not None and driver.key_usable(creds, key.key_id):
        return str(key.key_id)
    key_id = driver.create_key(creds, f"mkp-deployments-{new_id('k')[-12:]}")
    if key is not None:
        uow.deployments.replace_cloud_key(account_id, key_id)
        uow.commit()
        return key_id
    standing = uow.deployments.add_cloud_key_if_missing(
        CloudKey(account_id=account_id, key_id=key_id, created_at=clock.now())
    )
    uow.commit()
    return str(standing.key_id)


def _create_stack(uow, claimed: Deployment, found: _Round, creds, driver: CloudDriver) -> None:
    if not claimed.stack_requested:
        # recorded before the request: from now on a failure deletes the stack
        current = uow.deployments.lock(claimed.id)
        if current.status != deployments.CREATING:
            uow.commit()
            return
        current.stack_requested = True
        uow.commit()
    template = build_template(
        claimed.spec, claimed.spec["image"], region=_region(claimed, creds, driver)
    )
    try:
        found.stack_id = driver.create_stack(
            creds,
            name=claimed.stack_name,
            template=template,
            vars_structure=claimed.stack_vars or [],
            client_token=claimed.id,
        )
    except StackExists:
        stack = driver.stack(creds, claimed.stack_name)
        if stack is None:
            found.retry = "the stack was refused as existing, then not found"
            return
        found.stack_id = stack["stack_id"]
    found.completed.append(deployments.CREATE_STACK)


def _region(deployment: Deployment, creds: CloudCredentials, driver: CloudDriver) -> str:
    return str(deployment.spec.get("region") or creds.region or getattr(driver, "region", "") or "")


def expected_resources(spec: dict[str, Any], region: str = "") -> dict[str, int]:
    """How many resources each resource step waits for (from the template)."""
    template = build_template(spec, spec["image"], region=region or "region")
    counts: dict[str, int] = {}
    for resource_type, named in template["resource"].items():
        step = deployments.STEP_OF_RESOURCE_TYPE.get(resource_type)
        if step is not None:
            counts[step] = counts.get(step, 0) + len(named)
    return counts


def _watch_stack(claimed: Deployment, found: _Round, creds, driver: CloudDriver) -> None:
    """The resource steps: completed in order as the stack service reports their
    resources created; active once the stack is complete."""
    stack = driver.stack(creds, claimed.stack_name)
    if stack is None:
        found.compensate = (deployments.STACK_FAILED, "The stack disappeared from the cloud.")
        return
    resources = driver.stack_resources(creds, claimed.stack_name)
    expected = expected_resources(claimed.spec, creds.region)
    done: dict[str, int] = {}
    for resource in resources:
        step = deployments.STEP_OF_RESOURCE_TYPE.get(resource["type"])
        if step is not None and resource["status"] == CREATION_COMPLETE:
            done[step] = done.get(step, 0) + 1
    remaining = [
        s["name"]
        for s in claimed.steps
        if s["status"] in (deployments.STEP_PENDING, deployments.STEP_RUNNING)
    ]
    failed = [r for r in resources if r["status"] == CREATION_FAILED]
    if stack["status"] == DEPLOYMENT_FAILED or failed:
        # the steps whose resources were all made are done; the failure is the step
        # of the resource the stack service could not create (the last one running
        # when it names none)
        for step in remaining:
            if done.get(step, 0) < expected.get(step, 0):
                break
            found.completed.append(step)
        if failed:
            found.failed_step = deployments.STEP_OF_RESOURCE_TYPE.get(failed[0]["type"])
            explanation = (
                f"The cloud could not create {failed[0]['type']} {failed[0]['name']}: "
                f"{failed[0].get('status_message') or stack.get('status_message') or 'failed'}"
            )
        else:
            reason = stack.get("status_message") or ""
            explanation = f"The cloud could not create the deployment: {reason}"
        found.compensate = (deployments.STACK_FAILED, explanation.rstrip(": ") + ".")
        return
    complete = stack["status"] == DEPLOYMENT_COMPLETE
    for step in remaining:
        if complete or done.get(step, 0) >= expected.get(step, 0):
            found.completed.append(step)
        else:
            break
    if complete and len(found.completed) == len(remaining):
        found.activate = _resources_view(resources, creds, driver)


_RESOURCE_KINDS = {
    "huaweicloud_vpc": "vpc",
    "huaweicloud_vpc_subnet": "subnet",
    "huaweicloud_networking_secgroup": "security_group",
    "huaweicloud_vpc_eip": "eip",
    "huaweicloud_evs_volume": "volume",
    "huaweicloud_compute_instance": "server",
}


def _resources_view(
    resources: list[dict[str, Any]], creds, driver: CloudDriver
) -> list[dict[str, Any]]:
    """The stack's resources as the buyer sees them, servers and EIPs with their
    addresses (best effort: an address the cloud does not answer is left out)."""
    view = []
    for resource in resources:
        kind = _RESOURCE_KINDS.get(resource["type"])
        if kind is None:
            continue  # security group rules
        addresses: list[str] = []
        try:
            if kind == "server" and resource["id"]:
                addresses = driver.server_addresses(creds, resource["id"])
            elif kind == "eip" and resource["id"]:
                address = driver.public_ip(creds, resource["id"])
                addresses = [address] if address else []
        except CloudError as exc:
            _log.warning("no addresses of %s %s: %s", kind, resource["id"], exc)
        view.append(
            {
                "type": kind,
                "id": resource["id"],
                "name": resource.get("physical_name") or resource["name"],
                "status": resource["status"],
                "addresses": addresses,
            }
        )
    return view


def _deleting(
    clock: Clock,
    claimed: Deployment,
    found: _Round,
    iam_agency,
    driver: CloudDriver,
    policy: DeploymentPolicy,
) -> None:
    """Compensation and release: DeleteStack, then wait until the stack is gone."""
    if claimed.status == deployments.COMPENSATING and not claimed.needs_stack_deleted:
        found.gone = True  # nothing was asked of the stack service
        return
    now = clock.now()
    try:
        creds = credentials(iam_agency, claimed.account_id, check=False)
        stack = driver.stack(creds, claimed.stack_name)
        if stack is None:
            found.gone = True
            return
        if stack["status"] == DELETION_IN_PROGRESS:
            return  # looked at again soon
        if stack["status"] == DELETION_FAILED and claimed.delete_requested_at is not None:
            # the stack service could not delete everything: asked again after the backoff
            raise CloudError(
                f"the stack could not be deleted: {stack.get('status_message') or 'failed'}",
                code=DELETION_FAILED,
                status=None,
            )
        if (
            claimed.delete_requested_at is None
            or now - claimed.delete_requested_at > policy.poll * 10
        ):
            driver.delete_stack(creds, claimed.stack_name)
            found.delete_requested = True
    except (AgencyRefused, CloudError) as exc:
        if claimed.deletion_given_up(now, policy):
            found.leftovers = (
                f"Its stack {claimed.stack_name} could not be deleted ({exc}); delete it in "
                "your cloud account."
            )
            return
        if isinstance(exc, CloudError) and exc.code == DELETION_FAILED:
            found.delete_requested = False
            found.retry = str(exc)
            found.resend_delete = True
            return
        raise


def _apply(
    uow, clock: Clock, deployment_id: str, status: str, found: _Round, policy: DeploymentPolicy
) -> str:
    """The round's outcome, under the row lock (nothing, when another worker moved the
    deployment meanwhile)."""
    deployment = uow.deployments.lock(deployment_id)
    now = clock.now()
    if deployment.status != status:
        uow.commit()
        return str(deployment.status)
    durations: list[tuple[str, float]] = []
    outcome = None
    delivery: Delivery | None = None
    if found.stack_id is not None:
        deployment.stack_created(found.stack_id)
    if found.stack_vars is not None:
        deployment.stack_vars = found.stack_vars
    if found.delete_requested:
        deployment.delete_requested_at = now
    if found.resend_delete:
        deployment.delete_requested_at = None
    for step in found.completed:
        if deployment.current_step == step:
            durations.append((step, deployment.complete_step(step, now, policy)))
    if found.compensate is not None:
        deployment.compensate(*found.compensate, now, step=found.failed_step)
        outcome = "compensate"
    elif found.activate is not None:
        deployment.activate(found.activate, now)
        delivery = _delivery(uow, deployment)
        if delivery.may("deployed"):
            delivery.deployed(domain.Delivered(instance_id=deployment.stack_id), now)
        outcome = deployments.ACTIVE
    elif found.gone or found.leftovers:
        if status == deployments.COMPENSATING:
            deployment.fail(now, leftovers=found.leftovers)
            delivery = _delivery(uow, deployment)
            if delivery.may("deployment_failed"):
                delivery.deployment_failed(str(deployment.failure_reason), now)
            outcome = deployments.FAILED
        elif found.gone:
            deployment.released(now)
            outcome = deployments.RELEASED
        else:
            deployment.poll_later(now, policy, error=found.leftovers)
    elif found.retry is not None:
        deployment.poll_later(now, policy, error=found.retry)
    elif found.completed and deployment.status == deployments.CREATING:
        deployment.lease_until = None
        deployment.next_attempt_at = now  # the next step starts at once
    else:
        deployment.poll_later(now, policy)
    uow.emit_recorded(deployment)
    if delivery is not None:
        uow.emit_recorded(delivery)
    uow.commit()
    for step, seconds in durations:
        metrics.DEPLOYMENT_STEP_SECONDS.labels(step).observe(seconds)
    _report(deployment, outcome, found)
    return str(deployment.status)


def _delivery(uow, deployment: Deployment) -> Delivery:
    return uow.deliveries.lock(str(deployment.delivery_id))


def _report(deployment: Deployment, outcome: str | None, found: _Round) -> None:
    if outcome == "compensate":
        metrics.DEPLOYMENT_COMPENSATIONS.labels(deployment.compensation_reason).inc()
        _log.warning("deployment %s compensates: %s", deployment.id, deployment.failure_reason)
    elif outcome is not None:
        metrics.DEPLOYMENTS.labels(outcome).inc()
        _log.info("deployment %s %s", deployment.id, outcome)
    elif found.retry is not None:
        _log.info("deployment %s tried again at %s: %s", deployment.id,
                  deployment.next_attempt_at, found.retry)  # fmt: skip


# -- release, and what the buyer sees -------------------------------------------------


def _own(deployment: Deployment | None, viewer: Identity) -> Deployment:
    if deployment is None or not deployment.visible_to(viewer):
        raise NotFound("no deployment for this purchased app")
    return deployment


def release_deployment(
    uow, clock: Clock, *, caller: Identity, request: dict[str, Any]
) -> dict[str, Any]:
    """The subscription ended: delete the deployment's stack (the timer does it). A
    deployment already releasing or released answers as it is."""
    if request.get("deployment_id"):
        deployment = uow.deployments.get(request["deployment_id"], lock=True)
    else:
        deployment = uow.deployments.of_subscription(request["subscription_id"], lock=True)
    deployment = _own(deployment, caller)
    if deployment.status not in (deployments.RELEASING, deployments.RELEASED):
        deployment.release(clock.now())  # Conflict unless active
        metrics.DEPLOYMENTS.labels(deployments.RELEASING).inc()
    view = deployment.view()
    uow.commit()
    return view


def deployment_of(
    uow, *, viewer: Identity, order_id: str | None = None, subscription_id: str | None = None
) -> dict[str, Any]:
    if order_id is not None:
        deployment = uow.deployments.of_order(order_id)
    else:
        deployment = uow.deployments.of_subscription(str(subscription_id))
    return _own(deployment, viewer).view()
