"""Billing's rules: the chart of ledger accounts, what each payment and refund posts,
when an account may pay or be refunded, the moves of a payment, a top-up and a refund
(each a ``StateMachine``, a method per move that records the event it causes), and what
Mercato knows of a card (``Card``: the provider's reference, never the number). No
nameko, no SQL.

The ledger is double entry. Every journal entry is a set of postings whose signed
amounts (minor units, debit positive, credit negative) sum to zero. The ledger
accounts, from the marketplace's side:

==================== ======== =============================================================
ledger account       per      meaning
==================== ======== =============================================================
customer_balance     account  prepaid money the marketplace holds for the account (liability)
credit_receivable    account  what the account owes for orders paid on credit (asset)
reseller_receivable  account  what a reseller owes for its customers' orders (asset); the
                              reseller settles it with the marketplace outside Mercato
card_clearing        --       money the card processor owes the marketplace (asset)
sales                --       what the marketplace owes sellers for paid orders (liability)
==================== ======== =============================================================

A billing account's figures are kept in step with its postings:

- ``balance = -(customer_balance) - (reseller_receivable)``: prepaid money less what a
  reseller owes, so a reseller's balance goes negative as it pays for its customers;
- ``credit_used = credit_receivable``.

Every account has a credit limit (0 until an operator grants one), and what it owes
never exceeds it: credit used plus a negative balance (a reseller's debt for its
customers' orders). So a reseller pays for its customers only within its limit, as
anyone pays on credit (``AccountState.authorize``).

A refund is the mirror of the payment it returns: the same two ledger accounts, the
signs swapped (``refund_postings``). So a balance refund credits the buyer's
``customer_balance`` again, a credit refund lowers ``credit_receivable`` (credit used),
a reseller refund lowers the reseller's ``reseller_receivable`` (its balance comes back
up, exactly as its payment took it down) and a card refund moves money from ``sales``
back to ``card_clearing``, out of which the card processor pays the card back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mercato.domain import RecordsEvents, StateMachine
from mercato.errors import BusinessRuleViolation, Conflict, PaymentRequired, ValidationError
from mercato.money import Money, marketplace_currency, money, require_marketplace_currency
from mercato.terms import BALANCE, CREDIT, CREDIT_CARD, RESELLER

# the statuses of a payment, a top-up and a refund
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

# the events billing's moves cause
PAYMENT_SUCCEEDED = "billing.payment.succeeded"
PAYMENT_FAILED = "billing.payment.failed"
REFUND_COMPLETED = "billing.refund.completed"
REFUND_FAILED = "billing.refund.failed"

# ledger accounts
CUSTOMER_BALANCE = "customer_balance"
CREDIT_RECEIVABLE = "credit_receivable"
RESELLER_RECEIVABLE = "reseller_receivable"
CARD_CLEARING = "card_clearing"
SALES = "sales"
PER_ACCOUNT_LEDGERS = (CUSTOMER_BALANCE, CREDIT_RECEIVABLE, RESELLER_RECEIVABLE)
LEDGER_ACCOUNTS = (*PER_ACCOUNT_LEDGERS, CARD_CLEARING, SALES)

# journal entry kinds (the "kind" of a transaction in the statement)
PAYMENT_ENTRY, TOP_UP_ENTRY, REFUND_ENTRY = "payment", "top_up", "refund"

# business rules a refund can break (BusinessRuleViolation codes)
REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
REFUND_CURRENCY_MISMATCH = "REFUND_CURRENCY_MISMATCH"
PAYMENT_NOT_REFUNDABLE = "PAYMENT_NOT_REFUNDABLE"

# why a card charge failed: code -> what the buyer reads
CARD_DECLINED = "card_declined"
INSUFFICIENT_FUNDS = "insufficient_funds"
GATEWAY_NO_CHARGE = "gateway_no_charge"
FAILURE_REASONS = {
    CARD_DECLINED: "The card was declined.",
    INSUFFICIENT_FUNDS: "The card was declined: insufficient funds.",
    GATEWAY_NO_CHARGE: "The card gateway did not take the charge; nothing was charged.",
}


# why the card processor refused a refund: code -> what the buyer and operators read
REFUND_DECLINED = "refund_declined"
CHARGE_NOT_REFUNDABLE = "charge_not_refundable"
# the processor refunded another amount under the refund's key; asking again cannot fix it
PROCESSOR_AMOUNT_MISMATCH = "processor_amount_mismatch"
REFUND_FAILURE_REASONS = {
    REFUND_DECLINED: "The card issuer refused the refund (the card account may be closed).",
    CHARGE_NOT_REFUNDABLE: "The card processor has no refundable charge for this payment.",
}


def failure_reason(code: str) -> str:
    return FAILURE_REASONS.get(code, f"The payment failed ({code}).")


def refund_failure_reason(code: str) -> str:
    return REFUND_FAILURE_REASONS.get(code, f"The refund failed ({code}).")


# -- the ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    ledger_account: str
    account_id: str | None  # the marketplace account, for per-account ledgers
    amount: int  # debit positive, credit negative


def is_balanced(postings: Iterable[Posting]) -> bool:
    postings = list(postings)
    return len(postings) >= 2 and sum(posting.amount for posting in postings) == 0


def payment_postings(method: str, payer_account_id: str, amount: int) -> list[Posting]:
    """The two sides of paying ``amount`` for an order: the payer's side is debited,
    the sellers' (sales) side is credited."""
    if amount <= 0:
        raise ValueError("a payment moves a positive amount")
    debit = {
        BALANCE: Posting(CUSTOMER_BALANCE, payer_account_id, amount),
        CREDIT: Posting(CREDIT_RECEIVABLE, payer_account_id, amount),
        RESELLER: Posting(RESELLER_RECEIVABLE, payer_account_id, amount),
        CREDIT_CARD: Posting(CARD_CLEARING, None, amount),
    }[method]
    return [debit, Posting(SALES, None, -amount)]


def refund_postings(method: str, payer_account_id: str, amount: int) -> list[Posting]:
    """The two sides of returning ``amount`` of a payment made with ``method``: the
    payment's postings with their signs swapped (``sales`` debited, the payer's side
    credited), so a payment and its full refund sum to nothing on every ledger."""
    if amount <= 0:
        raise ValueError("a refund moves a positive amount")
    return [
        Posting(posting.ledger_account, posting.account_id, -posting.amount)
        for posting in payment_postings(method, payer_account_id, amount)
    ]


def check_refund(
    *, paid: Money, payment_status: str, refund: Money, payment_id: str = "the payment"
) -> None:
    """Refuse (BusinessRuleViolation, nothing changes) a refund the payment cannot
    give: of a payment that did not succeed, in another currency, or of more than was
    paid."""
    if payment_status != SUCCEEDED:
        raise BusinessRuleViolation(
            f"{payment_id} is {payment_status}, not succeeded: there is nothing to refund",
            code=PAYMENT_NOT_REFUNDABLE,
        )
    if refund.currency != paid.currency:
        raise BusinessRuleViolation(
            f"a refund of {payment_id} must be in {paid.currency}, not {refund.currency}",
            {"refund.currency": [f"must be {paid.currency}, the payment's currency"]},
            code=REFUND_CURRENCY_MISMATCH,
        )
    if refund.amount <= 0:
        raise ValidationError(
            "a refund moves a positive amount", {"refund.amount": ["must be at least 1"]}
        )
    if refund.amount > paid.amount:
        raise BusinessRuleViolation(
            f"a refund of {refund.amount} exceeds the {paid.amount} paid by {payment_id}",
            {"refund.amount": [f"must be at most {paid.amount}, the amount paid"]},
            code=REFUND_EXCEEDS_PAYMENT,
        )


def top_up_postings(account_id: str, amount: int) -> list[Posting]:
    """Money taken from a card becomes the account's prepaid balance."""
    if amount <= 0:
        raise ValueError("a top-up moves a positive amount")
    return [Posting(CARD_CLEARING, None, amount), Posting(CUSTOMER_BALANCE, account_id, -amount)]


@dataclass(frozen=True)
class AccountState:
    """A billing account's figures, in minor units of its currency."""

    balance: int = 0
    credit_limit: int = 0
    credit_used: int = 0

    @property
    def owed(self) -> int:
        """What the account owes the marketplace: credit used, and a negative balance
        (a reseller's, for its customers' orders)."""
        return self.credit_used + max(0, -self.balance)

    @property
    def available_credit(self) -> int:
        return max(0, self.credit_limit - self.owed)

    def apply(self, account_id: str, postings: Iterable[Posting]) -> AccountState:
        """The figures after ``postings`` (only those on this account's ledgers count)."""
        balance, credit_used = self.balance, self.credit_used
        for posting in postings:
            if posting.account_id != account_id:
                continue
            if posting.ledger_account in (CUSTOMER_BALANCE, RESELLER_RECEIVABLE):
                balance -= posting.amount
            elif posting.ledger_account == CREDIT_RECEIVABLE:
                credit_used += posting.amount
        return replace(self, balance=balance, credit_used=credit_used)

    def authorize(self, method: str, amount: int) -> None:
        """Refuse (PaymentRequired, nothing changes) what the account cannot pay.

        A card payment does not touch the account. A reseller's payment takes its
        balance first and then goes negative (it settles outside Mercato), but what it
        owes stays within its credit limit, as a credit payment's does.
        """
        if method == BALANCE and self.balance < amount:
            raise PaymentRequired(
                f"insufficient balance: {amount} needed, {max(self.balance, 0)} available"
            )
        if method == CREDIT and self.owed + amount > self.credit_limit:
            raise PaymentRequired(
                f"credit limit exceeded: {amount} needed, {self.available_credit} of "
                f"{self.credit_limit} available"
            )
        if method == RESELLER and self.credit_used + max(0, amount - self.balance) > (
            self.credit_limit
        ):
            raise PaymentRequired(
                f"the reseller's credit limit is exceeded: {amount} needed, "
                f"{max(self.balance, 0)} of balance and {self.available_credit} of "
                f"{self.credit_limit} credit available",
                code="RESELLER_CREDIT_LIMIT_EXCEEDED",
            )


def derived_state(credit_limit: int, sums: Mapping[str, int]) -> AccountState:
    """The figures the ledger says an account has: ``sums`` maps each of its per-account
    ledgers to the sum of its postings."""
    return AccountState(
        balance=-sums.get(CUSTOMER_BALANCE, 0) - sums.get(RESELLER_RECEIVABLE, 0),
        credit_limit=credit_limit,
        credit_used=sums.get(CREDIT_RECEIVABLE, 0),
    )


def account_currency() -> str:
    """Billing accounts are kept in the marketplace currency (``MARKETPLACE_CURRENCY``)."""
    return marketplace_currency()


def require_account_currency(price: Money, field: str = "amount.currency") -> None:
    """Refuse (ValidationError naming ``field``) money not in the marketplace currency."""
    require_marketplace_currency(price.currency, field)


class AccountFigures:
    """A billing account's rules (``models.BillingAccount`` maps its columns). Its
    figures change only with the postings that explain them (``figures_after``), or,
    for the credit limit, by an operator."""

    if TYPE_CHECKING:
        account_id: str
        currency: str
        balance: int
        credit_limit: int
        credit_used: int
        credit_limit_set_by: str | None
        updated_at: dt.datetime

    @property
    def figures(self) -> AccountState:
        return AccountState(
            balance=self.balance, credit_limit=self.credit_limit, credit_used=self.credit_used
        )

    def authorize(self, method: str, amount: int) -> None:
        """Refuse (PaymentRequired, nothing changes) what the account cannot pay."""
        self.figures.authorize(method, amount)

    def figures_after(self, postings: list[Posting]) -> AccountState:
        """The figures once the journal entry of ``postings`` is written; an unbalanced
        entry is a bug, never written."""
        if not is_balanced(postings):
            raise RuntimeError(f"unbalanced journal entry: {postings}")
        return self.figures.apply(self.account_id, postings)

    def set_credit_limit(self, limit: Money, *, set_by: str, now: dt.datetime) -> None:
        """Grant (or lower, or with 0 withdraw) credit. Lowering it below what is used
        stops further credit payments; nothing already paid changes."""
        require_account_currency(limit)
        self.credit_limit = limit.amount
        self.credit_limit_set_by = set_by
        self.updated_at = now


# -- payments, top-ups and refunds: their moves --------------------------------------

PAYMENT = StateMachine(
    "payment",
    {
        # the money moved: from the payer's account, or the card was charged
        "succeed": ((PENDING,), SUCCEEDED),
        # the card was declined, or the card gateway never took the charge
        "fail": ((PENDING,), FAILED),
        # the next attempt at a failed payment, by another card or another method
        "try_again": ((FAILED,), PENDING),
    },
)
TOP_UP = StateMachine("top-up", {"succeed": ((PENDING,), SUCCEEDED), "fail": ((PENDING,), FAILED)})
REFUND = StateMachine(
    "refund",
    {
        # the money went back the way it came
        "complete": ((PENDING,), SUCCEEDED),
        # the card processor refused a card refund; nothing moved
        "fail": ((PENDING,), FAILED),
    },
)


def charge_failure_code(*, charged: bool, decline_code: str | None) -> str:
    """Why a card charge failed: the gateway's decline code, or that it has no charge."""
    if not charged:
        return GATEWAY_NO_CHARGE
    return decline_code or CARD_DECLINED


class _MovesMoney:
    """What a payment, a top-up and a refund share: an amount of money, and a status
    that starts pending and ends succeeded or failed (``failure_code`` saying why)."""

    if TYPE_CHECKING:
        id: str
        amount: int
        currency: str
        status: str
        failure_code: str | None
        failure_reason: str | None
        updated_at: dt.datetime
        completed_at: dt.datetime | None

    @property
    def price(self) -> Money:
        return Money(self.amount, self.currency)


class PaymentLifecycle(_MovesMoney, RecordsEvents):
    """An order's payment (``models.Payment`` maps its columns). It starts pending;
    from an account it succeeds in the transaction that makes it, by card once the
    gateway answers. A failed attempt (a declined card) may be tried again."""

    if TYPE_CHECKING:
        order_id: str
        account_id: str
        payer_account_id: str
        enterprise_project_id: str
        payment_method: str
        attempt: int
        charge_key: str | None
        card_brand: str | None
        card_last4: str | None

    def start(self, method: str, card: Card | None, now: dt.datetime) -> None:
        """The first attempt of a new payment."""
        self.status = PENDING
        self.attempt = 1
        self._begin_attempt(method, card, now)

    def try_again(self, method: str, card: Card | None, now: dt.datetime) -> None:
        """The next attempt at a failed payment, as a new attempt (a new charge key)."""
        self.status = PAYMENT.move("try_again", self.status)
        self.attempt += 1
        self._begin_attempt(method, card, now)

    def _begin_attempt(self, method: str, card: Card | None, now: dt.datetime) -> None:
        self.payment_method = method
        # a card attempt's key at the gateway, which charges a key once
        self.charge_key = f"{self.id}.{self.attempt}" if card else None
        self.card_brand = card.brand if card else None
        self.card_last4 = card.last4 if card else None
        self.failure_code = None
        self.failure_reason = None
        self.updated_at = now
        self.completed_at = None

    def require_same_order(self, *, account_id: str, payer_account_id: str, price: Money) -> None:
        """Refuse (Conflict) a pay of this payment's order by another account or for
        another amount."""
        if (self.account_id, self.payer_account_id) != (account_id, payer_account_id) or (
            self.price != price
        ):
            raise Conflict(
                f"order {self.order_id} already has a payment for another amount or account"
            )

    @property
    def may_try_again(self) -> bool:
        """Only a failed payment is tried again; a succeeded or pending one is the
        order's answer (a pending card charge is settled by recovery)."""
        return PAYMENT.allows("try_again", self.status)

    def awaits_charge(self, charge_key: str) -> bool:
        """Whether the attempt charged under ``charge_key`` still waits for its outcome
        (else it is settled already, or a later attempt replaced it)."""
        return self.status == PENDING and self.charge_key == charge_key

    def succeed(self, now: dt.datetime) -> None:
        self.status = PAYMENT.move("succeed", self.status)
        self.updated_at = self.completed_at = now
        self.record(
            PAYMENT_SUCCEEDED,
            subject=self.id,
            account_id=self.account_id,
            data=self._event_data(
                payer_account_id=self.payer_account_id,
                amount=money(self.amount, self.currency),
                enterprise_project_id=self.enterprise_project_id,
            ),
        )

    def fail(self, code: str, now: dt.datetime) -> None:
        """Nothing was charged; the buyer reads why (``failure_reason``)."""
        self.status = PAYMENT.move("fail", self.status)
        self.failure_code = code
        self.failure_reason = failure_reason(code)
        self.updated_at = self.completed_at = now
        self.record(
            PAYMENT_FAILED,
            subject=self.id,
            account_id=self.account_id,
            data=self._event_data(reason=self.failure_reason, failure_code=code),
        )

    def _event_data(self, **more: Any) -> dict[str, Any]:
        return {
            "payment_id": self.id,
            "order_id": self.order_id,
            "account_id": self.account_id,
            "payment_method": self.payment_method,
            **more,
        }

    def is_of(self, *, order_id: str, account_id: str) -> bool:
        return (self.order_id, self.account_id) == (order_id, account_id)

    def check_refund(self, requested: Money) -> None:
        """Refuse (BusinessRuleViolation) a refund this payment cannot give."""
        check_refund(
            paid=self.price, payment_status=self.status, refund=requested, payment_id=self.id
        )


class TopUpLifecycle(_MovesMoney):
    """Money added to an account from a card (``models.TopUp`` maps its columns):
    pending until the gateway answers."""

    if TYPE_CHECKING:
        charge_key: str

    def require_same_amount(self, price: Money) -> None:
        """Refuse (Conflict) an idempotency key used again for another amount."""
        if self.price != price:
            raise Conflict("this idempotency key was used for another top-up amount")

    def awaits_charge(self, charge_key: str) -> bool:
        return self.status == PENDING and self.charge_key == charge_key

    def succeed(self, now: dt.datetime) -> None:
        self.status = TOP_UP.move("succeed", self.status)
        self.updated_at = self.completed_at = now

    def fail(self, code: str, now: dt.datetime) -> None:
        self.status = TOP_UP.move("fail", self.status)
        self.failure_code = code
        self.failure_reason = failure_reason(code)
        self.updated_at = self.completed_at = now


class RefundLifecycle(_MovesMoney, RecordsEvents):
    """The refund of a payment (``models.Refund`` maps its columns). One from an
    account completes in the transaction that makes it; a card refund stays pending
    until the card processor answers."""

    if TYPE_CHECKING:
        payment_id: str
        order_id: str
        account_id: str
        payer_account_id: str
        payment_method: str
        reason: str

    @property
    def awaits_processor(self) -> bool:
        """Whether the card processor's answer is still to be recorded."""
        return self.status == PENDING

    @property
    def to_a_card(self) -> bool:
        """Whether the card processor pays it back (else billing's own books do)."""
        return self.payment_method == CREDIT_CARD

    def complete(self, now: dt.datetime) -> None:
        self.status = REFUND.move("complete", self.status)
        self.updated_at = self.completed_at = now
        self.record(
            REFUND_COMPLETED,
            subject=self.id,
            account_id=self.account_id,
            data={**self._event_data(), "completed_at": now},
        )

    def fail(self, code: str, now: dt.datetime) -> None:
        """The card processor refused: nothing moved; operators must pay the buyer back
        another way (``billing.refund.failed`` tells them, and the buyer, why)."""
        self.status = REFUND.move("fail", self.status)
        self.failure_code = code
        self.failure_reason = refund_failure_reason(code)
        self.updated_at = self.completed_at = now
        self.record(
            REFUND_FAILED,
            subject=self.id,
            account_id=self.account_id,
            data={
                **self._event_data(),
                "failure_code": code,
                "failure_reason": self.failure_reason,
                "failed_at": now,
            },
        )

    def _event_data(self) -> dict[str, Any]:
        return {
            "refund_id": self.id,
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "account_id": self.account_id,
            "payer_account_id": self.payer_account_id,
            "payment_method": self.payment_method,
            "amount": money(self.amount, self.currency),
            "reason": self.reason,
        }


# -- cards --------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A card as the provider knows it: ``source`` is what a charge names (a token, or
    the provider's id of a card the account keeps); brand, last four digits and expiry
    are all Mercato ever sees of it. The number and CVC stay at the provider."""

    source: str
    brand: str
    last4: str
    expiry: str  # MM/YY

    def __repr__(self) -> str:  # never the token in a log
        return f"Card({self.brand} ****{self.last4})"
