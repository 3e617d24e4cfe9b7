"""The catalog's contracts: the events it publishes, and what its RPCs accept and answer
(the public API's catalog bodies are these very schemas).

Both events carry the same snapshot of a product, as buyers see it in a search result:
who sells it, how it is delivered, where it is listed, its status and its lowest price
(an integer of minor units with the seller's currency), so that a subscriber can keep
its own copy without calling back.
"""

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from mercato.contracts.common import ID_RULE, PeriodSchema
from mercato.contracts.registry import register
from mercato.money import CURRENCY_RULE, MoneySchema
from mercato.terms import (
    BILLING_MODES,
    DELIVERY_METHODS,
    PERIOD_UNITS,
    PRODUCT_STATUSES,
    SAAS,
    YEARLY_MONTHLY,
)
from mercato.validation import (
    AnswerSchema,
    PageSchema,
    QueryBoolean,
    QueryInteger,
    StrictBoolean,
    StrictSchema,
    page_of,
)


class ProductSnapshotV1(StrictSchema):
    product_id = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    name = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    category = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(PRODUCT_STATUSES))
    lowest_price = fields.Nested(MoneySchema, required=True)


_EXAMPLE_SUBJECT = "prd_0b6f3c1e5d8a4f2b9c7e1a3d5f7b9c2e"
_EXAMPLE = {
    "product_id": _EXAMPLE_SUBJECT,
    "seller_account_id": "acc_7e2d4c6b8a0f4e1d9c3b5a7f9e1d3c5b",
    "name": "Acme Backup for ECS",
    "delivery_method": "image",
    "category": "storage",
    "status": "published",
    "lowest_price": {"amount": 1500, "currency": "USD"},
}

register(
    "catalog.product.published",
    1,
    ProductSnapshotV1,
    summary="A seller published a product: buyers can now find, quote and buy it.",
    subject="the product's id",
    example_subject=_EXAMPLE_SUBJECT,
    example=_EXAMPLE,
)

register(
    "catalog.product.changed",
    1,
    ProductSnapshotV1,
    summary="A product buyers could see changed: today, an operator delisted it "
    "(status delisted; it can no longer be quoted or bought).",
    subject="the product's id",
    example_subject=_EXAMPLE_SUBJECT,
    example={**_EXAMPLE, "status": "delisted"},
)


# -- RPC: sellers ---------------------------------------------------------------------

MOBILE_RULE = validate.Regexp(
    r"^\+?[0-9][0-9 ()-]{4,30}$", error="must be a phone number such as +86 755 2878 0808"
)
# bounds that keep every quoted amount (price x 11 periods x quantity) within 64 bits
MAX_PRICE_AMOUNT = 100_000_000_000
MAX_QUANTITY = 1_000_000
MAX_SPECIFICATIONS = 20
MAX_PRICES = 12


class SellerProfileRequest(StrictSchema):
    """The seller's public profile, shown on its products (``upsert_seller_profile``);
    ``currency`` is the currency of the prices of the products it creates from now on."""

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
        validate=CURRENCY_RULE,
        metadata={"description": "Absent: unchanged (USD for a new seller).", "example": "USD"},
    )


class SellerProfileResponse(AnswerSchema):
    account_id = fields.String()
    company_name = fields.String()
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)
    currency = fields.String(metadata={"example": "USD"})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


# -- RPC: a seller's products -------------------------------------------------------


class QuantityRequest(StrictSchema):
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


class PriceRequest(StrictSchema):
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


# -- images: what an image product deploys, and what its cloud resources cost --------

MAX_FLAVORS = 20
MAX_SECURITY_GROUP_RULES = 50
MAX_DEPLOYMENT_COUNT = 10
MAX_DATA_DISKS = 8
# the cloud's resource names: letters, digits, "_", "-" and "." (1 to 64)
RESOURCE_NAME_RULE = validate.Regexp(
    r"^[A-Za-z0-9_.-]{1,64}$", error="must be 1 to 64 letters, digits, '_', '-' or '.'"
)
PORT_RANGE_RULE = validate.Regexp(
    r"^([1-9][0-9]{0,4})(-[1-9][0-9]{0,4})?$",
    error="must be a port such as 22 or a range such as 8000-8080",
)
CIDR_RULE = validate.Regexp(
    r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$",
    error="must be an IPv4 CIDR block such as 0.0.0.0/0",
)


class SecurityGroupRuleSchema(StrictSchema):
    """One rule of the security group the seller recommends (created on demand)."""

    direction = fields.String(
        required=True,
        validate=validate.OneOf(("ingress", "egress")),
        metadata={"example": "ingress"},
    )
    protocol = fields.String(
        required=True,
        validate=validate.OneOf(("tcp", "udp", "icmp", "any")),
        metadata={"example": "tcp"},
    )
    port_range = fields.String(
        load_default=None,
        allow_none=True,
        validate=PORT_RANGE_RULE,
        metadata={"description": "Empty for every port (and for icmp).", "example": "443"},
    )
    remote_ip_prefix = fields.String(
        load_default="0.0.0.0/0", validate=CIDR_RULE, metadata={"example": "0.0.0.0/0"}
    )


class RecommendedSecurityGroupSchema(StrictSchema):
    name = fields.String(
        required=True, validate=RESOURCE_NAME_RULE, metadata={"example": "helix-web"}
    )
    rules = fields.List(
        fields.Nested(SecurityGroupRuleSchema),
        load_default=list,
        validate=validate.Length(
            max=MAX_SECURITY_GROUP_RULES,
            error=f"must have at most {MAX_SECURITY_GROUP_RULES} rules",
        ),
    )


class ImageSchema(StrictSchema):
    """What an image specification deploys: the cloud image, the server flavors it runs
    on, the smallest system disk it fits, and the security group its seller recommends."""

    image_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "The image's id in the cloud (IMS).",
            "example": "img-helix-cms-22",
        },
    )
    flavors = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(
            min=1, max=MAX_FLAVORS, error=f"must name 1 to {MAX_FLAVORS} flavors"
        ),
        metadata={"example": ["s6.medium.2", "s6.large.2"]},
    )
    min_system_disk_gb = fields.Integer(
        load_default=40,
        strict=True,
        validate=validate.Range(min=1, max=1024, error="must be between 1 and 1024"),
    )
    recommended_security_group = fields.Nested(RecommendedSecurityGroupSchema, required=True)


_RESOURCE_PRICE = validate.Range(
    min=0, max=MAX_PRICE_AMOUNT, error=f"must be between 0 and {MAX_PRICE_AMOUNT}"
)


class CloudPriceSchema(StrictSchema):
    """What the cloud resources of one server cost per period unit (``hour`` for
    pay_per_use, ``month`` or ``year`` for yearly_monthly), in minor units of the
    seller's currency: a flavor's server, one GB of disk, one Mbit/s of EIP bandwidth."""

    period_unit = fields.String(
        required=True, validate=validate.OneOf(PERIOD_UNITS), metadata={"example": "month"}
    )
    flavors = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.Integer(strict=True, validate=_RESOURCE_PRICE),
        required=True,
        metadata={"example": {"s6.medium.2": 2400, "s6.large.2": 4800}},
    )
    disk_gb = fields.Integer(
        required=True, strict=True, validate=_RESOURCE_PRICE, metadata={"example": 10}
    )
    eip_mbps = fields.Integer(
        required=True, strict=True, validate=_RESOURCE_PRICE, metadata={"example": 300}
    )


class DataDiskSchema(StrictSchema):
    size_gb = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=10, max=32768, error="must be between 10 and 32768"),
    )


class EipSchema(StrictSchema):
    bandwidth_mbps = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=2000, error="must be between 1 and 2000"),
    )


class DeploymentSizingSchema(StrictSchema):
    """The part of a deployment that sets its price (the rest is the cloud's business)."""

    flavor_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    system_disk_gb = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=1024, error="must be between 1 and 1024"),
    )
    data_disks = fields.List(
        fields.Nested(DataDiskSchema),
        load_default=list,
        validate=validate.Length(
            max=MAX_DATA_DISKS, error=f"must have at most {MAX_DATA_DISKS} disks"
        ),
    )
    eip = fields.Nested(EipSchema, load_default=None, allow_none=True)
    count = fields.Integer(
        load_default=1,
        strict=True,
        validate=validate.Range(
            min=1, max=MAX_DEPLOYMENT_COUNT, error=f"must be between 1 and {MAX_DEPLOYMENT_COUNT}"
        ),
    )


class SpecificationRequest(StrictSchema):
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"example": "Standard"}
    )
    prices = fields.List(
        fields.Nested(PriceRequest),
        required=True,
        validate=[
            validate.Length(min=1, error="must have at least one price"),
            validate.Length(max=MAX_PRICES, error=f"must have at most {MAX_PRICES} prices"),
        ],
    )
    quantity = fields.Nested(QuantityRequest, load_default=None, allow_none=True)
    image = fields.Nested(
        ImageSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "Required for an `image` product, absent otherwise."},
    )
    cloud_prices = fields.List(
        fields.Nested(CloudPriceSchema),
        load_default=list,
        validate=validate.Length(max=3, error="must have at most one price per period unit"),
        metadata={
            "description": "An `image` product's cloud resource prices: one per period unit "
            "its prices use, each pricing every flavor of `image.flavors`."
        },
    )


class CreateProductRequest(StrictSchema):
    """A new product, created as a draft (``create_product``): buyers see it once it is
    published. The rules between fields (one price per billing mode and period unit,
    ``min`` not above ``max``, which products take a ``saas_endpoint_url``) are the
    catalog's domain's."""

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
        required=True, validate=validate.OneOf(DELIVERY_METHODS), metadata={"example": SAAS}
    )
    service_supervision = StrictBoolean(
        required=True,
        metadata={
            "description": "The buyer accepts the delivered service before it completes. "
            "Always `true` for a `license` or a `professional_service`.",
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
        validate=[
            validate.Length(min=1, error="must have at least one specification"),
            validate.Length(
                max=MAX_SPECIFICATIONS,
                error=f"must have at most {MAX_SPECIFICATIONS} specifications",
            ),
        ],
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


MAX_REQUEST_TEMPLATE_LENGTH = 5_000


class RequestTemplateRequest(StrictSchema):
    """What a buyer is asked to write in a service request for the product
    (``set_request_template(product_id, payload)``)."""

    template = fields.String(
        required=True,
        validate=validate.Length(max=MAX_REQUEST_TEMPLATE_LENGTH),
        metadata={
            "description": f"0 to {MAX_REQUEST_TEMPLATE_LENGTH:,} characters; an empty "
            "template removes it.",
            "example": "Company name:\nContact person:\nServers to protect:",
        },
    )


class RequestTemplateResponse(AnswerSchema):
    """A product's request template (``set_request_template``, and
    ``get_request_template`` for supervision): null when its seller set none."""

    product_id = fields.String()
    template = fields.String(allow_none=True)


class DelistRequest(StrictSchema):
    """Take a published product off the marketplace (``delist_product(product_id,
    payload)``)."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Shown to the seller.", "example": "Violates the listing rules."},
    )


# -- RPC: the buyers' catalogue -------------------------------------------------------

RELEVANCE, PRICE_ASC, PRICE_DESC, NEWEST = "relevance", "price_asc", "price_desc", "newest"
SORTS = (RELEVANCE, PRICE_ASC, PRICE_DESC, NEWEST)


class ProductSearchQuery(PageSchema):
    """Search the published products (``search_products``)."""

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
        load_default=RELEVANCE,
        validate=validate.OneOf(SORTS),
        metadata={"description": "Default: relevance."},
    )

    @validates_schema
    def price_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and high < low:
            raise ValidationError("must not be less than min_price", "max_price")


class SaveProductRequest(StrictSchema):
    """Add a product to "My Saved List" (``save_product``)."""

    product_id = fields.String(required=True, validate=ID_RULE, metadata={"example": "prd_0b6f…"})


class PriceResponse(AnswerSchema):
    billing_mode = fields.String(validate=validate.OneOf(BILLING_MODES))
    period_unit = fields.String(allow_none=True, metadata={"example": "month"})
    price = fields.Nested(MoneySchema)


class QuantityResponse(AnswerSchema):
    name = fields.String(metadata={"example": "users"})
    min = fields.Integer(metadata={"example": 1})
    max = fields.Integer(metadata={"example": 1000})


class SpecificationResponse(AnswerSchema):
    id = fields.String(metadata={"description": "What an order names as `specification_id`."})
    name = fields.String(metadata={"example": "Standard"})
    prices = fields.List(fields.Nested(PriceResponse))
    quantity = fields.Nested(QuantityResponse, allow_none=True)
    image = fields.Nested(ImageSchema, allow_none=True)
    cloud_prices = fields.List(fields.Nested(CloudPriceSchema))


class SellerResponse(AnswerSchema):
    id = fields.String()
    company_name = fields.String(metadata={"example": "Acme Ltd"})
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)


class SellerIdRequest(StrictSchema):
    """``get_seller(seller_account_id)``: a seller's public details (billing's invoices)."""

    seller_account_id = fields.String(required=True, validate=validate.Length(min=1, max=40))


class SellerNameResponse(AnswerSchema):
    id = fields.String()
    company_name = fields.String(metadata={"example": "Acme Ltd"})


class _ProductRow(AnswerSchema):
    """What every view of a product shows: what it is, how it is sold, its status."""

    id = fields.String(metadata={"example": "prd_0b6f…"})
    name = fields.String()
    status = fields.String(validate=validate.OneOf(PRODUCT_STATUSES))
    category = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(MoneySchema)
    delist_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)
    delisted_at = fields.AwareDateTime(allow_none=True)


class ProductResponse(_ProductRow):
    """A product's details (``get_product``: the same for every caller, so the gateway
    may keep it; never the saas endpoint)."""

    summary = fields.String()
    description = fields.String()
    product_guide_url = fields.String(allow_none=True)
    terms = fields.String()
    seller = fields.Nested(SellerResponse)
    specifications = fields.List(fields.Nested(SpecificationResponse))


class SellerProductDetailsResponse(ProductResponse):
    """A product as its seller sees it (what creating and publishing answer): with its
    SaaS endpoint and its request template."""

    saas_endpoint_url = fields.String(allow_none=True)
    request_template = fields.String(allow_none=True)


class ProductSummaryResponse(AnswerSchema):
    """One search result."""

    id = fields.String()
    name = fields.String()
    summary = fields.String()
    category = fields.String()
    delivery_method = fields.String(validate=validate.OneOf(DELIVERY_METHODS))
    service_supervision = fields.Boolean()
    seller = fields.Nested(SellerNameResponse)
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(MoneySchema, metadata={"description": '"From" this.'})
    published_at = fields.AwareDateTime()


class SellerProductResponse(_ProductRow):
    """One of the seller's own products, in any status (``list_seller_products``)."""

    saas_endpoint_url = fields.String(allow_none=True)
    request_template = fields.String(allow_none=True)


class SavedResponse(AnswerSchema):
    product_id = fields.String()
    saved_at = fields.AwareDateTime()


class SavedProductResponse(AnswerSchema):
    """A row of "My Saved List", with what buying it needs (``list_saved_products``)."""

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
    lowest_price = fields.Nested(MoneySchema)
    saved_at = fields.AwareDateTime()


ProductSummaryPage = page_of(ProductSummaryResponse, "ProductSummaryPage")
SellerProductPage = page_of(SellerProductResponse, "SellerProductPage")
SavedProductPage = page_of(SavedProductResponse, "SavedProductPage")


# -- RPC: for other services ------------------------------------------------------------


class QuoteRequest(StrictSchema):
    """The configuration of a published product whose price orders fix into an order
    (``quote``). The rules of a period and a quantity are the product's own, checked
    by the catalog's domain."""

    product_id = fields.String(required=True, validate=ID_RULE)
    specification_id = fields.String(required=True, validate=ID_RULE)
    billing_mode = fields.String(required=True, validate=validate.OneOf(BILLING_MODES))
    period = fields.Nested(PeriodSchema, load_default=None, allow_none=True)
    quantity = fields.Integer(load_default=None, allow_none=True, strict=True)
    deployment = fields.Nested(DeploymentSizingSchema, load_default=None, allow_none=True)


class ChargeLineResponse(AnswerSchema):
    """One line of a price breakdown: what, how many, at what price each."""

    item = fields.String(
        validate=validate.OneOf(("product", "image", "servers", "disks", "eip")),
        metadata={"example": "servers"},
    )
    description = fields.String(metadata={"example": "2 servers s6.large.2 for 1 month"})
    quantity = fields.Integer(metadata={"example": 2})
    unit_price = fields.Nested(MoneySchema)
    amount = fields.Nested(MoneySchema)


class QuoteResponse(AnswerSchema):
    """The price of one configuration, and what an order line keeps of its product."""

    product_id = fields.String()
    product_name = fields.String()
    seller_account_id = fields.String()
    seller_company_name = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    product_guide_url = fields.String(allow_none=True)
    specification_id = fields.String()
    specification_name = fields.String()
    billing_mode = fields.String()
    period = fields.Nested(PeriodSchema, allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Nested(MoneySchema)
    amount = fields.Nested(MoneySchema)
    breakdown = fields.List(fields.Nested(ChargeLineResponse))
    image = fields.Nested(ImageSchema, allow_none=True)


class SellerContactResponse(AnswerSchema):
    company_name = fields.String()
    mobile = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class DeliverySettingsResponse(AnswerSchema):
    """What delivering a product needs (``delivery_settings``: provisioning delivers
    with it, the gateway shows its seller on a purchased app)."""

    product_id = fields.String()
    seller_account_id = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    saas_endpoint_url = fields.String(allow_none=True)
    product_guide_url = fields.String(allow_none=True)
    seller = fields.Nested(SellerContactResponse)
