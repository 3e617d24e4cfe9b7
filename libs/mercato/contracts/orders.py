"""Events published by orders."""

from marshmallow import RAISE, Schema, fields, validate

from mercato.contracts.registry import register
from mercato.money import MoneySchema

BILLING_MODES = ("yearly_monthly", "pay_per_use", "one_time")
DELIVERY_METHODS = ("license", "professional_service", "saas", "image")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PeriodV1(_Strict):
    unit = fields.String(required=True, validate=validate.OneOf(["month", "year"]))
    count = fields.Integer(required=True, strict=True)


class OrderLineV1(_Strict):
    id = fields.String(required=True)
    product_id = fields.String(required=True)
    product_name = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    specification_id = fields.String(required=True)
    specification_name = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean(required=True)
    billing_mode = fields.String(required=True, validate=validate.OneOf(BILLING_MODES))
    period = fields.Nested(PeriodV1, required=True, allow_none=True)
    quantity = fields.Integer(required=True, strict=True)
    unit_price = fields.Nested(MoneySchema, required=True)
    amount = fields.Nested(MoneySchema, required=True)


class OrderCreatedV1(_Strict):
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payer_account_id = fields.String(required=True)
    enterprise_project_id = fields.String(required=True)
    amount_due = fields.Nested(MoneySchema, required=True)
    lines = fields.List(fields.Nested(OrderLineV1), required=True)
    payment_deadline = fields.AwareDateTime(required=True)


class OrderPaidV1(_Strict):
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payer_account_id = fields.String(required=True)
    enterprise_project_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    payment_method = fields.String(required=True)
    amount = fields.Nested(MoneySchema, required=True)


class OrderCancelledV1(_Strict):
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    reason = fields.String(required=True)


class SubscriptionCreatedV1(_Strict):
    subscription_id = fields.String(required=True)
    order_id = fields.String(required=True)
    order_line_id = fields.String(required=True)
    account_id = fields.String(required=True)
    enterprise_project_id = fields.String(required=True)
    product_id = fields.String(required=True)
    specification_id = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean(required=True)
    billing_mode = fields.String(required=True, validate=validate.OneOf(BILLING_MODES))
    quantity = fields.Integer(required=True, strict=True)
    status = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True, allow_none=True)


register(
    "orders.order.created",
    1,
    OrderCreatedV1,
    summary="A buyer placed an order; its price is fixed and it waits for payment "
    "(a reseller's customer's order is paid by the reseller at once).",
    subject="the order id",
)
register(
    "orders.order.paid",
    1,
    OrderPaidV1,
    summary="An order was paid; its subscriptions are created next.",
    subject="the order id",
)
register(
    "orders.order.cancelled",
    1,
    OrderCancelledV1,
    summary="An order was cancelled (by the buyer, or because its payment window "
    "passed), with a reason the buyer can read.",
    subject="the order id",
)
register(
    "orders.subscription.created",
    1,
    SubscriptionCreatedV1,
    summary="A paid order line became a subscription (a purchased app), status enabling "
    "until its delivery.",
    subject="the subscription id",
)
