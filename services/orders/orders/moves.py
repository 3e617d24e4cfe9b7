"""Moving purchased apps to another enterprise project of their account
(``move_to_enterprise_project``, ``POST /v1/enterprise-projects/{id}/resources``).

All or nothing: every subscription named must be the caller's (404 otherwise) and
allowed to move (422 MOVE_NOT_ALLOWED naming each refused one and why), or nothing
moves. A subscription already in the target is left as it is (``moved: false``).

The rules (``refusal``): a one-time-payment resource never moves (``one_time``), a
pay-per-use one stays in ``default`` (``pay_per_use``), a released one is gone
(``released``), and resources move only between projects of one type
(``project_type``: commercial <-> test refused).

Each moved subscription records ``orders.subscription.moved`` and its later renewal,
upgrade and auto-renewal orders are built from its (new) project; its renewal and
upgrade orders still waiting for payment (none under way) are booked there too.

Locks: the waiting orders first, then the subscriptions, each in id order (the pay
path and auto-renewal lock an order before its subscription), so a move and a renewal
being paid wait for each other and never deadlock. A renewal or upgrade order is placed
holding its subscription's lock; one committed while the move waited for that lock is
found once the move holds it, and the move takes its locks again in the same order
(``_lock``) so that the order goes along too. iam-agency (a project the copy has
not heard of) is asked before anything is locked.
"""

from __future__ import annotations

from typing import Any

from mercato.clock import Clock
from mercato.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from mercato.identity import Identity
from mercato.terms import ONE_TIME, PAY_PER_USE, RELEASED
from orders import metrics
from orders.projects import DEFAULT_PROJECT, ENABLED

ONE_TIME_RULE = "one_time"
PAY_PER_USE_RULE = "pay_per_use"
RELEASED_RULE = "released"
PROJECT_TYPE_RULE = "project_type"
# lock rounds before a move gives up on orders being placed from its subscriptions
LOCK_ATTEMPTS = 5


def move_to_enterprise_project(
    uow,
    clock: Clock,
    *,
    buyer: Identity,
    project_id: str,
    request: dict[str, Any],
    projects,
) -> dict[str, Any]:
    """Move the caller's ``request["subscription_ids"]`` to ``project_id`` (``projects``:
    the caller's project lookup, ``orders.projects.ProjectLookup``). Answers
    ``{items: [{subscription_id, enterprise_project_id, moved}]}`` in the order asked."""
    asked = list(dict.fromkeys(request["subscription_ids"]))  # each once, in order
    mode = request["mode"]
    try:
        target = projects.get_enterprise_project(project_id)
    except NotFound:
        raise NotFound(f"enterprise project {project_id} not found") from None
    if target.get("status", ENABLED) != ENABLED:
        raise ValidationError(
            f"the enterprise project {project_id} is disabled",
            {"enterprise_project_id": ["enterprise project is disabled"]},
        )
    # before any lock: the caller's subscriptions, and the types of the projects they
    # are in (iam-agency may be asked for one the copy has not heard of)
    found = {row.id: row for row in uow.projects.subscriptions(asked)}
    _require_own(asked, found, buyer)
    types: dict[str, str | None] = {project_id: target.get("type")}
    for source in sorted({row.enterprise_project_id for row in found.values()}):
        types.setdefault(source, _type_of(projects, source))
    uow.rollback()

    waiting, locked = _lock(uow, asked)
    _require_own(asked, locked, buyer)
    refused = []
    for subscription_id in asked:
        subscription = locked[subscription_id]
        if subscription.enterprise_project_id == project_id:
            continue
        source = subscription.enterprise_project_id
        if source not in types:  # moved meanwhile: that move stored its target in the copy
            known = uow.projects.get(buyer.account_id, source)
            types[source] = known["type"] if known else None
        rule = refusal(subscription, project_id, types[source], target.get("type"))
        if rule is not None:
            refused.append(f"{rule}: {subscription_id}")
    if refused:
        uow.rollback()
        raise BusinessRuleViolation(
            f"{len(refused)} of the purchased apps may not move to {project_id}",
            {"subscription_ids": refused},
            code="MOVE_NOT_ALLOWED",
        )
    now = clock.now()
    moved = [
        locked[subscription_id]
        for subscription_id in asked
        if locked[subscription_id].enterprise_project_id != project_id
    ]
    for subscription in moved:
        subscription.move_to_project(project_id, mode, now)
    moved_ids = {subscription.id for subscription in moved}
    uow.projects.move_waiting_orders(
        [order_id for order_id, of in waiting if of in moved_ids], project_id, now
    )
    uow.emit_recorded_all(moved)
    uow.commit()
    metrics.RESOURCE_MOVES.labels(mode).inc(len(moved))
    return {
        "items": [
            {
                "subscription_id": subscription_id,
                "enterprise_project_id": project_id,
                "moved": subscription_id in moved_ids,
            }
            for subscription_id in asked
        ]
    }


def _lock(uow, asked: list[str]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Lock the waiting orders of the subscriptions asked, then the subscriptions. An
    order placed from one of them while the move waited for its lock (a renewal or an
    upgrade holds the subscription until its order is committed) is not among the
    orders locked: the locks are given up and taken again in the same order, which
    takes it along (locking it now, after the subscriptions, could deadlock with a pay
    path holding it and waiting for its subscription). 409 after a few tries."""
    for _attempt in range(LOCK_ATTEMPTS):
        waiting = uow.projects.lock_waiting_orders_of(asked)
        locked = {row.id: row for row in uow.projects.lock_subscriptions(asked)}
        if uow.projects.waiting_orders_of(asked) <= {order_id for order_id, _of in waiting}:
            return waiting, locked
        uow.rollback()
    raise Conflict("orders of these purchased apps are being placed; try the move again")


def refusal(subscription, target_id: str, source_type: str | None, target_type: str | None):
    """The rule that keeps ``subscription`` from moving to ``target_id``, or None."""
    billing_mode = subscription.line.billing_mode
    if billing_mode == ONE_TIME:
        return ONE_TIME_RULE
    if billing_mode == PAY_PER_USE and target_id != DEFAULT_PROJECT:
        return PAY_PER_USE_RULE
    if subscription.status == RELEASED:
        return RELEASED_RULE
    if (source_type or "commercial") != (target_type or "commercial"):
        return PROJECT_TYPE_RULE
    return None


def _require_own(asked, rows: dict, buyer: Identity) -> None:
    for subscription_id in asked:
        row = rows.get(subscription_id)
        if row is None or row.account_id != buyer.account_id:
            raise NotFound(f"purchased app {subscription_id} not found")


def _type_of(projects, project_id: str) -> str | None:
    """The type of a project a subscription is in; None (commercial) when iam-agency no
    longer has it."""
    try:
        return projects.get_enterprise_project(project_id).get("type")
    except NotFound:
        return None
