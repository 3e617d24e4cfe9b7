"""Money: an integer count of minor units and an ISO 4217 currency code, never a float.

The API, the RPCs and the events all carry it as ``{"amount": 12345, "currency": "USD"}``,
described once here: ``MoneySchema`` at every boundary, ``Money`` as a value in the
rules, and ``money(12345, "USD")`` for the dict itself.

The marketplace trades in one currency, ``MARKETPLACE_CURRENCY`` (default ``USD``, read
from the environment every process shares): catalog refuses a price in another where
the seller sets it, orders refuses to place and billing to move any other, so an order
can never be placed that billing cannot charge (``require_marketplace_currency``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from mercato.errors import ValidationError

MARKETPLACE_CURRENCY = "MARKETPLACE_CURRENCY"
DEFAULT_MARKETPLACE_CURRENCY = "USD"

CURRENCY_RULE = validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code such as USD")
MAX_AMOUNT = 10**13  # 100 billion in a 2-decimal currency: far beyond any order


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return money(self.amount, self.currency)


class MoneySchema(Schema):
    """An amount of money: an integer of minor units (cents) and its currency."""

    class Meta:
        unknown = RAISE

    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_AMOUNT),
        metadata={"description": "Minor units (cents), a whole number.", "example": 12345},
    )
    currency = fields.String(
        required=True,
        validate=CURRENCY_RULE,
        metadata={"description": "ISO 4217 code.", "example": "USD"},
    )


class PositiveMoneySchema(MoneySchema):
    """An amount of money above zero."""

    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_AMOUNT),
        metadata={"description": "Minor units (cents), at least 1.", "example": 50000},
    )


def marketplace_currency() -> str:
    """The one currency of the marketplace (``MARKETPLACE_CURRENCY``, default USD)."""
    currency = os.environ.get(MARKETPLACE_CURRENCY, "").strip() or DEFAULT_MARKETPLACE_CURRENCY
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise RuntimeError(f"{MARKETPLACE_CURRENCY}={currency!r} is not an ISO 4217 code")
    return currency


def require_marketplace_currency(currency: str, field: str) -> None:
    """Refuse (ValidationError naming ``field``, nothing changes) money in a currency the
    marketplace does not trade in."""
    expected = marketplace_currency()
    if currency != expected:
        raise ValidationError(
            f"the marketplace trades in {expected}, not {currency}",
            {field: [f"must be {expected}, the marketplace currency"]},
        )


def money(amount: int, currency: str) -> dict[str, Any]:
    """``{"amount": amount, "currency": currency}``, the amount as a plain int."""
    return {"amount": int(amount), "currency": currency}
