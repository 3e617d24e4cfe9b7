"""Billing's use cases. Each takes a unit of work (its repository ``uow.billing``,
``emit_recorded``, ``commit``, ``rollback``), a clock and, where cards are charged, a
``PaymentGateway``. The SQL is in ``billing.repository``, the rules and the moves of a
payment, a top-up and a refund in ``billing.domain``.

Exactly once, per order:

- ``payments.order_id`` is unique, so of concurrent pays of one order only one writes
  the payment: the others queue on that index (or on the row's lock, or on the payer
  account's lock), fail to insert, roll back whatever they did, and find the payment
  there and answer it without charging;
- balance, credit and reseller payments lock the payer's account, then write the
  payment (already settled), the ledger postings, the account's figures and the
  outbox event in one transaction: all or nothing, so a crash in between leaves
  nothing to repair;
- card payments commit the attempt as ``pending`` first, charge the gateway with the
  attempt's key (``<payment id>.<attempt>``; the gateway charges a key once), then
  record the outcome, postings and event in one transaction that first re-checks,
  under the row lock, that the attempt is still pending. A crash or a gateway that
  does not answer leaves it pending; ``recover_pending_charges`` looks the key up and
  records the outcome the same way. Whichever comes second finds it settled and does
  nothing;
- at most one journal entry per payment (unique), the last guard.

Refunds, exactly once per payment (the compensation of an order cancelled after it
was paid; see ``refund_payment``):

- ``refunds.payment_id`` is unique and the payment's row is locked before the refund
  is looked for, so concurrent cancellations of one order (a redelivered event, or
  distinct events) queue on that lock and all but the first find the refund there;
- balance, credit and reseller refunds write the refund, the reversing postings, the
  account's figures and ``billing.refund.completed`` in the transaction of the event's
  inbox row: all or nothing;
- card refunds commit the refund as ``pending`` with the inbox row, then ask the card
  processor to refund the charge under the refund's id (the processor refunds a key
  once), then record the outcome, postings and event in one transaction that first
  re-checks, under the row lock, that the refund is still pending. A gateway that does
  not answer (or a crash) leaves it pending and ``recover_pending_charges`` asks again
  with the same key until the processor answers; an answer for another amount never
  changes, so that refund fails (``processor_amount_mismatch``) for an operator;
- at most one journal entry per refund (unique), the last guard;
- the transaction that books a refund also ends the order's live invoice (a requested
  one cancelled, an issued one returned: ``invoices.end_for_refund``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from billing import cards, domain, invoices, metrics
from billing.models import BillingAccount, JournalEntry, Payment, Refund, TopUp
from billing.payment_gateway import ChargeResult, GatewayError, PaymentGateway, RefundResult
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, PaymentRequired
from mercato.identity import OPERATOR, Identity
from mercato.money import Money, money

_log = logging.getLogger(__name__)

REASON_LENGTH = 500
RECOVERY_BATCH = 50
_CLAIM_TRIES = 5


# -- views --------------------------------------------------------------------------


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "account_id": payment.account_id,
        "payer_account_id": payment.payer_account_id,
        "enterprise_project_id": payment.enterprise_project_id,
        "status": payment.status,
        "payment_method": payment.payment_method,
        "amount": money(payment.amount, payment.currency),
        "card": (
            {"brand": payment.card_brand, "last4": payment.card_last4}
            if payment.card_last4
            else None
        ),
        "failure_code": payment.failure_code,
        "failure_reason": payment.failure_reason,
        "created_at": payment.created_at,
        "completed_at": payment.completed_at,
    }


def top_up_view(top_up: TopUp) -> dict[str, Any]:
    return {
        "id": top_up.id,
        "account_id": top_up.account_id,
        "status": top_up.status,
        "amount": money(top_up.amount, top_up.currency),
        "card": {"brand": top_up.card_brand, "last4": top_up.card_last4},
        "failure_code": top_up.failure_code,
        "failure_reason": top_up.failure_reason,
        "created_at": top_up.created_at,
        "completed_at": top_up.completed_at,
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "account_id": refund.account_id,
        "payer_account_id": refund.payer_account_id,
        "payment_method": refund.payment_method,
        "status": refund.status,
        "amount": money(refund.amount, refund.currency),
        "reason": refund.reason,
        "failure_code": refund.failure_code,
        "failure_reason": refund.failure_reason,
        "created_at": refund.created_at,
        "completed_at": refund.completed_at,
    }


def balance_view(account_id: str, account: BillingAccount | None) -> dict[str, Any]:
    currency = account.currency if account else domain.account_currency()
    figures = account.figures if account else domain.AccountState()
    return {
        "account_id": account_id,
        "balance": money(figures.balance, currency),
        "credit_limit": money(figures.credit_limit, currency),
        "credit_used": money(figures.credit_used, currency),
        "available_credit": money(figures.available_credit, currency),
    }


def _transaction_view(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.txn_id,
        "kind": entry.kind,
        "payment_method": entry.payment_method,
        "amount": money(entry.amount, entry.currency),
        "balance_after": money(entry.balance_after, entry.currency),
        "credit_used_after": money(entry.credit_used_after, entry.currency),
        "order_id": entry.order_id,
        "payment_id": entry.payment_id or (entry.refund.payment_id if entry.refund else None),
        "top_up_id": entry.top_up_id,
        "refund_id": entry.refund_id,
        "buyer_account_id": entry.buyer_account_id,
        "created_at": entry.created_at,
    }


# -- the ledger ---------------------------------------------------------------------


def _post(
    uow,
    account: BillingAccount,
    postings: list[domain.Posting],
    *,
    kind: str,
    statement_amount: int,
    now: dt.datetime,
    payment: Payment | None = None,
    top_up: TopUp | None = None,
    refund: Refund | None = None,
) -> None:
    """Write one balanced journal entry and move ``account``'s figures with it
    (``account`` must be locked)."""
    about: Payment | Refund | None = payment or refund
    after = account.figures_after(postings)
    uow.billing.move_account(account, after, now)
    entry = JournalEntry(
        txn_id=new_id("txn"),
        kind=kind,
        account_id=account.account_id,
        payment_id=payment.id if payment else None,
        top_up_id=top_up.id if top_up else None,
        refund_id=refund.id if refund else None,
        order_id=about.order_id if about else None,
        buyer_account_id=about.account_id if about else None,
        payment_method=about.payment_method if about else None,
        enterprise_project_id=about.enterprise_project_id if about else None,
        amount=statement_amount,
        currency=account.currency,
        balance_after=after.balance,
        credit_used_after=after.credit_used,
        created_at=now,
    )
    uow.billing.add_journal_entry(entry, postings)


def _post_payment(uow, payment: Payment, account: BillingAccount, now: dt.datetime) -> None:
    """The payer's side debited, sales credited (``account``, the payer's, locked)."""
    _post(
        uow,
        account,
        domain.payment_postings(payment.payment_method, payment.payer_account_id, payment.amount),
        kind=domain.PAYMENT_ENTRY,
        statement_amount=-payment.amount,
        now=now,
        payment=payment,
    )


# -- paying an order ----------------------------------------------------------------


def pay_order(
    uow,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    caller: Identity,
    order_id: str,
    account_id: str,
    payer_account_id: str,
    amount: dict[str, Any],
    enterprise_project_id: str,
    payment_method: str,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Charge an order once, whatever the retries; answer its payment.

    A payment already succeeded or pending is answered as it is (nothing is charged
    again); a failed one (a declined card) is tried again as its next attempt. Short
    funds or credit raise ``PaymentRequired`` and change nothing.
    """
    _authorize_payer(caller, account_id, payer_account_id, payment_method)
    price = Money(amount["amount"], amount["currency"])
    domain.require_account_currency(price)
    now = clock.now()
    checked_card = (
        cards.card_to_charge(uow, gateway, account_id=account_id, card=card or {}, now=now)
        if payment_method == domain.CREDIT_CARD
        else None
    )
    if uow.billing.is_cancelled_order(order_id):
        uow.rollback()
        raise Conflict(
            f"order {order_id} was cancelled; nothing was charged", code="ORDER_CANCELLED"
        )
    for _ in range(_CLAIM_TRIES):
        payment = uow.billing.lock_payment_of_order(order_id)
        written = payment is not None
        if payment is None:
            payment = Payment(
                id=new_id("pay"),
                order_id=order_id,
                account_id=account_id,
                payer_account_id=payer_account_id,
                enterprise_project_id=enterprise_project_id,
                amount=price.amount,
                currency=price.currency,
                created_at=now,
            )
            payment.start(payment_method, checked_card, now)
        else:
            payment.require_same_order(
                account_id=account_id, payer_account_id=payer_account_id, price=price
            )
            if not payment.may_try_again:  # succeeded, or pending at the gateway
                view = payment_view(payment)
                uow.rollback()
                return view
            payment.try_again(payment_method, checked_card, now)

        if checked_card is None:
            # from an account: one transaction, from the payment row to the event
            account = uow.billing.lock_account(payer_account_id, now)
            try:
                account.authorize(payment_method, price.amount)
            except PaymentRequired:
                uow.rollback()  # the payment row too: nothing changed
                metrics.payment_outcome(payment_method, "refused")
                raise
            payment.succeed(now)
            # a new payment is written once, already settled
            if not written and not uow.billing.add_settled_payment(payment):
                uow.rollback()  # another pay of this order inserted first: read it
                continue
            _post_payment(uow, payment, account, now)
            uow.emit_recorded(payment)
            uow.commit()
            _count_payment(payment)
            return payment_view(payment)

        # By card, two transactions, so that no lock is held while the gateway answers:
        # the attempt is on record before any money moves ...
        if not written and not uow.billing.add_pending_payment(payment):
            uow.rollback()  # another pay of this order inserted first: read it
            continue
        uow.commit()
        charge_key = payment.charge_key
        assert charge_key is not None
        try:
            charge = gateway.charge(charge_key, checked_card, payment.price)
        except GatewayError as exc:
            _log.warning("payment %s left pending: %s", payment.id, exc)
            metrics.payment_outcome(payment_method, "pending")
            return payment_view(payment)
        # ... then its outcome, unless recovery recorded it meanwhile
        payment, recorded = _record_charge_outcome(uow, clock.now(), payment.id, charge_key, charge)
        uow.commit()
        if recorded:
            _count_payment(payment)
        return payment_view(payment)
    raise Conflict("the order's payment is changing under this request; try again")


def _authorize_payer(caller: Identity, account_id: str, payer: str, method: str) -> None:
    operator = caller.has_role(OPERATOR)
    if caller.account_id != account_id and not operator:
        raise Forbidden("only the buyer pays for its order")
    if method == domain.RESELLER and not operator and caller.reseller_account_id != payer:
        raise Forbidden("the payer is not this account's reseller")


def _record_charge_outcome(
    uow, now: dt.datetime, payment_id: str, charge_key: str, charge: ChargeResult | None
) -> tuple[Payment, bool]:
    """Record what the gateway said of a card attempt's charge (None: it has no such
    charge) with its postings and event, in the open transaction, once: the attempt is
    re-checked under its row lock. Answers the payment and whether this recorded it
    (False: it was settled already, or a later attempt replaced it)."""
    payment = uow.billing.lock_payment(payment_id)
    if payment is None:
        raise NotFound(f"no payment {payment_id}")
    if not payment.awaits_charge(charge_key):
        return payment, False
    if charge is not None and charge.succeeded:
        if charge.amount != payment.price:
            raise RuntimeError(f"charge {charge.charge_id} is not for payment {payment.id}")
        account = uow.billing.lock_account(payment.payer_account_id, now)
        payment.succeed(now)
        _post_payment(uow, payment, account, now)
    else:
        code = domain.charge_failure_code(
            charged=charge is not None, decline_code=charge.decline_code if charge else None
        )
        payment.fail(code, now)
    uow.emit_recorded(payment)
    return payment, True


def _count_payment(payment: Payment) -> None:
    metrics.payment_outcome(
        payment.payment_method, payment.status, payment.amount, payment.currency
    )


def _may_see(caller: Identity, row: Payment | Refund) -> bool:
    """A payment or refund is its buyer's, its payer's (a reseller) and operators'."""
    return caller.account_id in (row.account_id, row.payer_account_id) or caller.has_role(OPERATOR)


def get_payment(uow, *, caller: Identity, order_id: str) -> dict[str, Any]:
    payment = uow.billing.payment_of_order(order_id)
    if payment is None or not _may_see(caller, payment):
        raise NotFound(f"no payment for order {order_id}")
    return payment_view(payment)


# -- top-ups ------------------------------------------------------------------------


def top_up(
    uow,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    account_id: str,
    amount: dict[str, Any],
    card: dict[str, Any],
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Add money to the account's balance from a card, through the card gateway."""
    price = Money(amount["amount"], amount["currency"])
    domain.require_account_currency(price)
    now = clock.now()
    checked = cards.card_to_charge(uow, gateway, account_id=account_id, card=card, now=now)
    for _ in range(_CLAIM_TRIES):
        if idempotency_key is not None:
            existing = uow.billing.top_up_by_key(account_id, idempotency_key)
            if existing is not None:
                existing.require_same_amount(price)
                view = top_up_view(existing)
                uow.rollback()
                return view
        top_up_id = new_id("top")
        record = TopUp(
            id=top_up_id,
            account_id=account_id,
            idempotency_key=idempotency_key,
            amount=price.amount,
            currency=price.currency,
            status=domain.PENDING,
            charge_key=top_up_id,
            card_brand=checked.brand,
            card_last4=checked.last4,
            created_at=now,
            updated_at=now,
        )
        if not uow.billing.add_top_up(record):
            uow.rollback()  # the same key at the same moment: answer that one
            continue
        # two transactions, as for a card payment: on record before any money moves ...
        uow.commit()
        try:
            charge = gateway.charge(record.charge_key, checked, price)
        except GatewayError as exc:
            _log.warning("top-up %s left pending: %s", record.id, exc)
            metrics.top_up_outcome("pending")
            return top_up_view(record)
        # ... then its outcome, unless recovery recorded it meanwhile
        record, recorded = _record_top_up_outcome(
            uow, clock.now(), record.id, record.charge_key, charge
        )
        uow.commit()
        if recorded:
            metrics.top_up_outcome(record.status)
        return top_up_view(record)
    raise Conflict("this top-up is changing under this request; try again")


def _record_top_up_outcome(
    uow, now: dt.datetime, top_up_id: str, charge_key: str, charge: ChargeResult | None
) -> tuple[TopUp, bool]:
    """As ``_record_charge_outcome``, for a top-up: its money goes to the balance."""
    record = uow.billing.lock_top_up(top_up_id)
    if not record.awaits_charge(charge_key):
        return record, False
    if charge is not None and charge.succeeded:
        account = uow.billing.lock_account(record.account_id, now)
        _post(
            uow,
            account,
            domain.top_up_postings(record.account_id, record.amount),
            kind=domain.TOP_UP_ENTRY,
            statement_amount=record.amount,
            now=now,
            top_up=record,
        )
        record.succeed(now)
    else:
        code = domain.charge_failure_code(
            charged=charge is not None, decline_code=charge.decline_code if charge else None
        )
        record.fail(code, now)
    return record, True


def get_top_up(uow, *, account_id: str, top_up_id: str) -> dict[str, Any]:
    record = uow.billing.top_up(top_up_id)
    if record is None or record.account_id != account_id:
        raise NotFound(f"top-up {top_up_id} not found")
    return top_up_view(record)


# -- refunds ------------------------------------------------------------------------


def refund_payment(
    uow,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    payment_id: str,
    order_id: str,
    account_id: str,
    amount: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    """Refund (up to all of) a succeeded payment once, however often it is asked; answer
    the refund. The compensation of an order cancelled after it was paid.

    It runs in the unit of work's open transaction (an event handler's, holding its
    inbox row) and leaves the commit to its caller (the inbox wrapper), so the refund
    and the inbox row are committed together; only a card refund commits, once, the
    pending refund with the inbox row before the card processor is asked. A payment
    refunded already answers its refund and moves nothing.
    ``NotFound`` when the payment is not this order's and this buyer's;
    ``BusinessRuleViolation`` (nothing changes) when the refund cannot be given:
    ``REFUND_EXCEEDS_PAYMENT`` (more than was paid), ``REFUND_CURRENCY_MISMATCH``,
    ``PAYMENT_NOT_REFUNDABLE`` (the payment did not succeed).
    """
    now = clock.now()
    payment = uow.billing.lock_payment(payment_id)
    if payment is None or not payment.is_of(order_id=order_id, account_id=account_id):
        raise NotFound(f"no payment {payment_id} of order {order_id} by {account_id}")
    existing = uow.billing.refund_of_payment(payment.id)
    if existing is not None:  # refunded already: answered, nothing moves
        return refund_view(existing)
    requested = Money(amount["amount"], amount["currency"])
    try:
        payment.check_refund(requested)
    except BusinessRuleViolation:
        metrics.refund_outcome(payment.payment_method, "rejected")
        raise
    refund = Refund(
        id=new_id("rfd"),
        payment_id=payment.id,
        order_id=payment.order_id,
        account_id=payment.account_id,
        payer_account_id=payment.payer_account_id,
        payment_method=payment.payment_method,
        enterprise_project_id=payment.enterprise_project_id,
        amount=requested.amount,
        currency=requested.currency,
        status=domain.PENDING,
        reason=reason[:REASON_LENGTH],
        created_at=now,
        updated_at=now,
    )
    if not uow.billing.add_refund(refund):
        return refund_view(_refund_written_first(uow, payment.id))

    if not refund.to_a_card:
        account = uow.billing.lock_account(refund.payer_account_id, now)
        _complete_refund(uow, refund, account, now)
        _count_refund(refund)
        return refund_view(refund)

    # A card refund takes two transactions, so that no lock is held while the card
    # processor answers: the pending refund is committed here, with the inbox row,
    # before the processor is asked (if it does not answer, or on a crash, recovery
    # asks again) ...
    uow.commit()
    pending = refund_view(refund)
    answered, processor_refund = _ask_processor_to_refund(
        gateway,
        refund_id=refund.id,
        amount=requested,
        method=refund.payment_method,
        charge_key=payment.charge_key,
    )
    if not answered:
        return pending
    # ... then its outcome, in the transaction the caller commits
    refund, recorded = _record_refund_outcome(uow, clock.now(), refund.id, processor_refund)
    if recorded:
        _count_refund(refund)
    return refund_view(refund)


def _refund_written_first(uow, payment_id: str) -> Refund:
    refund = uow.billing.refund_of_payment(payment_id)
    assert refund is not None  # add_refund found it
    return refund


def _ask_processor_to_refund(
    gateway: PaymentGateway, *, refund_id: str, amount: Money, method: str, charge_key: str | None
) -> tuple[bool, RefundResult | None]:
    """Ask the card processor to refund the payment's charge under the refund's id (call
    it with no transaction open). Answers whether it answered, and its refund (None: it
    has no charge for the payment). Unanswered, the refund stays pending and recovery
    asks again."""
    try:
        charge = gateway.lookup(charge_key) if charge_key else None
        result = gateway.refund(charge.charge_id, amount, refund_id) if charge else None
    except GatewayError as exc:
        _log.warning("refund %s left pending: %s", refund_id, exc)
        metrics.refund_outcome(method, "pending")
        return False, None
    return True, result


def _record_refund_outcome(
    uow, now: dt.datetime, refund_id: str, processor_refund: RefundResult | None
) -> tuple[Refund, bool]:
    """Record what the card processor said of a pending card refund (None: it has no
    charge for the payment) with its postings and event, in the open transaction, once:
    the refund is re-checked under its row lock. Answers the refund and whether this
    recorded it (False: it was settled already).

    A refund the processor made for another amount fails (``processor_amount_mismatch``)
    and moves nothing in the books: the processor answers the same for its key every
    time, so only an operator can reconcile it (``billing.refund.failed`` tells them).
    """
    refund = uow.billing.lock_refund(refund_id)
    if not refund.awaits_processor:
        return refund, False
    if (
        processor_refund is not None
        and processor_refund.succeeded
        and processor_refund.amount == refund.price
    ):
        account = uow.billing.lock_account(refund.payer_account_id, now)
        _complete_refund(uow, refund, account, now)
    else:
        _fail_refund(uow, refund, _refund_failure_code(refund, processor_refund), now)
    return refund, True


def _refund_failure_code(refund: Refund, processor_refund: RefundResult | None) -> str:
    if processor_refund is None:
        return domain.CHARGE_NOT_REFUNDABLE
    if processor_refund.succeeded:  # for another amount
        _log.error(
            "card refund %s for refund %s is of %s, not %s %s",
            processor_refund.refund_id,
            refund.id,
            processor_refund.amount,
            refund.amount,
            refund.currency,
        )
        return domain.PROCESSOR_AMOUNT_MISMATCH
    return processor_refund.failure_code or domain.CHARGE_NOT_REFUNDABLE


def _complete_refund(uow, refund: Refund, account: BillingAccount, now: dt.datetime) -> None:
    """Post the reversal of the payment (``account``, the payer's, locked) and announce it;
    the order's live invoice, if any, is ended (``invoices.end_for_refund``)."""
    _post(
        uow,
        account,
        domain.refund_postings(refund.payment_method, refund.payer_account_id, refund.amount),
        kind=domain.REFUND_ENTRY,
        statement_amount=refund.amount,
        now=now,
        refund=refund,
    )
    refund.complete(now)
    uow.emit_recorded(refund)
    # a refunded order is on no live invoice: a requested one is cancelled, an issued
    # one returned, in this transaction
    invoices.end_for_refund(uow, order_id=refund.order_id, now=now)


def _fail_refund(uow, refund: Refund, code: str, now: dt.datetime) -> None:
    """Nothing moves; ``billing.refund.failed`` tells operators, and the buyer, why."""
    refund.fail(code, now)
    _log.error("refund %s of payment %s failed: %s", refund.id, refund.payment_id, code)
    uow.emit_recorded(refund)


def _count_refund(refund: Refund) -> None:
    metrics.refund_outcome(refund.payment_method, refund.status, refund.amount, refund.currency)


def get_refund(uow, *, caller: Identity, order_id: str) -> dict[str, Any]:
    """The refund of an order, for its buyer, its payer (a reseller) or an operator."""
    refund = uow.billing.refund_of_order(order_id)
    if refund is None or not _may_see(caller, refund):
        raise NotFound(f"no refund for order {order_id}")
    return refund_view(refund)


# -- payments of cancelled orders ---------------------------------------------------


def order_cancelled_unpaid(
    uow, clock: Clock, gateway: PaymentGateway, *, order_id: str, account_id: str, reason: str
) -> None:
    """orders cancelled an order before it was paid (its buyer, or its payment window):
    billing charges it no more, and a payment of it that succeeded anyway (a pay that
    raced the cancellation) is refunded in full now. One still pending at the card
    gateway is refunded once it settles (``refund_late_payments``). Runs in the event
    handler's transaction, as ``refund_payment``."""
    uow.billing.add_cancelled_order(order_id, account_id, reason[:REASON_LENGTH], clock.now())
    payment = uow.billing.lock_payment_of_order(order_id)
    if payment is not None and payment.status == domain.SUCCEEDED:
        _log.warning("payment %s of order %s, cancelled unpaid, is refunded", payment.id, order_id)
        refund_payment(
            uow,
            clock,
            gateway,
            payment_id=payment.id,
            order_id=order_id,
            account_id=payment.account_id,
            amount=money(payment.amount, payment.currency),
            reason=reason,
        )


def refund_late_payments(uow, clock: Clock, gateway: PaymentGateway) -> int:
    """Refund, once each, the succeeded payments of orders cancelled unpaid (a card
    charge the gateway confirmed after the cancellation, or a pay that committed beside
    it). Each in its own transaction; answers how many were refunded."""
    late = uow.billing.late_payments(RECOVERY_BATCH)
    uow.rollback()
    for payment in late:
        with _on_its_own(uow, "late_payment", payment.payment_id):
            _log.warning(
                "payment %s of order %s, cancelled unpaid, is refunded",
                payment.payment_id,
                payment.order_id,
            )
            refund_payment(
                uow,
                clock,
                gateway,
                payment_id=payment.payment_id,
                order_id=payment.order_id,
                account_id=payment.account_id,
                amount=money(payment.amount, payment.currency),
                reason=payment.reason,
            )
            uow.commit()
    return len(late)


# -- recovery -----------------------------------------------------------------------


def recover_pending_charges(
    uow, clock: Clock, gateway: PaymentGateway, *, grace: dt.timedelta
) -> int:
    """Settle card payments, top-ups and card refunds left pending for longer than
    ``grace`` (a crash, or a gateway that did not answer): look a charge up by its key
    and record what became of it (a key the gateway does not know was never charged:
    the attempt fails); ask for a refund again under its key (the processor answers the
    refund it made, or makes it now). ``grace`` must exceed the gateway timeout, so
    that no request is still waiting for that answer. Safe with any number of
    replicas: recording locks the row and re-checks that it is still pending. Each
    item is recovered in its own transaction (``_on_its_own``): one that raises is
    rolled back, logged and counted (``mercato_recovery_errors_total``) and does not
    hold up the others. Answers how many it settled.
    """
    cutoff = clock.now() - grace
    payments = uow.billing.pending_card_payments(cutoff, RECOVERY_BATCH)
    top_ups = uow.billing.pending_top_ups(cutoff, RECOVERY_BATCH)
    refunds = uow.billing.pending_card_refunds(cutoff, RECOVERY_BATCH)
    uow.rollback()  # hold no connection while the gateway is asked
    settled = 0
    for payment_id, charge_key in payments:
        with _on_its_own(uow, "payment", payment_id):
            try:
                charge = gateway.lookup(charge_key)
            except GatewayError as exc:
                _log.warning("payment %s stays pending: %s", payment_id, exc)
                continue
            payment, recorded = _record_charge_outcome(
                uow, clock.now(), payment_id, charge_key, charge
            )
            uow.commit()
            if recorded:
                _count_payment(payment)
            settled += 1
    for top_up_id, charge_key in top_ups:
        with _on_its_own(uow, "top_up", top_up_id):
            try:
                charge = gateway.lookup(charge_key)
            except GatewayError as exc:
                _log.warning("top-up %s stays pending: %s", top_up_id, exc)
                continue
            record, recorded = _record_top_up_outcome(
                uow, clock.now(), top_up_id, charge_key, charge
            )
            uow.commit()
            if recorded:
                metrics.top_up_outcome(record.status)
            settled += 1
    for pending in refunds:
        with _on_its_own(uow, "refund", pending.refund_id):
            answered, processor_refund = _ask_processor_to_refund(
                gateway,
                refund_id=pending.refund_id,
                amount=Money(pending.amount, pending.currency),
                method=pending.payment_method,
                charge_key=pending.charge_key,
            )
            if not answered:
                continue
            refund, recorded = _record_refund_outcome(
                uow, clock.now(), pending.refund_id, processor_refund
            )
            uow.commit()
            if recorded:
                _count_refund(refund)
            settled += 1
    return settled


@contextmanager
def _on_its_own(uow, item: str, item_id: str) -> Iterator[None]:
    """Recover one item in isolation: an error rolls back what it wrote, is logged and
    counted, and does not stop the items after it. The item stays pending and is tried
    again next run (a refund the processor made for another amount, which no retry can
    fix, fails in ``_record_refund_outcome`` instead of raising)."""
    try:
        yield
    except Exception:
        uow.rollback()
        _log.exception("recovery of %s %s failed; it stays pending", item, item_id)
        metrics.recovery_error(item)


# -- balance, credit limit, statement -----------------------------------------------


def get_balance(uow, *, account_id: str) -> dict[str, Any]:
    return balance_view(account_id, uow.billing.account(account_id))


def set_credit_limit(
    uow, clock: Clock, *, operator: Identity, account_id: str, amount: dict[str, Any]
) -> dict[str, Any]:
    """Grant (or lower, or with 0 withdraw) credit. Lowering it below what is used
    stops further credit payments; nothing already paid changes."""
    limit = Money(amount["amount"], amount["currency"])
    domain.require_account_currency(limit)
    now = clock.now()
    account = uow.billing.lock_account(account_id, now)
    account.set_credit_limit(limit, set_by=operator.user_id, now=now)
    uow.commit()
    _log.info("credit limit of %s set to %s by %s", account_id, limit.amount, operator.user_id)
    return balance_view(account_id, account)


def list_transactions(uow, *, account_id: str, page: int, page_size: int) -> dict[str, Any]:
    """The account's statement, newest first: what it paid, topped up and was refunded."""
    return uow.billing.statement(account_id, page, page_size).view(_transaction_view)


# -- audit --------------------------------------------------------------------------


def audit_ledger(uow) -> dict[str, Any]:
    """What the ledger says against what the tables say; every list is empty when
    the books are right.

    - ``unbalanced_entries``: journal entries whose postings do not sum to zero (or
      that have fewer than two postings);
    - ``accounts_out_of_step``: billing accounts whose balance or credit used is not
      what their postings add up to;
    - ``payments_out_of_step``: succeeded payments without exactly one journal entry,
      or entries of payments that did not succeed (likewise top-ups);
    - ``refunds_out_of_step``: succeeded refunds without exactly one journal entry,
      entries of refunds that did not succeed, and refunds of more than their payment
      took or of a payment that did not succeed.
    """
    books = uow.billing
    unbalanced = books.unbalanced_entries()
    ledger_total = books.ledger_total()
    accounts_out_of_step = _accounts_out_of_step(books.accounts(), books.posting_sums())
    payments_out_of_step = _without_their_one_entry(
        books.payment_statuses(), books.entries_per_payment()
    ) + _without_their_one_entry(books.top_up_statuses(), books.entries_per_top_up())
    entries_per_refund = books.entries_per_refund()
    refunds_out_of_step = [
        refund.refund_id
        for refund in books.refunds_beside_their_payments()
        if entries_per_refund.get(refund.refund_id, 0) != _entries_due(refund.status)
        or refund.amount > refund.paid
        or refund.currency != refund.paid_currency
        or refund.payment_status != domain.SUCCEEDED
    ]
    uow.rollback()
    return {
        "balanced": not (
            unbalanced
            or ledger_total
            or accounts_out_of_step
            or payments_out_of_step
            or refunds_out_of_step
        ),
        "ledger_total": ledger_total,
        "unbalanced_entries": unbalanced,
        "accounts_out_of_step": accounts_out_of_step,
        "payments_out_of_step": payments_out_of_step,
        "refunds_out_of_step": refunds_out_of_step,
    }


def _entries_due(status: str) -> int:
    """A payment, top-up or refund has one journal entry once it succeeded, else none."""
    return 1 if status == domain.SUCCEEDED else 0


def _without_their_one_entry(statuses: dict[str, str], entries: dict[str, int]) -> list[str]:
    return [
        item_id
        for item_id, status in statuses.items()
        if entries.get(item_id, 0) != _entries_due(status)
    ]


def _accounts_out_of_step(
    accounts: dict[str, BillingAccount], sums: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    out_of_step = []
    for account_id in sorted(set(accounts) | set(sums)):
        account = accounts.get(account_id)
        stored = account.figures if account else None
        derived = domain.derived_state(
            account.credit_limit if account else 0, sums.get(account_id, {})
        )
        if stored != derived:
            out_of_step.append(
                {
                    "account_id": account_id,
                    "stored": asdict(stored) if stored else None,
                    "derived": asdict(derived),
                }
            )
    return out_of_step
