"""The public API's request and response bodies (API.md), as marshmallow schemas.

Request schemas refuse unknown fields (``RAISE``), so a misspelt field is a 400 that
names it instead of being ignored. Response schemas keep only the documented fields
of a service's answer. The OpenAPI document is generated from these classes, so their
``metadata`` (description, example) is what a client reads.

The rules of a field (lengths, choices) match the service's own RPC schema, which
checks them again; ``tests/test_schemas.py`` keeps the two in step.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from mercato.identity import BUYER, RESELLER, SELLER

SIGN_UP_TYPES = (BUYER, SELLER, RESELLER)
PASSWORD_RULE = validate.Length(min=10, max=128, error="must be 10 to 128 characters")


class RequestSchema(Schema):
    class Meta:
        unknown = RAISE


class ResponseSchema(Schema):
    """A response may gain fields (API.md): the document does not forbid extra ones."""

    class Meta:
        unknown = EXCLUDE


class SignUpRequest(RequestSchema):
    """Open an account and its first user."""

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
