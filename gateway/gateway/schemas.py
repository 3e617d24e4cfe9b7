"""The gateway's own bodies: the error body, the probes' answers, and the purchased
app's details, which the gateway composes from three services' answers.

Every other body of the public API is the schema of the RPC behind its route, in
``mercato.contracts``: the gateway loads a request with the very schema the service
loads it with again, and keeps of an answer the fields the service's answer schema
documents.
"""

from __future__ import annotations

from marshmallow import fields, validate

from mercato.contracts.catalog import SellerContactResponse
from mercato.contracts.orders import PurchasedAppResponse
from mercato.contracts.provisioning import ApplicationResponse, DeploymentResponse
from mercato.validation import AnswerSchema


class ErrorResponse(AnswerSchema):
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


class HealthResponse(AnswerSchema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessResponse(AnswerSchema):
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


# -- a purchased app's details ----------------------------------------------------------


class PurchasedApplicationResponse(ApplicationResponse):
    """How to reach what was delivered (provisioning's answer), and the product's guide
    (orders')."""

    product_guide_url = fields.String(allow_none=True)


class PurchasedAppBasicResponse(AnswerSchema):
    specification_name = fields.String()
    delivery_method = fields.String()
    resource_status = fields.String(allow_none=True)
    billing_mode = fields.String()
    auto_renew = fields.Boolean()


class PurchasedAppDetailsResponse(PurchasedAppResponse):
    """The subscription; ``application``, ``basic`` and ``seller`` appear once delivery
    records them (until then only the subscription's own fields are answered)."""

    application = fields.Nested(PurchasedApplicationResponse, allow_none=True)
    basic = fields.Nested(PurchasedAppBasicResponse, allow_none=True)
    seller = fields.Nested(SellerContactResponse, allow_none=True)
    deployment = fields.Nested(
        DeploymentResponse,
        allow_none=True,
        metadata={
            "description": "An image's deployment in the buyer's cloud account: its status, "
            "each step, and the resources it made (null when provisioning did not answer)."
        },
    )
