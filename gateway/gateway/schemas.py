"""The public API's request and response bodies (API.md), as marshmallow schemas.

Request schemas refuse unknown fields (``RAISE``), so a misspelt field is a 400 that
names it instead of being ignored. Response schemas keep only the documented fields
of a service's answer. The OpenAPI document is generated from these classes, so their
``metadata`` (description, example) is what a client reads.

The rules of a field (lengths, choices) match the service's own RPC schema, which
checks them again; ``tests/test_schemas.py`` keeps the two in step.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from mercato.identity import BUYER, RESELLER, SELLER
from mercato.money import CURRENCY_RULE, MAX_AMOUNT
from mercato.validation import StrictBoolean

SIGN_UP_TYPES = (BUYER, SELLER, RESELLER)
PASSWORD_RULE = validate.Length(min=10, max=128, error="must be 10 to 128 characters")

# lists (API.md): ?page=1&page_size=20, page_size at most 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# far beyond any list; keeps the offset a service computes within a 64-bit integer
MAX_PAGE = 100_000

ORDER_STATUSES = (
    "unpaid",
    "paid",
    "delivering",
    "awaiting_acceptance",
    "completed",
    "cancelled",
    "failed",
)
SUBSCRIPTION_STATUSES = ("enabling", "enabled", "frozen", "expired", "released")
YEARLY_MONTHLY, PAY_PER_USE, ONE_TIME = "yearly_monthly", "pay_per_use", "one_time"
BILLING_MODES = (YEARLY_MONTHLY, PAY_PER_USE, ONE_TIME)
PERIOD_UNITS = ("month", "year", "hour")
DELIVERY_METHODS = ("license", "professional_service", "saas", "image")
PAYMENT_METHODS = ("balance", "credit_card", "credit")


class RequestSchema(Schema):
    class Meta:
        unknown = RAISE


class QuerySchema(RequestSchema):
    """A query string (``web.read_query``): every value arrives as a string, and the
    fields convert it (``page=abc`` is a 400 naming ``page``). Unknown names are refused
    like unknown body fields; an empty value (``?status=``) means "not given", as a form
    sends it."""

    @pre_load
    def drop_empty(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value not in (None, "")}
        return data


class QueryInteger(fields.Integer):
    """A whole number written in decimal digits (``"20"``, ``"-1"``): never ``"1.0"``,
    ``"1e3"`` or ``"1_000"``, which Python's ``int()`` would take."""

    _DIGITS = re.compile(r"^[+-]?[0-9]{1,18}$")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not self._DIGITS.match(value):
            raise self.make_error("invalid")
        return int(value)


class QueryBoolean(fields.Boolean):
    """``true`` or ``false``, spelt so."""

    default_error_messages = {"invalid": "Not a valid boolean: must be true or false."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)


class ResponseSchema(Schema):
    """A response may gain fields (API.md): the document does not forbid extra ones."""

    class Meta:
        unknown = EXCLUDE


class EmptyRequest(RequestSchema):
    """No body is needed (the path says it all); an empty object is accepted and any
    field is refused."""


# -- shared shapes ---------------------------------------------------------------


class MoneyRequest(RequestSchema):
    """An amount of money: an integer of minor units (cents) and its currency."""

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


class PositiveMoneyRequest(MoneyRequest):
    """An amount of money above zero."""

    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_AMOUNT),
        metadata={"description": "Minor units (cents), at least 1.", "example": 50000},
    )


class MoneyResponse(ResponseSchema):
    amount = fields.Integer(metadata={"description": "Minor units (cents).", "example": 12345})
    currency = fields.String(metadata={"example": "USD"})


class PageQuery(QuerySchema):
    page = QueryInteger(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": "From 1.", "example": 1},
    )
    page_size = QueryInteger(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"1 to {MAX_PAGE_SIZE}.", "example": DEFAULT_PAGE_SIZE},
    )


def page_of(item: type[Schema], name: str) -> type[ResponseSchema]:
    """``{items: [item], total, page, page_size}`` (API.md's lists)."""
    attrs: dict[str, Any] = {
        "__doc__": f"One page of a list; ``total`` counts every {item.__name__} of the list.",
        "items": fields.List(fields.Nested(item)),
        "total": fields.Integer(metadata={"example": 1}),
        "page": fields.Integer(metadata={"example": 1}),
        "page_size": fields.Integer(metadata={"example": DEFAULT_PAGE_SIZE}),
    }
    return type(name, (ResponseSchema,), attrs)


class NewUserRequest(RequestSchema):
    """An account's name and the email and password of its first user."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The account's display name.", "example": "Acme Ltd"},
    )
    email = fields.Email(
        required=True,
        validate=validate.Length(max=254),
        metadata={"description": "Sign-in email of the first user.", "example": "ops@acme.test"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=PASSWORD_RULE,
        metadata={"description": "10 to 128 characters.", "example": "correct horse battery"},
    )


class SignUpRequest(NewUserRequest):
    """Open an account and its first user."""

    type = fields.String(
        required=True,
        validate=validate.OneOf(SIGN_UP_TYPES),
        metadata={"description": "What the account does on the marketplace.", "example": BUYER},
    )


class SignInRequest(RequestSchema):
    """Exchange an email and password for a bearer token."""

    email = fields.Email(
        required=True, validate=validate.Length(max=254), metadata={"example": "ops@acme.test"}
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=128),
        metadata={"example": "correct horse battery"},
    )


class AccountResponse(ResponseSchema):
    id = fields.String(metadata={"example": "acc_3f0c8a8e9d5b4f7c9e2a1b0c4d6e8f00"})
    name = fields.String(metadata={"example": "Acme Ltd"})
    email = fields.String(metadata={"example": "ops@acme.test"})
    type = fields.String(validate=validate.OneOf(SIGN_UP_TYPES), metadata={"example": BUYER})


class TokenResponse(ResponseSchema):
    token = fields.String(
        metadata={
            "description": "Send it as `Authorization: Bearer <token>`.",
            "example": "mkt_4bX2…",
        }
    )
    expires_at = fields.AwareDateTime(
        metadata={"description": "RFC 3339, UTC.", "example": "2026-11-28T03:00:00+00:00"}
    )


class AccountSummary(ResponseSchema):
    id = fields.String()
    name = fields.String()
    type = fields.String(metadata={"description": "buyer, seller, reseller or operator"})


class UserSummary(ResponseSchema):
    id = fields.String()
    email = fields.String()


class MeResponse(ResponseSchema):
    """Who the bearer token belongs to."""

    account = fields.Nested(AccountSummary)
    user = fields.Nested(UserSummary)
    roles = fields.List(fields.String(), metadata={"example": [BUYER]})


class ResellerCustomerRequest(NewUserRequest):
    """A reseller opens a buyer account whose orders it pays for."""


class ResellerCustomerResponse(AccountResponse):
    """A buyer account associated with the reseller that opened it."""

    reseller_account_id = fields.String(
        metadata={
            "description": "The reseller that pays for this buyer's orders.",
            "example": "acc_9d1e…",
        }
    )


class ErrorResponse(ResponseSchema):
    """The body of every error."""

    error = fields.String(
        required=True,
        metadata={"description": "Machine-readable code.", "example": "VALIDATION_ERROR"},
    )
    message = fields.String(
        required=True,
        metadata={
            "description": "A sentence for a person.",
            "example": "invalid request: check email",
        },
    )
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        data_key="fields",
        metadata={
            "description": "Validation errors only: each field and the rules it broke "
            "(`_body` names the body itself).",
            "example": {"email": ["Not a valid email address."]},
        },
    )


class HealthResponse(ResponseSchema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessResponse(ResponseSchema):
    status = fields.String(
        validate=validate.OneOf(["ready", "not ready"]), metadata={"example": "ready"}
    )
    problems = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "What keeps the gateway from serving, by dependency.",
            "example": {"iam_agency": "iam_agency did not answer ping within 2s"},
        },
    )


# -- orders and payment ----------------------------------------------------------


class PeriodRequest(RequestSchema):
    """How long a yearly/monthly purchase runs."""

    unit = fields.String(
        required=True, validate=validate.OneOf(["month", "year"]), metadata={"example": "year"}
    )
    count = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=60),
        metadata={
            "description": "How many units; the product decides what it sells "
            "(1-11 months or 1-5 years).",
            "example": 1,
        },
    )


class PlaceOrderRequest(RequestSchema):
    """Buy one configuration of a product: a specification, a billing mode, its period
    (yearly/monthly only) and a quantity within the specification's bounds."""

    product_id = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"example": "prd_0b6f…"}
    )
    specification_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "One of the product's specifications.", "example": "spc_41a2…"},
    )
    billing_mode = fields.String(
        required=True,
        validate=validate.OneOf(BILLING_MODES),
        metadata={"description": "One the specification offers.", "example": YEARLY_MONTHLY},
    )
    period = fields.Nested(
        PeriodRequest,
        load_default=None,
        allow_none=True,
        metadata={"description": "Required for yearly_monthly; refused for the other modes."},
    )
    quantity = fields.Integer(
        strict=True,
        load_default=1,
        validate=validate.Range(min=1),
        metadata={
            "description": "Within the specification's quantity bounds; default 1.",
            "example": 10,
        },
    )
    enterprise_project_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Default: the account's `default` project.", "example": "default"},
    )
    accept_terms = StrictBoolean(
        required=True,
        metadata={
            "description": "Must be `true`: the buyer accepts the product's terms "
            "(`false` is 422 TERMS_NOT_ACCEPTED).",
            "example": True,
        },
    )

    @validates_schema
    def period_goes_with_yearly_monthly(self, data, **kwargs):
        if data["billing_mode"] == YEARLY_MONTHLY and data.get("period") is None:
            raise ValidationError("required for the yearly_monthly billing mode", "period")
        if data["billing_mode"] != YEARLY_MONTHLY and data.get("period") is not None:
            raise ValidationError("only the yearly_monthly billing mode takes a period", "period")


class CardRequest(RequestSchema):
    """A payment card. Only its brand and last four digits are ever stored."""

    number = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=12, max=23),
        metadata={
            "example": "4242424242424242",
            "description": "Up to 19 digits, optionally in groups.",
        },
    )
    expiry = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=4, max=7),
        metadata={"description": "MM/YY.", "example": "12/30"},
    )
    cvc = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=3, max=4),
        metadata={"example": "123"},
    )


class PayOrderRequest(RequestSchema):
    """How to pay an unpaid order."""

    payment_method = fields.String(
        required=True,
        validate=validate.OneOf(PAYMENT_METHODS),
        metadata={
            "description": "`balance` (prepaid, see top-ups), `credit_card` (with `card`) "
            "or `credit` (within the credit limit an operator set).",
            "example": "balance",
        },
    )
    card = fields.Nested(
        CardRequest,
        load_default=None,
        metadata={"description": "Required for credit_card; refused for the other methods."},
    )

    @validates_schema
    def card_goes_with_credit_card(self, data, **kwargs):
        if data["payment_method"] == "credit_card" and data.get("card") is None:
            raise ValidationError("required to pay by credit_card", "card")
        if data["payment_method"] != "credit_card" and data.get("card") is not None:
            raise ValidationError("only the credit_card payment method takes a card", "card")


class OrdersQuery(PageQuery):
    status = fields.String(
        validate=validate.OneOf(ORDER_STATUSES),
        metadata={"description": 'Only orders in this status (`unpaid`: "Unpaid Orders").'},
    )


class PeriodResponse(ResponseSchema):
    unit = fields.String(metadata={"example": "year"})
    count = fields.Integer(metadata={"example": 1})


class OrderLineResponse(ResponseSchema):
    """What was bought, at the price fixed when the order was placed."""

    id = fields.String()
    product_id = fields.String()
    product_name = fields.String(metadata={"example": "Acme Backup for ECS"})
    seller_account_id = fields.String()
    specification_id = fields.String()
    specification_name = fields.String(metadata={"example": "Standard"})
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    billing_mode = fields.String(validate=validate.OneOf(BILLING_MODES))
    period = fields.Nested(PeriodResponse, allow_none=True)
    quantity = fields.Integer(metadata={"example": 10})
    unit_price = fields.Nested(MoneyResponse)
    amount = fields.Nested(MoneyResponse)


class OrderResponse(ResponseSchema):
    id = fields.String(metadata={"example": "ord_5c2e…"})
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES), metadata={"example": "unpaid"})
    account_id = fields.String(metadata={"description": "The buyer."})
    paid_by_reseller = fields.Boolean(
        metadata={
            "description": "A reseller's customer: the reseller paid when the order was "
            "placed; `amount_due` is shown for reference."
        }
    )
    enterprise_project_id = fields.String(metadata={"example": "default"})
    amount_due = fields.Nested(MoneyResponse)
    lines = fields.List(fields.Nested(OrderLineResponse))
    payment_deadline = fields.AwareDateTime(
        metadata={"description": "An unpaid order is cancelled after this."}
    )
    payment_method = fields.String(allow_none=True, metadata={"example": "balance"})
    paid_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


OrderPage = page_of(OrderResponse, "OrderPage")


# -- purchased apps ----------------------------------------------------------------


class PurchasedAppResponse(ResponseSchema):
    """One subscription: what a paid order line became."""

    id = fields.String(metadata={"example": "sub_7a3d…"})
    order_id = fields.String()
    product_id = fields.String()
    product_name = fields.String(metadata={"example": "Acme Backup for ECS"})
    specification_name = fields.String(metadata={"example": "Standard"})
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    status = fields.String(
        validate=validate.OneOf(SUBSCRIPTION_STATUSES), metadata={"example": "enabling"}
    )
    expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Yearly/monthly only; null otherwise."}
    )
    billing_mode = fields.String(validate=validate.OneOf(BILLING_MODES))
    auto_renew = fields.Boolean()
    enterprise_project_id = fields.String(metadata={"example": "default"})
    created_at = fields.AwareDateTime()


class ApplicationResponse(ResponseSchema):
    """How to reach what was delivered (what its delivery method has)."""

    delivery_status = fields.String(
        metadata={
            "description": "`pending` (being delivered), `succeeded`, `failed`, "
            "`waiting` (delivered by another flow: images, professional services), or "
            "`unknown` (provisioning did not answer just now)"
        }
    )
    username = fields.String(allow_none=True)
    password = fields.String(
        allow_none=True,
        metadata={"description": "Always `******`: reveal it with the credentials reveal."},
    )
    management_url = fields.String(allow_none=True)
    frontend_url = fields.String(allow_none=True)
    product_guide_url = fields.String(allow_none=True)
    license_key = fields.String(allow_none=True)


class PurchasedAppBasicResponse(ResponseSchema):
    specification_name = fields.String()
    delivery_method = fields.String()
    resource_status = fields.String(allow_none=True)
    billing_mode = fields.String()
    auto_renew = fields.Boolean()


class SellerContactResponse(ResponseSchema):
    company_name = fields.String()
    mobile = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class PurchasedAppDetailsResponse(PurchasedAppResponse):
    """The subscription; ``application``, ``basic`` and ``seller`` appear once delivery
    records them (until then only the subscription's own fields are answered)."""

    application = fields.Nested(ApplicationResponse, allow_none=True)
    basic = fields.Nested(PurchasedAppBasicResponse, allow_none=True)
    seller = fields.Nested(SellerContactResponse, allow_none=True)


PurchasedAppPage = page_of(PurchasedAppResponse, "PurchasedAppPage")


class CredentialsResponse(ResponseSchema):
    """A delivered application's sign-in, in the clear: this reveal is recorded."""

    username = fields.String()
    password = fields.String()


class InterfaceCredentialsResponse(ResponseSchema):
    """The key pair with which Mercato signs its calls to the seller's SaaS endpoints
    (docs/seller-saas-interface.md). The secret is shown this once; asking again
    replaces the pair."""

    seller_account_id = fields.String()
    access_key = fields.String(metadata={"example": "ak_3f9c…"})
    secret = fields.String()
    created_at = fields.AwareDateTime()


class LicensePublicKeyResponse(ResponseSchema):
    """The key that verifies a seller's license keys offline."""

    seller_account_id = fields.String()
    algorithm = fields.String(metadata={"example": "Ed25519"})
    key_id = fields.String()
    public_key = fields.String(metadata={"description": "The raw 32-byte key, base64url."})
    public_key_pem = fields.String()
    license_format = fields.String()


# -- billing -----------------------------------------------------------------------


class TopUpRequest(RequestSchema):
    """Add money to the prepaid balance, taken from a card."""

    amount = fields.Nested(PositiveMoneyRequest, required=True)
    card = fields.Nested(CardRequest, required=True)


class CreditLimitRequest(RequestSchema):
    """The buyer's credit limit (0 turns credit payment off)."""

    amount = fields.Nested(MoneyRequest, required=True)


class BalanceResponse(ResponseSchema):
    account_id = fields.String()
    balance = fields.Nested(
        MoneyResponse, metadata={"description": "Prepaid money available to pay orders."}
    )
    credit_limit = fields.Nested(
        MoneyResponse, metadata={"description": "Set by an operator; 0: no credit payment."}
    )
    credit_used = fields.Nested(MoneyResponse)
    available_credit = fields.Nested(MoneyResponse)


class CardSummaryResponse(ResponseSchema):
    brand = fields.String(metadata={"example": "visa"})
    last4 = fields.String(metadata={"example": "4242"})


class TopUpResponse(ResponseSchema):
    id = fields.String(metadata={"example": "top_1f2e…"})
    account_id = fields.String()
    status = fields.String(metadata={"example": "succeeded"})
    amount = fields.Nested(MoneyResponse)
    card = fields.Nested(CardSummaryResponse, allow_none=True)
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class TransactionResponse(ResponseSchema):
    """One movement of the account's money, with the figures after it."""

    id = fields.String()
    kind = fields.String(
        metadata={"description": "`payment`, `top_up` or `refund`.", "example": "top_up"}
    )
    payment_method = fields.String(allow_none=True)
    amount = fields.Nested(MoneyResponse)
    balance_after = fields.Nested(MoneyResponse, allow_none=True)
    credit_used_after = fields.Nested(MoneyResponse, allow_none=True)
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


# -- catalog -------------------------------------------------------------------------

PRODUCT_STATUSES = ("draft", "published", "delisted")
SORTS = ("relevance", "price_asc", "price_desc", "newest")
ID_RULE = validate.Length(min=1, max=40)
# the catalog's wording of the ISO 4217 rule, for the seller's currency
SELLER_CURRENCY_RULE = validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code such as USD")
MOBILE_RULE = validate.Regexp(
    r"^\+?[0-9][0-9 ()-]{4,30}$", error="must be a phone number such as +86 755 2878 0808"
)
# the catalog's bounds: every quoted amount (price x 11 periods x quantity) fits 64 bits
MAX_PRICE_AMOUNT = 100_000_000_000
MAX_QUANTITY = 1_000_000


class SellerProfileRequest(RequestSchema):
    """The seller's public profile, shown on its products; ``currency`` is the currency
    of the prices of the products it creates from now on."""

    company_name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"example": "Acme Ltd"}
    )
    email = fields.Email(
        required=True,
        validate=validate.Length(max=254),
        metadata={"description": "Support email shown to buyers.", "example": "help@acme.test"},
    )
    mobile = fields.String(
        load_default=None,
        allow_none=True,
        validate=MOBILE_RULE,
        metadata={"example": "+86 755 2878 0808"},
    )
    support_range = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "What support covers, and when.", "example": "24x7, English"},
    )
    currency = fields.String(
        load_default=None,
        allow_none=True,
        validate=SELLER_CURRENCY_RULE,
        metadata={"description": "Absent: unchanged (USD for a new seller).", "example": "USD"},
    )


class SellerProfileResponse(ResponseSchema):
    account_id = fields.String()
    company_name = fields.String()
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)
    currency = fields.String(metadata={"example": "USD"})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class QuantityRequest(RequestSchema):
    """A specification's quantity dimension: what a buyer buys several of."""

    name = fields.String(
        required=True, validate=validate.Length(min=1, max=50), metadata={"example": "users"}
    )
    min = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, error="must be at least 1"),
        metadata={"example": 1},
    )
    max = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(max=MAX_QUANTITY, error=f"must be at most {MAX_QUANTITY}"),
        metadata={"description": "Not below `min`.", "example": 1000},
    )


class PriceRequest(RequestSchema):
    """One price of a specification. ``period_unit``: ``month`` or ``year`` for
    yearly_monthly, ``hour`` for pay_per_use, none for one_time."""

    billing_mode = fields.String(
        required=True, validate=validate.OneOf(BILLING_MODES), metadata={"example": YEARLY_MONTHLY}
    )
    period_unit = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PERIOD_UNITS),
        metadata={"example": "month"},
    )
    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(
            min=0, max=MAX_PRICE_AMOUNT, error=f"must be between 0 and {MAX_PRICE_AMOUNT}"
        ),
        metadata={
            "description": "Minor units (cents) of the seller's currency, per period unit "
            "and per unit of quantity.",
            "example": 1500,
        },
    )


class SpecificationRequest(RequestSchema):
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"example": "Standard"}
    )
    prices = fields.List(
        fields.Nested(PriceRequest),
        required=True,
        validate=validate.Length(min=1, max=12, error="must have 1 to 12 prices"),
    )
    quantity = fields.Nested(QuantityRequest, load_default=None, allow_none=True)


class CreateProductRequest(RequestSchema):
    """A new product, created as a draft: buyers see it once it is published."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "Acme Backup for ECS"},
    )
    summary = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"example": "Incremental backups of cloud servers."},
    )
    description = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    category = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"example": "storage"}
    )
    delivery_method = fields.String(
        required=True, validate=validate.OneOf(DELIVERY_METHODS), metadata={"example": "saas"}
    )
    service_supervision = StrictBoolean(
        required=True,
        metadata={
            "description": "The buyer accepts the delivered service before it completes.",
            "example": False,
        },
    )
    product_guide_url = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        validate=validate.Length(max=2048),
        metadata={"example": "https://acme.test/guide"},
    )
    terms = fields.String(
        required=True,
        validate=validate.Length(min=1, max=50_000),
        metadata={"description": "What a buyer accepts when ordering."},
    )
    specifications = fields.List(
        fields.Nested(SpecificationRequest),
        required=True,
        validate=validate.Length(min=1, max=20, error="must have 1 to 20 specifications"),
    )
    saas_endpoint_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=2048),
        metadata={
            "description": "A `saas` product's endpoint of the seller interface (required "
            "to publish it): https, or plain http to a loopback host in development. "
            "Only its seller sees it.",
            "example": "https://crm.acme.test/mercato/saas",
        },
    )


class DelistRequest(RequestSchema):
    """Take a published product off the marketplace."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Shown to the seller.", "example": "Violates the listing rules."},
    )


class SaveProductRequest(RequestSchema):
    """Add a product to "My Saved List"."""

    product_id = fields.String(required=True, validate=ID_RULE, metadata={"example": "prd_0b6f…"})


class ProductSearchQuery(PageQuery):
    """Search the published products."""

    q = fields.String(
        validate=validate.Length(max=200),
        metadata={
            "description": "Words that must all match (name, seller, summary, description); "
            "`or` between words gives alternatives.",
            "example": "backup",
        },
    )
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    category = fields.String(validate=validate.Length(min=1, max=64))
    billing_mode = fields.String(
        validate=validate.OneOf(BILLING_MODES),
        metadata={"description": "Products with a specification that offers it."},
    )
    seller_id = fields.String(validate=ID_RULE)
    min_price = QueryInteger(
        validate=validate.Range(min=0),
        metadata={"description": "Lowest price at least this, in minor units."},
    )
    max_price = QueryInteger(
        validate=validate.Range(min=0),
        metadata={"description": "Lowest price at most this, in minor units."},
    )
    service_supervision = QueryBoolean()
    sort = fields.String(
        validate=validate.OneOf(SORTS), metadata={"description": "Default: relevance."}
    )

    @validates_schema
    def price_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and high < low:
            raise ValidationError("must not be less than min_price", "max_price")


class PriceResponse(ResponseSchema):
    billing_mode = fields.String(validate=validate.OneOf(BILLING_MODES))
    period_unit = fields.String(allow_none=True, metadata={"example": "month"})
    price = fields.Nested(MoneyResponse)


class QuantityResponse(ResponseSchema):
    name = fields.String(metadata={"example": "users"})
    min = fields.Integer(metadata={"example": 1})
    max = fields.Integer(metadata={"example": 1000})


class SpecificationResponse(ResponseSchema):
    id = fields.String(metadata={"description": "What an order names as `specification_id`."})
    name = fields.String(metadata={"example": "Standard"})
    prices = fields.List(fields.Nested(PriceResponse))
    quantity = fields.Nested(QuantityResponse, allow_none=True)


class SellerResponse(ResponseSchema):
    id = fields.String()
    company_name = fields.String(metadata={"example": "Acme Ltd"})
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)


class SellerNameResponse(ResponseSchema):
    id = fields.String()
    company_name = fields.String(metadata={"example": "Acme Ltd"})


class ProductResponse(ResponseSchema):
    """A product's details."""

    id = fields.String(metadata={"example": "prd_0b6f…"})
    status = fields.String(validate=validate.OneOf(PRODUCT_STATUSES))
    name = fields.String()
    summary = fields.String()
    description = fields.String()
    category = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    product_guide_url = fields.String(allow_none=True)
    terms = fields.String()
    seller = fields.Nested(SellerResponse)
    specifications = fields.List(fields.Nested(SpecificationResponse))
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(MoneyResponse)
    delist_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)
    delisted_at = fields.AwareDateTime(allow_none=True)


class ProductSummaryResponse(ResponseSchema):
    """One search result."""

    id = fields.String()
    name = fields.String()
    summary = fields.String()
    category = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    seller = fields.Nested(SellerNameResponse)
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(MoneyResponse, metadata={"description": '"From" this.'})
    published_at = fields.AwareDateTime()


class SellerProductDetailsResponse(ProductResponse):
    """A product as its seller sees it: with its SaaS endpoint."""

    saas_endpoint_url = fields.String(allow_none=True)


class SellerProductResponse(ResponseSchema):
    """One of the seller's own products, in any status."""

    saas_endpoint_url = fields.String(allow_none=True)
    id = fields.String()
    name = fields.String()
    status = fields.String(validate=validate.OneOf(PRODUCT_STATUSES))
    category = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(MoneyResponse)
    delist_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)
    delisted_at = fields.AwareDateTime(allow_none=True)


class SavedResponse(ResponseSchema):
    product_id = fields.String()
    saved_at = fields.AwareDateTime()


class SavedProductResponse(ResponseSchema):
    """A row of "My Saved List", with what buying it needs."""

    product_id = fields.String()
    name = fields.String()
    status = fields.String(
        validate=validate.OneOf(PRODUCT_STATUSES),
        metadata={"description": "A delisted product stays on the list but cannot be bought."},
    )
    seller = fields.Nested(SellerNameResponse)
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    specifications = fields.List(fields.Nested(SpecificationResponse))
    lowest_price = fields.Nested(MoneyResponse)
    saved_at = fields.AwareDateTime()


ProductSummaryPage = page_of(ProductSummaryResponse, "ProductSummaryPage")
SellerProductPage = page_of(SellerProductResponse, "SellerProductPage")
SavedProductPage = page_of(SavedProductResponse, "SavedProductPage")
