"""What orders' RPCs accept (validated again here: other services may call directly)."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mercato import terms
from mercato.money import MoneySchema
from mercato.validation import PageSchema, StrictBoolean, StrictSchema, page_of


class PeriodSchema(StrictSchema):
    unit = fields.String(required=True, validate=validate.OneOf(["month", "year"]))
    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=60))


class PlaceOrderSchema(StrictSchema):
    product_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    specification_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    billing_mode = fields.String(
        required=True,
        validate=validate.OneOf([terms.YEARLY_MONTHLY, terms.PAY_PER_USE, terms.ONE_TIME]),
    )
    period = fields.Nested(PeriodSchema, load_default=None, allow_none=True)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1))
    enterprise_project_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    accept_terms = StrictBoolean(required=True)

    @validates_schema
    def period_goes_with_yearly_monthly(self, data, **kwargs):
        if data["billing_mode"] == terms.YEARLY_MONTHLY and data.get("period") is None:
            raise ValidationError("required for the yearly_monthly billing mode", "period")
        if data["billing_mode"] != terms.YEARLY_MONTHLY and data.get("period") is not None:
            raise ValidationError("only the yearly_monthly billing mode takes a period", "period")


class CardSchema(StrictSchema):
    """Passed on to billing, which checks the number (Luhn), expiry and CVC. A number
    may be written in groups: up to 19 digits and 4 separators."""

    number = fields.String(required=True, validate=validate.Length(min=12, max=23))
    expiry = fields.String(required=True, validate=validate.Length(min=4, max=7))
    cvc = fields.String(required=True, validate=validate.Length(min=3, max=4))


class PayOrderSchema(StrictSchema):
    payment_method = fields.String(required=True, validate=validate.OneOf(terms.PAYMENT_METHODS))
    card = fields.Nested(CardSchema, load_default=None)

    @validates_schema
    def card_goes_with_credit_card(self, data, **kwargs):
        if data["payment_method"] == "credit_card" and data.get("card") is None:
            raise ValidationError("required to pay by credit_card", "card")
        if data["payment_method"] != "credit_card" and data.get("card") is not None:
            raise ValidationError("only the credit_card payment method takes a card", "card")


class ListOrdersSchema(PageSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(terms.ORDER_STATUSES))


class PeriodOut(Schema):
    unit = fields.String()
    count = fields.Integer()


class OrderLineOut(Schema):
    id = fields.String()
    product_id = fields.String()
    product_name = fields.String()
    seller_account_id = fields.String()
    specification_id = fields.String()
    specification_name = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    billing_mode = fields.String()
    period = fields.Nested(PeriodOut, allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Nested(MoneySchema)
    amount = fields.Nested(MoneySchema)


class OrderOut(Schema):
    id = fields.String()
    status = fields.String()
    account_id = fields.String()
    paid_by_reseller = fields.Boolean()
    enterprise_project_id = fields.String()
    amount_due = fields.Nested(MoneySchema)
    lines = fields.List(fields.Nested(OrderLineOut))
    payment_deadline = fields.AwareDateTime()
    payment_method = fields.String(allow_none=True)
    payment_pending = fields.Boolean()
    paid_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class SubscriptionOut(Schema):
    id = fields.String()
    order_id = fields.String()
    product_id = fields.String()
    product_name = fields.String()
    specification_name = fields.String()
    delivery_method = fields.String()
    status = fields.String()
    expires_at = fields.AwareDateTime(allow_none=True)
    billing_mode = fields.String()
    auto_renew = fields.Boolean()
    enterprise_project_id = fields.String()
    created_at = fields.AwareDateTime()
    activated_at = fields.AwareDateTime()
    service_supervision = fields.Boolean()
    product_guide_url = fields.String(allow_none=True)
    seller_account_id = fields.String()
    seller_company_name = fields.String()


OrderPage = page_of(OrderOut)
SubscriptionPage = page_of(SubscriptionOut)
