"""What billing's RPCs accept and answer (checked here again, not only at the gateway:
the orders service calls these RPCs directly)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from billing import domain
from mercato.money import MAX_AMOUNT, MoneySchema
from mercato.validation import StrictSchema, page_of


class PositiveMoneySchema(MoneySchema):
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT)
    )


class MoneyOrMinorUnits(fields.Field):
    """``{"amount": 12345, "currency": "USD"}``, or the bare integer ``12345`` (minor
    units of the account currency, USD)."""

    default_error_messages = {
        "invalid": "must be a money object {{amount, currency}} or an integer of minor units"
    }

    def __init__(self, *, positive: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.positive = positive

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, Any]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = {"amount": value, "currency": domain.ACCOUNT_CURRENCY}
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        schema = PositiveMoneySchema() if self.positive else MoneySchema()
        return schema.load(value)


class CardSchema(StrictSchema):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    expiry = fields.String(required=True, validate=validate.Length(min=1, max=10))
    cvc = fields.String(required=True, validate=validate.Length(min=1, max=8))


class PayOrderSchema(StrictSchema):
    order_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    payer_account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    amount = fields.Nested(PositiveMoneySchema, required=True)
    enterprise_project_id = fields.String(
        load_default="default", validate=validate.Length(min=1, max=64)
    )
    payment_method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    card = fields.Nested(CardSchema, load_default=None)

    @validates_schema
    def _card_and_payer_fit_the_method(self, data, **kwargs):
        method = data.get("payment_method")
        if method == domain.CREDIT_CARD and data.get("card") is None:
            raise ValidationError("required when payment_method is credit_card", "card")
        if method != domain.CREDIT_CARD and data.get("card") is not None:
            raise ValidationError("only with payment_method credit_card", "card")
        reseller_pays = data.get("payer_account_id") != data.get("account_id")
        if method == domain.RESELLER and not reseller_pays:
            raise ValidationError(
                "must be the buyer's reseller, not the buyer, for a reseller payment",
                "payer_account_id",
            )
        if method != domain.RESELLER and reseller_pays:
            raise ValidationError(
                "must be the buyer (account_id) unless payment_method is reseller",
                "payer_account_id",
            )


class TopUpSchema(StrictSchema):
    amount = MoneyOrMinorUnits(required=True)
    card = fields.Nested(CardSchema, required=True)
    # the caller's key: the same key answers the first top-up instead of charging again
    idempotency_key = fields.String(load_default=None, validate=validate.Length(min=1, max=128))


class SetCreditLimitSchema(StrictSchema):
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    amount = MoneyOrMinorUnits(required=True, positive=False)


class IdSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))


# -- answers ------------------------------------------------------------------------


class CardOut(Schema):
    brand = fields.String()
    last4 = fields.String()


class PaymentSchema(Schema):
    id = fields.String()
    order_id = fields.String()
    account_id = fields.String()
    payer_account_id = fields.String()
    enterprise_project_id = fields.String()
    status = fields.String()
    payment_method = fields.String()
    amount = fields.Nested(MoneySchema)
    card = fields.Nested(CardOut, allow_none=True)
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class RefundOut(Schema):
    id = fields.String()
    payment_id = fields.String()
    order_id = fields.String()
    account_id = fields.String()
    payer_account_id = fields.String()
    payment_method = fields.String()
    status = fields.String()
    amount = fields.Nested(MoneySchema)
    reason = fields.String()
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class TopUpOut(Schema):
    id = fields.String()
    account_id = fields.String()
    status = fields.String()
    amount = fields.Nested(MoneySchema)
    card = fields.Nested(CardOut)
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class BalanceSchema(Schema):
    account_id = fields.String()
    balance = fields.Nested(MoneySchema)
    credit_limit = fields.Nested(MoneySchema)
    credit_used = fields.Nested(MoneySchema)
    available_credit = fields.Nested(MoneySchema)


class TransactionSchema(Schema):
    id = fields.String()
    kind = fields.String()
    payment_method = fields.String(allow_none=True)
    amount = fields.Nested(MoneySchema)
    balance_after = fields.Nested(MoneySchema)
    credit_used_after = fields.Nested(MoneySchema)
    order_id = fields.String(allow_none=True)
    payment_id = fields.String(allow_none=True)
    top_up_id = fields.String(allow_none=True)
    refund_id = fields.String(allow_none=True)
    buyer_account_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


TransactionPageSchema = page_of(TransactionSchema)
