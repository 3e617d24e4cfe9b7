"""provisioning's contracts: the events it publishes, and what its RPCs answer (the
public API's purchased-app and seller-key bodies are these very schemas).

A delivery's events carry what the buyer may see of it (usernames, URLs, a license
key), never a password: the password stays encrypted in provisioning and is shown
only through the audited reveal (``POST /v1/purchased-apps/{id}/credentials/reveal``).
"""

import datetime as dt

from marshmallow import fields, validate

from mercato.contracts.registry import register
from mercato.terms import DELIVERY_METHODS
from mercato.validation import AnswerSchema, StrictSchema

_DELIVERY = "dlv_4e5f6a7b8c9d40e1f2a3b4c5d6e7f8a9"
_SUBSCRIPTION = "sub_3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"
_ORDER = "ord_7e1d2c3b4a5f46e7d8c9b0a1f2e3d4c5"
_LINE = "oln_2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7"
_BUYER = "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6"
_DELIVERY_EXAMPLE = {
    "delivery_id": _DELIVERY,
    "subscription_id": _SUBSCRIPTION,
    "order_id": _ORDER,
    "order_line_id": _LINE,
    "account_id": _BUYER,
    "delivery_method": "saas",
}


class DeliveredApplicationV1(StrictSchema):
    """What the delivery method has; the rest is null."""

    instance_id = fields.String(required=True, allow_none=True)
    username = fields.String(required=True, allow_none=True)
    management_url = fields.String(required=True, allow_none=True)
    frontend_url = fields.String(required=True, allow_none=True)
    license_key = fields.String(required=True, allow_none=True)
    has_password = fields.Boolean(required=True)


class _DeliveryV1(StrictSchema):
    """Which delivery: of which subscription, on which order line, for which buyer."""

    delivery_id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    order_id = fields.String(required=True)
    order_line_id = fields.String(required=True)
    account_id = fields.String(required=True)
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))


class DeliverySucceededV1(_DeliveryV1):
    service_supervision = fields.Boolean(required=True)
    application = fields.Nested(DeliveredApplicationV1, required=True)
    # the subscription's period: from the first delivery attempt to the expiry the seller
    # was told and the license key carries (null: it does not expire by time)
    starts_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True, allow_none=True)
    delivered_at = fields.AwareDateTime(required=True)


class DeliveryFailedV1(_DeliveryV1):
    reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True)


register(
    "provisioning.delivery.succeeded",
    1,
    DeliverySucceededV1,
    summary="A purchased app was delivered: a license key signed for the buyer, or a SaaS "
    "tenant the seller created. Carries what the buyer may see; never a password.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_DELIVERY_EXAMPLE,
        "service_supervision": False,
        "application": {
            "instance_id": "inst_91c2d3e4f5a6",
            "username": "buyer-5d0c8e2f",
            "management_url": "https://crm.northwind.example/tenants/inst_91c2d3e4f5a6/admin/",
            "frontend_url": "https://crm.northwind.example/tenants/inst_91c2d3e4f5a6/",
            "license_key": None,
            "has_password": True,
        },
        "starts_at": dt.datetime(2026, 1, 15, 9, 30, 5, tzinfo=dt.UTC),
        "expires_at": dt.datetime(2027, 1, 15, 9, 30, 5, tzinfo=dt.UTC),
        "delivered_at": dt.datetime(2026, 1, 15, 9, 31, tzinfo=dt.UTC),
    },
)
register(
    "provisioning.delivery.failed",
    1,
    DeliveryFailedV1,
    summary="A purchased app could not be delivered within its delivery window; orders "
    "cancels the order with this reason and billing refunds it.",
    subject="the subscription id",
    example_subject=_SUBSCRIPTION,
    example={
        **_DELIVERY_EXAMPLE,
        "reason": "The seller's system did not create the SaaS instance within 3 hours.",
        "failed_at": dt.datetime(2026, 1, 15, 12, 30, tzinfo=dt.UTC),
    },
)


# -- RPC --------------------------------------------------------------------------------


class ApplicationResponse(AnswerSchema):
    """How to reach what was delivered for a purchased app (``get_application``): what
    its delivery method has, the rest null."""

    delivery_status = fields.String(
        metadata={
            "description": "`pending` (being delivered), `succeeded`, `failed`, "
            "`waiting` (delivered by another flow: images, professional services; a supervised "
            "SaaS tenant until the seller confirms), or "
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
    license_key = fields.String(allow_none=True)


class CredentialsResponse(AnswerSchema):
    """A delivered application's sign-in, in the clear (``reveal_credentials``): this
    reveal is recorded."""

    username = fields.String()
    password = fields.String()


class InterfaceCredentialsResponse(AnswerSchema):
    """The key pair with which Mercato signs its calls to the seller's SaaS endpoints
    (``issue_interface_credentials``; docs/seller-saas-interface.md). The secret is
    shown this once; asking again replaces the pair."""

    seller_account_id = fields.String()
    access_key = fields.String(metadata={"example": "ak_3f9c…"})
    secret = fields.String()
    created_at = fields.AwareDateTime()


class LicensePublicKeyResponse(AnswerSchema):
    """The key that verifies a seller's license keys offline (``license_public_key``)."""

    seller_account_id = fields.String()
    algorithm = fields.String(metadata={"example": "Ed25519"})
    key_id = fields.String()
    public_key = fields.String(metadata={"description": "The raw 32-byte key, base64url."})
    public_key_pem = fields.String()
    license_format = fields.String()
