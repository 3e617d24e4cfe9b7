"""In-memory stand-ins for billing's repository, card processor and callers, for use-case tests
that run in milliseconds (``test_usecases.py``; ``test_refunds.py`` runs the processor
against PostgreSQL). ``FakeBillingRepository`` answers the named methods of
``billing.repository.BillingRepository`` from dicts of the same model objects, and
goes back to what was last committed on rollback, so a test can prove that a refused
request changed nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from billing import domain
from billing.domain import Card
from billing.models import BillingAccount, JournalEntry, Payment, Refund, TopUp
from billing.payment_gateway import (
    CHARGE_DECLINED,
    CHARGE_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    ChargeResult,
    GatewayTimeout,
    PaymentGateway,
    RefundResult,
    UnknownCard,
)
from billing.repository import LatePayment, PendingCardRefund, RefundBesideItsPayment
from mercato.db import Page
from mercato.identity import Identity
from mercato.money import Money
from mercato_testing.fakes import InMemoryRepository

ACCOUNTS, PAYMENTS, TOP_UPS, REFUNDS = "accounts", "payments", "top_ups", "refunds"
ENTRIES, POSTINGS = "journal_entries", "ledger_postings"
CANCELLED = "cancelled_orders"


class FakeBillingRepository(InMemoryRepository):
    """``BillingRepository`` in memory. Locks are not needed: a test runs one request
    at a time. ``pay_concurrently_first`` plays the concurrent pay that wins an order."""

    def __init__(self) -> None:
        super().__init__()
        self._winner: Payment | None = None

    def pay_concurrently_first(self, payment: Payment) -> None:
        """The next payment written for ``payment``'s order finds ``payment`` there,
        written and committed by a concurrent request."""
        self._winner = payment

    def rows(self) -> dict[str, dict[Any, Any]]:
        """Every row's columns, by table: what a test compares to prove that a refused
        request changed nothing."""
        return {
            name: {key: _columns(row) for key, row in rows.items()}
            for name, rows in self.tables.items()
        }

    def committed(self, name: str) -> dict[Any, Any]:
        """The rows of table ``name`` as the last commit left them."""
        return self._committed.get(name, {})

    # -- accounts and the ledger ------------------------------------------------------

    def account(self, account_id: str) -> BillingAccount | None:
        return self.table(ACCOUNTS).get(account_id)

    def lock_account(self, account_id: str, now: dt.datetime) -> BillingAccount:
        accounts = self.table(ACCOUNTS)
        if account_id not in accounts:
            accounts[account_id] = BillingAccount(
                account_id=account_id,
                currency=domain.account_currency(),
                balance=0,
                credit_limit=0,
                credit_used=0,
                credit_limit_set_by=None,
                created_at=now,
                updated_at=now,
            )
        return accounts[account_id]

    def move_account(
        self, account: BillingAccount, after: domain.AccountState, now: dt.datetime
    ) -> None:
        account.balance = after.balance
        account.credit_used = after.credit_used
        account.updated_at = now

    def add_journal_entry(self, entry: JournalEntry, postings: Iterable[domain.Posting]) -> None:
        entries = self.table(ENTRIES)
        if any(
            getattr(other, column) is not None and getattr(other, column) == getattr(entry, column)
            for other in entries.values()
            for column in ("payment_id", "top_up_id", "refund_id")
        ):
            raise AssertionError(f"a second journal entry for {entry.kind}")  # unique
        entry.id = len(entries) + 1
        if entry.refund_id is not None:
            entry.refund = self.table(REFUNDS)[entry.refund_id]
        entries[entry.id] = entry
        self.table(POSTINGS)[entry.id] = list(postings)

    def statement(self, account_id: str, page: int, page_size: int) -> Page:
        entries = sorted(
            (entry for entry in self.table(ENTRIES).values() if entry.account_id == account_id),
            key=lambda entry: -entry.id,
        )
        start = (page - 1) * page_size
        return Page(entries[start : start + page_size], len(entries), page, page_size)

    # -- payments ---------------------------------------------------------------------

    def lock_payment_of_order(self, order_id: str) -> Payment | None:
        return self.payment_of_order(order_id)

    def lock_payment(self, payment_id: str) -> Payment | None:
        return self.table(PAYMENTS).get(payment_id)

    def payment_of_order(self, order_id: str) -> Payment | None:
        return next(
            (row for row in self.table(PAYMENTS).values() if row.order_id == order_id), None
        )

    def add_pending_payment(self, payment: Payment) -> bool:
        return self._add_payment(payment)

    def add_settled_payment(self, payment: Payment) -> bool:
        return self._add_payment(payment)

    def _add_payment(self, payment: Payment) -> bool:
        winner, self._winner = self._winner, None
        if winner is not None and winner.order_id == payment.order_id:
            self.table(PAYMENTS)[winner.id] = winner
            self._committed.setdefault(PAYMENTS, {})[winner.id] = copy.deepcopy(winner)
        if self.payment_of_order(payment.order_id) is not None:
            return False  # order_id is unique
        self.table(PAYMENTS)[payment.id] = payment
        return True

    def pending_card_payments(self, older_than: dt.datetime, limit: int) -> list[tuple[str, str]]:
        rows = self._pending(PAYMENTS, older_than, limit)
        return [(row.id, row.charge_key) for row in rows if row.charge_key is not None]

    # -- top-ups ----------------------------------------------------------------------

    def top_up(self, top_up_id: str) -> TopUp | None:
        return self.table(TOP_UPS).get(top_up_id)

    def lock_top_up(self, top_up_id: str) -> TopUp:
        return self.table(TOP_UPS)[top_up_id]

    def top_up_by_key(self, account_id: str, idempotency_key: str) -> TopUp | None:
        return next(
            (
                row
                for row in self.table(TOP_UPS).values()
                if (row.account_id, row.idempotency_key) == (account_id, idempotency_key)
            ),
            None,
        )

    def add_top_up(self, top_up: TopUp) -> bool:
        key = top_up.idempotency_key
        if key is not None and self.top_up_by_key(top_up.account_id, key) is not None:
            return False
        self.table(TOP_UPS)[top_up.id] = top_up
        return True

    def pending_top_ups(self, older_than: dt.datetime, limit: int) -> list[tuple[str, str]]:
        return [(row.id, row.charge_key) for row in self._pending(TOP_UPS, older_than, limit)]

    # -- refunds ----------------------------------------------------------------------

    def refund_of_payment(self, payment_id: str) -> Refund | None:
        return next(
            (row for row in self.table(REFUNDS).values() if row.payment_id == payment_id), None
        )

    def refund_of_order(self, order_id: str) -> Refund | None:
        return next((row for row in self.table(REFUNDS).values() if row.order_id == order_id), None)

    def lock_refund(self, refund_id: str) -> Refund:
        return self.table(REFUNDS)[refund_id]

    def add_refund(self, refund: Refund) -> bool:
        if self.refund_of_payment(refund.payment_id) is not None:
            return False  # payment_id is unique
        self.table(REFUNDS)[refund.id] = refund
        return True

    def pending_card_refunds(self, older_than: dt.datetime, limit: int) -> list[PendingCardRefund]:
        return [
            PendingCardRefund(
                refund.id, refund.amount, refund.currency, refund.payment_method, paid.charge_key
            )
            for refund, paid in self._beside_payments(self._pending(REFUNDS, older_than, limit))
        ]

    def _beside_payments(self, refunds: Iterable[Refund]) -> list[tuple[Refund, Payment]]:
        payments = self.table(PAYMENTS)
        return [(refund, payments[refund.payment_id]) for refund in refunds]

    def _pending(self, table: str, older_than: dt.datetime, limit: int) -> list:
        rows = [
            row
            for row in self.table(table).values()
            if row.status == domain.PENDING and row.updated_at < older_than
        ]
        return sorted(rows, key=lambda row: row.updated_at)[:limit]

    # -- orders cancelled before they were paid ----------------------------------------

    def add_cancelled_order(
        self, order_id: str, account_id: str, reason: str, now: dt.datetime
    ) -> None:
        self.table(CANCELLED).setdefault(order_id, (account_id, reason))

    def is_cancelled_order(self, order_id: str) -> bool:
        return order_id in self.table(CANCELLED)

    def late_payments(self, limit: int) -> list[LatePayment]:
        cancelled = self.table(CANCELLED)
        return [
            LatePayment(row.id, row.order_id, row.account_id, row.amount, row.currency, reason)
            for row in self.table(PAYMENTS).values()
            if row.order_id in cancelled
            and row.status == domain.SUCCEEDED
            and self.refund_of_payment(row.id) is None
            for _account, reason in [cancelled[row.order_id]]
        ][:limit]

    # -- the audit's reads ------------------------------------------------------------

    def unbalanced_entries(self) -> list[int]:
        return [
            entry_id
            for entry_id, postings in self.table(POSTINGS).items()
            if not domain.is_balanced(postings)
        ]

    def ledger_total(self) -> int:
        return sum(posting.amount for postings in self._all_postings() for posting in postings)

    def posting_sums(self) -> dict[str, dict[str, int]]:
        sums: dict[str, dict[str, int]] = {}
        for postings in self._all_postings():
            for posting in postings:
                if posting.account_id is not None:
                    ledgers = sums.setdefault(posting.account_id, {})
                    ledgers[posting.ledger_account] = (
                        ledgers.get(posting.ledger_account, 0) + posting.amount
                    )
        return sums

    def _all_postings(self) -> Iterable[list[domain.Posting]]:
        return self.table(POSTINGS).values()

    def accounts(self) -> dict[str, BillingAccount]:
        return dict(self.table(ACCOUNTS))

    def payment_statuses(self) -> dict[str, str]:
        return {row.id: row.status for row in self.table(PAYMENTS).values()}

    def top_up_statuses(self) -> dict[str, str]:
        return {row.id: row.status for row in self.table(TOP_UPS).values()}

    def entries_per_payment(self) -> dict[str, int]:
        return self._entries_per(lambda entry: entry.payment_id)

    def entries_per_top_up(self) -> dict[str, int]:
        return self._entries_per(lambda entry: entry.top_up_id)

    def entries_per_refund(self) -> dict[str, int]:
        return self._entries_per(lambda entry: entry.refund_id)

    def _entries_per(self, about: Callable[[JournalEntry], str | None]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.table(ENTRIES).values():
            item_id = about(entry)
            if item_id is not None:
                counts[item_id] = counts.get(item_id, 0) + 1
        return counts

    def refunds_beside_their_payments(self) -> list[RefundBesideItsPayment]:
        return [
            RefundBesideItsPayment(
                refund.id,
                refund.status,
                refund.amount,
                refund.currency,
                paid.amount,
                paid.currency,
                paid.status,
            )
            for refund, paid in self._beside_payments(self.table(REFUNDS).values())
        ]


def who(account_id: str, role: str, reseller: str | None = None) -> Identity:
    """A caller of ``account_id`` in ``role`` (for a reseller's customer, its reseller)."""
    return Identity(
        account_id=account_id,
        user_id=f"usr_{account_id}",
        account_type=role,
        roles=(role,),
        reseller_account_id=reseller,
    )


def started_payment(
    payment_id: str,
    order_id: str,
    account_id: str,
    amount: int,
    card: Card | None,
    now: dt.datetime,
) -> Payment:
    """A new payment's first attempt (by ``card``, else from the buyer's balance), as
    a pay request makes it, not written anywhere."""
    payment = Payment(
        id=payment_id,
        order_id=order_id,
        account_id=account_id,
        payer_account_id=account_id,
        enterprise_project_id="default",
        amount=amount,
        currency=domain.account_currency(),
        created_at=now,
    )
    payment.start(domain.CREDIT_CARD if card else domain.BALANCE, card, now)
    return payment


def _columns(row: Any) -> Any:
    if isinstance(row, list):  # an entry's postings
        return list(row)
    return {column.key: getattr(row, column.key) for column in sa.inspect(type(row)).column_attrs}


@dataclass
class FakeCardProcessor(PaymentGateway):
    """A card processor in memory: charges and refunds once per key.

    A token is ``tok_`` and the card's digits (``tok_4242424242424242``): any such
    token is a Visa card expiring 12/35 ending in its last four digits; anything else is
    unknown. ``declining`` maps tokens to the decline code it answers for them;
    ``silent_charges`` and ``silent_refunds`` count the next calls whose charge or
    refund it makes but whose answer it loses (as a timeout would); ``unreachable``
    makes every call time out having done nothing; ``refusing`` makes it refuse every
    refund. ``on_charge`` is called once a charge is made, before it is answered (to let
    something happen meanwhile), ``on_refund`` before each refund (to look at what the
    caller committed before asking).
    """

    charges: dict[str, ChargeResult] = field(default_factory=dict)
    refunds: dict[str, RefundResult] = field(default_factory=dict)
    declining: dict[str, str] = field(default_factory=dict)
    silent_charges: int = 0
    silent_refunds: int = 0
    unreachable: bool = False
    refusing: bool = False
    charge_calls: int = 0
    on_charge: Callable[[], None] | None = None
    on_refund: Callable[[], None] | None = None

    kept: dict[str, Card] = field(default_factory=dict)

    def card(self, token: str) -> Card | None:
        # answered even when ``unreachable``: that plays a charge lost on its way
        if not (token.startswith("tok_") and token[4:].isdigit()):
            return None
        return Card(source=token, brand="visa", last4=token[-4:], expiry="12/35")

    def keep(self, token: str, idempotency_key: str) -> Card:
        found = self.card(token)
        if found is None:
            raise UnknownCard(token)
        kept = Card(
            source=f"card_{len(self.kept)}", brand="visa", last4=found.last4, expiry=found.expiry
        )
        return self.kept.setdefault(idempotency_key, kept)

    def forget(self, source: str) -> None:
        self._reach("forget card")

    def charge(self, idempotency_key: str, card: Card, amount: Money) -> ChargeResult:
        self.charge_calls += 1
        self._reach("charge")
        if idempotency_key not in self.charges:
            code = self.declining.get(card.source)
            self.charges[idempotency_key] = ChargeResult(
                idempotency_key,
                f"ch_{len(self.charges)}",
                CHARGE_DECLINED if code else CHARGE_SUCCEEDED,
                amount,
                code,
            )
        if self.on_charge is not None:
            self.on_charge()
        if self.silent_charges:
            self.silent_charges -= 1
            raise GatewayTimeout("the card gateway did not answer charge")
        return self.charges[idempotency_key]

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        self._reach("lookup")
        return self.charges.get(idempotency_key)

    def refund(self, charge_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        if self.on_refund is not None:
            self.on_refund()
        self._reach("refund")
        if idempotency_key not in self.refunds:
            failed = (REFUND_FAILED, "refund_declined")
            status, code = failed if self.refusing else (REFUND_SUCCEEDED, None)
            self.refunds[idempotency_key] = RefundResult(
                idempotency_key, f"re_{len(self.refunds)}", charge_reference, status, amount, code
            )
        if self.silent_refunds:
            self.silent_refunds -= 1
            raise GatewayTimeout("the card gateway did not answer refund")
        return self.refunds[idempotency_key]

    def _reach(self, call: str) -> None:
        if self.unreachable:
            raise GatewayTimeout(f"the card gateway did not answer {call}")
