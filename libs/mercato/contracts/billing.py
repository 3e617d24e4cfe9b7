"""Events published by billing."""

from marshmallow import RAISE, Schema, fields, validate

from mercato.contracts.registry import register
from mercato.money import MoneySchema

PAYMENT_METHODS = ("balance", "credit_card", "credit", "reseller")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PaymentSucceededV1(_Strict):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payer_account_id = fields.String(required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    amount = fields.Nested(MoneySchema, required=True)
    enterprise_project_id = fields.String(required=True)


class PaymentFailedV1(_Strict):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    reason = fields.String(required=True)
    # machine-readable: card_declined, insufficient_funds, gateway_no_charge
    failure_code = fields.String(load_default=None, allow_none=True)


register(
    "billing.payment.succeeded",
    1,
    PaymentSucceededV1,
    summary="An order was paid: the money moved in billing's ledger (once per order, "
    "whatever the retries). Orders marks the order paid on it.",
    subject="the payment id",
    example_subject="pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
    example={
        "payment_id": "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
        "order_id": "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5",
        "account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "payer_account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "payment_method": "balance",
        "amount": {"amount": 129900, "currency": "USD"},
        "enterprise_project_id": "default",
    },
)
register(
    "billing.payment.failed",
    1,
    PaymentFailedV1,
    summary="A payment attempt for an order failed (the card was declined, or the card "
    "gateway never took the charge); nothing was charged. The order may be paid again.",
    subject="the payment id",
    example_subject="pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
    example={
        "payment_id": "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
        "order_id": "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5",
        "account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "payment_method": "credit_card",
        "reason": "The card was declined.",
        "failure_code": "card_declined",
    },
)
