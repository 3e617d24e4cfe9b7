"""NUL and lone surrogates, wherever a client puts them (body, query, headers), answer
400 naming where they are, and change nothing; never a 500."""

import json

import pytest

from gateway.tests.marketplace import PASSWORD, assert_error, bearer, new_account, sign_up

pytestmark = pytest.mark.interface

UNSAFE = ["\\u0000", "\\ud800", "a\\udfffb"]


def raw_json(body: dict, name: str, escaped: str) -> bytes:
    """``body`` as JSON with ``name``'s value the JSON escape ``escaped`` (json.dumps
    cannot write a lone surrogate itself)."""
    text = json.dumps({**body, name: "PLACEHOLDER"})
    return text.replace('"PLACEHOLDER"', f'"{escaped}"').encode()


@pytest.mark.parametrize("escaped", UNSAFE)
@pytest.mark.parametrize("idempotency_key", [None, "unsafe-text-1"])
def test_unsafe_text_in_a_body_is_400_naming_the_field(stack, escaped, idempotency_key):
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    body = raw_json(new_account(), "name", escaped)

    response = stack.post("/v1/accounts", data=body, headers=headers)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "name" in error["fields"]
    assert stack.iam_rows("accounts") == 0
    assert stack.gateway_rows() == 0


def test_unsafe_text_in_a_nested_field_or_a_key_is_named(stack):
    seller = sign_up(stack, "seller")
    body = (
        b'{"company_name": "Acme", "email": "a@acme.test", "mobile": "+1 555", '
        b'"support_range": "any", "x\\u0000y": 1}'
    )

    response = stack.put(
        "/v1/seller/profile",
        data=body,
        headers={**bearer(seller.token), "Content-Type": "application/json"},
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["fields"]) == ["x\\x00y"]


def test_unsafe_text_in_a_sign_in_is_400_not_a_500(stack):
    body = raw_json({"email": "a@acme.test"}, "password", "\\ud800")
    response = stack.post(
        "/v1/auth/tokens",
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "password" in error["fields"]


def test_nul_in_a_query_value_is_400_naming_the_parameter(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)

    response = stack.get("/v1/products?q=a%00b")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "q" in error["fields"]


def test_nul_in_a_header_is_400_naming_the_header(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)

    response = stack.post(
        "/v1/auth/tokens",
        json={"email": account["email"], "password": PASSWORD},
        headers={"Idempotency-Key": "a\x00b"},
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["fields"]) == ["Idempotency-Key"]
