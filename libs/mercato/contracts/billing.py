"""Events published by billing."""

import datetime as dt

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


class RefundCompletedV1(_Strict):
    refund_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)  # the buyer
    payer_account_id = fields.String(required=True)  # who got the money back
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    amount = fields.Nested(MoneySchema, required=True)
    reason = fields.String(required=True)  # the order's cancel reason
    completed_at = fields.AwareDateTime(required=True)


class RefundFailedV1(_Strict):
    refund_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payer_account_id = fields.String(required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    amount = fields.Nested(MoneySchema, required=True)
    reason = fields.String(required=True)
    # machine-readable: refund_declined, charge_not_refundable
    failure_code = fields.String(required=True)
    failure_reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True)


_REFUND = "rfd_4c3b2a1f0e9d48c7b6a5f4e3d2c1b0a9"
_PAYMENT = "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b"
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"

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
register(
    "billing.refund.completed",
    1,
    RefundCompletedV1,
    summary="A paid order was cancelled (its delivery failed) and its payment was "
    "refunded: the money went back the way it came (the buyer's balance, its credit, the "
    "reseller's account, or the card). Once per payment, however often the cancellation "
    "arrives. A card refund may complete some time after the cancellation, when the "
    "card processor confirms it.",
    subject="the refund id",
    example_subject=_REFUND,
    example={
        "refund_id": _REFUND,
        "payment_id": _PAYMENT,
        "order_id": _ORDER,
        "account_id": _BUYER,
        "payer_account_id": _BUYER,
        "payment_method": "credit_card",
        "amount": {"amount": 129900, "currency": "USD"},
        "reason": "Delivery failed: the SaaS tenant could not be created.",
        "completed_at": dt.datetime(2026, 1, 15, 9, 42, tzinfo=dt.UTC),
    },
)
register(
    "billing.refund.failed",
    1,
    RefundFailedV1,
    summary="The card processor refused to refund a card payment (the card account may "
    "be closed; ``failure_code`` says why), or refunded another amount than asked "
    "(``processor_amount_mismatch``: nothing is entered in the ledger); nothing was "
    "refunded by Mercato and billing will not retry. An operator must pay "
    "the buyer back another way. Refunds to a balance, credit or reseller account never "
    "fail, and a card processor that does not answer is asked again, not given up on.",
    subject="the refund id",
    example_subject=_REFUND,
    example={
        "refund_id": _REFUND,
        "payment_id": _PAYMENT,
        "order_id": _ORDER,
        "account_id": _BUYER,
        "payer_account_id": _BUYER,
        "payment_method": "credit_card",
        "amount": {"amount": 129900, "currency": "USD"},
        "reason": "Delivery failed: the SaaS tenant could not be created.",
        "failure_code": "refund_declined",
        "failure_reason": "The card issuer refused the refund (the card account may be closed).",
        "failed_at": dt.datetime(2026, 1, 15, 9, 42, tzinfo=dt.UTC),
    },
)
