"""Money: an integer count of minor units and an ISO 4217 currency code, never a float.

The API, the RPCs and the events all carry it as ``{"amount": 12345, "currency": "USD"}``,
described once here: ``MoneySchema`` at every boundary, ``Money`` as a value in the
rules, and ``money(12345, "USD")`` for the dict itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

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


def money(amount: int, currency: str) -> dict[str, Any]:
    """``{"amount": amount, "currency": currency}``, the amount as a plain int."""
    return {"amount": int(amount), "currency": currency}
