"""Events published by the catalog.

Both events carry the same snapshot of a product, as buyers see it in a search result:
who sells it, how it is delivered, where it is listed, its status and its lowest price
(an integer of minor units with the seller's currency), so that a subscriber can keep
its own copy without calling back.
"""

from marshmallow import RAISE, Schema, fields, validate

from mercato.contracts.registry import register

PRODUCT_STATUSES = ("draft", "published", "delisted")
DELIVERY_METHODS = ("license", "professional_service", "saas", "image")


class MoneyV1(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))


class ProductSnapshotV1(Schema):
    class Meta:
        unknown = RAISE

    product_id = fields.String(required=True)
    seller_account_id = fields.String(required=True)
    name = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))
    category = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(PRODUCT_STATUSES))
    lowest_price = fields.Nested(MoneyV1, required=True)


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
