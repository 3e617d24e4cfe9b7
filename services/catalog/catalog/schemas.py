"""What the catalog's RPCs check beyond its contract (``mercato.contracts.catalog``, where
the request and answer schemas of its RPCs live): a product id given to an RPC."""

from __future__ import annotations

from marshmallow import fields

from mercato.contracts.catalog import DelistRequest
from mercato.contracts.common import ID_RULE
from mercato.validation import StrictSchema


class ProductIdSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID_RULE)


class DelistSchema(ProductIdSchema, DelistRequest):
    """``delist_product(product_id, payload)``: the product from the path, the reason
    from the body."""
