"""What billing's RPCs take and answer beyond its contract (``mercato.contracts.billing``,
where the request and answer schemas other services and the gateway use live)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mercato.contracts.billing import ACCOUNT_ID_RULE, CreditLimitRequest
from mercato.money import MoneySchema
from mercato.validation import StrictSchema


class SetCreditLimitSchema(CreditLimitRequest):
    """``set_credit_limit(account_id, payload)``: the account from the path, the limit
    from the body."""

    account_id = fields.String(required=True, validate=ACCOUNT_ID_RULE)


class IdSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))


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
