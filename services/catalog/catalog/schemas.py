"""What the catalog's RPCs accept and answer.

Inputs are checked here for shape (types, lengths, allowed values, unknown fields);
the rules between fields (prices per billing mode, quantity bounds, what a quote may
ask) are ``catalog.domain``'s. Outputs are dumped through the schemas below so that
times are RFC 3339 strings and money is always ``{"amount": 12345, "currency": "USD"}``.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from catalog import domain
from mercato.validation import StrictSchema

ID_RULE = validate.Length(min=1, max=40)
CURRENCY_RULE = validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code such as USD")
MOBILE_RULE = validate.Regexp(
    r"^\+?[0-9][0-9 ()-]{4,30}$", error="must be a phone number such as +86 755 2878 0808"
)


class WholeNumber(fields.Integer):
    """An integer, or a string of digits (query-string values arrive as strings);
    never a fraction, a float or a boolean."""

    _DIGITS = re.compile(r"^[+-]?\d{1,18}$")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not self._DIGITS.match(value.strip()):
            raise self.make_error("invalid")
        return int(value)


class QuerySchema(StrictSchema):
    """A schema of optional query parameters: absent, null and "" all mean "not given"."""

    @pre_load
    def drop_empty(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value not in (None, "")}
        return data


# -- sellers -------------------------------------------------------------------


class SellerProfileSchema(StrictSchema):
    company_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    mobile = fields.String(load_default=None, allow_none=True, validate=MOBILE_RULE)
    support_range = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200)
    )
    # absent: keep the current currency (USD for a new seller)
    currency = fields.String(load_default=None, allow_none=True, validate=CURRENCY_RULE)


class SellerProfileOutSchema(Schema):
    account_id = fields.String()
    company_name = fields.String()
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)
    currency = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


# -- creating products ---------------------------------------------------------


class QuantitySchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    min = fields.Integer(required=True, strict=True)
    max = fields.Integer(required=True, strict=True)


class PriceSchema(StrictSchema):
    billing_mode = fields.String(required=True, validate=validate.OneOf(domain.BILLING_MODES))
    period_unit = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf([domain.MONTH, domain.YEAR, domain.HOUR]),
    )
    amount = fields.Integer(required=True, strict=True)


class SpecificationSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    prices = fields.List(
        fields.Nested(PriceSchema), required=True, validate=validate.Length(max=12)
    )
    quantity = fields.Nested(QuantitySchema, load_default=None, allow_none=True)


class CreateProductSchema(StrictSchema):
    """The body of ``POST /v1/seller/products``."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=500))
    description = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    category = fields.String(required=True, validate=validate.Length(min=1, max=64))
    delivery_method = fields.String(required=True, validate=validate.OneOf(domain.DELIVERY_METHODS))
    service_supervision = fields.Boolean(required=True)
    product_guide_url = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        validate=validate.Length(max=2048),
    )
    terms = fields.String(required=True, validate=validate.Length(min=1, max=50_000))
    specifications = fields.List(
        fields.Nested(SpecificationSchema), required=True, validate=validate.Length(max=20)
    )
    # saas only; what Mercato may call is domain.check_saas_endpoint's rule
    saas_endpoint_url = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=2048)
    )


class ProductIdSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID_RULE)


class DelistSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID_RULE)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# -- lists and search ------------------------------------------------------------


class PageSchema(QuerySchema):
    page = WholeNumber(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = WholeNumber(
        load_default=domain.DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=domain.MAX_PAGE_SIZE),
    )


class SearchSchema(PageSchema):
    """The query of ``GET /v1/products``."""

    q = fields.String(validate=validate.Length(max=200))
    delivery_method = fields.String(validate=validate.OneOf(domain.DELIVERY_METHODS))
    category = fields.String(validate=validate.Length(min=1, max=64))
    billing_mode = fields.String(validate=validate.OneOf(domain.BILLING_MODES))
    seller_id = fields.String(validate=ID_RULE)
    min_price = WholeNumber(validate=validate.Range(min=0))
    max_price = WholeNumber(validate=validate.Range(min=0))
    service_supervision = fields.Boolean()
    sort = fields.String(load_default=domain.RELEVANCE, validate=validate.OneOf(domain.SORTS))

    @validates_schema
    def price_range(self, data: dict[str, Any], **_kwargs: Any) -> None:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and high < low:
            raise ValidationError("must not be less than min_price", "max_price")


# -- quotes ------------------------------------------------------------------------


class PeriodSchema(StrictSchema):
    unit = fields.String(required=True, validate=validate.OneOf([domain.MONTH, domain.YEAR]))
    count = fields.Integer(required=True, strict=True)


class QuoteSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID_RULE)
    specification_id = fields.String(required=True, validate=ID_RULE)
    billing_mode = fields.String(required=True, validate=validate.OneOf(domain.BILLING_MODES))
    period = fields.Nested(PeriodSchema, load_default=None, allow_none=True)
    quantity = fields.Integer(load_default=None, allow_none=True, strict=True)


# -- answers -----------------------------------------------------------------------


class Money(Schema):
    amount = fields.Integer()
    currency = fields.String()


class PriceOutSchema(Schema):
    billing_mode = fields.String()
    period_unit = fields.String(allow_none=True)
    price = fields.Nested(Money)


class QuantityOutSchema(Schema):
    name = fields.String()
    min = fields.Integer()
    max = fields.Integer()


class SpecificationOutSchema(Schema):
    id = fields.String()
    name = fields.String()
    prices = fields.List(fields.Nested(PriceOutSchema))
    quantity = fields.Nested(QuantityOutSchema, allow_none=True)


class SellerOutSchema(Schema):
    id = fields.String()
    company_name = fields.String()
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    support_range = fields.String(allow_none=True)


class SellerNameSchema(Schema):
    id = fields.String()
    company_name = fields.String()


class ProductSchema(Schema):
    """A product's details (``GET /v1/products/{id}``, and what creating one answers)."""

    id = fields.String()
    status = fields.String()
    name = fields.String()
    summary = fields.String()
    description = fields.String()
    category = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    product_guide_url = fields.String(allow_none=True)
    terms = fields.String()
    seller = fields.Nested(SellerOutSchema)
    specifications = fields.List(fields.Nested(SpecificationOutSchema))
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(Money)
    delist_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)
    delisted_at = fields.AwareDateTime(allow_none=True)


class SellerProductDetailsSchema(ProductSchema):
    """A product's details as its own seller sees them (what creating and publishing
    answer): the public details and the saas product's endpoint. Never the answer of
    ``get_product``, which the gateway caches for every caller."""

    saas_endpoint_url = fields.String(allow_none=True)


class SellerContactSchema(Schema):
    company_name = fields.String()
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)


class DeliverySettingsSchema(Schema):
    """What delivering a product needs (``delivery_settings``, for provisioning)."""

    product_id = fields.String()
    seller_account_id = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    saas_endpoint_url = fields.String(allow_none=True)
    product_guide_url = fields.String(allow_none=True)
    seller = fields.Nested(SellerContactSchema)


class ProductSummarySchema(Schema):
    """One search result."""

    id = fields.String()
    name = fields.String()
    summary = fields.String()
    category = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    seller = fields.Nested(SellerNameSchema)
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(Money)
    published_at = fields.AwareDateTime()


class SellerProductSchema(Schema):
    """One row of a seller's own products, in any status."""

    id = fields.String()
    name = fields.String()
    status = fields.String()
    category = fields.String()
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    saas_endpoint_url = fields.String(allow_none=True)
    billing_modes = fields.List(fields.String())
    lowest_price = fields.Nested(Money)
    delist_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)
    delisted_at = fields.AwareDateTime(allow_none=True)


class SavedProductSchema(Schema):
    """A row of "My Saved List": what the Buy button needs."""

    product_id = fields.String()
    name = fields.String()
    status = fields.String()
    seller = fields.Nested(SellerNameSchema)
    delivery_method = fields.String()
    service_supervision = fields.Boolean()
    specifications = fields.List(fields.Nested(SpecificationOutSchema))
    lowest_price = fields.Nested(Money)
    saved_at = fields.AwareDateTime()


class SavedSchema(Schema):
    product_id = fields.String()
    saved_at = fields.AwareDateTime()


class QuoteOutSchema(Schema):
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
    period = fields.Dict(allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Nested(Money)
    amount = fields.Nested(Money)


def page_of(item_schema: type[Schema], page: dict[str, Any]) -> dict[str, Any]:
    """``{items, total, page, page_size}`` with each item dumped by ``item_schema``."""
    return {**page, "items": item_schema(many=True).dump(page["items"])}
