"""What a card must look like, and the test cards and what the simulated provider does
with each. No HTTP, no SQL.

==================  ===========================================================
card number         what the simulated provider does
==================  ===========================================================
4242424242424242    succeeds (as does any other Luhn-valid number)
5555555555554444    succeeds (Mastercard)
4000000000000002    the charge is declined: ``card_declined``
4000000000009995    the charge is declined: ``insufficient_funds``
4000000000000119    the charge succeeds but its answer comes only after
                    ``--hang-seconds`` (default 60): the caller gives up first, and
                    finds the charge by its key
4000000000006975    the charge succeeds and is answered after ``--slow-seconds``
                    (default 6): slower than a caller that waits 4 s, faster than
                    one that waits 8 s
4000000000000077    the charge succeeds; a refund of it succeeds but its answer
                    comes only after ``--hang-seconds``; asking again with the same
                    key answers it at once
4000000000005126    the charge succeeds; a refund of it is refused:
                    ``refund_declined`` (as when the card account was closed)
==================  ===========================================================
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

DECLINING = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
HANGING = "4000000000000119"
SLOW = "4000000000006975"
REFUND_HANGING = "4000000000000077"
REFUND_DECLINING = "4000000000005126"

DECLINE_CODES = {DECLINING: "card_declined", INSUFFICIENT_FUNDS: "insufficient_funds"}

_DIGITS = re.compile(r"^\d{12,19}$")
_EXPIRY = re.compile(r"^(\d{2})\s*/\s*(\d{2})$")
_SEPARATORS = re.compile(r"[\s-]")


class CardError(Exception):
    """A card the provider refuses to tokenize: ``errors`` maps the field (``number``,
    ``expiry``, ``cvc``) to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{field}: {why}" for field, why in sorted(errors.items())))
        self.errors = errors


@dataclass(frozen=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    brand: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    def __repr__(self) -> str:  # never the number in a log
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


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    return "card"


def check(number: object, expiry: object, cvc: object, now: dt.datetime) -> Card:
    """The card if its number passes Luhn, its ``MM/YY`` expiry is not past (a card
    works through the last day of its month) and its CVC has the brand's length (4 for
    American Express, else 3); else ``CardError`` naming each field that is wrong."""
    errors: dict[str, str] = {}
    digits = _SEPARATORS.sub("", number) if isinstance(number, str) else ""
    if not _DIGITS.match(digits):
        errors["number"] = "must be 12 to 19 digits"
    elif not luhn_valid(digits):
        errors["number"] = "is not a valid card number (Luhn check failed)"
    brand = brand_of(digits) if "number" not in errors else "card"

    exp_month = exp_year = 0
    matched = _EXPIRY.match(expiry.strip()) if isinstance(expiry, str) else None
    if not matched or not 1 <= int(matched.group(1)) <= 12:
        errors["expiry"] = "must be MM/YY"
    else:
        exp_month, exp_year = int(matched.group(1)), 2000 + int(matched.group(2))
        if (exp_year, exp_month) < (now.year, now.month):
            errors["expiry"] = "the card has expired"

    length = 4 if brand == "amex" else 3
    if not (isinstance(cvc, str) and cvc.isdigit() and len(cvc) == length):
        errors["cvc"] = f"must be {length} digits"
    if errors:
        raise CardError(errors)
    return Card(number=digits, exp_month=exp_month, exp_year=exp_year, brand=brand)
