"""Rules of service supervision: which paid orders get a flow, a flow's steps and the
moves between them, appeals, working days and the messages each step sends. No nameko,
no SQL.

A flow's steps (``step``)::

    license:                                   awaiting_acceptance --> completed
    professional service or supervised SaaS,
      paid on or after 2025-03-26:  awaiting_request --> awaiting_confirmation -->
                                    in_service --> awaiting_acceptance --> completed
      paid before (legacy process):              awaiting_confirmation --> in_service
                                                 --> awaiting_acceptance --> completed

The seller may send a request back (``awaiting_confirmation`` -> ``awaiting_request``,
the 2025-03-26 process only). An operator's appeal decision may complete a flow from
any open step, or close it with a refund (``closed``). While an appeal is open the
flow is frozen: no step moves until an operator resolves it.

``FlowRules`` and ``AppealRules`` are mixed into the mapped classes of
``supervision.models``: the columns live there, the moves here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from mercato.domain import RecordsEvents, StateMachine
from mercato.errors import Conflict
from mercato.money import money
from mercato.terms import AWAITING_ACCEPTANCE, COMPLETED, LICENSE, PROFESSIONAL_SERVICE, SAAS

AWAITING_REQUEST = "awaiting_request"
AWAITING_CONFIRMATION = "awaiting_confirmation"
IN_SERVICE = "in_service"
CLOSED = "closed"
STEPS = (AWAITING_REQUEST, AWAITING_CONFIRMATION, IN_SERVICE, AWAITING_ACCEPTANCE, COMPLETED)
FLOW_STEPS = (*STEPS, CLOSED)
OPEN_STEPS = (AWAITING_REQUEST, AWAITING_CONFIRMATION, IN_SERVICE, AWAITING_ACCEPTANCE)

# the process change of 2025-03-26: orders paid from then on start with the buyer's request
PROCESS_2025 = "2025-03-26"
LEGACY = "legacy"
PROCESS_CHANGE = dt.datetime(2025, 3, 26, tzinfo=dt.UTC)

# a flow's kind decides its steps
LICENSE_FLOW, SERVICE_FLOW = "license", "service"

# who acted on a flow, as its records show it
BUYER_ACTOR, SELLER_ACTOR, OPERATOR_ACTOR, SYSTEM_ACTOR = "buyer", "seller", "operator", "system"

# appeals
OPEN, RESOLVED = "open", "resolved"
CONTINUE, COMPLETE, REFUND = "continue", "complete", "refund"
DECISIONS = (CONTINUE, COMPLETE, REFUND)
APPEAL_WORKING_DAYS = 3
AUTO_ACCEPT_NOTICE = dt.timedelta(days=2)

FLOW = StateMachine(
    "flow",
    {
        "submit_request": ((AWAITING_REQUEST,), AWAITING_CONFIRMATION),
        "reject_request": ((AWAITING_CONFIRMATION,), AWAITING_REQUEST),
        "confirm": ((AWAITING_CONFIRMATION,), IN_SERVICE),
        "provide": ((IN_SERVICE,), AWAITING_ACCEPTANCE),
        "accept": ((AWAITING_ACCEPTANCE,), COMPLETED),
        # an operator's decision on an appeal
        "complete": (OPEN_STEPS, COMPLETED),
        "close": (OPEN_STEPS, CLOSED),
    },
)

APPEAL = StateMachine("appeal", {"resolve": ((OPEN,), RESOLVED)})


def is_supervised(delivery_method: str, service_supervision: bool) -> bool:
    """Licenses and professional services always are; SaaS when its product says so."""
    return delivery_method in (LICENSE, PROFESSIONAL_SERVICE) or (
        delivery_method == SAAS and service_supervision
    )


def process_of(paid_at: dt.datetime) -> str:
    return PROCESS_2025 if paid_at >= PROCESS_CHANGE else LEGACY


def first_step(kind: str, process: str) -> str:
    if kind == LICENSE_FLOW:
        return AWAITING_ACCEPTANCE  # the key is delivered at payment
    return AWAITING_REQUEST if process == PROCESS_2025 else AWAITING_CONFIRMATION


def steps_of(kind: str, process: str) -> tuple[str, ...]:
    if kind == LICENSE_FLOW:
        return (AWAITING_ACCEPTANCE, COMPLETED)
    if process == PROCESS_2025:
        return STEPS
    return STEPS[1:]


# -- working days ----------------------------------------------------------------------


class WorkingDays:
    """Adds working days: weekends and the public holidays of one country are skipped.
    ``is_holiday`` answers for a date (the ``holidays`` package in production)."""

    def __init__(self, is_holiday: Callable[[dt.date], bool]) -> None:
        self.is_holiday = is_holiday

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def add(self, start: dt.datetime, days: int) -> dt.datetime:
        """The same time of day ``days`` working days after ``start``."""
        moment = start
        counted = 0
        while counted < days:
            moment += dt.timedelta(days=1)
            if self.is_working_day(moment.date()):
                counted += 1
        return moment


# -- flows -------------------------------------------------------------------------------

FLOW_EVENT_PREFIX = "supervision.flow."


class FlowRules(RecordsEvents):
    """A supervision flow: one per supervised paid order."""

    id: str
    order_id: str
    subscription_id: str
    buyer_account_id: str
    seller_account_id: str
    product_id: str
    product_name: str
    specification_name: str
    delivery_method: str
    kind: str
    process: str
    step: str
    open_appeal_id: str | None
    paid_amount: int
    currency: str
    paid_at: dt.datetime
    confirm_by: dt.datetime | None
    confirm_reminded: bool
    request_by: dt.datetime | None
    request_reminded: bool
    accept_by: dt.datetime | None
    accept_notice_sent: bool
    step_changed_at: dt.datetime
    completed_at: dt.datetime | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime

    # -- who may see and act -------------------------------------------------------------

    def is_party(self, account_id: str) -> bool:
        return account_id in (self.buyer_account_id, self.seller_account_id)

    def role_of(self, account_id: str) -> str | None:
        if account_id == self.buyer_account_id:
            return BUYER_ACTOR
        if account_id == self.seller_account_id:
            return SELLER_ACTOR
        return None

    # -- moves ----------------------------------------------------------------------------

    def _require_not_frozen(self) -> None:
        if self.open_appeal_id is not None:
            raise Conflict("the flow has an open appeal; nothing moves until it is resolved")

    def _move(self, move: str, now: dt.datetime, event: str | None, **data: Any) -> None:
        self.step = FLOW.move(move, self.step)
        self.step_changed_at = now
        self.updated_at = now
        if event is not None:
            self._record(event, now, **data)

    def _record(self, event: str, now: dt.datetime, **data: Any) -> None:
        self.record(
            FLOW_EVENT_PREFIX + event,
            subject=self.id,
            account_id=self.buyer_account_id,
            data={**self.event_data(now), **data},
        )

    def event_data(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "flow_id": self.id,
            "order_id": self.order_id,
            "subscription_id": self.subscription_id,
            "account_id": self.buyer_account_id,
            "seller_account_id": self.seller_account_id,
            "product_id": self.product_id,
            "delivery_method": self.delivery_method,
            "step": self.step,
            "at": now,
        }

    def started(self, now: dt.datetime, *, due_by: dt.datetime, accept_days: int) -> None:
        """Record the flow's start (the flow was built at its first step). ``due_by``
        is when the buyer's request, or (legacy process) the seller's confirmation, is
        due; a license waits ``accept_days`` for its acceptance."""
        self.confirm_by = due_by if self.step == AWAITING_CONFIRMATION else None
        self.request_by = due_by if self.step == AWAITING_REQUEST else None
        if self.step == AWAITING_ACCEPTANCE:
            self.accept_by = now + dt.timedelta(days=accept_days)
        self._record("started", now, kind=self.kind, process=self.process)

    def submit_request(self, now: dt.datetime, confirm_by: dt.datetime) -> None:
        self._require_not_frozen()
        self._move("submit_request", now, "request_submitted")
        self.request_by = None
        self.confirm_by = confirm_by
        self.confirm_reminded = False

    def reject_request(self, now: dt.datetime, request_by: dt.datetime) -> None:
        """The seller sent the request back: the buyer is to write it again by
        ``request_by``."""
        self._require_not_frozen()
        if self.process != PROCESS_2025:
            raise Conflict("a flow of the legacy process has no request to send back")
        self._move("reject_request", now, "request_rejected")
        self.confirm_by = None
        self.request_by = request_by
        self.request_reminded = False

    def confirm(self, now: dt.datetime) -> None:
        self._require_not_frozen()
        self._move("confirm", now, "confirmed")
        self.confirm_by = None

    def provide(self, now: dt.datetime, accept_days: int, *, by_seller: bool) -> None:
        """The seller provided the service, or (SaaS) the tenant was delivered."""
        self._require_not_frozen()
        if by_seller and self.delivery_method == SAAS:
            raise Conflict("a SaaS flow moves on when its tenant is delivered, not by a provision")
        self._move("provide", now, "service_provided")
        self.accept_by = now + dt.timedelta(days=accept_days)
        self.accept_notice_sent = False

    def accept(self, now: dt.datetime, *, by: str) -> None:
        """The buyer accepted, or the acceptance period passed (``by`` system)."""
        self._require_not_frozen()
        self._move("accept", now, None)
        self._completed(now, by)

    def complete_on_appeal(self, now: dt.datetime) -> None:
        self._move("complete", now, None)
        self._completed(now, OPERATOR_ACTOR)

    def _completed(self, now: dt.datetime, by: str) -> None:
        self.completed_at = now
        self.accept_by = None
        self._record("completed", now, accepted_by=by, paid_at=self.paid_at)

    def close(self, now: dt.datetime, *, reason: str, refund: int | None) -> None:
        """Ended without acceptance: refunded on appeal (``refund`` in minor units), or
        the order was cancelled (its delivery failed; orders refunded it already)."""
        self._move("close", now, None)
        self.closed_at = now
        self.accept_by = None
        self.confirm_by = None
        self.request_by = None
        self._record(
            "closed",
            now,
            reason=reason,
            refund=None if refund is None else money(refund, self.currency),
        )

    def resume(self, now: dt.datetime, accept_days: int) -> None:
        """An appeal was resolved with ``continue``: the flow goes on where it was; an
        acceptance period starts again in full (the buyer could not act meanwhile)."""
        self.open_appeal_id = None
        self.updated_at = now
        if self.step == AWAITING_ACCEPTANCE:
            self.accept_by = now + dt.timedelta(days=accept_days)
            self.accept_notice_sent = False

    # -- what its parties see ----------------------------------------------------------

    def steps_view(self, records: list[Any]) -> list[dict[str, Any]]:
        """Each step of this flow's kind: done (when), current, or to come."""
        reached: dict[str, dt.datetime] = {}
        for record in records:
            if record.step_after is not None:
                reached[record.step_after] = record.at
        order = steps_of(self.kind, self.process)
        current = order.index(self.step) if self.step in order else len(order)
        view = []
        for index, name in enumerate(order):
            if self.step == CLOSED:
                status = "done" if name in reached else "skipped"
            elif index < current:
                status = "done"
            elif index == current:
                status = "done" if name == COMPLETED else "current"
            else:
                status = "pending"
            view.append({"name": name, "status": status, "at": reached.get(name)})
        return view


class AppealRules(RecordsEvents):
    """An appeal on a flow, by its buyer or its seller, decided by an operator."""

    id: str
    flow_id: str
    opened_by_account_id: str
    opened_by: str
    reason: str
    description: str
    status: str
    opened_at: dt.datetime
    due_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by_account_id: str | None
    decision: str | None
    message: str | None
    refund_amount: int | None

    def resolve(
        self, now: dt.datetime, *, operator_id: str, decision: str, message: str, refund: int | None
    ) -> None:
        self.status = APPEAL.move("resolve", self.status)
        self.resolved_at = now
        self.resolved_by_account_id = operator_id
        self.decision = decision
        self.message = message
        self.refund_amount = refund

    def is_overdue(self, now: dt.datetime) -> bool:
        return self.status == OPEN and now >= self.due_at
