"""The shapes of provisioning's RPC answers (dumped, so they travel as JSON)."""

from marshmallow import Schema, fields


class ApplicationOut(Schema):
    subscription_id = fields.String()
    delivery_status = fields.String()
    delivery_method = fields.String()
    instance_id = fields.String(allow_none=True)
    username = fields.String(allow_none=True)
    password = fields.String(allow_none=True)  # masked
    management_url = fields.String(allow_none=True)
    frontend_url = fields.String(allow_none=True)
    license_key = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)


class CredentialsOut(Schema):
    username = fields.String()
    password = fields.String()


class InterfaceCredentialsOut(Schema):
    seller_account_id = fields.String()
    access_key = fields.String()
    secret = fields.String()
    created_at = fields.AwareDateTime()


class LicensePublicKeyOut(Schema):
    seller_account_id = fields.String()
    algorithm = fields.String()
    key_id = fields.String()
    public_key = fields.String()
    public_key_pem = fields.String()
    license_format = fields.String()
