"""Money: an integer count of minor units and an ISO 4217 currency code, never a float.

The API and the events carry it as ``{"amount": 12345, "currency": "USD"}``.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

CURRENCY_RULE = validate.Regexp(r"^[A-Z]{3}$", error="must be a 3-letter ISO 4217 code")
MAX_AMOUNT = 10**13  # 100 billion in a 2-decimal currency: far beyond any order


class MoneySchema(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT)
    )
    currency = fields.String(required=True, validate=CURRENCY_RULE)


def money(amount: int, currency: str) -> dict[str, int | str]:
    return {"amount": int(amount), "currency": currency}
