"""Billing's use cases. Each takes a unit of work (``session``, ``emit``, ``commit``,
``rollback``), a clock and, where cards are charged, a ``PaymentGateway``.

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
  finishes it the same way. Whichever comes second finds it settled and does nothing;
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
- at most one journal entry per refund (unique), the last guard.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from billing import domain, metrics
from billing.models import (
    BillingAccount,
    JournalEntry,
    LedgerPosting,
    Payment,
    Refund,
    TopUp,
)
from billing.payment_gateway import ChargeResult, GatewayError, PaymentGateway, RefundResult
from mercato.clock import Clock
from mercato.db import insert_now, new_id
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ValidationError,
)
from mercato.identity import OPERATOR, Identity
from mercato.money import Money, money

_log = logging.getLogger(__name__)

PAYMENT_SUCCEEDED = "billing.payment.succeeded"
PAYMENT_FAILED = "billing.payment.failed"
REFUND_COMPLETED = "billing.refund.completed"
REFUND_FAILED = "billing.refund.failed"
# a card refund's failure code: the processor refunded another amount under the key
PROCESSOR_AMOUNT_MISMATCH = "processor_amount_mismatch"
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
    currency = account.currency if account else domain.ACCOUNT_CURRENCY
    state = _state(account) if account else domain.AccountState()
    return {
        "account_id": account_id,
        "balance": money(state.balance, currency),
        "credit_limit": money(state.credit_limit, currency),
        "credit_used": money(state.credit_used, currency),
        "available_credit": money(state.available_credit, currency),
    }


def _transaction_view(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": f"txn_{entry.id}",
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


# -- accounts and the ledger --------------------------------------------------------


def _state(account: BillingAccount) -> domain.AccountState:
    return domain.AccountState(
        balance=account.balance,
        credit_limit=account.credit_limit,
        credit_used=account.credit_used,
    )


# the statements every payment runs, built once (see mercato.db)
_LOCKED_ACCOUNT = (
    sa.select(BillingAccount)
    .where(BillingAccount.account_id == sa.bindparam("account_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCKED_PAYMENT_OF_ORDER = (
    sa.select(Payment)
    .where(Payment.order_id == sa.bindparam("order_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
# an account's figures move as one Core UPDATE of its locked row (see mercato.db)
_ACCOUNTS = cast(sa.Table, BillingAccount.__table__)
_MOVE_ACCOUNT = (
    _ACCOUNTS.update()
    .where(_ACCOUNTS.c.account_id == sa.bindparam("account"))
    .values(
        balance=sa.bindparam("new_balance"),
        credit_used=sa.bindparam("new_credit_used"),
        updated_at=sa.bindparam("now"),
    )
)


def _lock_account(session: Session, account_id: str, now: dt.datetime) -> BillingAccount:
    """The account's row, created on first use, locked until the transaction ends.

    ``INSERT … ON CONFLICT DO NOTHING`` lets two workers create it at once: the second
    waits for the first and then does nothing. It runs only when the locking read
    finds no row: an account that pays exists already (its top-up created it), and the
    dialect's upsert is a statement SQLAlchemy cannot cache, so running it on every
    payment compiled it afresh each time for nothing.
    """
    account = session.scalars(_LOCKED_ACCOUNT, {"account_id": account_id}).one_or_none()
    if account is not None:
        return account
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(BillingAccount)
        .values(
            account_id=account_id,
            currency=domain.ACCOUNT_CURRENCY,
            balance=0,
            credit_limit=0,
            credit_used=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["account_id"])
    )
    return session.scalars(_LOCKED_ACCOUNT, {"account_id": account_id}).one()


def _post(
    session: Session,
    account: BillingAccount,
    postings: list[domain.Posting],
    *,
    kind: str,
    statement_amount: int,
    now: dt.datetime,
    payment: Payment | None = None,
    top_up: TopUp | None = None,
    refund: Refund | None = None,
) -> JournalEntry:
    """Write one balanced journal entry and move ``account``'s figures with it
    (``account`` must be locked)."""
    about: Payment | Refund | None = payment or refund
    if not domain.is_balanced(postings):
        raise RuntimeError(f"unbalanced journal entry: {postings}")
    after = _state(account).apply(account.account_id, postings)
    session.execute(
        _MOVE_ACCOUNT,
        {
            "account": account.account_id,
            "new_balance": after.balance,
            "new_credit_used": after.credit_used,
            "now": now,
        },
    )
    # the object, in step with its row
    set_committed_value(account, "balance", after.balance)
    set_committed_value(account, "credit_used", after.credit_used)
    set_committed_value(account, "updated_at", now)
    entry = JournalEntry(
        kind=kind,
        account_id=account.account_id,
        payment_id=payment.id if payment else None,
        top_up_id=top_up.id if top_up else None,
        refund_id=refund.id if refund else None,
        order_id=about.order_id if about else None,
        buyer_account_id=about.account_id if about else None,
        payment_method=about.payment_method if about else None,
        amount=statement_amount,
        currency=account.currency,
        balance_after=after.balance,
        credit_used_after=after.credit_used,
        created_at=now,
    )
    insert_now(session, entry)  # its id, for the postings
    insert_now(
        session,
        *(
            LedgerPosting(
                entry_id=entry.id,
                ledger_account=posting.ledger_account,
                account_id=posting.account_id,
                amount=posting.amount,
                currency=account.currency,
            )
            for posting in postings
        ),
    )
    return entry


def _require_account_currency(price: Money, field: str = "amount.currency") -> None:
    if price.currency != domain.ACCOUNT_CURRENCY:
        raise ValidationError(
            f"billing accounts are kept in {domain.ACCOUNT_CURRENCY}",
            {field: [f"must be {domain.ACCOUNT_CURRENCY}, the account currency"]},
        )


# -- paying an order ----------------------------------------------------------------


class _PaymentClaimedMeanwhile(Exception):
    """A concurrent pay of the same order wrote its payment first."""


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
    _require_account_currency(price)
    now = clock.now()
    checked_card = (
        domain.check_card(card or {}, now) if payment_method == domain.CREDIT_CARD else None
    )
    session = uow.session
    for _ in range(_CLAIM_TRIES):
        payment = session.scalars(_LOCKED_PAYMENT_OF_ORDER, {"order_id": order_id}).one_or_none()
        if payment is None:
            payment = Payment(
                id=new_id("pay"),
                order_id=order_id,
                account_id=account_id,
                payer_account_id=payer_account_id,
                enterprise_project_id=enterprise_project_id,
                amount=price.amount,
                currency=price.currency,
                attempt=1,
                created_at=now,
            )
            _start_attempt(payment, payment_method, checked_card, now)
            if checked_card is not None:
                # a card's attempt is on record before the gateway is asked; a payment
                # from an account is written once, settled (``_succeed``)
                session.add(payment)
                try:
                    session.flush()
                except IntegrityError:
                    uow.rollback()  # another pay of this order inserted first: read it
                    continue
        else:
            _same_order(payment, account_id=account_id, payer=payer_account_id, price=price)
            if payment.status != domain.FAILED:
                view = payment_view(payment)
                uow.rollback()
                return view
            payment.attempt += 1
            _start_attempt(payment, payment_method, checked_card, now)
        if checked_card is not None:
            return _charge_card(uow, clock, gateway, payment, checked_card)
        try:
            return _settle_from_account(uow, payment, now)
        except _PaymentClaimedMeanwhile:
            uow.rollback()  # another pay of this order inserted first: read it
    raise Conflict("the order's payment is changing under this request; try again")


def _authorize_payer(caller: Identity, account_id: str, payer: str, method: str) -> None:
    operator = caller.has_role(OPERATOR)
    if caller.account_id != account_id and not operator:
        raise Forbidden("only the buyer pays for its order")
    if method == domain.RESELLER and not operator and caller.reseller_account_id != payer:
        raise Forbidden("the payer is not this account's reseller")


def _same_order(payment: Payment, *, account_id: str, payer: str, price: Money) -> None:
    if (payment.account_id, payment.payer_account_id) != (account_id, payer) or (
        Money(payment.amount, payment.currency) != price
    ):
        raise Conflict(
            f"order {payment.order_id} already has a payment for another amount or account"
        )


def _start_attempt(
    payment: Payment, method: str, card: domain.Card | None, now: dt.datetime
) -> None:
    payment.payment_method = method
    payment.status = domain.PENDING
    payment.charge_key = f"{payment.id}.{payment.attempt}" if card else None
    payment.card_brand = card.brand if card else None
    payment.card_last4 = card.last4 if card else None
    payment.failure_code = None
    payment.failure_reason = None
    payment.updated_at = now
    payment.completed_at = None


def _settle_from_account(uow, payment: Payment, now: dt.datetime) -> dict[str, Any]:
    """Balance, credit or reseller: one transaction from the payment row to the event."""
    method = payment.payment_method
    account = _lock_account(uow.session, payment.payer_account_id, now)
    try:
        _state(account).authorize(method, payment.amount)
    except PaymentRequired:
        uow.rollback()  # the payment row too: nothing changed
        metrics.payment_outcome(method, "refused")
        raise
    _succeed(uow, payment, account, now)
    uow.commit()
    metrics.payment_outcome(payment.payment_method, "succeeded", payment.amount, payment.currency)
    return payment_view(payment)


def _succeed(uow, payment: Payment, account: BillingAccount, now: dt.datetime) -> None:
    payment.status = domain.SUCCEEDED
    payment.updated_at = payment.completed_at = now
    if sa.inspect(payment).transient:  # settled as it is made: written once, here
        try:
            insert_now(uow.session, payment)
        except IntegrityError:  # order_id is unique
            raise _PaymentClaimedMeanwhile(payment.order_id) from None
    postings = domain.payment_postings(
        payment.payment_method, payment.payer_account_id, payment.amount
    )
    _post(
        uow.session,
        account,
        postings,
        kind=domain.PAYMENT_ENTRY,
        statement_amount=-payment.amount,
        now=now,
        payment=payment,
    )
    uow.emit(
        PAYMENT_SUCCEEDED,
        subject=payment.id,
        account_id=payment.account_id,
        data={
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "account_id": payment.account_id,
            "payer_account_id": payment.payer_account_id,
            "payment_method": payment.payment_method,
            "amount": money(payment.amount, payment.currency),
            "enterprise_project_id": payment.enterprise_project_id,
        },
    )


def _fail(uow, payment: Payment, code: str, now: dt.datetime) -> None:
    payment.status = domain.FAILED
    payment.failure_code = code
    payment.failure_reason = domain.failure_reason(code)
    payment.updated_at = payment.completed_at = now
    uow.emit(
        PAYMENT_FAILED,
        subject=payment.id,
        account_id=payment.account_id,
        data={
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "account_id": payment.account_id,
            "payment_method": payment.payment_method,
            "reason": payment.failure_reason,
            "failure_code": code,
        },
    )


def _charge_card(
    uow, clock: Clock, gateway: PaymentGateway, payment: Payment, card: domain.Card
) -> dict[str, Any]:
    key = payment.charge_key
    assert key is not None
    uow.commit()  # the attempt is on record before any money moves
    try:
        result = gateway.charge(key, card, Money(payment.amount, payment.currency))
    except GatewayError as exc:
        _log.warning("payment %s left pending: %s", payment.id, exc)
        metrics.payment_outcome(payment.payment_method, "pending")
        return payment_view(payment)
    return settle_card_payment(uow, clock, payment_id=payment.id, charge_key=key, result=result)


def settle_card_payment(
    uow, clock: Clock, *, payment_id: str, charge_key: str, result: ChargeResult | None
) -> dict[str, Any]:
    """Record what the gateway said of a pending card payment's charge (None: it has
    no such charge) with its postings and event, unless it is settled already."""
    session = uow.session
    now = clock.now()
    payment = session.scalars(
        sa.select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if payment.status != domain.PENDING or payment.charge_key != charge_key:
        view = payment_view(payment)
        uow.rollback()
        return view
    if result is not None and result.succeeded:
        if result.amount != Money(payment.amount, payment.currency):
            raise RuntimeError(f"charge {result.charge_id} is not for payment {payment.id}")
        account = _lock_account(session, payment.payer_account_id, now)
        _succeed(uow, payment, account, now)
        outcome = "succeeded"
    else:
        code = (result.decline_code or domain.CARD_DECLINED) if result else domain.GATEWAY_NO_CHARGE
        _fail(uow, payment, code, now)
        outcome = "failed"
    uow.commit()
    metrics.payment_outcome(payment.payment_method, outcome, payment.amount, payment.currency)
    return payment_view(payment)


def _may_see(caller: Identity, row: Payment | Refund) -> bool:
    """A payment or refund is its buyer's, its payer's (a reseller) and operators'."""
    return caller.account_id in (row.account_id, row.payer_account_id) or caller.has_role(OPERATOR)


def get_payment(uow, *, caller: Identity, order_id: str) -> dict[str, Any]:
    payment = uow.session.scalar(sa.select(Payment).where(Payment.order_id == order_id))
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
    _require_account_currency(price)
    now = clock.now()
    checked = domain.check_card(card, now)
    session = uow.session
    for _ in range(_CLAIM_TRIES):
        if idempotency_key is not None:
            existing = session.scalar(
                sa.select(TopUp).where(
                    TopUp.account_id == account_id, TopUp.idempotency_key == idempotency_key
                )
            )
            if existing is not None:
                if Money(existing.amount, existing.currency) != price:
                    raise Conflict("this idempotency key was used for another top-up amount")
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
        session.add(record)
        try:
            uow.commit()  # on record before any money moves
        except IntegrityError:
            uow.rollback()  # the same key at the same moment: answer that one
            continue
        try:
            result = gateway.charge(record.charge_key, checked, price)
        except GatewayError as exc:
            _log.warning("top-up %s left pending: %s", record.id, exc)
            metrics.top_up_outcome("pending")
            return top_up_view(record)
        return settle_top_up(
            uow, clock, top_up_id=record.id, charge_key=record.charge_key, result=result
        )
    raise Conflict("this top-up is changing under this request; try again")


def settle_top_up(
    uow, clock: Clock, *, top_up_id: str, charge_key: str, result: ChargeResult | None
) -> dict[str, Any]:
    session = uow.session
    now = clock.now()
    record = session.scalars(
        sa.select(TopUp)
        .where(TopUp.id == top_up_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if record.status != domain.PENDING or record.charge_key != charge_key:
        view = top_up_view(record)
        uow.rollback()
        return view
    if result is not None and result.succeeded:
        account = _lock_account(session, record.account_id, now)
        _post(
            session,
            account,
            domain.top_up_postings(record.account_id, record.amount),
            kind=domain.TOP_UP_ENTRY,
            statement_amount=record.amount,
            now=now,
            top_up=record,
        )
        record.status = domain.SUCCEEDED
    else:
        code = (result.decline_code or domain.CARD_DECLINED) if result else domain.GATEWAY_NO_CHARGE
        record.status = domain.FAILED
        record.failure_code = code
        record.failure_reason = domain.failure_reason(code)
    record.updated_at = record.completed_at = now
    uow.commit()
    metrics.top_up_outcome(record.status)
    return top_up_view(record)


def get_top_up(uow, *, account_id: str, top_up_id: str) -> dict[str, Any]:
    record = uow.session.get(TopUp, top_up_id)
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
    inbox row) and commits it. A payment refunded already answers its refund and moves
    nothing. ``NotFound`` when the payment is not this order's and this buyer's;
    ``BusinessRuleViolation`` (nothing changes) when the refund cannot be given:
    ``REFUND_EXCEEDS_PAYMENT`` (more than was paid), ``REFUND_CURRENCY_MISMATCH``,
    ``PAYMENT_NOT_REFUNDABLE`` (the payment did not succeed).
    """
    session = uow.session
    now = clock.now()
    payment = session.scalars(
        sa.select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if payment is None or (payment.order_id, payment.account_id) != (order_id, account_id):
        raise NotFound(f"no payment {payment_id} of order {order_id} by {account_id}")
    existing = _refund_of(session, payment.id)
    if existing is not None:
        view = refund_view(existing)
        uow.commit()  # the caller's inbox row: this request is answered
        return view
    requested = Money(amount["amount"], amount["currency"])
    try:
        domain.check_refund(
            paid=Money(payment.amount, payment.currency),
            payment_status=payment.status,
            refund=requested,
            payment_id=payment.id,
        )
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
        amount=requested.amount,
        currency=requested.currency,
        status=domain.PENDING,
        reason=reason[:REASON_LENGTH],
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():  # the unique payment_id, should the lock be bypassed
            session.add(refund)
    except IntegrityError:
        existing = _refund_of(session, payment.id)
        if existing is None:
            raise
        view = refund_view(existing)
        uow.commit()
        return view
    if payment.payment_method == domain.CREDIT_CARD:
        charge_key = payment.charge_key
        uow.commit()  # the refund is on record (with the inbox row) before any money moves
        pending = refund_view(refund)
        settled = _refund_card(
            uow,
            clock,
            gateway,
            refund_id=refund.id,
            amount=requested,
            method=refund.payment_method,
            charge_key=charge_key,
        )
        return settled or pending
    account = _lock_account(session, refund.payer_account_id, now)
    _complete_refund(uow, refund, account, now)
    uow.commit()
    metrics.refund_outcome(refund.payment_method, "succeeded", refund.amount, refund.currency)
    return refund_view(refund)


def _refund_of(session: Session, payment_id: str) -> Refund | None:
    return session.scalars(
        sa.select(Refund)
        .where(Refund.payment_id == payment_id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _refund_card(
    uow,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    refund_id: str,
    amount: Money,
    method: str,
    charge_key: str | None,
) -> dict[str, Any] | None:
    """Ask the card processor to refund the payment's charge under the refund's id
    (call it with no transaction open), then record its answer. None when it did not
    answer: the refund stays pending and recovery asks again."""
    try:
        charge = gateway.lookup(charge_key) if charge_key else None
        result = gateway.refund(charge.charge_id, amount, refund_id) if charge else None
    except GatewayError as exc:
        _log.warning("refund %s left pending: %s", refund_id, exc)
        metrics.refund_outcome(method, "pending")
        return None
    return settle_card_refund(uow, clock, refund_id=refund_id, result=result)


def settle_card_refund(
    uow, clock: Clock, *, refund_id: str, result: RefundResult | None
) -> dict[str, Any]:
    """Record what the card processor said of a pending card refund (None: it has no
    charge for the payment) with its postings and event, unless it is settled already.

    A refund the processor made for another amount fails (``processor_amount_mismatch``)
    and moves nothing in the books: the processor answers the same for its key every
    time, so only an operator can reconcile it (``billing.refund.failed`` tells them).
    """
    session = uow.session
    now = clock.now()
    refund = session.scalars(
        sa.select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if refund.status != domain.PENDING:
        view = refund_view(refund)
        uow.rollback()
        return view
    if result is not None and result.succeeded:
        if result.amount != Money(refund.amount, refund.currency):
            # the processor keeps its answer for this key: asking again cannot fix it
            _log.error(
                "card refund %s for refund %s is of %s, not %s %s",
                result.refund_id,
                refund.id,
                result.amount,
                refund.amount,
                refund.currency,
            )
            _fail_refund(uow, refund, PROCESSOR_AMOUNT_MISMATCH, now)
        else:
            account = _lock_account(session, refund.payer_account_id, now)
            _complete_refund(uow, refund, account, now)
    else:
        code = (result.failure_code if result else None) or domain.CHARGE_NOT_REFUNDABLE
        _fail_refund(uow, refund, code, now)
    uow.commit()
    metrics.refund_outcome(refund.payment_method, refund.status, refund.amount, refund.currency)
    return refund_view(refund)


def _complete_refund(uow, refund: Refund, account: BillingAccount, now: dt.datetime) -> None:
    """Post the reversal of the payment (``account``, the payer's, locked) and announce it."""
    _post(
        uow.session,
        account,
        domain.refund_postings(refund.payment_method, refund.payer_account_id, refund.amount),
        kind=domain.REFUND_ENTRY,
        statement_amount=refund.amount,
        now=now,
        refund=refund,
    )
    refund.status = domain.SUCCEEDED
    refund.updated_at = refund.completed_at = now
    uow.emit(
        REFUND_COMPLETED,
        subject=refund.id,
        account_id=refund.account_id,
        data={**_refund_event(refund), "completed_at": now},
    )


def _fail_refund(uow, refund: Refund, code: str, now: dt.datetime) -> None:
    """The card processor refused: nothing moved; operators must pay the buyer back
    another way (``billing.refund.failed`` tells them, and the buyer, why)."""
    refund.status = domain.FAILED
    refund.failure_code = code
    refund.failure_reason = domain.refund_failure_reason(code)
    refund.updated_at = refund.completed_at = now
    _log.error("refund %s of payment %s failed: %s", refund.id, refund.payment_id, code)
    uow.emit(
        REFUND_FAILED,
        subject=refund.id,
        account_id=refund.account_id,
        data={
            **_refund_event(refund),
            "failure_code": code,
            "failure_reason": refund.failure_reason,
            "failed_at": now,
        },
    )


def _refund_event(refund: Refund) -> dict[str, Any]:
    return {
        "refund_id": refund.id,
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "account_id": refund.account_id,
        "payer_account_id": refund.payer_account_id,
        "payment_method": refund.payment_method,
        "amount": money(refund.amount, refund.currency),
        "reason": refund.reason,
    }


def get_refund(uow, *, caller: Identity, order_id: str) -> dict[str, Any]:
    """The refund of an order, for its buyer, its payer (a reseller) or an operator."""
    refund = uow.session.scalar(sa.select(Refund).where(Refund.order_id == order_id))
    if refund is None or not _may_see(caller, refund):
        raise NotFound(f"no refund for order {order_id}")
    return refund_view(refund)


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
    replicas: settling locks the row and re-checks that it is still pending. Each item
    is recovered on its own (``_on_its_own``): one that raises is rolled back, logged
    and counted (``mercato_recovery_errors_total``) and does not hold up the others.
    Answers how many it settled.
    """
    cutoff = clock.now() - grace
    session = uow.session
    payments = session.execute(
        sa.select(Payment.id, Payment.charge_key)
        .where(
            Payment.status == domain.PENDING,
            Payment.updated_at < cutoff,
            Payment.charge_key.is_not(None),
        )
        .order_by(Payment.updated_at)
        .limit(RECOVERY_BATCH)
    ).all()
    top_ups = session.execute(
        sa.select(TopUp.id, TopUp.charge_key)
        .where(TopUp.status == domain.PENDING, TopUp.updated_at < cutoff)
        .order_by(TopUp.updated_at)
        .limit(RECOVERY_BATCH)
    ).all()
    refunds = session.execute(
        sa.select(
            Refund.id, Refund.amount, Refund.currency, Refund.payment_method, Payment.charge_key
        )
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.status == domain.PENDING, Refund.updated_at < cutoff)
        .order_by(Refund.updated_at)
        .limit(RECOVERY_BATCH)
    ).all()
    uow.rollback()  # hold no connection while the gateway is asked
    settled = 0
    for payment_id, key in payments:
        with _on_its_own(uow, "payment", payment_id):
            settled += _recover_payment(uow, clock, gateway, payment_id, key)
    for top_up_id, key in top_ups:
        with _on_its_own(uow, "top_up", top_up_id):
            settled += _recover_top_up(uow, clock, gateway, top_up_id, key)
    for refund_id, amount, currency, method, charge_key in refunds:
        with _on_its_own(uow, "refund", refund_id):
            view = _refund_card(
                uow,
                clock,
                gateway,
                refund_id=refund_id,
                amount=Money(amount, currency),
                method=method,
                charge_key=charge_key,
            )
            if view is not None:
                settled += 1
    return settled


@contextmanager
def _on_its_own(uow, item: str, item_id: str) -> Iterator[None]:
    """Recover one item in isolation: an error rolls back what it wrote, is logged and
    counted, and does not stop the items after it. The item stays pending and is tried
    again next run (a refund the processor made for another amount, which no retry can
    fix, fails in ``settle_card_refund`` instead of raising)."""
    try:
        yield
    except Exception:
        uow.rollback()
        _log.exception("recovery of %s %s failed; it stays pending", item, item_id)
        metrics.recovery_error(item)


def _recover_payment(uow, clock: Clock, gateway: PaymentGateway, payment_id: str, key: str) -> int:
    try:
        result = gateway.lookup(key)
    except GatewayError as exc:
        _log.warning("payment %s stays pending: %s", payment_id, exc)
        return 0
    settle_card_payment(uow, clock, payment_id=payment_id, charge_key=key, result=result)
    return 1


def _recover_top_up(uow, clock: Clock, gateway: PaymentGateway, top_up_id: str, key: str) -> int:
    try:
        result = gateway.lookup(key)
    except GatewayError as exc:
        _log.warning("top-up %s stays pending: %s", top_up_id, exc)
        return 0
    settle_top_up(uow, clock, top_up_id=top_up_id, charge_key=key, result=result)
    return 1


# -- balance, credit limit, statement -----------------------------------------------


def get_balance(uow, *, account_id: str) -> dict[str, Any]:
    return balance_view(account_id, uow.session.get(BillingAccount, account_id))


def set_credit_limit(
    uow, clock: Clock, *, operator: Identity, account_id: str, amount: dict[str, Any]
) -> dict[str, Any]:
    """Grant (or lower, or with 0 withdraw) credit. Lowering it below what is used
    stops further credit payments; nothing already paid changes."""
    limit = Money(amount["amount"], amount["currency"])
    _require_account_currency(limit)
    now = clock.now()
    account = _lock_account(uow.session, account_id, now)
    account.credit_limit = limit.amount
    account.credit_limit_set_by = operator.user_id
    account.updated_at = now
    uow.commit()
    _log.info("credit limit of %s set to %s by %s", account_id, limit.amount, operator.user_id)
    return balance_view(account_id, account)


def list_transactions(uow, *, account_id: str, page: int, page_size: int) -> dict[str, Any]:
    """The account's statement, newest first: what it paid, topped up and was refunded."""
    session = uow.session
    total = session.scalar(
        sa.select(sa.func.count())
        .select_from(JournalEntry)
        .where(JournalEntry.account_id == account_id)
    )
    entries = session.scalars(
        sa.select(JournalEntry)
        .where(JournalEntry.account_id == account_id)
        .order_by(JournalEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return {
        "items": [_transaction_view(entry) for entry in entries],
        "total": int(total or 0),
        "page": page,
        "page_size": page_size,
    }


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
    session = uow.session
    posting_sums = (
        sa.select(
            LedgerPosting.entry_id,
            sa.func.coalesce(sa.func.sum(LedgerPosting.amount), 0).label("total"),
            sa.func.count(LedgerPosting.id).label("postings"),
        )
        .group_by(LedgerPosting.entry_id)
        .subquery()
    )
    unbalanced = session.scalars(
        sa.select(JournalEntry.id)
        .outerjoin(posting_sums, posting_sums.c.entry_id == JournalEntry.id)
        .where(
            sa.or_(
                posting_sums.c.entry_id.is_(None),
                posting_sums.c.total != 0,
                posting_sums.c.postings < 2,
            )
        )
    ).all()
    grand_total = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerPosting.amount), 0)))

    sums: dict[str, dict[str, int]] = {}
    for account_id, ledger_account, total in session.execute(
        sa.select(
            LedgerPosting.account_id,
            LedgerPosting.ledger_account,
            sa.func.sum(LedgerPosting.amount),
        )
        .where(LedgerPosting.account_id.is_not(None))
        .group_by(LedgerPosting.account_id, LedgerPosting.ledger_account)
    ):
        sums.setdefault(account_id, {})[ledger_account] = int(total)
    accounts_out_of_step = []
    accounts = {
        account.account_id: account for account in session.scalars(sa.select(BillingAccount))
    }
    for account_id in sorted(set(accounts) | set(sums)):
        account = accounts.get(account_id)
        stored = _state(account) if account else None
        derived = domain.derived_state(
            account.credit_limit if account else 0, sums.get(account_id, {})
        )
        if stored != derived:
            accounts_out_of_step.append(
                {
                    "account_id": account_id,
                    "stored": asdict(stored) if stored else None,
                    "derived": asdict(derived),
                }
            )

    payments_out_of_step = []
    entry_counts = dict(
        session.execute(
            sa.select(JournalEntry.payment_id, sa.func.count())
            .where(JournalEntry.payment_id.is_not(None))
            .group_by(JournalEntry.payment_id)
        ).all()
    )
    for payment_id, status in session.execute(sa.select(Payment.id, Payment.status)):
        expected = 1 if status == domain.SUCCEEDED else 0
        if entry_counts.get(payment_id, 0) != expected:
            payments_out_of_step.append(payment_id)
    top_up_counts = dict(
        session.execute(
            sa.select(JournalEntry.top_up_id, sa.func.count())
            .where(JournalEntry.top_up_id.is_not(None))
            .group_by(JournalEntry.top_up_id)
        ).all()
    )
    for top_up_id, status in session.execute(sa.select(TopUp.id, TopUp.status)):
        expected = 1 if status == domain.SUCCEEDED else 0
        if top_up_counts.get(top_up_id, 0) != expected:
            payments_out_of_step.append(top_up_id)
    refunds_out_of_step = _refunds_out_of_step(session)
    uow.rollback()
    return {
        "balanced": not (
            unbalanced
            or grand_total
            or accounts_out_of_step
            or payments_out_of_step
            or refunds_out_of_step
        ),
        "ledger_total": int(grand_total or 0),
        "unbalanced_entries": [int(entry_id) for entry_id in unbalanced],
        "accounts_out_of_step": accounts_out_of_step,
        "payments_out_of_step": payments_out_of_step,
        "refunds_out_of_step": refunds_out_of_step,
    }


def _refunds_out_of_step(session: Session) -> list[str]:
    entry_counts: dict[str | None, int] = {
        refund_id: count
        for refund_id, count in session.execute(
            sa.select(JournalEntry.refund_id, sa.func.count())
            .where(JournalEntry.refund_id.is_not(None))
            .group_by(JournalEntry.refund_id)
        )
    }
    out_of_step = []
    for refund_id, status, amount, currency, paid, paid_currency, payment_status in session.execute(
        sa.select(
            Refund.id,
            Refund.status,
            Refund.amount,
            Refund.currency,
            Payment.amount,
            Payment.currency,
            Payment.status,
        ).join(Payment, Payment.id == Refund.payment_id)
    ):
        expected = 1 if status == domain.SUCCEEDED else 0
        if (
            entry_counts.get(refund_id, 0) != expected
            or amount > paid
            or currency != paid_currency
            or payment_status != domain.SUCCEEDED
        ):
            out_of_step.append(refund_id)
    return out_of_step
