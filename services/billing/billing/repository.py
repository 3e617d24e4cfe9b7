"""Billing's statements: every read, lock and write of its tables, behind a name.

``BillingRepository`` is ``uow.billing`` (``service.py`` declares it). The statements
a payment runs are built once, at import, their values bound per call, and rows written
once go through ``insert_now`` (see ``mercato.db``): a balance payment is the locking
reads of the order's payment and of the payer's account, the payment inserted settled,
its journal entry and postings, one Core UPDATE of the account's figures, and the
outbox row.

The exactly-once guards live here as methods that answer whether they won: the unique
``payments.order_id`` (``add_pending_payment``, ``add_settled_payment``), the unique
``refunds.payment_id`` (``add_refund``) and the unique ``(account_id,
idempotency_key)`` of a top-up (``add_top_up``). The use case that loses rolls back and
reads the winner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from billing import domain
from billing.models import (
    BillingAccount,
    CancelledOrder,
    JournalEntry,
    LedgerPosting,
    Payment,
    Refund,
    TopUp,
)
from mercato.db import Page, fetch_page, insert_now, insert_or_ignore


class PendingCardRefund(NamedTuple):
    """A card refund recovery asks the processor for again."""

    refund_id: str
    amount: int
    currency: str
    payment_method: str
    charge_key: str | None  # the refunded payment's charge at the card gateway


class LatePayment(NamedTuple):
    """A succeeded payment of an order orders cancelled unpaid, not refunded yet."""

    payment_id: str
    order_id: str
    account_id: str
    amount: int
    currency: str
    reason: str  # the order's cancel reason


class RefundBesideItsPayment(NamedTuple):
    """What the audit checks a refund against."""

    refund_id: str
    status: str
    amount: int
    currency: str
    paid: int
    paid_currency: str
    payment_status: str


def _locking_read(column: Any, key: str) -> sa.Select:
    """``SELECT … FOR UPDATE`` of the row whose ``column`` is the value bound as ``key``,
    refreshing the object the session may hold already."""
    return (
        sa.select(column.class_)
        .where(column == sa.bindparam(key))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


# the statements every payment runs, built once (see mercato.db)
_LOCKED_ACCOUNT = _locking_read(BillingAccount.account_id, "account_id")
_LOCKED_PAYMENT_OF_ORDER = _locking_read(Payment.order_id, "order_id")
_LOCKED_PAYMENT = _locking_read(Payment.id, "payment_id")
_LOCKED_TOP_UP = _locking_read(TopUp.id, "top_up_id")
_LOCKED_REFUND = _locking_read(Refund.id, "refund_id")
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


class BillingRepository:
    """Accounts, payments, top-ups, refunds and the ledger, in one worker's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- accounts and the ledger ------------------------------------------------------

    def account(self, account_id: str) -> BillingAccount | None:
        return self.session.get(BillingAccount, account_id)

    def lock_account(self, account_id: str, now: dt.datetime) -> BillingAccount:
        """The account's row, created on first use, locked until the transaction ends.

        Two workers may create it at once (``insert_or_ignore``: the second waits for the
        first and then does nothing). The insert runs only when the locking read finds
        no row: an account that pays exists already (its top-up created it), and the
        dialect's upsert is a statement SQLAlchemy cannot cache.
        """
        account = self.session.scalars(_LOCKED_ACCOUNT, {"account_id": account_id}).one_or_none()
        if account is not None:
            return account
        insert_or_ignore(
            self.session,
            BillingAccount,
            {
                "account_id": account_id,
                "currency": domain.account_currency(),
                "balance": 0,
                "credit_limit": 0,
                "credit_used": 0,
                "created_at": now,
                "updated_at": now,
            },
            unique=["account_id"],
        )
        return self.session.scalars(_LOCKED_ACCOUNT, {"account_id": account_id}).one()

    def move_account(
        self, account: BillingAccount, after: domain.AccountState, now: dt.datetime
    ) -> None:
        """Write ``account``'s new figures (its row locked) with one Core UPDATE, and
        keep the loaded object in step with its row, so nothing is flushed again."""
        self.session.execute(
            _MOVE_ACCOUNT,
            {
                "account": account.account_id,
                "new_balance": after.balance,
                "new_credit_used": after.credit_used,
                "now": now,
            },
        )
        set_committed_value(account, "balance", after.balance)
        set_committed_value(account, "credit_used", after.credit_used)
        set_committed_value(account, "updated_at", now)

    def add_journal_entry(self, entry: JournalEntry, postings: Iterable[domain.Posting]) -> None:
        """Write ``entry`` and its postings (in the entry's currency), each once."""
        insert_now(self.session, entry)  # its id, for the postings
        insert_now(
            self.session,
            *(
                LedgerPosting(
                    entry_id=entry.id,
                    ledger_account=posting.ledger_account,
                    account_id=posting.account_id,
                    amount=posting.amount,
                    currency=entry.currency,
                )
                for posting in postings
            ),
        )

    def statement(self, account_id: str, page: int, page_size: int) -> Page:
        """The account's journal entries, newest first."""
        return fetch_page(
            self.session,
            sa.select(JournalEntry)
            .where(JournalEntry.account_id == account_id)
            .order_by(JournalEntry.id.desc()),
            page,
            page_size,
        )

    # -- payments ---------------------------------------------------------------------

    def lock_payment_of_order(self, order_id: str) -> Payment | None:
        return self.session.scalars(_LOCKED_PAYMENT_OF_ORDER, {"order_id": order_id}).one_or_none()

    def lock_payment(self, payment_id: str) -> Payment | None:
        return self.session.scalars(_LOCKED_PAYMENT, {"payment_id": payment_id}).one_or_none()

    def payment_of_order(self, order_id: str) -> Payment | None:
        return self.session.scalar(sa.select(Payment).where(Payment.order_id == order_id))

    def add_pending_payment(self, payment: Payment) -> bool:
        """Write a card payment's first attempt now, before the gateway is asked. False
        when another pay of the order wrote its payment first (roll back, read it)."""
        self.session.add(payment)
        try:
            self.session.flush()
        except IntegrityError:  # order_id is unique
            return False
        return True

    def add_settled_payment(self, payment: Payment) -> bool:
        """Write a payment settled as it is made (from an account), once. False when
        another pay of the order wrote its payment first (roll back, read it)."""
        try:
            insert_now(self.session, payment)
        except IntegrityError:  # order_id is unique
            return False
        return True

    def pending_card_payments(self, older_than: dt.datetime, limit: int) -> list[tuple[str, str]]:
        """``(payment id, charge key)`` of card attempts pending since before
        ``older_than``, oldest first."""
        rows = self.session.execute(
            sa.select(Payment.id, Payment.charge_key)
            .where(
                Payment.status == domain.PENDING,
                Payment.updated_at < older_than,
                Payment.charge_key.is_not(None),
            )
            .order_by(Payment.updated_at)
            .limit(limit)
        ).all()
        return [(payment_id, cast(str, key)) for payment_id, key in rows]

    # -- top-ups ----------------------------------------------------------------------

    def top_up(self, top_up_id: str) -> TopUp | None:
        return self.session.get(TopUp, top_up_id)

    def lock_top_up(self, top_up_id: str) -> TopUp:
        return self.session.scalars(_LOCKED_TOP_UP, {"top_up_id": top_up_id}).one()

    def top_up_by_key(self, account_id: str, idempotency_key: str) -> TopUp | None:
        return self.session.scalar(
            sa.select(TopUp).where(
                TopUp.account_id == account_id, TopUp.idempotency_key == idempotency_key
            )
        )

    def add_top_up(self, top_up: TopUp) -> bool:
        """Write a pending top-up. False when a top-up with its idempotency key was
        written meanwhile (roll back, read it)."""
        self.session.add(top_up)
        try:
            self.session.flush()
        except IntegrityError:  # (account_id, idempotency_key) is unique
            return False
        return True

    def pending_top_ups(self, older_than: dt.datetime, limit: int) -> list[tuple[str, str]]:
        """``(top-up id, charge key)`` of top-ups pending since before ``older_than``,
        oldest first."""
        rows = self.session.execute(
            sa.select(TopUp.id, TopUp.charge_key)
            .where(TopUp.status == domain.PENDING, TopUp.updated_at < older_than)
            .order_by(TopUp.updated_at)
            .limit(limit)
        ).all()
        return [(top_up_id, key) for top_up_id, key in rows]

    # -- refunds ----------------------------------------------------------------------

    def refund_of_payment(self, payment_id: str) -> Refund | None:
        return self.session.scalars(
            sa.select(Refund)
            .where(Refund.payment_id == payment_id)
            .execution_options(populate_existing=True)
        ).one_or_none()

    def refund_of_order(self, order_id: str) -> Refund | None:
        return self.session.scalar(sa.select(Refund).where(Refund.order_id == order_id))

    def lock_refund(self, refund_id: str) -> Refund:
        return self.session.scalars(_LOCKED_REFUND, {"refund_id": refund_id}).one()

    def add_refund(self, refund: Refund) -> bool:
        """Write a pending refund. False when the payment has a refund already (its
        ``payment_id`` is unique, should its row lock be bypassed): read that one. The
        caller's transaction goes on either way."""
        try:
            with self.session.begin_nested():
                self.session.add(refund)
        except IntegrityError:
            if self.refund_of_payment(refund.payment_id) is None:
                raise
            return False
        return True

    def pending_card_refunds(self, older_than: dt.datetime, limit: int) -> list[PendingCardRefund]:
        """Refunds pending since before ``older_than`` (card refunds the processor has
        not confirmed), oldest first."""
        rows = self.session.execute(
            sa.select(
                Refund.id, Refund.amount, Refund.currency, Refund.payment_method, Payment.charge_key
            )
            .join(Payment, Payment.id == Refund.payment_id)
            .where(Refund.status == domain.PENDING, Refund.updated_at < older_than)
            .order_by(Refund.updated_at)
            .limit(limit)
        ).all()
        return [PendingCardRefund(*row) for row in rows]

    # -- orders cancelled before they were paid ----------------------------------------

    def add_cancelled_order(
        self, order_id: str, account_id: str, reason: str, now: dt.datetime
    ) -> None:
        """Record, once, that orders cancelled ``order_id`` unpaid."""
        if self.session.get(CancelledOrder, order_id) is not None:
            return
        insert_or_ignore(
            self.session,
            CancelledOrder,
            {"order_id": order_id, "account_id": account_id, "reason": reason, "cancelled_at": now},
            unique=["order_id"],
        )

    def is_cancelled_order(self, order_id: str) -> bool:
        return self.session.get(CancelledOrder, order_id) is not None

    def late_payments(self, limit: int) -> list[LatePayment]:
        """Succeeded payments of orders cancelled unpaid that have no refund yet, oldest
        first: each is to be refunded in full."""
        rows = self.session.execute(
            sa.select(
                Payment.id,
                Payment.order_id,
                Payment.account_id,
                Payment.amount,
                Payment.currency,
                CancelledOrder.reason,
            )
            .join(CancelledOrder, CancelledOrder.order_id == Payment.order_id)
            .outerjoin(Refund, Refund.payment_id == Payment.id)
            .where(Payment.status == domain.SUCCEEDED, Refund.id.is_(None))
            .order_by(Payment.completed_at)
            .limit(limit)
        ).all()
        return [LatePayment(*row) for row in rows]

    # -- the audit's reads ------------------------------------------------------------

    def unbalanced_entries(self) -> list[int]:
        """Journal entries whose postings do not sum to zero, or that have fewer than
        two postings."""
        posting_sums = (
            sa.select(
                LedgerPosting.entry_id,
                sa.func.coalesce(sa.func.sum(LedgerPosting.amount), 0).label("total"),
                sa.func.count(LedgerPosting.id).label("postings"),
            )
            .group_by(LedgerPosting.entry_id)
            .subquery()
        )
        entry_ids = self.session.scalars(
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
        return [int(entry_id) for entry_id in entry_ids]

    def ledger_total(self) -> int:
        """The sum of every posting (zero when the books balance)."""
        total = self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerPosting.amount), 0))
        )
        return int(total or 0)

    def posting_sums(self) -> dict[str, dict[str, int]]:
        """Per marketplace account, the sum of its postings on each of its ledgers."""
        sums: dict[str, dict[str, int]] = {}
        for account_id, ledger_account, total in self.session.execute(
            sa.select(
                LedgerPosting.account_id,
                LedgerPosting.ledger_account,
                sa.func.sum(LedgerPosting.amount),
            )
            .where(LedgerPosting.account_id.is_not(None))
            .group_by(LedgerPosting.account_id, LedgerPosting.ledger_account)
        ):
            sums.setdefault(account_id, {})[ledger_account] = int(total)
        return sums

    def accounts(self) -> dict[str, BillingAccount]:
        return {
            account.account_id: account
            for account in self.session.scalars(sa.select(BillingAccount))
        }

    def payment_statuses(self) -> dict[str, str]:
        return dict(self.session.execute(sa.select(Payment.id, Payment.status)).tuples().all())

    def top_up_statuses(self) -> dict[str, str]:
        return dict(self.session.execute(sa.select(TopUp.id, TopUp.status)).tuples().all())

    def entries_per_payment(self) -> dict[str, int]:
        return self._entries_per(JournalEntry.payment_id)

    def entries_per_top_up(self) -> dict[str, int]:
        return self._entries_per(JournalEntry.top_up_id)

    def entries_per_refund(self) -> dict[str, int]:
        return self._entries_per(JournalEntry.refund_id)

    def _entries_per(self, column) -> dict[str, int]:
        return dict(
            self.session.execute(
                sa.select(column, sa.func.count()).where(column.is_not(None)).group_by(column)
            )
            .tuples()
            .all()
        )

    def refunds_beside_their_payments(self) -> list[RefundBesideItsPayment]:
        rows = self.session.execute(
            sa.select(
                Refund.id,
                Refund.status,
                Refund.amount,
                Refund.currency,
                Payment.amount,
                Payment.currency,
                Payment.status,
            ).join(Payment, Payment.id == Refund.payment_id)
        ).all()
        return [RefundBesideItsPayment(*row) for row in rows]
