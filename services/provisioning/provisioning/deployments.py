"""An image's deployment into the buyer's cloud account: its saga's rules. No nameko,
no SQL, no cloud calls (those are ``provisioning.cloud``'s).

A deployment's statuses (``DEPLOYMENT``):

- ``pending``: prepared with the order (its spec stored, the password sealed), waiting
  for the payment;
- ``creating``: the order is paid; the timer runs its steps one after the other
  (``STEPS``: ``check_agency``, ``prepare_keys``, ``create_stack``, then one step per
  group of the stack's resources as the stack service creates them);
- ``active``: every resource created, recorded with its id and addresses;
- ``compensating`` (internal): a step failed or passed its deadline; the stack is
  deleted (the stack service deletes its resources in reverse order) before
- ``failed``: with a reason the buyer can read; the image's delivery fails with it
  (orders cancels the order, billing refunds it once);
- ``releasing`` -> ``released``: the subscription ended, its stack deleted.

Enterprise projects: every resource starts in the order's enterprise project (kept on
the deployment when the order is paid) and follows orders' moves of the subscription
(``orders.subscription.moved``): each move is kept (``project_moves``) and the
resources' projects are the moves replayed in orders' order (``moved_at``), so moves
taken in any order end where orders left them (``resources_in_projects``).

Each move is a method of ``DeploymentLifecycle`` (mixed into ``models.Deployment``),
which refuses a move its status does not allow (Conflict) and records the event it
causes, for the use case to emit in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mercato.domain import RecordsEvents, StateMachine
from mercato.errors import Conflict
from mercato.identity import OPERATOR, Identity

PENDING, CREATING, ACTIVE, FAILED = "pending", "creating", "active", "failed"
COMPENSATING, RELEASING, RELEASED = "compensating", "releasing", "released"
STATUSES = (PENDING, CREATING, ACTIVE, FAILED, COMPENSATING, RELEASING, RELEASED)
# the statuses the timer works on
WORKED = (CREATING, COMPENSATING, RELEASING)

DEPLOYMENT = StateMachine(
    "deployment",
    {
        "start": ((PENDING,), CREATING),
        "complete_step": ((CREATING,), CREATING),
        "activate": ((CREATING,), ACTIVE),
        "compensate": ((CREATING,), COMPENSATING),
        "fail": ((COMPENSATING,), FAILED),
        "release": ((ACTIVE,), RELEASING),
        "released": ((RELEASING,), RELEASED),
    },
)

# the steps, in the order they run; the resource steps a deployment does not need are
# left out of its plan (``plan_steps``)
CHECK_AGENCY, PREPARE_KEYS, CREATE_STACK = "check_agency", "prepare_keys", "create_stack"
NETWORK, SECURITY_GROUP, EIP, VOLUMES, SERVERS = (
    "network",
    "security_group",
    "eip",
    "volumes",
    "servers",
)
STEPS = (CHECK_AGENCY, PREPARE_KEYS, CREATE_STACK, NETWORK, SECURITY_GROUP, EIP, VOLUMES, SERVERS)
RESOURCE_STEPS = (NETWORK, SECURITY_GROUP, EIP, VOLUMES, SERVERS)
# the stack's resource types, by the step that waits for them
STEP_OF_RESOURCE_TYPE = {
    "huaweicloud_vpc": NETWORK,
    "huaweicloud_vpc_subnet": NETWORK,
    "huaweicloud_networking_secgroup": SECURITY_GROUP,
    "huaweicloud_networking_secgroup_rule": SECURITY_GROUP,
    "huaweicloud_vpc_eip": EIP,
    "huaweicloud_evs_volume": VOLUMES,
    "huaweicloud_compute_instance": SERVERS,
}
# a step's own statuses
STEP_PENDING, STEP_RUNNING, STEP_SUCCEEDED, STEP_FAILED = (
    "pending",
    "running",
    "succeeded",
    "failed",
)

# why a deployment compensates (the compensations metric's label)
CLOUD_ERROR, STACK_FAILED, DEADLINE, POLICY_DENIED, AGENCY = (
    "cloud_error",
    "stack_failed",
    "deadline",
    "policy_denied",
    "agency",
)
COMPENSATION_REASONS = (CLOUD_ERROR, STACK_FAILED, DEADLINE, POLICY_DENIED, AGENCY)

DEPLOYMENT_STARTED = "provisioning.deployment.started"
DEPLOYMENT_STEP_COMPLETED = "provisioning.deployment.step_completed"
DEPLOYMENT_ACTIVE = "provisioning.deployment.active"
DEPLOYMENT_FAILED = "provisioning.deployment.failed"
DEPLOYMENT_RELEASED = "provisioning.deployment.released"

RECOMMENDED = "recommended"
STACK_PREFIX = "mkp-"

# how a subscription's resources move to another enterprise project (orders' move)
INDEPENDENT, WITH_ASSOCIATED = "independent", "with_associated"
MOVE_MODES = (INDEPENDENT, WITH_ASSOCIATED)
SERVER = "server"
# what goes with its servers in a move with_associated, when it is in their project
ASSOCIATED_TYPES = ("volume", "eip")


def stack_name(deployment_id: str) -> str:
    """The stack's name, which is also its client token: a second CreateStack with the
    same name is refused by the stack service, so a retried step adopts the stack."""
    return f"{STACK_PREFIX}{deployment_id}"


def _default_deadlines() -> dict[str, float]:
    return {
        CHECK_AGENCY: 120.0,
        PREPARE_KEYS: 120.0,
        CREATE_STACK: 300.0,
        NETWORK: 300.0,
        SECURITY_GROUP: 300.0,
        EIP: 300.0,
        VOLUMES: 600.0,
        SERVERS: 600.0,
    }


@dataclass(frozen=True)
class DeploymentPolicy:
    # each step must finish within its deadline (seconds) after it started
    deadlines: dict[str, float] = field(default_factory=_default_deadlines)
    # a replica working on a deployment holds it this long (one step's cloud calls)
    lease: dt.timedelta = dt.timedelta(seconds=60)
    # how soon a running stack is looked at again
    poll: dt.timedelta = dt.timedelta(seconds=2)
    first_retry: dt.timedelta = dt.timedelta(seconds=2)
    max_retry: dt.timedelta = dt.timedelta(minutes=2)
    # a deletion (compensation or release) that keeps failing is given up after this
    # long, the failure left to an operator
    deletion_window: dt.timedelta = dt.timedelta(hours=1)

    def deadline(self, step: str) -> dt.timedelta:
        return dt.timedelta(seconds=self.deadlines.get(step, 600.0))

    def backoff(self, attempts: int) -> dt.timedelta:
        return min(self.first_retry * 2 ** min(max(attempts - 1, 0), 20), self.max_retry)


def plan_steps(spec: dict[str, Any]) -> list[str]:
    """The steps a deployment runs: the resource groups its template creates."""
    steps = [CHECK_AGENCY, PREPARE_KEYS, CREATE_STACK]
    if spec.get("vpc_id") is None:
        steps.append(NETWORK)
    if spec.get("security_group", RECOMMENDED) == RECOMMENDED:
        steps.append(SECURITY_GROUP)
    if spec.get("eip"):
        steps.append(EIP)
    if spec.get("data_disks"):
        steps.append(VOLUMES)
    steps.append(SERVERS)
    return steps


# -- the cloud's password rules --------------------------------------------------------

_SPECIAL = re.compile(r"[!@$%^\-_=+\[{}\]:,./?~#*]")


def password_problems(password: str, server_name: str) -> list[str]:
    """The cloud's rules for a server's administrator password, each broken rule in
    words (an empty list: the password is acceptable)::

        password_problems("abc", "web")  # ['must be 8 to 26 characters', ...]
    """
    problems = []
    if not 8 <= len(password) <= 26:
        problems.append("must be 8 to 26 characters")
    kinds = sum(
        (
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            bool(_SPECIAL.search(password)),
        )
    )
    if kinds < 3:
        problems.append(
            "must contain three of: upper case letters, lower case letters, digits, "
            "special characters (!@$%^-_=+[{}]:,./?~#*)"
        )
    if any(not (c.isalnum() or _SPECIAL.match(c)) for c in password):
        problems.append("may contain only letters, digits and !@$%^-_=+[{}]:,./?~#*")
    if server_name and (
        server_name.lower() in password.lower() or server_name[::-1].lower() in password.lower()
    ):
        problems.append("must not contain the server name or the server name reversed")
    return problems


def password_binding(account_id: str, deployment_id: str) -> str:
    """What a deployment's sealed password is bound to (AES-GCM associated data)."""
    return f"deployment-password|{account_id}|{deployment_id}"


# -- quotas --------------------------------------------------------------------------


def quota_needs(spec: dict[str, Any], flavor: dict[str, Any]) -> dict[str, int]:
    """What a deployment takes of each quota: ``flavor`` is ``{vcpus, ram_mb}``."""
    count = int(spec.get("count") or 1)
    disks = spec.get("data_disks") or []
    needs = {
        "instances": count,
        "cores": count * int(flavor["vcpus"]),
        "ram": count * int(flavor["ram_mb"]),
        "volumes": count * len(disks),
        "gigabytes": count * sum(int(d["size_gb"]) for d in disks),
        "vpc": 1 if spec.get("vpc_id") is None else 0,
        "subnet": 1 if spec.get("vpc_id") is None else 0,
        "securityGroup": 1 if spec.get("security_group", RECOMMENDED) == RECOMMENDED else 0,
        "publicIp": count if spec.get("eip") else 0,
    }
    return {quota: needed for quota, needed in needs.items() if needed}


def first_exceeded(
    needs: dict[str, int], available: dict[str, int | None]
) -> dict[str, Any] | None:
    """The first quota too small for ``needs`` (``available`` None: unlimited)."""
    for quota, needed in needs.items():
        left = available.get(quota)
        if left is not None and needed > left:
            return {"quota": quota, "needed": needed, "available": max(left, 0)}
    return None


# -- enterprise projects --------------------------------------------------------------


def _moved_at(move: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(move["moved_at"])


def resources_in_projects(
    resources: list[dict[str, Any]], origin: str | None, moves: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each resource with its ``enterprise_project_id``: every one starts in ``origin``
    (the order's project), then ``moves`` (``{to, mode, moved_at}``) are replayed in
    orders' order. A move takes the servers; ``with_associated`` also the volumes and
    EIPs that were in the servers' project then; ``independent`` leaves them where they
    were. Networks and security groups stay in the order's project::

        resources_in_projects([{"type": "server"}, {"type": "volume"}], "default",
                              [{"to": "eps_1", "mode": "independent", "moved_at": ...}])
        # [{"type": "server", "enterprise_project_id": "eps_1"},
        #  {"type": "volume", "enterprise_project_id": "default"}]
    """
    placed = [{**resource, "enterprise_project_id": origin} for resource in resources]
    for move in sorted(moves, key=_moved_at):
        servers_in = {r["enterprise_project_id"] for r in placed if r["type"] == SERVER}
        for resource in placed:
            if resource["type"] == SERVER or (
                move["mode"] == WITH_ASSOCIATED
                and resource["type"] in ASSOCIATED_TYPES
                and resource["enterprise_project_id"] in servers_in
            ):
                resource["enterprise_project_id"] = move["to"]
    return placed


# -- the saga --------------------------------------------------------------------------


class DeploymentLifecycle(RecordsEvents):
    """A deployment's moves (``DEPLOYMENT``), mixed into ``models.Deployment``."""

    if TYPE_CHECKING:
        id: str
        order_id: str
        account_id: str
        product_id: str
        specification_id: str
        subscription_id: str | None
        delivery_id: str | None
        spec: dict[str, Any]
        password_key_id: str
        password_sealed: bytes
        status: str
        steps: list[dict[str, Any]]
        step_deadline_at: dt.datetime | None
        stack_name: str
        stack_id: str | None
        stack_requested: bool
        delete_requested_at: dt.datetime | None
        stack_vars: list[dict[str, Any]] | None
        resources: list[dict[str, Any]]
        attempts: int
        next_attempt_at: dt.datetime | None
        lease_until: dt.datetime | None
        last_error: str | None
        failure_reason: str | None
        compensation_reason: str | None
        deletion_started_at: dt.datetime | None
        started_at: dt.datetime | None
        finished_at: dt.datetime | None
        created_at: dt.datetime
        updated_at: dt.datetime
        enterprise_project_id: str | None
        project_moves: list[dict[str, Any]]

    def may(self, move: str) -> bool:
        return DEPLOYMENT.allows(move, self.status)

    def visible_to(self, viewer: Identity) -> bool:
        """Its buyer and operators see a deployment; to anyone else it does not exist."""
        return self.account_id == viewer.account_id or viewer.has_role(OPERATOR)

    # -- steps -----------------------------------------------------------------------

    @property
    def current_step(self) -> str | None:
        """The step running now (creating), or None."""
        for step in self.steps or []:
            if step["status"] in (STEP_PENDING, STEP_RUNNING):
                return str(step["name"])
        return None

    def step_overdue(self, now: dt.datetime) -> bool:
        return self.step_deadline_at is not None and now >= self.step_deadline_at

    def _set_step(self, name: str, **changes: Any) -> dict[str, Any]:
        steps = [dict(step) for step in self.steps]
        for step in steps:
            if step["name"] == name:
                step.update(changes)
                self.steps = steps  # a new list: the JSON column sees the change
                return step
        raise KeyError(name)

    def _begin_step(self, name: str, now: dt.datetime, policy: DeploymentPolicy) -> None:
        self._set_step(name, status=STEP_RUNNING, started_at=now.isoformat())
        self.step_deadline_at = now + policy.deadline(name)

    # -- moves -----------------------------------------------------------------------

    def start(
        self,
        now: dt.datetime,
        policy: DeploymentPolicy,
        *,
        subscription_id: str,
        delivery_id: str,
        enterprise_project_id: str | None = None,
    ) -> None:
        """The order is paid: the first step is due now. Its resources will start in
        the order's ``enterprise_project_id``."""
        self.status = DEPLOYMENT.move("start", self.status)
        self.subscription_id = subscription_id
        self.delivery_id = delivery_id
        if enterprise_project_id is not None:
            self.enterprise_project_id = enterprise_project_id
        self.steps = [
            {"name": name, "status": STEP_PENDING, "started_at": None, "finished_at": None,
             "error": None}
            for name in plan_steps(self.spec)
        ]  # fmt: skip
        self._begin_step(self.steps[0]["name"], now, policy)
        self.started_at = now
        self.next_attempt_at = now
        self.updated_at = now
        self.record(
            DEPLOYMENT_STARTED,
            subject=self.id,
            account_id=self.account_id,
            data={**self._identifying(), "steps": [step["name"] for step in self.steps],
                  "started_at": now},
        )  # fmt: skip

    def claim(self, now: dt.datetime, policy: DeploymentPolicy) -> None:
        """Leased to one worker for one round of cloud calls (its status unchanged)."""
        if self.status not in WORKED:
            raise Conflict(f"the deployment is {self.status}; nothing to work on")
        self.lease_until = now + policy.lease

    def complete_step(self, name: str, now: dt.datetime, policy: DeploymentPolicy) -> float:
        """``name`` is done: the next step starts now. Answers how long it took."""
        DEPLOYMENT.move("complete_step", self.status)
        if name != self.current_step:
            raise ValueError(f"{name} is not the running step ({self.current_step})")
        step = self._set_step(name, status=STEP_SUCCEEDED, finished_at=now.isoformat())
        seconds = (now - dt.datetime.fromisoformat(step["started_at"])).total_seconds()
        following = self.current_step
        if following is not None:
            self._begin_step(following, now, policy)
        else:
            self.step_deadline_at = None
        self.attempts = 0
        self.last_error = None
        self.updated_at = now
        self.record(
            DEPLOYMENT_STEP_COMPLETED,
            subject=self.id,
            account_id=self.account_id,
            data={
                **self._identifying(),
                "step": name,
                "started_at": dt.datetime.fromisoformat(step["started_at"]),
                "finished_at": now,
                "next_step": following,
            },
        )
        return seconds

    def stack_created(self, stack_id: str) -> None:
        self.stack_id = stack_id

    def poll_later(
        self, now: dt.datetime, policy: DeploymentPolicy, *, error: str | None = None
    ) -> None:
        """Looked at again soon (the stack is still working), or after the backoff when
        a call failed in a way worth trying again (``error``, for operators)."""
        self.lease_until = None
        self.updated_at = now
        if error is None:
            self.next_attempt_at = now + policy.poll
            return
        self.attempts += 1
        self.last_error = error[:2000]
        delay = policy.backoff(self.attempts)
        if self.status == CREATING and self.step_deadline_at is not None:
            # the last look falls on the deadline, not after it
            self.next_attempt_at = min(now + delay, self.step_deadline_at)
        else:
            self.next_attempt_at = now + delay

    def activate(self, resources: list[dict[str, Any]], now: dt.datetime) -> None:
        """Every step done: the servers run; their ids and addresses are recorded, each
        in the order's enterprise project, or where the moves made meanwhile took it."""
        self.status = DEPLOYMENT.move("activate", self.status)
        self.resources = self._placed(resources)
        self.finished_at = now
        self.updated_at = now
        self._idle()
        self.record(
            DEPLOYMENT_ACTIVE,
            subject=self.id,
            account_id=self.account_id,
            data={
                **self._identifying(),
                "stack_id": self.stack_id,
                "resources": resources,
                "active_at": now,
            },
        )

    def compensate(
        self, reason: str, explanation: str, now: dt.datetime, step: str | None = None
    ) -> None:
        """A step failed (``step``, else the current one; ``explanation``, in words the
        buyer can read; ``reason`` one of ``COMPENSATION_REASONS``): what was created is
        deleted before the deployment fails. Nothing was asked of the stack service yet:
        it fails at once after."""
        self.status = DEPLOYMENT.move("compensate", self.status)
        step = step or self.current_step
        if step is not None:
            self._set_step(step, status=STEP_FAILED, finished_at=now.isoformat(),
                           error=explanation[:500])  # fmt: skip
        self.compensation_reason = reason
        self.failure_reason = explanation[:2000]
        self.step_deadline_at = None
        self.attempts = 0
        self.deletion_started_at = now
        self.next_attempt_at = now
        self.lease_until = None
        self.updated_at = now

    @property
    def needs_stack_deleted(self) -> bool:
        """Whether a stack may exist (CreateStack was sent), so must be deleted."""
        return bool(self.stack_requested)

    def deletion_given_up(self, now: dt.datetime, policy: DeploymentPolicy) -> bool:
        started = self.deletion_started_at or now
        return now - started >= policy.deletion_window

    def fail(self, now: dt.datetime, *, leftovers: str | None = None) -> None:
        """Compensated (``leftovers``: what could not be deleted, for the buyer)."""
        self.status = DEPLOYMENT.move("fail", self.status)
        reason = self.failure_reason or "The deployment failed."
        if leftovers:
            reason = f"{reason} {leftovers}"
        else:
            reason = f"{reason} Everything created for it was deleted."
        self.failure_reason = reason[:2000]
        self.finished_at = now
        self.updated_at = now
        self._idle()
        self.record(
            DEPLOYMENT_FAILED,
            subject=self.id,
            account_id=self.account_id,
            data={
                **self._identifying(),
                "reason": self.failure_reason,
                "compensation_reason": self.compensation_reason,
                "failed_step": self._failed_step(),
                "failed_at": now,
            },
        )

    def release(self, now: dt.datetime) -> None:
        """The subscription ended: its stack is to be deleted."""
        self.status = DEPLOYMENT.move("release", self.status)
        self.deletion_started_at = now
        self.delete_requested_at = None
        self.attempts = 0
        self.next_attempt_at = now
        self.lease_until = None
        self.updated_at = now

    def released(self, now: dt.datetime) -> None:
        self.status = DEPLOYMENT.move("released", self.status)
        self.resources = [{**resource, "status": "DELETED"} for resource in self.resources or []]
        self.updated_at = now
        self._idle()
        self.record(
            DEPLOYMENT_RELEASED,
            subject=self.id,
            account_id=self.account_id,
            data={**self._identifying(), "stack_id": self.stack_id, "released_at": now},
        )

    # -- enterprise projects -----------------------------------------------------------

    @property
    def origin_project(self) -> str | None:
        """Where its resources started: the order's project (for a deployment paid before
        provisioning kept it, the project the first move took it from)."""
        if self.enterprise_project_id is not None:
            return self.enterprise_project_id
        moves = sorted(self.project_moves or [], key=_moved_at)
        return moves[0].get("from") if moves else None

    @property
    def servers_project(self) -> str | None:
        """The project its servers are in: every move takes them, so the latest move's."""
        moves = sorted(self.project_moves or [], key=_moved_at)
        return str(moves[-1]["to"]) if moves else self.origin_project

    def _placed(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return resources_in_projects(resources, self.origin_project, self.project_moves or [])

    def move_to_project(
        self,
        *,
        from_project: str,
        to_project: str,
        mode: str,
        moved_at: dt.datetime,
        now: dt.datetime,
    ) -> bool:
        """orders moved the subscription to ``to_project`` at ``moved_at`` (``mode``:
        ``MOVE_MODES``). The move is kept and the resources placed again by every move in
        orders' order, so a move older than one already taken never undoes it. A
        deployment not active yet keeps it for the resources it creates. The same move
        again changes nothing; answers whether this one was new."""
        if mode not in MOVE_MODES:
            raise ValueError(f"unknown move mode {mode!r}")
        moved = moved_at.astimezone(dt.UTC).isoformat()
        moves = [dict(move) for move in self.project_moves or []]
        if any(move["moved_at"] == moved and move["to"] == to_project for move in moves):
            return False
        moves.append({"from": from_project, "to": to_project, "mode": mode, "moved_at": moved})
        self.project_moves = sorted(moves, key=_moved_at)  # a new list: the column sees it
        self.resources = self._placed(self.resources or [])
        self.updated_at = now
        return True

    def _idle(self) -> None:
        self.lease_until = None
        self.next_attempt_at = None
        self.step_deadline_at = None

    def _failed_step(self) -> str | None:
        for step in self.steps or []:
            if step["status"] == STEP_FAILED:
                return str(step["name"])
        return None

    def _identifying(self) -> dict[str, Any]:
        return {
            "deployment_id": self.id,
            "order_id": self.order_id,
            "subscription_id": self.subscription_id,
            "account_id": self.account_id,
        }

    def view(self) -> dict[str, Any]:
        """What the buyer sees of it (purchased-app details)."""
        return {
            "deployment_id": self.id,
            "order_id": self.order_id,
            "subscription_id": self.subscription_id,
            "status": self.status,
            "stack_id": self.stack_id,
            "enterprise_project_id": self.servers_project,
            "steps": [
                {
                    **step,
                    "started_at": _parsed(step.get("started_at")),
                    "finished_at": _parsed(step.get("finished_at")),
                }
                for step in self.steps or []
            ],
            "resources": [
                {"enterprise_project_id": self.origin_project, **resource}
                for resource in self.resources or []
            ],
            "failure_reason": self.failure_reason,
        }


def _parsed(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)
