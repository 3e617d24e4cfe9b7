"""What iam-agency's RPCs accept and answer (validated again here, not only at the
gateway: another service may call these RPCs directly)."""

from marshmallow import Schema, fields, validate

from mercato.identity import BUYER, RESELLER, SELLER
from mercato.validation import StrictSchema

PASSWORD_RULE = validate.Length(min=10, max=128, error="must be 10 to 128 characters")


class SignUpSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=PASSWORD_RULE)
    type = fields.String(required=True, validate=validate.OneOf([BUYER, SELLER, RESELLER]))


class ResellerCustomerSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=PASSWORD_RULE)


class CredentialsSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


class AccountSchema(Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    type = fields.String()
    reseller_account_id = fields.String(allow_none=True)


class TokenSchema(Schema):
    token = fields.String()
    expires_at = fields.AwareDateTime()


class IdentitySchema(Schema):
    """What ``authenticate`` answers: enough to build a ``mercato.identity.Identity``."""

    account_id = fields.String()
    account_type = fields.String()
    account_name = fields.String()
    user_id = fields.String()
    email = fields.String()
    roles = fields.List(fields.String())
    reseller_account_id = fields.String(allow_none=True)
    expires_at = fields.AwareDateTime()


class MeSchema(Schema):
    account = fields.Dict()
    user = fields.Dict()
    roles = fields.List(fields.String())


class EnterpriseProjectSchema(Schema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
