"""Sign-in and sign-up limits through the gateway, with iam-agency beside it: the
attempt past a limit answers 429 with Retry-After and changes nothing."""

import pytest

from gateway.tests.marketplace import PASSWORD, assert_error, new_account

pytestmark = pytest.mark.interface


def test_sign_ins_past_the_email_s_limit_answer_429_with_retry_after(start_stack):
    stack = start_stack(SIGN_IN_LIMIT_PER_EMAIL="3/3600")
    account = new_account()
    assert stack.post("/v1/accounts", json=account).status_code == 201
    wrong = {"email": account["email"], "password": "not the password"}
    for _ in range(3):
        assert_error(stack.post("/v1/auth/tokens", json=wrong), 401, "UNAUTHENTICATED")

    # the right password too: the email's attempts are spent for this window
    right = {"email": account["email"].upper(), "password": PASSWORD}
    response = stack.post("/v1/auth/tokens", json=right)

    body = assert_error(response, 429, "RATE_LIMITED")
    assert "email" in body["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert stack.iam_rows("api_tokens") == 0
    # another email is not held back by this one
    other = new_account()
    assert stack.post("/v1/accounts", json=other).status_code == 201
    signed_in = stack.post("/v1/auth/tokens", json={"email": other["email"], "password": PASSWORD})
    assert signed_in.status_code == 201


def test_sign_ups_past_the_address_s_limit_answer_429_and_open_no_account(start_stack):
    stack = start_stack(SIGN_UP_LIMIT_PER_ADDRESS="2/3600")
    for _ in range(2):
        assert stack.post("/v1/accounts", json=new_account()).status_code == 201

    response = stack.post("/v1/accounts", json=new_account())

    body = assert_error(response, 429, "RATE_LIMITED")
    assert "address" in body["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert stack.iam_rows("accounts") == 2


def test_x_forwarded_for_chooses_no_address_unless_the_proxy_is_trusted(start_stack):
    untrusted = start_stack(SIGN_UP_LIMIT_PER_ADDRESS="1/3600")
    first = {"X-Forwarded-For": "198.51.100.1"}
    second = {"X-Forwarded-For": "198.51.100.2"}
    assert untrusted.post("/v1/accounts", json=new_account(), headers=first).status_code == 201
    # a client that writes another address is still counted as its connection's peer
    refused = untrusted.post("/v1/accounts", json=new_account(), headers=second)
    assert_error(refused, 429, "RATE_LIMITED")

    proxied = start_stack(SIGN_UP_LIMIT_PER_ADDRESS="1/3600", TRUSTED_PROXIES="127.0.0.1")
    assert proxied.post("/v1/accounts", json=new_account(), headers=first).status_code == 201
    assert proxied.post("/v1/accounts", json=new_account(), headers=second).status_code == 201
    assert_error(
        proxied.post("/v1/accounts", json=new_account(), headers=first), 429, "RATE_LIMITED"
    )


def test_a_body_that_fails_validation_counts_nothing(start_stack):
    stack = start_stack(SIGN_UP_LIMIT_PER_ADDRESS="1/3600")
    for _ in range(3):
        invalid = stack.post("/v1/accounts", json={"email": "not an email"})
        assert_error(invalid, 400, "VALIDATION_ERROR")

    assert stack.post("/v1/accounts", json=new_account()).status_code == 201
