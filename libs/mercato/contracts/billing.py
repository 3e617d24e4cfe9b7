"""billing's contracts: the events it publishes, and what its RPCs accept and answer
(the public API's balance bodies are these very schemas)."""

import datetime as dt
import re

from marshmallow import ValidationError, fields, validate, validates_schema

from mercato.contracts.common import ID_RULE, CardField
from mercato.contracts.registry import register
from mercato.money import MoneySchema, PositiveMoneySchema
from mercato.terms import CREDIT_CARD, PAYER_METHODS, RESELLER
from mercato.validation import AnswerSchema, PageSchema, QuerySchema, StrictSchema, page_of


class _PaymentV1(StrictSchema):
    """Which payment: of which order, by which buyer."""

    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)


class PaymentSucceededV1(_PaymentV1):
    payer_account_id = fields.String(required=True)
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYER_METHODS))
    amount = fields.Nested(MoneySchema, required=True)
    enterprise_project_id = fields.String(required=True)


class PaymentFailedV1(_PaymentV1):
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYER_METHODS))
    reason = fields.String(required=True)
    # machine-readable: card_declined, insufficient_funds, gateway_no_charge
    failure_code = fields.String(load_default=None, allow_none=True)


class _RefundV1(StrictSchema):
    """Which refund: of which payment and order, to whom, how much and why."""

    refund_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)  # the buyer
    payer_account_id = fields.String(required=True)  # who got the money back
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYER_METHODS))
    amount = fields.Nested(MoneySchema, required=True)
    reason = fields.String(required=True)  # the order's cancel reason


class RefundCompletedV1(_RefundV1):
    completed_at = fields.AwareDateTime(required=True)


class RefundFailedV1(_RefundV1):
    # machine-readable: refund_declined, charge_not_refundable
    failure_code = fields.String(required=True)
    failure_reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True)


_REFUND = "rfd_4c3b2a1f0e9d48c7b6a5f4e3d2c1b0a9"
_PAYMENT = "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b"
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_PAYMENT_EXAMPLE = {"payment_id": _PAYMENT, "order_id": _ORDER, "account_id": _BUYER}
_REFUND_EXAMPLE = {
    "refund_id": _REFUND,
    **_PAYMENT_EXAMPLE,
    "payer_account_id": _BUYER,
    "payment_method": "credit_card",
    "amount": {"amount": 129900, "currency": "USD"},
    "reason": "Delivery failed: the SaaS tenant could not be created.",
}

register(
    "billing.payment.succeeded",
    1,
    PaymentSucceededV1,
    summary="An order was paid: the money moved in billing's ledger (once per order, "
    "whatever the retries). Orders marks the order paid on it.",
    subject="the payment id",
    example_subject=_PAYMENT,
    example={
        **_PAYMENT_EXAMPLE,
        "payer_account_id": _BUYER,
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
    example_subject=_PAYMENT,
    example={
        **_PAYMENT_EXAMPLE,
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
        **_REFUND_EXAMPLE,
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
        **_REFUND_EXAMPLE,
        "failure_code": "refund_declined",
        "failure_reason": "The card issuer refused the refund (the card account may be closed).",
        "failed_at": dt.datetime(2026, 1, 15, 9, 42, tzinfo=dt.UTC),
    },
)


# -- RPC: paying orders (orders asks) --------------------------------------------------

ACCOUNT_ID_RULE = validate.Length(min=1, max=40)


class OrderPaymentRequest(StrictSchema):
    """What orders asks billing to charge for an order (``pay_order``, with the buyer
    as the caller): the order, who pays (the buyer, or its reseller with the method
    ``reseller``), how much, and how (a card for ``credit_card`` only)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    account_id = fields.String(required=True, validate=ACCOUNT_ID_RULE)
    payer_account_id = fields.String(required=True, validate=ACCOUNT_ID_RULE)
    amount = fields.Nested(PositiveMoneySchema, required=True)
    enterprise_project_id = fields.String(
        load_default="default", validate=validate.Length(min=1, max=64)
    )
    payment_method = fields.String(required=True, validate=validate.OneOf(PAYER_METHODS))
    card = CardField(load_default=None)

    @validates_schema
    def _card_and_payer_fit_the_method(self, data, **kwargs):
        method = data.get("payment_method")
        if method == CREDIT_CARD and data.get("card") is None:
            raise ValidationError("required when payment_method is credit_card", "card")
        if method != CREDIT_CARD and data.get("card") is not None:
            raise ValidationError("only with payment_method credit_card", "card")
        reseller_pays = data.get("payer_account_id") != data.get("account_id")
        if method == RESELLER and not reseller_pays:
            raise ValidationError(
                "must be the buyer's reseller, not the buyer, for a reseller payment",
                "payer_account_id",
            )
        if method != RESELLER and reseller_pays:
            raise ValidationError(
                "must be the buyer (account_id) unless payment_method is reseller",
                "payer_account_id",
            )


class CardSummaryResponse(AnswerSchema):
    brand = fields.String(metadata={"example": "visa"})
    last4 = fields.String(metadata={"example": "4242"})


class _CardCharge(AnswerSchema):
    """Money taken for an account: how it went, and the card's brand and last four
    digits when a card paid."""

    id = fields.String()
    account_id = fields.String()
    status = fields.String()
    amount = fields.Nested(MoneySchema)
    card = fields.Nested(CardSummaryResponse, allow_none=True)
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class PaymentResponse(_CardCharge):
    """An order's payment (``pay_order``, ``get_payment``): ``status`` ``succeeded``,
    ``failed`` (nothing was charged; ``failure_code`` and ``failure_reason`` say why) or
    ``pending`` (the card gateway did not answer in time: billing settles it and
    announces the outcome)."""

    order_id = fields.String()
    payer_account_id = fields.String()
    enterprise_project_id = fields.String()
    payment_method = fields.String()


# -- RPC: an account's money ----------------------------------------------------------


class TopUpRequest(StrictSchema):
    """Add money to the prepaid balance, taken from a card."""

    amount = fields.Nested(PositiveMoneySchema, required=True)
    card = CardField(
        required=True,
        metadata={
            "description": "`{token}` from the card provider or `{card_id}` of a kept card; "
            "a card number is refused (400 naming `card`)."
        },
    )


class TopUpPayload(TopUpRequest):
    """What the gateway asks billing (``top_up``): the client's body and, when the
    request carried an ``Idempotency-Key``, its digest: the same key answers the first
    top-up again instead of charging the card twice."""

    idempotency_key = fields.String(load_default=None, validate=validate.Length(min=1, max=128))


# -- RPC: cards the account keeps (bind_card, list_cards, delete_card) -----------------


class BindCardRequest(StrictSchema):
    """Keep a card on the account: the provider keeps it, Mercato its reference."""

    token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "A token from the card provider (`POST /v1/tokens` there).",
            "example": "tok_4c1f0e9a2b3d4e5f6a7b8c9d0e1f2a3b",
        },
    )


class CardResponse(AnswerSchema):
    """A card the account keeps: all Mercato knows of it."""

    id = fields.String(metadata={"example": "card_2b7e4f1a9c3d4e5f8a6b0c1d2e3f4a5b"})
    brand = fields.String(metadata={"example": "visa"})
    last4 = fields.String(metadata={"example": "4242"})
    expiry = fields.String(metadata={"description": "MM/YY.", "example": "12/30"})
    created_at = fields.AwareDateTime()


CardPage = page_of(CardResponse, "CardPage")


class CardIdRequest(StrictSchema):
    card_id = fields.String(required=True, validate=ID_RULE)


class CreditLimitRequest(StrictSchema):
    """The buyer's credit limit (``set_credit_limit(account_id, payload)``; 0 turns
    credit payment off)."""

    amount = fields.Nested(MoneySchema, required=True)


class BalanceResponse(AnswerSchema):
    account_id = fields.String()
    balance = fields.Nested(
        MoneySchema, metadata={"description": "Prepaid money available to pay orders."}
    )
    credit_limit = fields.Nested(
        MoneySchema, metadata={"description": "Set by an operator; 0: no credit payment."}
    )
    credit_used = fields.Nested(MoneySchema)
    available_credit = fields.Nested(MoneySchema)


class TopUpResponse(_CardCharge):
    id = fields.String(metadata={"example": "top_1f2e…"})
    status = fields.String(metadata={"example": "succeeded"})


# -- RPC: bills and cost analysis (list_bills, cost_analysis) ---------------------------

BILL_KINDS = ("charge", "refund")
COST_GROUPINGS = ("enterprise_project", "product", "month")
COST_ANALYSIS_MAX_DAYS = 366
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_month(value: str) -> dt.datetime:
    """The first instant (UTC) of a ``YYYY-MM`` month."""
    return dt.datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=dt.UTC)


def parse_day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


_MONTH_RULE = validate.Regexp(_MONTH, error="must be a UTC month written YYYY-MM, such as 2026-11")
_DAY_ERROR = "must be a UTC day written YYYY-MM-DD, such as 2026-11-01"


def _is_day(value: str) -> bool:
    """A day of the calendar (the shape is ``_DAY``'s, checked beside)."""
    if _DAY.match(value):
        try:
            parse_day(value)
        except ValueError:
            raise ValidationError(_DAY_ERROR) from None
    return True


_DAY_RULES = [validate.Regexp(_DAY, error=_DAY_ERROR), _is_day]


class BillsQuery(PageSchema):
    """A month's bill (``list_bills``): the caller's charges and refunds of one UTC
    month, optionally of one enterprise project."""

    month = fields.String(
        required=True,
        validate=_MONTH_RULE,
        metadata={"description": "The UTC month, `YYYY-MM`.", "example": "2026-11"},
    )
    enterprise_project_id = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Only the lines booked to this project (`default` or `eps_...`).",
            "example": "default",
        },
    )


class CostAnalysisQuery(
    # from and to are Python words: the fields are declared by name
    QuerySchema.from_dict(  # type: ignore[misc]
        {
            "from": fields.String(
                required=True,
                validate=_DAY_RULES,
                metadata={"description": "First UTC day, `YYYY-MM-DD`.", "example": "2026-11-01"},
            ),
            "to": fields.String(
                required=True,
                validate=_DAY_RULES,
                metadata={
                    "description": "Last UTC day (included), `YYYY-MM-DD`; at most "
                    f"{COST_ANALYSIS_MAX_DAYS} days from `from` in all.",
                    "example": "2026-11-30",
                },
            ),
        },
        name="_CostAnalysisDays",
    )
):
    """Net spending over some UTC days (``cost_analysis``), by enterprise project, by
    product or by UTC month."""

    group_by = fields.String(
        load_default="enterprise_project",
        validate=validate.OneOf(COST_GROUPINGS),
        metadata={
            "description": "`enterprise_project` (the default), `product` or `month`.",
            "example": "enterprise_project",
        },
    )

    @validates_schema
    def _days_in_order(self, data, **kwargs):
        first, last = data.get("from"), data.get("to")
        if first is None or last is None:
            return
        first_day, last_day = parse_day(first), parse_day(last)
        if last_day < first_day:
            raise ValidationError("must not be before from", "to")
        if (last_day - first_day).days + 1 > COST_ANALYSIS_MAX_DAYS:
            raise ValidationError(
                f"at most {COST_ANALYSIS_MAX_DAYS} days from from, both included", "to"
            )


class BillLineResponse(AnswerSchema):
    """One line of a bill: a charge of an order, or a refund of one."""

    id = fields.String(
        metadata={"description": "The ledger transaction (as the statement shows it)."}
    )
    kind = fields.String(validate=validate.OneOf(BILL_KINDS), metadata={"example": "charge"})
    order_id = fields.String(allow_none=True)
    order_type = fields.String(
        allow_none=True,
        metadata={"description": "`purchase`, `renewal` or `upgrade`.", "example": "purchase"},
    )
    product_id = fields.String(allow_none=True)
    product_name = fields.String(allow_none=True, metadata={"example": "Northwind CRM"})
    buyer_account_id = fields.String(
        allow_none=True,
        metadata={"description": "The buyer (a reseller's bill holds its customers' orders)."},
    )
    enterprise_project_id = fields.String(metadata={"example": "default"})
    enterprise_project_name = fields.String(metadata={"example": "default"})
    amount = fields.Nested(
        MoneySchema, metadata={"description": "A charge positive, a refund negative."}
    )
    payment_method = fields.String(allow_none=True, metadata={"example": "balance"})
    occurred_at = fields.AwareDateTime()


class BillProjectTotal(AnswerSchema):
    """A project's figures on the bill: ``net`` = ``charges`` + ``refunds``. A
    reseller's bill totals each customer's projects apart (``buyer_account_id``)."""

    buyer_account_id = fields.String(
        allow_none=True,
        metadata={
            "description": "Null for the account's own projects; on a reseller's bill, the "
            "customer whose project it is (each customer's `default` is its own)."
        },
    )
    enterprise_project_id = fields.String(metadata={"example": "default"})
    enterprise_project_name = fields.String(metadata={"example": "default"})
    charges = fields.Nested(MoneySchema, metadata={"description": "Positive."})
    refunds = fields.Nested(MoneySchema, metadata={"description": "Negative (or 0)."})
    net = fields.Nested(MoneySchema)


class BillPage(page_of(BillLineResponse, "_BillLines")):  # type: ignore[misc]
    """A month's bill: a page of its lines (oldest first) and, over the whole month
    (every page), the totals per project and their net."""

    month = fields.String(metadata={"example": "2026-11"})
    totals = fields.List(fields.Nested(BillProjectTotal))
    total_net = fields.Nested(MoneySchema)


class CostPoint(AnswerSchema):
    key = fields.String(
        allow_none=True,
        metadata={
            "description": "The project id, product id or month (`YYYY-MM`); a product "
            "billing has not heard of is null.",
            "example": "default",
        },
    )
    name = fields.String(allow_none=True, metadata={"example": "default"})
    amount = fields.Nested(MoneySchema, metadata={"description": "Charges less refunds."})


class CostAnalysisResponse(AnswerSchema):
    from_ = fields.String(data_key="from", metadata={"example": "2026-11-01"})
    to = fields.String(metadata={"example": "2026-11-30"})
    group_by = fields.String(metadata={"example": "enterprise_project"})
    currency = fields.String(metadata={"example": "USD"})
    series = fields.List(fields.Nested(CostPoint))
    total = fields.Nested(MoneySchema)


class TransactionResponse(AnswerSchema):
    """One movement of the account's money, with the figures after it."""

    id = fields.String()
    kind = fields.String(
        metadata={"description": "`payment`, `top_up` or `refund`.", "example": "top_up"}
    )
    payment_method = fields.String(allow_none=True)
    amount = fields.Nested(MoneySchema)
    balance_after = fields.Nested(MoneySchema, allow_none=True)
    credit_used_after = fields.Nested(MoneySchema, allow_none=True)
    order_id = fields.String(allow_none=True)
    payment_id = fields.String(allow_none=True)
    top_up_id = fields.String(allow_none=True)
    refund_id = fields.String(
        allow_none=True, metadata={"description": "A refund: `payment_id` names what it refunds."}
    )
    buyer_account_id = fields.String(
        allow_none=True,
        metadata={"description": "A reseller's movement: the customer whose order it paid."},
    )
    created_at = fields.AwareDateTime()


TransactionPage = page_of(TransactionResponse, "TransactionPage")


# -- invoices ---------------------------------------------------------------------------

INVOICE_STATUSES = ("requested", "issued", "returned", "reissued", "cancelled")
MAX_INVOICE_ORDERS = 50
_INVOICE = "inv_3a9d2c7e5b1f4e08a6c4d2b0f9e7a5c3"
_SELLER = "acc_8c1e4b7a2d9f4c3e8b5a7d1f0e2c4b6a"


class _InvoiceV1(StrictSchema):
    """Which invoice: whose (the buyer), of which seller, for which orders."""

    invoice_id = fields.String(required=True)
    account_id = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    order_ids = fields.List(fields.String(), required=True)
    amount = fields.Nested(MoneySchema, required=True)


class InvoiceRequestedV1(_InvoiceV1):
    # the returned invoice this one replaces, if any
    reissue_of = fields.String(required=True, allow_none=True)
    requested_at = fields.AwareDateTime(required=True)


class InvoiceIssuedV1(_InvoiceV1):
    number = fields.String(required=True)
    issued_at = fields.AwareDateTime(required=True)


class InvoiceReturnedV1(_InvoiceV1):
    number = fields.String(required=True)
    reason = fields.String(required=True)
    returned_at = fields.AwareDateTime(required=True)


class InvoiceCancelledV1(_InvoiceV1):
    reason = fields.String(required=True)
    cancelled_at = fields.AwareDateTime(required=True)


_INVOICE_EXAMPLE = {
    "invoice_id": _INVOICE,
    "account_id": _BUYER,
    "seller_account_id": _SELLER,
    "order_ids": [_ORDER],
    "amount": {"amount": 129900, "currency": "USD"},
}

register(
    "billing.invoice.requested",
    1,
    InvoiceRequestedV1,
    summary="A buyer asked for an invoice for paid orders of one seller (or reissued a "
    "returned one); billing issues it shortly, once the seller's details are read.",
    subject="the invoice id",
    example_subject=_INVOICE,
    example={
        **_INVOICE_EXAMPLE,
        "reissue_of": None,
        "requested_at": dt.datetime(2026, 1, 15, 9, 42, tzinfo=dt.UTC),
    },
)
register(
    "billing.invoice.issued",
    1,
    InvoiceIssuedV1,
    summary="An invoice was issued: it has its number (INV-<year>-<6 digits>, without "
    "gaps in a year) and its PDF, kept as issued.",
    subject="the invoice id",
    example_subject=_INVOICE,
    example={
        **_INVOICE_EXAMPLE,
        "number": "INV-2026-000042",
        "issued_at": dt.datetime(2026, 1, 15, 9, 42, 5, tzinfo=dt.UTC),
    },
)
register(
    "billing.invoice.returned",
    1,
    InvoiceReturnedV1,
    summary="The buyer returned an issued invoice, or one of its orders was refunded "
    '(reason "order <id> was refunded"): its orders may be invoiced again (a reissue, or '
    "a new request).",
    subject="the invoice id",
    example_subject=_INVOICE,
    example={
        **_INVOICE_EXAMPLE,
        "number": "INV-2026-000042",
        "reason": "The tax id was wrong.",
        "returned_at": dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC),
    },
)

register(
    "billing.invoice.cancelled",
    1,
    InvoiceCancelledV1,
    summary="A requested invoice was cancelled before it was issued, because one of its "
    "orders was refunded (no number was used); its orders are on no invoice any more.",
    subject="the invoice id",
    example_subject=_INVOICE,
    example={
        **_INVOICE_EXAMPLE,
        "reason": f"order {_ORDER} was refunded",
        "cancelled_at": dt.datetime(2026, 1, 15, 9, 42, 3, tzinfo=dt.UTC),
    },
)

_INVOICE_TITLE_RULE = validate.Length(min=1, max=200)
_TAX_ID_RULE = validate.Length(min=1, max=64)
_ADDRESS_RULE = validate.Length(min=1, max=500)
_EMAIL_RULE = validate.Length(max=254)


class InvoiceRequest(StrictSchema):
    """Ask for an invoice for paid orders of one seller (``request_invoice``)."""

    order_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=MAX_INVOICE_ORDERS),
        metadata={
            "description": f"1 to {MAX_INVOICE_ORDERS} of the caller's paid orders, all of "
            "one seller, none on a live invoice.",
            "example": [_ORDER],
        },
    )
    title = fields.String(
        required=True,
        validate=_INVOICE_TITLE_RULE,
        metadata={"description": "Who the invoice is made out to.", "example": "Contoso Ltd"},
    )
    tax_id = fields.String(
        required=True, validate=_TAX_ID_RULE, metadata={"example": "91440300MA5G8X2K1P"}
    )
    address = fields.String(
        required=True,
        validate=_ADDRESS_RULE,
        metadata={"example": "1 Harbour Road, Shenzhen"},
    )
    email = fields.Email(
        required=True, validate=_EMAIL_RULE, metadata={"example": "accounts@contoso.test"}
    )

    @validates_schema
    def _each_order_once(self, data, **kwargs):
        order_ids = data.get("order_ids") or []
        if len(set(order_ids)) != len(order_ids):
            raise ValidationError("each order at most once", "order_ids")


class InvoiceReissueRequest(StrictSchema):
    """Reissue a returned invoice (``reissue_invoice``): what to change, else as it was."""

    title = fields.String(validate=_INVOICE_TITLE_RULE, metadata={"example": "Contoso Ltd"})
    tax_id = fields.String(validate=_TAX_ID_RULE, metadata={"example": "91440300MA5G8X2K1P"})
    address = fields.String(validate=_ADDRESS_RULE, metadata={"example": "1 Harbour Road"})
    email = fields.Email(validate=_EMAIL_RULE, metadata={"example": "accounts@contoso.test"})


class InvoiceReturnRequest(StrictSchema):
    """Return an issued invoice (``return_invoice``)."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"example": "The tax id was wrong."},
    )


class InvoiceIdRequest(StrictSchema):
    invoice_id = fields.String(required=True, validate=ID_RULE)


class InvoiceQuery(PageSchema):
    """``GET /v1/invoices``: a page of the caller's invoices, newest first."""

    status = fields.String(
        validate=validate.OneOf(INVOICE_STATUSES),
        metadata={"description": "Only invoices in this status."},
    )


class InvoiceSellerResponse(AnswerSchema):
    """The seller as its profile stood when the invoice was issued."""

    id = fields.String(metadata={"example": _SELLER})
    company_name = fields.String(metadata={"example": "Acme Ltd"})
    email = fields.String(allow_none=True, metadata={"example": "sales@acme.test"})
    mobile = fields.String(allow_none=True, metadata={"example": "+86 755 2878 0808"})
    support_range = fields.String(allow_none=True)


class InvoiceOrderResponse(AnswerSchema):
    order_id = fields.String(metadata={"example": _ORDER})
    product_name = fields.String(metadata={"example": "Northwind CRM"})
    amount = fields.Nested(MoneySchema, metadata={"description": "What the order was paid."})


class InvoiceResponse(AnswerSchema):
    """An invoice: ``requested`` (being issued), ``issued`` (numbered, its PDF ready),
    ``returned`` (its orders may be invoiced again; also when one of its orders was
    refunded), ``reissued`` (returned and replaced by ``reissued_as``) or
    ``cancelled`` (one of its orders was refunded before it was issued: no number;
    ``return_reason`` says which)."""

    id = fields.String(metadata={"example": _INVOICE})
    number = fields.String(allow_none=True, metadata={"example": "INV-2026-000042"})
    status = fields.String(metadata={"example": "issued"})
    title = fields.String()
    tax_id = fields.String()
    address = fields.String()
    email = fields.String()
    seller = fields.Nested(
        InvoiceSellerResponse,
        allow_none=True,
        metadata={"description": "Null until the invoice is issued."},
    )
    orders = fields.List(fields.Nested(InvoiceOrderResponse))
    amount = fields.Nested(MoneySchema, metadata={"description": "The orders' total."})
    created_at = fields.AwareDateTime()
    issued_at = fields.AwareDateTime(allow_none=True)
    returned_at = fields.AwareDateTime(allow_none=True)
    return_reason = fields.String(allow_none=True)
    reissue_of = fields.String(allow_none=True)
    reissued_as = fields.String(allow_none=True)


InvoicePage = page_of(InvoiceResponse, "InvoicePage")


class InvoicePdfResponse(AnswerSchema):
    """An issued invoice's PDF, as kept when it was issued (``get_invoice_pdf``)."""

    filename = fields.String(metadata={"example": "INV-2026-000042.pdf"})
    content_type = fields.String(metadata={"example": "application/pdf"})
    content_base64 = fields.String()
