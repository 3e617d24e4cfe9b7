"""Events published by iam-agency."""

from marshmallow import RAISE, Schema, fields, validate

from mercato.contracts.registry import register
from mercato.identity import ACCOUNT_TYPES


class AccountCreatedV1(Schema):
    class Meta:
        unknown = RAISE

    account_id = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(ACCOUNT_TYPES))
    reseller_account_id = fields.String(required=True, allow_none=True)


register(
    "iam_agency.account.created",
    1,
    AccountCreatedV1,
    summary="A marketplace account was opened (sign-up, a reseller's customer, or an "
    "operator created on the command line).",
    subject="the new account's id",
    example_subject="acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
    example={
        "account_id": "acc_5d0c8e2f9a7b4e61b3c2d1e0f9a8b7c6",
        "name": "Northwind Traders",
        "type": "buyer",
        "reseller_account_id": None,
    },
)
