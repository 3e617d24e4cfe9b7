"""What supervision does, one function per use case. Each takes the unit of work and the
clock, checks who may act, moves the flow through its rules (``supervision.domain``),
writes the operation record, the messages and the events, and commits once.

A party acting on a flow that is not theirs gets ``NotFound``, as if it did not exist;
the other party of a flow trying a step that is not theirs gets ``Forbidden``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationError
from mercato.identity import OPERATOR, Identity
from mercato.money import money
from mercato.request_keys import RequestKey
from mercato.terms import AWAITING_ACCEPTANCE, COMPLETED, SAAS
from supervision import attachments, domain, metrics, notices
from supervision.domain import (
    BUYER_ACTOR,
    CLOSED,
    LICENSE_FLOW,
    OPERATOR_ACTOR,
    SELLER_ACTOR,
    SERVICE_FLOW,
    SYSTEM_ACTOR,
)
from supervision.models import Appeal, Flow, FlowRecord, Submission
from supervision.settings import Settings

SWEEP_BATCH = 100


# -- helpers shared by the use cases --------------------------------------------------------


def _record(
    uow,
    flow: Flow,
    now: dt.datetime,
    *,
    actor: str,
    action: str,
    account_id: str | None = None,
    note: str | None = None,
    moved: bool = True,
) -> None:
    uow.flows.add_record(
        FlowRecord(
            flow_id=flow.id,
            at=now,
            actor=actor,
            actor_account_id=account_id,
            action=action,
            note=note,
            step_after=flow.step if moved else None,
        )
    )
    if moved:
        metrics.FLOW_STEPS.labels(flow.step).inc()


def _tell(
    uow,
    account_id: str,
    now: dt.datetime,
    *,
    kind: str,
    subject: str,
    body: str,
    flow: Flow | None = None,
    once_as: str | None = None,
) -> None:
    """A direct message. ``once_as`` names a message that must be sent once only (a
    timer's, which another replica or a retried sweep might send again)."""
    message_id = new_id("msg")
    uow.messages.send(
        {
            "id": message_id,
            "account_id": account_id,
            "kind": kind,
            "subject": subject,
            "body": body,
            "flow_id": flow.id if flow is not None else None,
            "dedup_key": once_as or message_id,
            "created_at": now,
        }
    )


def _day(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


def _flow_of_party(uow, caller: Identity, flow_id: str, *, lock: bool) -> Flow:
    flow = uow.flows.lock(flow_id) if lock else uow.flows.get(flow_id)
    if flow is None or not flow.is_party(caller.account_id):
        raise NotFound("flow not found")
    return flow


def _kept(
    uow, caller: Identity, request_key: str | None, operation: str, arguments: dict[str, Any]
) -> tuple[RequestKey | None, str | None]:
    """The request's key as this operation keeps it, and the id its first request
    answered (None the first time): a retry of a step that was taken answers the flow
    or appeal as it is, instead of a Conflict (the step is no longer the flow's)."""
    kept = RequestKey.of(
        request_key, account_id=caller.account_id, operation=operation, arguments=arguments
    )
    return kept, uow.request_keys.first_result(kept)


def _flow_as(uow, caller: Identity, flow_id: str, role: str) -> Flow:
    """The flow, locked, for a step only its buyer (or only its seller) takes."""
    flow = _flow_of_party(uow, caller, flow_id, lock=True)
    if flow.role_of(caller.account_id) != role:
        raise Forbidden(f"only the flow's {role} takes this step")
    return flow


# -- starting flows ---------------------------------------------------------------------------


def start_flows(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    order: dict[str, Any],
    paid_at: dt.datetime,
) -> int:
    """An order was paid (``orders.order.paid``): a flow for each supervised line of
    it. The process (2025-03-26 or legacy) is decided by when the order was paid. A
    repeated event starts nothing. The caller (the inbox) commits; how many started."""
    now = clock.now()
    started = 0
    for line in order["subscriptions"]:
        if not domain.is_supervised(line["delivery_method"], line["service_supervision"]):
            continue
        if uow.flows.exists_for_order(order["order_id"]):
            continue
        kind = LICENSE_FLOW if line["delivery_method"] == "license" else SERVICE_FLOW
        process = domain.process_of(paid_at)
        flow = Flow(
            id=new_id("flw"),
            order_id=order["order_id"],
            subscription_id=line["subscription_id"],
            buyer_account_id=order["account_id"],
            seller_account_id=line["seller_account_id"],
            product_id=line["product_id"],
            product_name=line["product_name"],
            specification_name=line["specification_name"],
            delivery_method=line["delivery_method"],
            kind=kind,
            process=process,
            step=domain.first_step(kind, process),
            open_appeal_id=None,
            paid_amount=order["amount"]["amount"],
            currency=order["amount"]["currency"],
            paid_at=paid_at,
            confirm_reminded=False,
            request_reminded=False,
            accept_notice_sent=False,
            step_changed_at=now,
            created_at=now,
            updated_at=now,
        )
        due_by = settings.working_days().add(now, settings.confirm_days)
        flow.started(now, due_by=due_by, accept_days=settings.auto_accept_days)
        uow.flows.add(flow)
        _record(
            uow, flow, now, actor=SYSTEM_ACTOR, action="flow_started", note=f"process {process}"
        )
        _tell_whose_turn(uow, flow, now)
        uow.emit_recorded(flow)
        started += 1
    return started


def _tell_whose_turn(uow, flow: Flow, now: dt.datetime) -> None:
    """Tell the party the flow now waits for what to do."""
    name = flow.product_name
    if flow.step == domain.AWAITING_REQUEST:
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="request_needed",
            subject=f"Describe what you need from {name}",
            body=f"Submit your service request by {_day(flow.request_by)} so the seller "
            "can confirm it.",
        )
    elif flow.step == domain.AWAITING_CONFIRMATION:
        _tell(
            uow,
            flow.seller_account_id,
            now,
            flow=flow,
            kind="confirmation_needed",
            subject=f"Confirm the order {flow.order_id} for {name}",
            body=f"Confirm the buyer's request by {_day(flow.confirm_by)}.",
        )
    elif flow.step == domain.IN_SERVICE:
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="service_started",
            subject=f"The seller confirmed your request for {name}",
            body="The seller is providing the service; you will be asked to accept it.",
        )
    elif flow.step == AWAITING_ACCEPTANCE:
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="acceptance_needed",
            subject=f"Accept the delivery of {name}",
            body=f"Accept it or open an appeal; it is accepted automatically on "
            f"{_day(flow.accept_by)}.",
        )


# -- the steps ----------------------------------------------------------------------------------


def submit_request(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    caller: Identity,
    flow_id: str,
    request: dict,
    request_key: str | None = None,
) -> dict[str, Any]:
    flow = _flow_as(uow, caller, flow_id, BUYER_ACTOR)
    now = clock.now()
    kept, first = _kept(uow, caller, request_key, "submit_request", {"flow_id": flow_id, **request})
    if first is not None:
        return flow_view(uow, flow, now)
    flow.submit_request(now, settings.working_days().add(now, settings.confirm_days))
    _submitted(uow, flow, caller, now, kind="request", action="request_submitted", body=request)
    uow.request_keys.keep(kept, flow.id, now)
    return _commit_and_view(uow, flow, now)


def _submitted(
    uow, flow: Flow, caller: Identity, now: dt.datetime, *, kind: str, action: str, body: dict
) -> None:
    """A request (the buyer's) or a provision (the seller's) that moved the flow: kept
    with the attachments it names, recorded, and the other party told."""
    attachments.claim_for_flow(uow, body["attachment_ids"], caller.account_id, flow.id)
    uow.flows.add_submission(
        Submission(
            id=new_id("req" if kind == "request" else "prv"),
            flow_id=flow.id,
            kind=kind,
            author_account_id=caller.account_id,
            description=body["description"],
            attachment_ids=body["attachment_ids"],
            created_at=now,
        )
    )
    actor = flow.role_of(caller.account_id)
    assert actor is not None
    _record(uow, flow, now, actor=actor, account_id=caller.account_id, action=action)
    _tell_whose_turn(uow, flow, now)


def answer_request(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    caller: Identity,
    flow_id: str,
    answer: dict,
    request_key: str | None = None,
) -> dict[str, Any]:
    """The seller confirms the buyer's request (or, on the legacy process, the order),
    or sends the request back with a reason."""
    flow = _flow_as(uow, caller, flow_id, SELLER_ACTOR)
    now = clock.now()
    kept, first = _kept(uow, caller, request_key, "answer_request", {"flow_id": flow_id, **answer})
    if first is not None:
        return flow_view(uow, flow, now)
    uow.request_keys.keep(kept, flow.id, now)
    if answer["reject"]:
        flow.reject_request(now, settings.working_days().add(now, settings.confirm_days))
        request = uow.flows.latest_request(flow.id)
        if request is not None:
            request.rejected_reason = answer["reason"]
        _record(
            uow,
            flow,
            now,
            actor=SELLER_ACTOR,
            account_id=caller.account_id,
            action="request_rejected",
            note=answer["reason"],
        )
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="request_rejected",
            subject=f"The seller sent your request for {flow.product_name} back",
            body=f"The seller's reason: {answer['reason']}. Submit the request again.",
        )
    else:
        flow.confirm(now)
        _record(
            uow, flow, now, actor=SELLER_ACTOR, account_id=caller.account_id, action="confirmed"
        )
        _tell_whose_turn(uow, flow, now)
    return _commit_and_view(uow, flow, now)


def provide_service(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    caller: Identity,
    flow_id: str,
    provision: dict,
    request_key: str | None = None,
) -> dict[str, Any]:
    flow = _flow_as(uow, caller, flow_id, SELLER_ACTOR)
    now = clock.now()
    kept, first = _kept(
        uow, caller, request_key, "provide_service", {"flow_id": flow_id, **provision}
    )
    if first is not None:
        return flow_view(uow, flow, now)
    flow.provide(now, settings.auto_accept_days, by_seller=True)
    _submitted(uow, flow, caller, now, kind="provision", action="service_provided", body=provision)
    uow.request_keys.keep(kept, flow.id, now)
    return _commit_and_view(uow, flow, now)


def accept(
    uow, clock: Clock, *, caller: Identity, flow_id: str, request_key: str | None = None
) -> dict[str, Any]:
    flow = _flow_as(uow, caller, flow_id, BUYER_ACTOR)
    now = clock.now()
    kept, first = _kept(uow, caller, request_key, "accept", {"flow_id": flow_id})
    if first is not None:
        return flow_view(uow, flow, now)
    flow.accept(now, by=BUYER_ACTOR)
    _completed(uow, flow, now, actor=BUYER_ACTOR, account_id=caller.account_id)
    uow.request_keys.keep(kept, flow.id, now)
    return _commit_and_view(uow, flow, now)


def _completed(uow, flow: Flow, now: dt.datetime, *, actor: str, account_id: str | None) -> None:
    _record(uow, flow, now, actor=actor, account_id=account_id, action="accepted")
    metrics.PAYMENT_TO_ACCEPTANCE.labels(actor).observe((now - flow.paid_at).total_seconds())
    _tell(
        uow,
        flow.seller_account_id,
        now,
        flow=flow,
        kind="completed",
        subject=f"The order {flow.order_id} for {flow.product_name} is complete",
        body="The delivery was accepted."
        if actor != SYSTEM_ACTOR
        else "The acceptance period passed without objection: the delivery is accepted.",
    )
    if actor != BUYER_ACTOR:
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="completed",
            subject=f"{flow.product_name} is accepted",
            body="The order is complete; the app is under Purchased Apps.",
        )


def _commit_and_view(uow, flow: Flow, now: dt.datetime) -> dict[str, Any]:
    uow.emit_recorded(flow)
    view = flow_view(uow, flow, now)
    uow.commit()
    return view


# -- appeals ------------------------------------------------------------------------------------


def open_appeal(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    caller: Identity,
    flow_id: str,
    request: dict,
    request_key: str | None = None,
) -> dict[str, Any]:
    """The buyer or the seller appeals, at any step before completion; one open appeal
    per flow, and the flow is frozen until an operator resolves it. A retry of an
    appeal that was opened (same ``request_key``) answers that appeal."""
    flow = _flow_of_party(uow, caller, flow_id, lock=True)
    now = clock.now()
    kept, first = _kept(uow, caller, request_key, "open_appeal", {"flow_id": flow_id, **request})
    if first is not None:
        opened = uow.appeals.get(first)
        assert opened is not None
        return appeal_view(opened, flow, now)
    if flow.step in (COMPLETED, CLOSED):
        raise Conflict(f"the flow is {flow.step}; an appeal needs it before completion")
    if flow.open_appeal_id is not None:
        raise Conflict("the flow has an open appeal already")
    opened_by = flow.role_of(caller.account_id)
    assert opened_by is not None
    appeal = Appeal(
        id=new_id("apl"),
        flow_id=flow.id,
        opened_by_account_id=caller.account_id,
        opened_by=opened_by,
        reason=request["reason"],
        description=request["description"],
        attachment_ids=request["attachment_ids"],
        status=domain.OPEN,
        step_at_opening=flow.step,
        opened_at=now,
        due_at=settings.working_days().add(now, domain.APPEAL_WORKING_DAYS),
    )
    attachments.claim_for_flow(uow, request["attachment_ids"], caller.account_id, flow.id)
    uow.appeals.add(appeal)
    flow.open_appeal_id = appeal.id
    flow.updated_at = now
    _record(
        uow,
        flow,
        now,
        actor=opened_by,
        account_id=caller.account_id,
        action="appeal_opened",
        note=request["reason"],
        moved=False,
    )
    other = flow.seller_account_id if opened_by == BUYER_ACTOR else flow.buyer_account_id
    _tell(
        uow,
        other,
        now,
        flow=flow,
        kind="appeal_opened",
        subject=f"An appeal was opened on the order {flow.order_id}",
        body=f"The {opened_by} appealed: {request['reason']}. The flow waits for an "
        f"operator's decision, due by {_day(appeal.due_at)}.",
    )
    _emit_appeal(uow, appeal, flow, now)
    uow.request_keys.keep(kept, appeal.id, now)
    view = appeal_view(appeal, flow, now)
    uow.commit()
    return view


def list_open_appeals(uow, clock: Clock, *, page: int, page_size: int) -> dict[str, Any]:
    """Open appeals for operators, the earliest due (so the overdue) first."""
    now = clock.now()
    found = uow.appeals.page_open(page, page_size)
    flows = {appeal.flow_id: uow.flows.get(appeal.flow_id) for appeal in found.items}
    return found.view(lambda appeal: appeal_view(appeal, flows[appeal.flow_id], now))


def resolve_appeal(
    uow,
    clock: Clock,
    settings: Settings,
    *,
    caller: Identity,
    appeal_id: str,
    resolution: dict,
    request_key: str | None = None,
) -> dict[str, Any]:
    """An operator decides: ``continue`` (the flow resumes where it was), ``complete``
    (as if accepted) or ``refund`` (0 < refund <= paid goes back to the payer, the order
    is cancelled, the flow ``closed``). A retry of a decision that was taken (same
    ``request_key``) answers the appeal."""
    appeal = uow.appeals.lock(appeal_id)
    if appeal is None:
        raise NotFound("appeal not found")
    flow = uow.flows.lock(appeal.flow_id)
    assert flow is not None
    now = clock.now()
    kept, first = _kept(
        uow, caller, request_key, "resolve_appeal", {"appeal_id": appeal_id, **resolution}
    )
    if first is not None:
        return appeal_view(appeal, flow, now)
    decision = resolution["decision"]
    refund = resolution.get("refund")
    if refund is not None:
        if refund["currency"] != flow.currency:
            rule = f"the order was paid in {flow.currency}; refund in it"
            raise ValidationError(rule, {"refund": [rule]})
        if refund["amount"] > flow.paid_amount:
            raise BusinessRuleViolation(
                f"the refund {refund['amount']} is more than the {flow.paid_amount} paid",
                code="REFUND_ABOVE_PAID",
            )
    appeal.resolve(
        now,
        operator_id=caller.account_id,
        decision=decision,
        message=resolution["message"],
        refund=refund["amount"] if refund is not None else None,
    )
    if decision == domain.CONTINUE:
        flow.resume(now, settings.auto_accept_days)
        if flow.delivery_method == SAAS and flow.step == domain.IN_SERVICE:
            _catch_up_on_delivery(uow, flow, now, settings)
    else:
        flow.open_appeal_id = None
        if decision == domain.COMPLETE:
            flow.complete_on_appeal(now)
        else:
            assert refund is not None
            flow.close(
                now, reason=f"Refunded on appeal: {resolution['message']}", refund=refund["amount"]
            )
    _record(
        uow,
        flow,
        now,
        actor=OPERATOR_ACTOR,
        account_id=caller.account_id,
        action=f"appeal_resolved_{decision}",
        note=resolution["message"],
        moved=decision != domain.CONTINUE,
    )
    if decision == domain.COMPLETE:
        metrics.PAYMENT_TO_ACCEPTANCE.labels(OPERATOR_ACTOR).observe(
            (now - flow.paid_at).total_seconds()
        )
    outcome = {
        domain.CONTINUE: "The flow goes on where it was.",
        domain.COMPLETE: "The delivery is accepted and the order complete.",
        domain.REFUND: "The order is cancelled and "
        + (f"{refund['amount'] / 100:.2f} {refund['currency']} refunded." if refund else ""),
    }[decision]
    for account_id in (flow.buyer_account_id, flow.seller_account_id):
        _tell(
            uow,
            account_id,
            now,
            flow=flow,
            kind="appeal_resolved",
            subject=f"The appeal on the order {flow.order_id} was decided: {decision}",
            body=f"{resolution['message']} {outcome}",
        )
    _emit_appeal(uow, appeal, flow, now)
    uow.emit_recorded(flow)
    uow.request_keys.keep(kept, appeal.id, now)
    view = appeal_view(appeal, flow, now)
    uow.commit()
    return view


def _emit_appeal(uow, appeal: Appeal, flow: Flow, now: dt.datetime) -> None:
    uow.emit(
        f"supervision.appeal.{'opened' if appeal.status == domain.OPEN else 'resolved'}",
        subject=appeal.id,
        account_id=flow.buyer_account_id,
        data={
            "appeal_id": appeal.id,
            "flow_id": flow.id,
            "order_id": flow.order_id,
            "opened_by": appeal.opened_by,
            "status": appeal.status,
            "due_at": appeal.due_at,
            "decision": appeal.decision,
            "at": now,
        },
    )


# -- what other services tell supervision ---------------------------------------------------


def tenant_delivered(uow, clock: Clock, settings: Settings, *, subscription_id: str) -> None:
    """A supervised SaaS tenant was delivered (after the seller confirmed): the buyer
    is to accept it. Deliveries of anything else, or a repeat, change nothing. The
    caller (the inbox) commits."""
    flow = uow.flows.lock_of_subscription(subscription_id)
    if flow is None or flow.kind != SERVICE_FLOW or flow.step != domain.IN_SERVICE:
        return
    now = clock.now()
    if flow.open_appeal_id is not None:
        # frozen: the tenant exists, and the operator's decision will move the flow
        _record(uow, flow, now, actor=SYSTEM_ACTOR, action="tenant_delivered", moved=False)
        return
    flow.provide(now, settings.auto_accept_days, by_seller=False)
    _record(uow, flow, now, actor=SYSTEM_ACTOR, action="tenant_delivered")
    _tell_whose_turn(uow, flow, now)
    uow.emit_recorded(flow)


def _catch_up_on_delivery(uow, flow: Flow, now: dt.datetime, settings: Settings) -> None:
    """A SaaS tenant delivered while the flow was frozen by an appeal did not move it;
    once the flow resumes, it moves on as the delivery would have moved it."""
    if not uow.flows.has_record(flow.id, "tenant_delivered"):
        return
    flow.provide(now, settings.auto_accept_days, by_seller=False)
    _record(uow, flow, now, actor=SYSTEM_ACTOR, action="tenant_delivered")
    _tell_whose_turn(uow, flow, now)


def order_cancelled(uow, clock: Clock, *, order_id: str, reason: str) -> None:
    """The order was cancelled outside supervision (its delivery failed; orders has
    refunded it): its open flow closes. The caller (the inbox) commits."""
    flow = uow.flows.lock_of_order(order_id)
    if flow is None or flow.step in (COMPLETED, CLOSED):
        return
    now = clock.now()
    flow.open_appeal_id = None
    flow.close(now, reason=reason, refund=None)
    _record(uow, flow, now, actor=SYSTEM_ACTOR, action="order_cancelled", note=reason)
    for account_id in (flow.buyer_account_id, flow.seller_account_id):
        _tell(
            uow,
            account_id,
            now,
            flow=flow,
            kind="flow_closed",
            subject=f"The order {flow.order_id} for {flow.product_name} was cancelled",
            body=reason,
        )
    uow.emit_recorded(flow)


def refund_made(uow, clock: Clock, *, refund: dict[str, Any]) -> None:
    """billing refunded a payment (a failed delivery, or an operator's decision on
    appeal): whoever got the money back is told. Other services' events that concern a
    buyer become direct messages here, in the event's inbox transaction, once per
    event. The caller (the inbox) commits."""
    amount = refund["amount"]
    _tell(
        uow,
        refund["payer_account_id"],
        clock.now(),
        kind="refund_made",
        subject=f"{amount['amount'] / 100:.2f} {amount['currency']} refunded for the order "
        f"{refund['order_id']}",
        body=refund["reason"],
        once_as=f"refund:{refund['refund_id']}",
    )


def subscription_news(
    uow, clock: Clock, *, event_type: str, event_id: str, data: dict[str, Any]
) -> None:
    """orders announced a change to a subscription after its purchase (expiring,
    expired, frozen, released, renewed, an auto-renewal or an upgrade failed, upgraded,
    an unsubscription requested, approved or rejected): its buyer (the seller, for a
    request to review) gets one direct message (``supervision.notices``), once per
    event id, whichever redelivery or replica handles it. The caller (the inbox)
    commits."""
    notice = notices.notice_for(event_type, data)
    if notice is None:
        return
    _tell(
        uow,
        notice.account_id,
        clock.now(),
        kind=notice.kind,
        subject=notice.subject,
        body=notice.body,
        once_as=f"event:{event_id}",
    )


# -- what the clock brings ------------------------------------------------------------------


def accept_overdue_flows(uow, clock: Clock) -> int:
    """Accept one batch of flows whose acceptance period passed with no buyer action
    and no open appeal; how many. Safe with two replicas (rows are claimed)."""
    now = clock.now()
    accepted = 0
    for flow in uow.flows.lock_due_for_auto_acceptance(now, SWEEP_BATCH):
        flow.accept(now, by=SYSTEM_ACTOR)
        _completed(uow, flow, now, actor=SYSTEM_ACTOR, account_id=None)
        uow.emit_recorded(flow)
        accepted += 1
    uow.commit()
    return accepted


def send_acceptance_notices(uow, clock: Clock) -> int:
    """Tell buyers whose delivery is accepted automatically within two days."""
    now = clock.now()
    sent = 0
    for flow in uow.flows.lock_due_for_acceptance_notice(
        now + domain.AUTO_ACCEPT_NOTICE, SWEEP_BATCH
    ):
        flow.accept_notice_sent = True
        _tell(
            uow,
            flow.buyer_account_id,
            now,
            flow=flow,
            kind="auto_accept_soon",
            subject=f"{flow.product_name} will be accepted automatically",
            body=f"Unless you accept it or open an appeal, the delivery is accepted on "
            f"{_day(flow.accept_by)}.",
            once_as=f"{flow.id}:auto_accept_soon:{flow.accept_by.isoformat() if flow.accept_by else ''}",
        )
        sent += 1
    uow.commit()
    return sent


def remind_unconfirmed(uow, clock: Clock) -> int:
    """Remind sellers that did not confirm within the confirmation days, and tell their
    buyers they may appeal. Once per waiting request."""
    now = clock.now()
    reminded = 0
    for flow in uow.flows.lock_due_for_confirmation_reminder(now, SWEEP_BATCH):
        flow.confirm_reminded = True
        _remind_late_party(
            uow,
            flow,
            now,
            late=(
                flow.seller_account_id,
                "confirmation_overdue",
                f"The order {flow.order_id} waits for your confirmation",
                f"You were to confirm it by {_day(flow.confirm_by)}. Confirm it or send "
                "the request back.",
            ),
            other=(
                flow.buyer_account_id,
                "may_appeal",
                f"The seller of {flow.product_name} has not confirmed yet",
                "The seller was reminded. You may open an appeal if you need an operator.",
            ),
            action="seller_reminded",
        )
        reminded += 1
    uow.commit()
    return reminded


def remind_unrequested(uow, clock: Clock) -> int:
    """Remind buyers that did not submit their request within the working days (at the
    start, or after the seller sent it back), and tell their sellers, who may appeal
    too. Once per wait for a request."""
    now = clock.now()
    reminded = 0
    for flow in uow.flows.lock_due_for_request_reminder(now, SWEEP_BATCH):
        flow.request_reminded = True
        _remind_late_party(
            uow,
            flow,
            now,
            late=(
                flow.buyer_account_id,
                "request_overdue",
                f"{flow.product_name} waits for your service request",
                f"The seller needs your request to start; it was due by {_day(flow.request_by)}.",
            ),
            other=(
                flow.seller_account_id,
                "request_overdue",
                f"The buyer of the order {flow.order_id} has not sent its request",
                "The buyer was reminded. You may open an appeal if you need an operator.",
            ),
            action="buyer_reminded",
        )
        reminded += 1
    uow.commit()
    return reminded


_Message = tuple[str, str, str, str]  # to whom, kind, subject, body


def _remind_late_party(
    uow, flow: Flow, now: dt.datetime, *, late: _Message, other: _Message, action: str
) -> None:
    """The party whose step is overdue is reminded and the other told it may appeal,
    once per wait at this step (whichever replica or retried sweep sends it again)."""
    key = f"{flow.id}:{action}:{flow.step_changed_at.isoformat()}"
    for (account_id, kind, subject, body), suffix in ((late, ""), (other, ":other")):
        _tell(
            uow,
            account_id,
            now,
            flow=flow,
            kind=kind,
            subject=subject,
            body=body,
            once_as=key + suffix,
        )
    _record(uow, flow, now, actor=SYSTEM_ACTOR, action=action, moved=False)


def refresh_appeal_gauges(uow, clock: Clock) -> None:
    open_count, overdue = uow.appeals.count_open(clock.now())
    metrics.APPEALS_OPEN.set(open_count)
    metrics.APPEALS_OVERDUE.set(overdue)


# -- reading --------------------------------------------------------------------------------


def list_flows(uow, *, caller: Identity, query: dict) -> dict[str, Any]:
    found = uow.flows.page_of_party(caller.account_id, **query)
    return found.view(flow_summary)


def get_flow(uow, clock: Clock, *, caller: Identity, flow_id: str) -> dict[str, Any]:
    """A party's flow; an operator sees any."""
    if caller.has_role(OPERATOR):
        flow = uow.flows.get(flow_id)
        if flow is None:
            raise NotFound("flow not found")
    else:
        flow = _flow_of_party(uow, caller, flow_id, lock=False)
    return flow_view(uow, flow, clock.now())


def flows_of_orders(uow, *, caller: Identity, order_ids: list[str]) -> dict[str, Any]:
    """Which flow each of these orders has, for its buyer or its seller (the seller's
    order list shows it)."""
    if not order_ids:
        return {"items": []}
    found = uow.flows.of_orders(order_ids, caller.account_id)
    return {"items": [{"order_id": order_id, "flow_id": flow_id} for order_id, flow_id in found]}


def flow_summary(flow: Flow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "order_id": flow.order_id,
        "subscription_id": flow.subscription_id,
        "product": {"id": flow.product_id, "name": flow.product_name},
        "specification_name": flow.specification_name,
        "delivery_method": flow.delivery_method,
        "process": flow.process,
        "step": flow.step,
        "buyer_account_id": flow.buyer_account_id,
        "seller_account_id": flow.seller_account_id,
        "appeal_open": flow.open_appeal_id is not None,
        "accept_by": flow.accept_by,
        "created_at": flow.created_at,
    }


def flow_view(uow, flow: Flow, now: dt.datetime) -> dict[str, Any]:
    records = uow.flows.records_of(flow.id)
    submissions = uow.flows.submissions_of(flow.id)
    appeal = uow.appeals.latest_of_flow(flow.id)
    return {
        **flow_summary(flow),
        "paid": money(flow.paid_amount, flow.currency),
        "steps": flow.steps_view(records),
        "requests": [_submission_view(s) for s in submissions if s.kind == "request"],
        "provisions": [_submission_view(s) for s in submissions if s.kind == "provision"],
        "appeal": appeal_view(appeal, flow, now) if appeal is not None else None,
        "records": [
            {"at": r.at, "actor": r.actor, "action": r.action, "note": r.note} for r in records
        ],
        "request_by": flow.request_by,
        "confirm_by": flow.confirm_by,
    }


def _submission_view(submission: Submission) -> dict[str, Any]:
    return {
        "id": submission.id,
        "author_account_id": submission.author_account_id,
        "description": submission.description,
        "attachment_ids": submission.attachment_ids,
        "rejected_reason": submission.rejected_reason,
        "created_at": submission.created_at,
    }


def appeal_view(appeal: Appeal, flow: Flow, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "flow_id": appeal.flow_id,
        "order_id": flow.order_id,
        "status": appeal.status,
        "opened_by": appeal.opened_by,
        "reason": appeal.reason,
        "description": appeal.description,
        "attachment_ids": appeal.attachment_ids,
        "opened_at": appeal.opened_at,
        "due_at": appeal.due_at,
        "overdue": appeal.is_overdue(now),
        "decision": appeal.decision,
        "message": appeal.message,
        "refund": money(appeal.refund_amount, flow.currency)
        if appeal.refund_amount is not None
        else None,
        "resolved_at": appeal.resolved_at,
    }


# -- messages -------------------------------------------------------------------------------


def list_messages(uow, *, caller: Identity, query: dict) -> dict[str, Any]:
    found = uow.messages.page_of(caller.account_id, **query)
    view = found.view(_message_view)
    view["unread"] = uow.messages.unread_count(caller.account_id)
    return view


def read_message(uow, clock: Clock, *, caller: Identity, message_id: str) -> dict[str, Any]:
    message = uow.messages.get(message_id)
    if message is None or message.account_id != caller.account_id:
        raise NotFound("message not found")
    if message.read_at is None:
        message.read_at = clock.now()
    view = _message_view(message)
    uow.commit()
    return view


def _message_view(message) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "subject": message.subject,
        "body": message.body,
        "flow_id": message.flow_id,
        "created_at": message.created_at,
        "read": message.read_at is not None,
    }
