"""The public request schemas refuse what API.md refuses, and keep in step with the
rules iam-agency checks again at its RPC boundary."""

import datetime as dt

import pytest
from marshmallow import RAISE

from gateway import schemas
from gateway.web import respond
from iam_agency import schemas as iam_schemas
from mercato.errors import ValidationError
from mercato.validation import load

SIGN_UP = {
    "name": "Acme",
    "email": "ops@acme.test",
    "password": "correct horse battery",
    "type": "buyer",
}


def test_sign_up_accepts_a_complete_body():
    assert load(schemas.SignUpRequest, SIGN_UP) == SIGN_UP


@pytest.mark.parametrize(
    "change, field, rule",
    [
        ({"colour": "red"}, "colour", "Unknown field."),
        ({"name": 42}, "name", "Not a valid string."),
        ({"email": "not-an-email"}, "email", "Not a valid email address."),
        ({"password": "short"}, "password", "must be 10 to 128 characters"),
        ({"type": "operator"}, "type", "Must be one of: buyer, seller, reseller."),
        ({"type": None}, "type", "Field may not be null."),
    ],
)
def test_sign_up_names_the_field_and_the_rule_it_broke(change, field, rule):
    with pytest.raises(ValidationError) as caught:
        load(schemas.SignUpRequest, {**SIGN_UP, **change})
    assert caught.value.fields == {field: [rule]}


def test_sign_up_names_every_missing_field():
    with pytest.raises(ValidationError) as caught:
        load(schemas.SignUpRequest, {})
    assert set(caught.value.fields) == {"name", "email", "password", "type"}


def test_sign_in_refuses_unknown_fields():
    with pytest.raises(ValidationError) as caught:
        load(schemas.SignInRequest, {"email": "a@b.test", "password": "x", "otp": "1"})
    assert caught.value.fields == {"otp": ["Unknown field."]}


def rules(field) -> list:
    """A field's validators as comparable data (a tuple of choices equals a list)."""
    return [
        (type(v).__name__, {k: list(x) if isinstance(x, tuple) else x for k, x in vars(v).items()})
        for v in field.validators
    ]


@pytest.mark.parametrize(
    "public, rpc",
    [
        (schemas.SignUpRequest, iam_schemas.SignUpSchema),
        (schemas.SignInRequest, iam_schemas.CredentialsSchema),
    ],
)
def test_request_schema_matches_the_rpc_schema_it_feeds(public, rpc):
    public_fields, rpc_fields = public().fields, rpc().fields
    assert public_fields.keys() == rpc_fields.keys()
    for name, field in public_fields.items():
        other = rpc_fields[name]
        assert type(field) is type(other), name
        assert field.required == other.required, name
        assert rules(field) == rules(other), name
    assert public.Meta.unknown == RAISE


def test_response_keeps_only_documented_fields_and_renders_times():
    answer = {
        "token": "mkt_x",
        "expires_at": "2026-11-27T15:00:00+00:00",
        "internal": "not for clients",
    }
    response = respond(201, schemas.TokenResponse, answer)
    assert response.status_code == 201
    assert response.get_json() == {"token": "mkt_x", "expires_at": "2026-11-27T15:00:00+00:00"}
    expires = dt.datetime.fromisoformat(response.get_json()["expires_at"])
    assert expires.utcoffset() == dt.timedelta(0)


def test_me_response_nests_account_and_user():
    answer = {
        "account": {"id": "acc_1", "name": "Acme", "type": "buyer", "reseller": None},
        "user": {"id": "usr_1", "email": "ops@acme.test"},
        "roles": ["buyer"],
    }
    assert respond(200, schemas.MeResponse, answer).get_json() == {
        "account": {"id": "acc_1", "name": "Acme", "type": "buyer"},
        "user": {"id": "usr_1", "email": "ops@acme.test"},
        "roles": ["buyer"],
    }
