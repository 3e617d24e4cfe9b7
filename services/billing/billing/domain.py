"""Billing's rules: the chart of ledger accounts, what each payment and refund posts,
when an account may pay or be refunded, and what a card must look like. No nameko, no
SQL.

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

A refund is the mirror of the payment it returns: the same two ledger accounts, the
signs swapped (``refund_postings``). So a balance refund credits the buyer's
``customer_balance`` again, a credit refund lowers ``credit_receivable`` (credit used),
a reseller refund lowers the reseller's ``reseller_receivable`` (its balance comes back
up, exactly as its payment took it down) and a card refund moves money from ``sales``
back to ``card_clearing``, out of which the card processor pays the card back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mercato.errors import BusinessRuleViolation, PaymentRequired, ValidationError

ACCOUNT_CURRENCY = "USD"

# payment methods
BALANCE, CREDIT_CARD, CREDIT, RESELLER = "balance", "credit_card", "credit", "reseller"
PAYMENT_METHODS = (BALANCE, CREDIT_CARD, CREDIT, RESELLER)

# payment and top-up statuses
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

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
REFUND_FAILURE_REASONS = {
    REFUND_DECLINED: "The card issuer refused the refund (the card account may be closed).",
    CHARGE_NOT_REFUNDABLE: "The card processor has no refundable charge for this payment.",
}


def failure_reason(code: str) -> str:
    return FAILURE_REASONS.get(code, f"The payment failed ({code}).")


def refund_failure_reason(code: str) -> str:
    return REFUND_FAILURE_REASONS.get(code, f"The refund failed ({code}).")


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}


def money(amount: int, currency: str = ACCOUNT_CURRENCY) -> dict[str, Any]:
    return {"amount": int(amount), "currency": currency}


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
    def available_credit(self) -> int:
        return max(0, self.credit_limit - self.credit_used)

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

        A card payment does not touch the account; a reseller's balance may go
        negative (it settles outside Mercato).
        """
        if method == BALANCE and self.balance < amount:
            raise PaymentRequired(
                f"insufficient balance: {amount} needed, {max(self.balance, 0)} available"
            )
        if method == CREDIT and self.credit_used + amount > self.credit_limit:
            raise PaymentRequired(
                f"credit limit exceeded: {amount} needed, {self.available_credit} of "
                f"{self.credit_limit} available"
            )


def derived_state(credit_limit: int, sums: Mapping[str, int]) -> AccountState:
    """The figures the ledger says an account has: ``sums`` maps each of its per-account
    ledgers to the sum of its postings."""
    return AccountState(
        balance=-sums.get(CUSTOMER_BALANCE, 0) - sums.get(RESELLER_RECEIVABLE, 0),
        credit_limit=credit_limit,
        credit_used=sums.get(CREDIT_RECEIVABLE, 0),
    )


# -- cards --------------------------------------------------------------------------

_DIGITS = re.compile(r"^\d{12,19}$")
_EXPIRY = re.compile(r"^(\d{2})\s*/\s*(\d{2})$")
_SEPARATORS = re.compile(r"[\s-]")


@dataclass(frozen=True)
class Card:
    """A checked card. Only ``brand`` and ``last4`` are ever stored."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    brand: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def __repr__(self) -> str:  # never the number or the CVC in a log
        return f"Card({self.brand} ****{self.last4})"


def luhn_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    return "card"


def check_card(card: Mapping[str, Any], now: dt.datetime) -> Card:
    """The card if its number passes Luhn, its ``MM/YY`` expiry is not in the past
    (a card works through the last day of its month) and its CVC has the brand's
    length; else ValidationError naming ``card.number``, ``card.expiry`` or ``card.cvc``."""
    errors: dict[str, list[str]] = {}
    number = _SEPARATORS.sub("", str(card.get("number", "")))
    if not _DIGITS.match(number):
        errors["card.number"] = ["must be 12 to 19 digits"]
    elif not luhn_valid(number):
        errors["card.number"] = ["is not a valid card number (Luhn check failed)"]
    brand = card_brand(number) if "card.number" not in errors else "card"

    exp_month = exp_year = 0
    matched = _EXPIRY.match(str(card.get("expiry", "")).strip())
    if not matched or not 1 <= int(matched.group(1)) <= 12:
        errors["card.expiry"] = ["must be MM/YY"]
    else:
        exp_month, exp_year = int(matched.group(1)), 2000 + int(matched.group(2))
        current = now.astimezone(dt.UTC)
        if (exp_year, exp_month) < (current.year, current.month):
            errors["card.expiry"] = ["the card has expired"]

    cvc = str(card.get("cvc", ""))
    cvc_length = 4 if brand == "amex" else 3
    if not (cvc.isdigit() and len(cvc) == cvc_length):
        errors["card.cvc"] = [f"must be {cvc_length} digits"]

    if errors:
        raise ValidationError(f"invalid card: check {', '.join(sorted(errors))}", errors)
    return Card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc, brand=brand)
