"""orders' contracts: the events it publishes, and what its RPCs accept and answer (the
public API's orders and purchased apps bodies are these very schemas)."""

import datetime as dt

from marshmallow import (
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from mercato.contracts.catalog import (
    RESOURCE_NAME_RULE,
    ChargeLineResponse,
    DeploymentSizingSchema,
)
from mercato.contracts.common import CardField, PeriodSchema
from mercato.contracts.registry import register
from mercato.money import MoneySchema, PositiveMoneySchema
from mercato.terms import (
    BILLING_MODES,
    CREDIT_CARD,
    DELIVERY_METHODS,
    ORDER_STATUSES,
    ORDER_TYPES,
    PAYMENT_METHODS,
    PURCHASE,
    SUBSCRIPTION_STATUSES,
    UNSUBSCRIPTION_STATUSES,
    YEARLY_MONTHLY,
)
from mercato.validation import (
    AnswerSchema,
    PageSchema,
    QueryInteger,
    StrictBoolean,
    StrictSchema,
    page_of,
)

# Examples (the AsyncAPI document shows them; the contract tests validate them).
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_SELLER = "acc_9a8b7c6d5e4f43a2b1c0d9e8f7a6b5c4"
_PRODUCT = "prd_1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"
_SPECIFICATION = "spc_6c5b4a3f2e1d40c9b8a7f6e5d4c3b2a1"
_LINE = "oln_2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7"
_PARTIES_EXAMPLE = {
    "order_id": _ORDER,
    "account_id": _BUYER,
    "payer_account_id": _BUYER,
    "enterprise_project_id": "default",
}
_CONFIGURATION_EXAMPLE = {
    "product_id": _PRODUCT,
    "product_name": "Northwind CRM",
    "seller_account_id": _SELLER,
    "specification_id": _SPECIFICATION,
    "specification_name": "Standard, 10 users",
    "delivery_method": "saas",
    "service_supervision": False,
    "billing_mode": "yearly_monthly",
    "period": {"unit": "year", "count": 1},
    "quantity": 1,
}


class PeriodV1(StrictSchema):
    unit = fields.String(required=True, validate=validate.OneOf(["month", "year"]))
    count = fields.Integer(required=True, strict=True)


class _ConfigurationV1(StrictSchema):
    """What was bought on one order line (shared by the order's lines and, once paid,
    by what provisioning delivers)."""

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


class OrderLineV1(_ConfigurationV1):
    id = fields.String(required=True)
    unit_price = fields.Nested(MoneySchema, required=True)
    amount = fields.Nested(MoneySchema, required=True)


class _OrderPartiesV1(StrictSchema):
    """Whose order: the buyer, who pays for it (the buyer, or its reseller) and the
    buyer's enterprise project."""

    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    payer_account_id = fields.String(required=True)
    enterprise_project_id = fields.String(required=True)


class OrderCreatedV1(_OrderPartiesV1):
    amount_due = fields.Nested(MoneySchema, required=True)
    lines = fields.List(fields.Nested(OrderLineV1), required=True)
    payment_deadline = fields.AwareDateTime(required=True)
    # added within v1: what the order is for, and the subscription a renewal or an
    # upgrade is of (None for a purchase)
    type = fields.String(load_default=PURCHASE, validate=validate.OneOf(ORDER_TYPES))
    subscription_id = fields.String(load_default=None, allow_none=True)


MAX_ORDER_FACTS = 100


class OrderFactsQuery(StrictSchema):
    """``order_facts`` (an internal RPC, for another service's own work): the orders it
    asks about; each answered as its ``orders.order.created`` data (``OrderCreatedV1``)
    and ``created_at``, unknown ones left out."""

    order_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=MAX_ORDER_FACTS),
    )


class PaidSubscriptionV1(_ConfigurationV1):
    """What is to be delivered for one order line: provisioning works from this."""

    subscription_id = fields.String(required=True)
    order_line_id = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True, allow_none=True)
    # added within v1: the buyer's time zone (IANA), where the expiry falls at 23:59:59
    time_zone = fields.String(load_default="UTC")


class OrderPaidV1(_OrderPartiesV1):
    payment_id = fields.String(required=True)
    payment_method = fields.String(required=True)
    amount = fields.Nested(MoneySchema, required=True)
    # on the orders service's clock (a test clock may set it apart from the envelope's
    # occurred_at); supervision decides a flow's process by it. Optional: added within v1
    paid_at = fields.AwareDateTime(load_default=None, allow_none=True)
    # one per order line: what provisioning delivers
    subscriptions = fields.List(
        fields.Nested(PaidSubscriptionV1), required=True, validate=validate.Length(min=1)
    )


class OrderCancelledV1(StrictSchema):
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    reason = fields.String(required=True)
    # set when the order had been paid (its delivery failed): billing refunds it
    payment_id = fields.String(load_default=None, allow_none=True)
    refund = fields.Nested(MoneySchema, load_default=None, allow_none=True)


class OrderCompletedV1(StrictSchema):
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    completed_at = fields.AwareDateTime(required=True)


class SubscriptionActivatedV1(StrictSchema):
    subscription_id = fields.String(required=True)
    order_id = fields.String(required=True)
    account_id = fields.String(required=True)
    product_id = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    status = fields.String(required=True)
    activated_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True, allow_none=True)


class SubscriptionCreatedV1(StrictSchema):
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


class SubscriptionFactsV1(StrictSchema):
    """Which subscription, whose, from which seller and what it is: the fields every
    event of a subscription's life after its purchase begins with (expiring, expired,
    frozen, released, renewed, upgraded, unsubscription), so that a subscriber can act
    on one without asking orders."""

    subscription_id = fields.String(required=True)
    order_id = fields.String(required=True)  # the order that bought it
    account_id = fields.String(required=True)  # the buyer
    seller_account_id = fields.String(required=True)
    product_id = fields.String(required=True)
    product_name = fields.String(required=True)
    specification_name = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    billing_mode = fields.String(required=True, validate=validate.OneOf(BILLING_MODES))


_SUBSCRIPTION = "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"
SUBSCRIPTION_FACTS_EXAMPLE = {
    "subscription_id": _SUBSCRIPTION,
    "order_id": _ORDER,
    "account_id": _BUYER,
    "seller_account_id": _SELLER,
    "product_id": _PRODUCT,
    "product_name": "Northwind CRM",
    "specification_name": "Standard, 10 users",
    "delivery_method": "saas",
    "billing_mode": "yearly_monthly",
}


register(
    "orders.order.created",
    1,
    OrderCreatedV1,
    summary="A buyer placed an order; its price is fixed and it waits for payment "
    "(a reseller's customer's order is paid by the reseller at once).",
    subject="the order id",
    example_subject=_ORDER,
    example={
        **_PARTIES_EXAMPLE,
        "amount_due": {"amount": 129900, "currency": "USD"},
        "lines": [
            {
                "id": _LINE,
                **_CONFIGURATION_EXAMPLE,
                "unit_price": {"amount": 129900, "currency": "USD"},
                "amount": {"amount": 129900, "currency": "USD"},
            }
        ],
        "payment_deadline": dt.datetime(2026, 1, 16, 9, 30, tzinfo=dt.UTC),
        "type": "purchase",
        "subscription_id": None,
    },
)
register(
    "orders.order.paid",
    1,
    OrderPaidV1,
    summary="An order was paid; ``subscriptions`` lists what provisioning delivers, one "
    "per order line.",
    subject="the order id",
    example_subject=_ORDER,
    example={
        **_PARTIES_EXAMPLE,
        "payment_id": "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
        "payment_method": "balance",
        "amount": {"amount": 129900, "currency": "USD"},
        "paid_at": dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC),
        "subscriptions": [
            {
                "subscription_id": "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
                "order_line_id": _LINE,
                **_CONFIGURATION_EXAMPLE,
                "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
                "time_zone": "UTC",
            }
        ],
    },
)
register(
    "orders.order.cancelled",
    1,
    OrderCancelledV1,
    summary="An order was cancelled (by the buyer, because its payment window passed, or "
    "because its delivery failed), with a reason the buyer can read. When it had been "
    "paid, ``payment_id`` and ``refund`` say what billing refunds. Billing acts on every "
    "cancellation: one without a refund (the order was not paid) means billing charges "
    "that order no more, and refunds in full, once, a payment of it that settles anyway "
    "(a card the provider confirmed late, a pay that raced the cancellation); that refund "
    "is announced as `billing.refund.completed` like any other.",
    subject="the order id",
    example_subject=_ORDER,
    example={
        "order_id": _ORDER,
        "account_id": _BUYER,
        "reason": "Delivery failed: the seller's system did not deliver Northwind CRM "
        "within 3 hours, so the order is cancelled and the payment refunded.",
        "payment_id": "pay_0b6f3c1e2d4a4f5e8a9b7c6d5e4f3a2b",
        "refund": {"amount": 129900, "currency": "USD"},
    },
)
register(
    "orders.subscription.created",
    1,
    SubscriptionCreatedV1,
    summary="A paid order line became a subscription (a purchased app), status enabling "
    "until its delivery.",
    subject="the subscription id",
    example_subject="sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
    example={
        "subscription_id": "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
        "order_id": _ORDER,
        "order_line_id": _LINE,
        "account_id": _BUYER,
        "enterprise_project_id": "default",
        "product_id": _PRODUCT,
        "specification_id": _SPECIFICATION,
        "seller_account_id": _SELLER,
        "delivery_method": "saas",
        "service_supervision": False,
        "billing_mode": "yearly_monthly",
        "quantity": 1,
        "status": "enabling",
        "expires_at": dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC),
    },
)
register(
    "orders.order.completed",
    1,
    OrderCompletedV1,
    summary="Everything in an order was delivered (and accepted, where the product has "
    "service supervision).",
    subject="the order id",
    example_subject=_ORDER,
    example={
        "order_id": _ORDER,
        "account_id": _BUYER,
        "completed_at": dt.datetime(2026, 1, 15, 9, 31, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.activated",
    1,
    SubscriptionActivatedV1,
    summary="A purchased app was delivered and is enabled: the buyer can use it.",
    subject="the subscription id",
    example_subject="sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
    example={
        "subscription_id": "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
        "order_id": _ORDER,
        "account_id": _BUYER,
        "product_id": _PRODUCT,
        "delivery_method": "saas",
        "status": "enabled",
        "activated_at": dt.datetime(2026, 1, 15, 9, 31, tzinfo=dt.UTC),
        "expires_at": dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC),
    },
)


# -- subscription lifecycle and renewals ------------------------------

EXPIRING_STAGES = ("before_expiry", "before_freeze")
RELEASE_REASONS = ("expired", "unsubscribed", "cancelled")
_RENEWAL_ORDER = "ord_8f2e3d4c5b6a47f8e9d0c1b2a3f4e5d6"


class SubscriptionExpiringV1(SubscriptionFactsV1):
    """A reminder: ``before_expiry`` 7 days before the expiry, ``before_freeze`` 3 days
    before an expired subscription is frozen."""

    expires_at = fields.AwareDateTime(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(EXPIRING_STAGES))
    auto_renew = fields.Boolean(required=True)


class SubscriptionExpiredV1(SubscriptionFactsV1):
    expires_at = fields.AwareDateTime(required=True)
    grace_ends_at = fields.AwareDateTime(required=True)  # when it is frozen unless renewed


class SubscriptionFrozenV1(SubscriptionFactsV1):
    expires_at = fields.AwareDateTime(required=True)
    frozen_at = fields.AwareDateTime(required=True)
    release_at = fields.AwareDateTime(required=True)  # when it is released unless renewed


class SubscriptionReleasedV1(SubscriptionFactsV1):
    reason = fields.String(required=True, validate=validate.OneOf(RELEASE_REASONS))
    released_at = fields.AwareDateTime(required=True)


class SubscriptionRenewedV1(SubscriptionFactsV1):
    renewal_order_id = fields.String(required=True)
    previous_status = fields.String(required=True, validate=validate.OneOf(SUBSCRIPTION_STATUSES))
    previous_expires_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)
    period = fields.Nested(PeriodV1, required=True)
    amount = fields.Nested(MoneySchema, required=True)
    automatic = fields.Boolean(required=True)
    renewed_at = fields.AwareDateTime(required=True)


register(
    "orders.subscription.expiring",
    1,
    SubscriptionExpiringV1,
    summary="A yearly/monthly subscription nears a deadline: ``before_expiry`` 7 days "
    "before it expires, ``before_freeze`` 3 days before an expired one is frozen. Sent "
    "once per stage and period; ``auto_renew`` says whether it renews by itself.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "stage": "before_expiry",
        "auto_renew": False,
    },
)
register(
    "orders.subscription.expired",
    1,
    SubscriptionExpiredV1,
    summary="A yearly/monthly subscription reached its expiry unrenewed: the grace period "
    "begins (still usable, renewable); it is frozen at ``grace_ends_at``.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "grace_ends_at": dt.datetime(2027, 1, 29, 23, 59, 59, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.frozen",
    1,
    SubscriptionFrozenV1,
    summary="The grace period of an expired subscription ended: it is frozen (a SaaS "
    "tenant frozen, servers stopped, data kept) until ``release_at``; a renewal unfreezes "
    "it.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "frozen_at": dt.datetime(2027, 1, 29, 23, 59, 59, tzinfo=dt.UTC),
        "release_at": dt.datetime(2027, 2, 13, 23, 59, 59, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.released",
    1,
    SubscriptionReleasedV1,
    summary="A subscription ended for good: ``expired`` (its retention period passed "
    "unrenewed) or ``unsubscribed`` (an approved unsubscription). Its resources are "
    "released (a SaaS tenant, an image's servers).",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "reason": "expired",
        "released_at": dt.datetime(2027, 2, 13, 23, 59, 59, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.renewed",
    1,
    SubscriptionRenewedV1,
    summary="A renewal order was paid: the subscription runs to the new ``expires_at`` "
    "(the new period starts at the previous expiry, also when it was expired or frozen) "
    "and is enabled; ``previous_status`` ``frozen`` means its resources are to be "
    "unfrozen. ``automatic``: an auto-renewal.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "renewal_order_id": _RENEWAL_ORDER,
        "previous_status": "expired",
        "previous_expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "expires_at": dt.datetime(2028, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "period": {"unit": "year", "count": 1},
        "amount": {"amount": 129900, "currency": "USD"},
        "automatic": False,
        "renewed_at": dt.datetime(2027, 1, 20, 8, 0, tzinfo=dt.UTC),
    },
)


# -- RPC: orders ----------------------------------------------------------------------

ORDER_ID_RULE = validate.Length(min=1, max=64)


QUICK, CUSTOMIZED = "quick", "customized"
RECOMMENDED_SECURITY_GROUP = "recommended"


class DeploymentRequest(DeploymentSizingSchema):
    """Where and how an image is deployed in the buyer's cloud account (guide: quick or
    customized provisioning). ``quick``: an existing VPC and subnet, a security group
    id or ``recommended``, no EIP, one server. ``customized``: ``vpc_id: null`` creates
    a VPC and its subnet, an EIP may be added, 1 to 10 servers."""

    mode = fields.String(required=True, validate=validate.OneOf((QUICK, CUSTOMIZED)))
    region = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Default: the linked cloud account's region."},
    )
    vpc_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    subnet_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    security_group = fields.String(
        load_default=RECOMMENDED_SECURITY_GROUP,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "A security group id of the account, or `recommended`: the "
            "seller's recommended group, created on demand.",
            "example": RECOMMENDED_SECURITY_GROUP,
        },
    )
    server_name = fields.String(
        required=True, validate=RESOURCE_NAME_RULE, metadata={"example": "helix-web"}
    )
    admin_password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=26, error="must be 8 to 26 characters"),
        metadata={
            "description": "The servers' administrator password, by the cloud's rules: "
            "8 to 26 characters with three of upper case, lower case, digits and "
            "special characters, not containing the server name. Sent only to the "
            "cloud; never stored in plaintext nor returned.",
        },
    )

    @validates_schema
    def mode_rules(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        if data.get("vpc_id") is not None and data.get("subnet_id") is None:
            errors["subnet_id"] = ["is required with a vpc_id"]
        if data.get("vpc_id") is None and data.get("subnet_id") is not None:
            errors["vpc_id"] = ["is required with a subnet_id"]
        if data.get("mode") == QUICK:
            if data.get("vpc_id") is None:
                errors["vpc_id"] = ["quick provisioning uses an existing VPC"]
            if data.get("eip") is not None:
                errors["eip"] = ["quick provisioning adds no EIP; use customized"]
            if data.get("count", 1) != 1:
                errors["count"] = ["quick provisioning deploys one server; use customized"]
        if errors:
            raise ValidationError(errors)


class PlaceOrderRequest(StrictSchema):
    """Buy one configuration of a product (``place_order``): a specification, a billing
    mode, its period (yearly/monthly only) and a quantity within the specification's
    bounds."""

    product_id = fields.String(
        required=True, validate=ORDER_ID_RULE, metadata={"example": "prd_0b6f…"}
    )
    specification_id = fields.String(
        required=True,
        validate=ORDER_ID_RULE,
        metadata={"description": "One of the product's specifications.", "example": "spc_41a2…"},
    )
    billing_mode = fields.String(
        required=True,
        validate=validate.OneOf(BILLING_MODES),
        metadata={"description": "One the specification offers.", "example": YEARLY_MONTHLY},
    )
    period = fields.Nested(
        PeriodSchema,
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
        validate=ORDER_ID_RULE,
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
    share_contact = StrictBoolean(
        load_default=False,
        metadata={
            "description": "Show the seller the buyer's email with this order; default "
            "`false`: the seller sees the buyer's account name only.",
            "example": False,
        },
    )
    deployment = fields.Nested(
        DeploymentRequest,
        load_default=None,
        allow_none=True,
        metadata={"description": "Required for an image product; refused for the others."},
    )

    @validates_schema
    def period_goes_with_yearly_monthly(self, data, **kwargs):
        if data["billing_mode"] == YEARLY_MONTHLY and data.get("period") is None:
            raise ValidationError("required for the yearly_monthly billing mode", "period")
        if data["billing_mode"] != YEARLY_MONTHLY and data.get("period") is not None:
            raise ValidationError("only the yearly_monthly billing mode takes a period", "period")


class PayOrderRequest(StrictSchema):
    """How to pay an unpaid order (``pay_order(order_id, payload)``)."""

    payment_method = fields.String(
        required=True,
        validate=validate.OneOf(PAYMENT_METHODS),
        metadata={
            "description": "`balance` (prepaid, see top-ups), `credit_card` (with `card`) "
            "or `credit` (within the credit limit an operator set).",
            "example": "balance",
        },
    )
    card = CardField(
        load_default=None,
        metadata={
            "description": "Required for credit_card, refused for the other methods: "
            "`{token}` from the card provider or `{card_id}` of a kept card; a card "
            "number is refused (400 naming `card`)."
        },
    )

    @validates_schema
    def card_goes_with_credit_card(self, data, **kwargs):
        if data["payment_method"] == CREDIT_CARD and data.get("card") is None:
            raise ValidationError("required to pay by credit_card", "card")
        if data["payment_method"] != CREDIT_CARD and data.get("card") is not None:
            raise ValidationError("only the credit_card payment method takes a card", "card")


class OrdersQuery(PageSchema):
    """ "My Orders" (``list_orders``)."""

    status = fields.String(
        validate=validate.OneOf(ORDER_STATUSES),
        metadata={"description": 'Only orders in this status (`unpaid`: "Unpaid Orders").'},
    )

    @post_load
    def every_status_unless_one_is_given(self, data, **kwargs):
        # None, not a default on the field: the document shows no null status
        return {"status": None, **data}


class SellerOrdersQuery(OrdersQuery):
    """The orders of a seller's products (``list_seller_orders``)."""


class OrderLineResponse(AnswerSchema):
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
    period = fields.Nested(PeriodSchema, allow_none=True)
    quantity = fields.Integer(metadata={"example": 10})
    unit_price = fields.Nested(MoneySchema)
    amount = fields.Nested(MoneySchema)
    breakdown = fields.List(
        fields.Nested(ChargeLineResponse),
        metadata={"description": "The price itemised: an image's servers, disks and EIP."},
    )
    deployment_id = fields.String(
        allow_none=True, metadata={"description": "An image's deployment in the buyer's cloud."}
    )


class OrderQuoteRequest(PlaceOrderRequest):
    """``POST /v1/orders/quotes``: the body of ``POST /v1/orders``; nothing is placed,
    and the terms need not be accepted yet."""

    accept_terms = StrictBoolean(load_default=False)


class OrderQuoteResponse(AnswerSchema):
    """What the order would cost now, itemised."""

    amount_due = fields.Nested(MoneySchema)
    lines = fields.List(fields.Nested(ChargeLineResponse))


class OrderResponse(AnswerSchema):
    """An order as its buyer sees it."""

    id = fields.String(metadata={"example": "ord_5c2e…"})
    type = fields.String(
        validate=validate.OneOf(ORDER_TYPES),
        metadata={
            "description": "`purchase`, or `renewal` / `upgrade` of a purchased app "
            "(`subscription_id`).",
            "example": PURCHASE,
        },
    )
    subscription_id = fields.String(
        allow_none=True,
        metadata={"description": "The purchased app a renewal or an upgrade is for."},
    )
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES), metadata={"example": "unpaid"})
    account_id = fields.String(metadata={"description": "The buyer."})
    paid_by_reseller = fields.Boolean(
        metadata={
            "description": "A reseller's customer: the reseller paid when the order was "
            "placed; `amount_due` is shown for reference."
        }
    )
    enterprise_project_id = fields.String(metadata={"example": "default"})
    enterprise_project_name = fields.String(
        allow_none=True,
        metadata={
            "description": "The enterprise project's name (null while orders has not "
            "heard of the project).",
            "example": "default",
        },
    )
    amount_due = fields.Nested(MoneySchema)
    lines = fields.List(fields.Nested(OrderLineResponse))
    payment_deadline = fields.AwareDateTime(
        metadata={"description": "An unpaid order is cancelled after this."}
    )
    payment_method = fields.String(allow_none=True, metadata={"example": "balance"})
    paid_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    share_contact = fields.Boolean(
        metadata={"description": "The seller sees the buyer's email with this order."}
    )
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


OrderPage = page_of(OrderResponse, "OrderPage")


class OrderBuyerResponse(AnswerSchema):
    """Who bought, as the seller sees it: the account and its name, and its email only
    when the buyer shared its contact with the order (``share_contact``)."""

    account_id = fields.String()
    name = fields.String(
        allow_none=True,
        metadata={
            "description": "The buyer's account name (null when iam-agency did not answer).",
            "example": "Northwind Traders",
        },
    )
    email = fields.String(
        metadata={
            "description": "Only when the buyer shared its contact with this order.",
            "example": "it@northwind.test",
        }
    )


class SellerOrderResponse(AnswerSchema):
    """An order of the seller's products, as the seller sees it: its lines of the
    seller's products, their amount and the buyer."""

    id = fields.String(metadata={"example": "ord_5c2e…"})
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES), metadata={"example": "paid"})
    buyer = fields.Nested(OrderBuyerResponse)
    lines = fields.List(fields.Nested(OrderLineResponse))
    amount = fields.Nested(
        MoneySchema, metadata={"description": "What the seller's lines of the order cost."}
    )
    paid_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    flow_id = fields.String(
        allow_none=True,
        metadata={
            "description": "Its service supervision flow (`GET /v1/supervision/flows/{id}`): "
            "a license, a professional service or a supervised SaaS product once paid; "
            "null otherwise."
        },
    )


SellerOrderPage = page_of(SellerOrderResponse, "SellerOrderPage")


# -- RPC: purchased apps ----------------------------------------------------------------


class PurchasedAppResponse(AnswerSchema):
    """One subscription: what a paid order line became (a row of "Purchased Apps")."""

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
    enterprise_project_id = fields.String(
        metadata={
            "description": "The enterprise project it is accounted to now (a move changes "
            "it; its renewals and upgrades are booked there).",
            "example": "default",
        }
    )
    enterprise_project_name = fields.String(allow_none=True, metadata={"example": "default"})
    created_at = fields.AwareDateTime()
    # the life after the purchase
    grace_ends_at = fields.AwareDateTime(
        allow_none=True,
        metadata={
            "description": "When an expired (unrenewed) app is frozen: the expiry plus the "
            "grace period. Yearly/monthly only."
        },
    )
    release_at = fields.AwareDateTime(
        allow_none=True,
        metadata={
            "description": "When a frozen (unrenewed) app is released: the end of the grace "
            "and retention periods. Yearly/monthly only."
        },
    )
    auto_renew_period = fields.Nested(
        PeriodSchema,
        allow_none=True,
        metadata={"description": "The period each automatic renewal buys, when on."},
    )
    specification_id = fields.String(
        metadata={"description": "The current configuration (an upgrade changes it)."}
    )
    quantity = fields.Integer(metadata={"description": "The current quantity.", "example": 10})
    upgrading = fields.Boolean(
        metadata={"description": "An upgrade is paid and waits for the seller to apply it."}
    )


class SubscriptionResponse(PurchasedAppResponse):
    """What orders answers of a subscription (``list_purchased_apps``,
    ``get_purchased_app``): the row of "Purchased Apps" and what the purchased app's
    page is composed from (the product's guide, its seller)."""

    activated_at = fields.AwareDateTime()
    service_supervision = fields.Boolean()
    product_guide_url = fields.String(allow_none=True)
    seller_account_id = fields.String()
    seller_company_name = fields.String()


PurchasedAppPage = page_of(PurchasedAppResponse, "PurchasedAppPage")
SubscriptionPage = page_of(SubscriptionResponse, "SubscriptionPage")


# -- auto-renewal and upgrades (events) ----------------------------------------------

_AUTO_RENEWAL_ORDER = "ord_4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9"
_UPGRADE_ORDER = "ord_8e9f0a1b2c3d44e5f6a7b8c9d0e1f2a3"
_TARGET_SPECIFICATION = "spc_8f9a0b1c2d3e44f5a6b7c8d9e0f1a2b3"


class SubscriptionAutoRenewFailedV1(SubscriptionFactsV1):
    # the unpaid order, tried again later; null when the renewal could not even be
    # priced (the catalog no longer sells its period or configuration): no order placed
    renewal_order_id = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)
    # the next try (03:00 account time the next day); null: none left before the expiry
    next_attempt_at = fields.AwareDateTime(required=True, allow_none=True)


class _SubscriptionUpgradeV1(SubscriptionFactsV1):
    upgrade_order_id = fields.String(required=True)
    specification_id = fields.String(required=True)  # the new configuration
    specification_name = fields.String(required=True)
    quantity = fields.Integer(required=True, strict=True)
    previous_specification_id = fields.String(required=True)
    previous_quantity = fields.Integer(required=True, strict=True)


class SubscriptionUpgradingV1(_SubscriptionUpgradeV1):
    expires_at = fields.AwareDateTime(required=True)  # unchanged by the upgrade


class SubscriptionUpgradedV1(_SubscriptionUpgradeV1):
    upgraded_at = fields.AwareDateTime(required=True)


class SubscriptionUpgradeFailedV1(SubscriptionFactsV1):
    upgrade_order_id = fields.String(required=True)
    reason = fields.String(required=True)
    refund = fields.Nested(MoneySchema, required=True)


_UPGRADE_EXAMPLE = {
    **SUBSCRIPTION_FACTS_EXAMPLE,
    "upgrade_order_id": _UPGRADE_ORDER,
    "specification_id": _TARGET_SPECIFICATION,
    "specification_name": "Professional, 25 users",
    "quantity": 25,
    "previous_specification_id": _SPECIFICATION,
    "previous_quantity": 10,
}

register(
    "orders.subscription.auto_renew_failed",
    1,
    SubscriptionAutoRenewFailedV1,
    summary="An automatic renewal could not be paid (neither the balance nor the credit "
    "covered it), or could not be priced (``renewal_order_id`` null: the catalog no "
    "longer sells its period or configuration): the renewal order stays unpaid and is "
    "tried again at "
    "``next_attempt_at`` (03:00 account time the next day), or, when that is null, not "
    "again before the expiry.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "delivery_method": "license",
        "renewal_order_id": _AUTO_RENEWAL_ORDER,
        "reason": "insufficient balance and credit",
        "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
        "next_attempt_at": dt.datetime(2027, 1, 9, 3, 0, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.upgrading",
    1,
    SubscriptionUpgradingV1,
    summary="An upgrade of a SaaS subscription was paid: provisioning asks the seller's "
    "system to apply it (upgradeInstance). The expiry does not move.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_UPGRADE_EXAMPLE,
        "expires_at": dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.upgraded",
    1,
    SubscriptionUpgradedV1,
    summary="The seller's system applied a paid upgrade: the subscription has its new "
    "specification and quantity, and the upgrade order is completed.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_UPGRADE_EXAMPLE,
        "upgraded_at": dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC),
    },
)
register(
    "orders.subscription.upgrade_failed",
    1,
    SubscriptionUpgradeFailedV1,
    summary="The seller's system refused a paid upgrade: the upgrade order is cancelled "
    "and its payment refunded in full (``orders.order.cancelled`` tells billing); the "
    "subscription keeps its configuration.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **SUBSCRIPTION_FACTS_EXAMPLE,
        "upgrade_order_id": _UPGRADE_ORDER,
        "reason": "The seller's system refused the upgrade: 000002.",
        "refund": {"amount": 41250, "currency": "USD"},
    },
)


# the RPC and API bodies of auto-renewal and upgrades


class AutoRenewRequest(StrictSchema):
    """``PUT /v1/purchased-apps/{id}/auto-renew``: turn automatic renewal on (for a
    period) or off. Licenses and professional services billed yearly/monthly only."""

    enabled = StrictBoolean(required=True, metadata={"example": True})
    period = fields.Nested(
        PeriodSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "Each automatic renewal's period; required when enabled."},
    )

    @validates_schema
    def period_goes_with_enabled(self, data, **kwargs):
        if data.get("enabled") is True and data.get("period") is None:
            raise ValidationError("required to turn auto-renew on", "period")


class AutoRenewResponse(AnswerSchema):
    """The purchased app's automatic renewal as it now stands."""

    subscription_id = fields.String(metadata={"example": "sub_7a3d…"})
    auto_renew = fields.Boolean()
    auto_renew_period = fields.Nested(PeriodSchema, allow_none=True)
    next_auto_renew_at = fields.AwareDateTime(
        allow_none=True,
        metadata={
            "description": "When it is next renewed automatically: 03:00 account time, "
            "7 days before the expiry (retried daily until the expiry when unpaid); null "
            "when auto-renew is off."
        },
    )
    expires_at = fields.AwareDateTime(allow_none=True)


class UpgradeQuoteRequest(StrictSchema):
    """``POST /v1/purchased-apps/{id}/upgrade-quotes``: the configuration to move to."""

    specification_id = fields.String(
        required=True,
        validate=ORDER_ID_RULE,
        metadata={"description": "One of the product's specifications.", "example": "spc_41a2…"},
    )
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "At least the current quantity.", "example": 25},
    )


class SignedMoneySchema(StrictSchema):
    """An amount of money that may be negative (a deduction)."""

    amount = fields.Integer(required=True, strict=True, metadata={"example": -41250})
    currency = fields.String(required=True, metadata={"example": "USD"})


class UpgradeQuoteLineResponse(AnswerSchema):
    item = fields.String(
        validate=validate.OneOf(("new_configuration", "unused_value")),
        metadata={"example": "new_configuration"},
    )
    description = fields.String()
    quantity = fields.Integer()
    amount = fields.Nested(
        SignedMoneySchema,
        metadata={"description": "The unused value of the current configuration is negative."},
    )


class UpgradeQuoteResponse(AnswerSchema):
    """A binding price for the upgrade until ``valid_until``: the new configuration for
    the time left minus the unused value of the current one, never below 0."""

    id = fields.String(metadata={"example": "upq_5b1c…"})
    subscription_id = fields.String()
    amount_due = fields.Nested(MoneySchema)
    lines = fields.List(fields.Nested(UpgradeQuoteLineResponse))
    valid_until = fields.AwareDateTime()
    specification_id = fields.String()
    specification_name = fields.String()
    quantity = fields.Integer()


class PlaceUpgradeRequest(StrictSchema):
    """``POST /v1/purchased-apps/{id}/upgrades``: the upgrade order from a quote."""

    quote_id = fields.String(
        required=True, validate=ORDER_ID_RULE, metadata={"example": "upq_5b1c…"}
    )
    accept_terms = StrictBoolean(
        required=True,
        metadata={
            "description": "Must be `true` (`false` is 422 TERMS_NOT_ACCEPTED).",
            "example": True,
        },
    )


# -- unsubscriptions (events) -------------------------------------------------------

# why a buyer unsubscribes (guide 7.2, "State the reason for unsubscription")
UNSUBSCRIPTION_REASONS = (
    "wrong_parameters",
    "redundant_after_deployment",
    "tests_completed",
    "low_usability",
    "requirements_unsatisfied",
    "unreliable_faults",
    "other",
)
_UNSUBSCRIPTION = "uns_4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9"
_UNSUBSCRIPTION_FACTS_EXAMPLE = {**SUBSCRIPTION_FACTS_EXAMPLE, "delivery_method": "license"}


class UnsubscriptionRequestedV1(SubscriptionFactsV1):
    unsubscription_id = fields.String(required=True)
    refund = fields.Nested(MoneySchema, required=True)  # the negotiated refund
    reason = fields.String(required=True, validate=validate.OneOf(UNSUBSCRIPTION_REASONS))
    reason_detail = fields.String(required=True, allow_none=True)
    share_contact = fields.Boolean(required=True)
    requested_at = fields.AwareDateTime(required=True)


class UnsubscriptionApprovedV1(SubscriptionFactsV1):
    unsubscription_id = fields.String(required=True)
    refund = fields.Nested(MoneySchema, required=True)
    approved_at = fields.AwareDateTime(required=True)
    # true: an image's unused period refunded under the cloud's rule, with no review
    automatic = fields.Boolean(required=True)


class UnsubscriptionRejectedV1(SubscriptionFactsV1):
    unsubscription_id = fields.String(required=True)
    rejection_reason = fields.String(required=True)
    rejected_at = fields.AwareDateTime(required=True)


register(
    "orders.unsubscription.requested",
    1,
    UnsubscriptionRequestedV1,
    summary="A buyer asks to unsubscribe from a license, a professional service or a "
    "supervised SaaS product during its transaction guarantee period, with the refund it "
    "negotiated with the seller (at most what the first order paid); the seller is to "
    "approve or reject it.",
    subject="the unsubscription id",
    example_subject=_UNSUBSCRIPTION,
    example={
        **_UNSUBSCRIPTION_FACTS_EXAMPLE,
        "unsubscription_id": _UNSUBSCRIPTION,
        "refund": {"amount": 100000, "currency": "USD"},
        "reason": "tests_completed",
        "reason_detail": None,
        "share_contact": True,
        "requested_at": dt.datetime(2026, 1, 20, 10, 0, tzinfo=dt.UTC),
    },
)
register(
    "orders.unsubscription.approved",
    1,
    UnsubscriptionApprovedV1,
    summary="An unsubscription was approved: by the seller, or at once for an image under "
    "the cloud's rule (``automatic``: the unused part of the period). In the same "
    "transaction the first order was cancelled with ``refund`` (`orders.order.cancelled`: "
    "billing refunds the payer, supervision closes the flow) and the subscription released "
    "(`orders.subscription.released`, reason ``unsubscribed``). The refund is due within "
    "3 hours.",
    subject="the unsubscription id",
    example_subject=_UNSUBSCRIPTION,
    example={
        **_UNSUBSCRIPTION_FACTS_EXAMPLE,
        "unsubscription_id": _UNSUBSCRIPTION,
        "refund": {"amount": 100000, "currency": "USD"},
        "approved_at": dt.datetime(2026, 1, 21, 8, 0, tzinfo=dt.UTC),
        "automatic": False,
    },
)
register(
    "orders.unsubscription.rejected",
    1,
    UnsubscriptionRejectedV1,
    summary="The seller rejected an unsubscription request, with its reason; nothing is "
    "refunded and the buyer may request again.",
    subject="the unsubscription id",
    example_subject=_UNSUBSCRIPTION,
    example={
        **_UNSUBSCRIPTION_FACTS_EXAMPLE,
        "unsubscription_id": _UNSUBSCRIPTION,
        "rejection_reason": "The refund agreed on the phone was 500.00 USD, not 1000.00.",
        "rejected_at": dt.datetime(2026, 1, 21, 8, 0, tzinfo=dt.UTC),
    },
)


# -- unsubscriptions (RPC and API bodies) --------------------------------------------


REASON_DETAIL_MAX = 500


class UnsubscriptionRequest(StrictSchema):
    """``POST /v1/unsubscriptions``: unsubscribe from a purchased app (guide 7.2)."""

    subscription_id = fields.String(
        required=True, validate=ORDER_ID_RULE, metadata={"example": "sub_7a3d…"}
    )
    refund = fields.Nested(
        PositiveMoneySchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The refund negotiated with the seller: more than 0 and at most "
            "`max_refundable` (what the first order paid; renewals excluded), in the order's "
            "currency. Required, except for an image: its refund is the unused part of the "
            "period, computed (a refund sent for an image is not used)."
        },
    )
    reason = fields.String(
        required=True,
        validate=validate.OneOf(UNSUBSCRIPTION_REASONS),
        metadata={"example": "tests_completed"},
    )
    reason_detail = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=REASON_DETAIL_MAX),
        metadata={"description": "Up to 500 characters; required with the reason `other`."},
    )
    share_contact = StrictBoolean(
        load_default=False,
        metadata={
            "description": "Let the seller see the buyer's email with this request, to reach "
            "it about the unsubscription; default `false`."
        },
    )

    @validates_schema
    def other_needs_a_detail(self, data, **kwargs):
        if data.get("reason") == "other" and not (data.get("reason_detail") or "").strip():
            raise ValidationError("required with the reason other", "reason_detail")


class UnsubscriptionsQuery(PageSchema):
    """The buyer's requests (``GET /v1/unsubscriptions``) or the seller's (``GET
    /v1/seller/unsubscriptions``), newest first."""

    status = fields.String(
        validate=validate.OneOf(UNSUBSCRIPTION_STATUSES),
        metadata={"description": "Only requests in this status (`pending_review`: to review)."},
    )

    @post_load
    def every_status_unless_one_is_given(self, data, **kwargs):
        return {"status": None, **data}


class UnsubscriptionRejectionRequest(StrictSchema):
    """``POST /v1/seller/unsubscriptions/{id}/rejection``: why the seller rejects it."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=REASON_DETAIL_MAX),
        metadata={"example": "We agreed on 50.00 USD, not 100.00."},
    )


class EligibleUnsubscriptionResponse(AnswerSchema):
    """A row of "My Unsubscriptions": a purchased app that may be unsubscribed from now."""

    subscription_id = fields.String(metadata={"example": "sub_7a3d…"})
    order_id = fields.String(metadata={"description": "The first order, which is refunded."})
    product_id = fields.String()
    product_name = fields.String(metadata={"example": "Acme Backup for ECS"})
    specification_name = fields.String(metadata={"example": "Standard"})
    quantity = fields.Integer()
    seller_account_id = fields.String()
    seller_company_name = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    billing_mode = fields.String(validate=validate.OneOf(BILLING_MODES))
    status = fields.String(validate=validate.OneOf(SUBSCRIPTION_STATUSES))
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime(allow_none=True)
    automatic = fields.Boolean(
        metadata={
            "description": "An image: the cloud's rule refunds the unused part of the period "
            "at once, with no review; otherwise the seller reviews the request."
        }
    )
    max_refundable = fields.Nested(
        MoneySchema,
        metadata={
            "description": "What the first order paid (renewals excluded), or an image's "
            "unused part of its period now (rounded down)."
        },
    )


EligibleUnsubscriptionPage = page_of(EligibleUnsubscriptionResponse, "EligibleUnsubscriptionPage")


class UnsubscriptionResponse(AnswerSchema):
    """An unsubscription request as its buyer sees it."""

    id = fields.String(metadata={"example": "uns_4d5e…"})
    subscription_id = fields.String()
    order_id = fields.String(metadata={"description": "The first order, cancelled if approved."})
    product_name = fields.String()
    specification_name = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    seller_account_id = fields.String()
    refund = fields.Nested(MoneySchema)
    max_refundable = fields.Nested(MoneySchema)
    reason = fields.String(validate=validate.OneOf(UNSUBSCRIPTION_REASONS))
    reason_detail = fields.String(allow_none=True)
    share_contact = fields.Boolean()
    status = fields.String(
        validate=validate.OneOf(UNSUBSCRIPTION_STATUSES),
        metadata={
            "description": "`pending_review` (the seller reviews it), `approved` (the refund "
            "is under way: within 3 hours), `refunded`, or `rejected`.",
            "example": "pending_review",
        },
    )
    rejection_reason = fields.String(allow_none=True)
    requested_at = fields.AwareDateTime()
    reviewed_at = fields.AwareDateTime(allow_none=True)
    refunded_at = fields.AwareDateTime(allow_none=True)


UnsubscriptionPage = page_of(UnsubscriptionResponse, "UnsubscriptionPage")


class SellerUnsubscriptionResponse(UnsubscriptionResponse):
    """A request as the seller reviewing it sees it, with the buyer: its account and
    name, and its email only when the buyer shared its contact with the request."""

    buyer = fields.Nested(OrderBuyerResponse)


SellerUnsubscriptionPage = page_of(SellerUnsubscriptionResponse, "SellerUnsubscriptionPage")


# -- RPC: renewals -----------------------------------------------------


class RenewalQuoteRequest(StrictSchema):
    """``POST /v1/purchased-apps/{id}/renewal-quotes``: renew for this period."""

    period = fields.Nested(PeriodSchema, required=True)


class RenewalQuoteResponse(AnswerSchema):
    """A binding price for renewing: the order placed from it before ``valid_until``
    costs ``amount_due``, whatever the catalog says then."""

    id = fields.String(metadata={"example": "rnq_2f1e…"})
    subscription_id = fields.String()
    amount_due = fields.Nested(MoneySchema)
    period = fields.Nested(PeriodSchema)
    new_expires_at = fields.AwareDateTime(
        metadata={
            "description": "The expiry once renewed: the period counted from the current "
            "expiry (also when expired or frozen), ending 23:59:59 in the account's time zone."
        }
    )
    valid_until = fields.AwareDateTime(
        metadata={"description": "Order from this quote before then (at least 15 minutes)."}
    )
    created_at = fields.AwareDateTime()


class RenewalRequest(StrictSchema):
    """``POST /v1/purchased-apps/{id}/renewals``: order the renewal a quote priced."""

    quote_id = fields.String(
        required=True, validate=ORDER_ID_RULE, metadata={"example": "rnq_2f1e…"}
    )


class RenewalsQuery(PageSchema):
    """``GET /v1/renewals``: subscriptions to renew."""

    days = QueryInteger(
        load_default=30,
        validate=validate.Range(min=1, max=365),
        metadata={
            "description": "Enabled ones expiring within this many days (default 30); expired "
            "and frozen ones are always listed.",
            "example": 30,
        },
    )


class RenewalItemResponse(AnswerSchema):
    """A subscription due for renewal (the "Renewals" page)."""

    subscription_id = fields.String()
    product_name = fields.String()
    specification_name = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    status = fields.String(validate=validate.OneOf(SUBSCRIPTION_STATUSES))
    expires_at = fields.AwareDateTime()
    days_left = fields.Integer(
        metadata={"description": "Whole days until the expiry; 0 once expired."}
    )
    auto_renew = fields.Boolean()
    auto_renew_period = fields.Nested(PeriodSchema, allow_none=True)
    grace_ends_at = fields.AwareDateTime()
    release_at = fields.AwareDateTime()


RenewalPage = page_of(RenewalItemResponse, "RenewalPage")


# -- enterprise projects: moving resources ------------------------------------------

INDEPENDENT, WITH_ASSOCIATED = "independent", "with_associated"
MOVE_MODES = (INDEPENDENT, WITH_ASSOCIATED)
MOVE_MAX_SUBSCRIPTIONS = 100


class SubscriptionMovedV1(StrictSchema):
    """A purchased app moved to another enterprise project of its account; its later
    renewals and upgrades are booked there. For an image, provisioning moves its servers
    (``independent``) or its servers with their disks and EIPs (``with_associated``)."""

    subscription_id = fields.String(required=True)
    account_id = fields.String(required=True)
    from_enterprise_project_id = fields.String(required=True)
    to_enterprise_project_id = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(MOVE_MODES))
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    moved_at = fields.AwareDateTime(required=True)


register(
    "orders.subscription.moved",
    1,
    SubscriptionMovedV1,
    summary="A buyer moved a purchased app to another of its enterprise projects "
    "(``POST /v1/enterprise-projects/{id}/resources``), one event per purchased app moved: "
    "its later renewal, upgrade and auto-renewal orders are booked to the new project; an "
    "image's cloud resources follow by ``mode``.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        "subscription_id": _SUBSCRIPTION,
        "account_id": _BUYER,
        "from_enterprise_project_id": "default",
        "to_enterprise_project_id": "eps_8b1d4f2a6c3e4d5f9a0b1c2d3e4f5a6b",
        "mode": WITH_ASSOCIATED,
        "delivery_method": "image",
        "moved_at": dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC),
    },
)


class MoveResourcesRequest(StrictSchema):
    """Move purchased apps to the enterprise project of the path
    (``move_to_enterprise_project(project_id, payload)``): all of them or none."""

    subscription_ids = fields.List(
        fields.String(validate=ORDER_ID_RULE),
        required=True,
        validate=validate.Length(min=1, max=MOVE_MAX_SUBSCRIPTIONS),
        metadata={
            "description": f"1 to {MOVE_MAX_SUBSCRIPTIONS} of the caller's purchased apps.",
            "example": ["sub_7a3d…"],
        },
    )
    mode = fields.String(
        required=True,
        validate=validate.OneOf(MOVE_MODES),
        metadata={
            "description": "`with_associated`: an image's servers move with their disks "
            "and EIPs; `independent`: the servers only.",
            "example": WITH_ASSOCIATED,
        },
    )


class MovedResourceResponse(AnswerSchema):
    subscription_id = fields.String(metadata={"example": "sub_7a3d…"})
    enterprise_project_id = fields.String(
        metadata={"description": "Where it is now.", "example": "eps_0f3a9c2e"}
    )
    moved = fields.Boolean(
        metadata={"description": "false: it was in that project already (nothing changed)."}
    )


class MoveResourcesResponse(AnswerSchema):
    items = fields.List(fields.Nested(MovedResourceResponse))
