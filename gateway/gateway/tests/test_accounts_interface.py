"""Sign-up, sign-in and /v1/me through the gateway, with iam-agency beside it, over
real HTTP, RabbitMQ and PostgreSQL; and every way a request can be refused, each
leaving nothing behind."""

import datetime as dt

import pytest
from nameko.testing.services import entrypoint_waiter
from prometheus_client import REGISTRY

from gateway.tests.marketplace import PASSWORD, assert_error, bearer, new_account, sign_up
from mercato.clock import ManualClock

pytestmark = pytest.mark.interface


def test_sign_up_answers_the_new_account_without_its_password(stack):
    account = new_account(type="seller")
    response = stack.post("/v1/accounts", json=account)

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "name": "Acme",
        "email": account["email"],
        "type": "seller",
        "time_zone": "UTC",
    }
    assert body["id"].startswith("acc_")
    assert stack.iam_rows("accounts") == 1


def test_signed_in_caller_sees_their_account_user_and_roles(stack):
    reseller = sign_up(stack, "reseller")

    response = stack.get("/v1/me", headers=bearer(reseller.token))

    assert response.status_code == 200
    me = response.json()
    assert me["account"]["name"] == "Acme"
    assert me["account"]["type"] == "reseller"
    assert me["user"]["email"] == reseller.account["email"]
    assert me["roles"] == ["reseller"]


def test_sign_in_answers_a_token_and_its_expiry(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)
    response = stack.post("/v1/auth/tokens", json={"email": account["email"], "password": PASSWORD})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert response.headers["Cache-Control"] == "no-store"
    assert dt.datetime.fromisoformat(body["expires_at"]) > dt.datetime.now(dt.UTC)


def test_wrong_password_is_401(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)
    response = stack.post(
        "/v1/auth/tokens", json={"email": account["email"], "password": "not the password"}
    )
    assert_error(response, 401, "UNAUTHENTICATED")
    assert stack.iam_rows("api_tokens") == 0


def test_duplicate_email_is_409_email_taken_and_stores_nothing(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)

    response = stack.post(
        "/v1/accounts",
        json={**account, "name": "Impostor"},
        headers={"Idempotency-Key": "dup-1"},
    )

    assert_error(response, 409, "EMAIL_TAKEN")
    assert stack.iam_rows("accounts") == 1
    assert stack.gateway_rows() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({**new_account(), "colour": "red"}, "colour"),
        ({**new_account(), "name": 42}, "name"),
        ({**new_account(), "type": "operator"}, "type"),
        ({**new_account(), "password": ["a", "list"]}, "password"),
        ({"name": "Acme"}, "email"),
    ],
    ids=["unknown-field", "wrong-type", "bad-choice", "list-for-string", "missing-fields"],
)
def test_invalid_sign_up_is_400_naming_the_field_and_stores_nothing(stack, body, field):
    response = stack.post("/v1/accounts", json=body, headers={"Idempotency-Key": "bad-1"})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["fields"]
    assert stack.iam_rows("accounts") == 0
    assert stack.gateway_rows() == 0


@pytest.mark.parametrize(
    "raw, rule",
    [
        (b'{"name": "Acme", ', "Not valid JSON"),
        (b'["a", "list"]', "Must be a JSON object."),
        (b'"a string"', "Must be a JSON object."),
        (b'{"name": NaN}', "Not valid JSON"),
    ],
    ids=["truncated", "array", "string", "nan"],
)
def test_body_that_is_not_a_json_object_is_400_and_stores_nothing(stack, raw, rule):
    response = stack.post(
        "/v1/accounts",
        data=raw,
        headers={"Content-Type": "application/json", "Idempotency-Key": "bad-2"},
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["fields"]["_body"][0].startswith(rule)
    assert stack.iam_rows("accounts") == 0
    assert stack.gateway_rows() == 0


def test_body_over_the_limit_is_413_and_stores_nothing(start_stack):
    stack = start_stack(MAX_BODY_BYTES=1024)
    body = new_account(name="x" * 2000)

    response = stack.post("/v1/accounts", json=body, headers={"Idempotency-Key": "big-1"})

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert stack.iam_rows("accounts") == 0
    assert stack.gateway_rows() == 0


def test_chunked_body_over_the_limit_is_413_by_the_bytes_read(start_stack):
    stack = start_stack(MAX_BODY_BYTES=1024)

    def chunks():  # requests sends a generator chunked, with no Content-Length
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = stack.post(
        "/v1/accounts", data=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert stack.iam_rows("accounts") == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer mkt_" + "x" * 43}, {"Authorization": "Basic YTpi"}],
    ids=["missing", "unknown-token", "not-bearer"],
)
def test_request_without_a_valid_token_is_401_with_a_bearer_challenge(stack, headers):
    response = stack.get("/v1/me", headers=headers)

    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401(start_stack):
    iam_clock = ManualClock(dt.datetime.now(dt.UTC))
    stack = start_stack(iam_clock=iam_clock)
    token = sign_up(stack).token

    iam_clock.advance(days=1)
    response = stack.get("/v1/me", headers=bearer(token))

    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_signed_out_token_is_refused_at_once_despite_the_cache(start_stack):
    stack = start_stack(TOKEN_CACHE_SECONDS=3600)
    token = sign_up(stack).token
    assert stack.get("/v1/me", headers=bearer(token)).status_code == 200  # now cached

    signed_out = stack.delete("/v1/auth/tokens/current", headers=bearer(token))

    assert signed_out.status_code == 204
    assert signed_out.content == b""
    assert_error(stack.get("/v1/me", headers=bearer(token)), 401, "UNAUTHENTICATED")


def test_cached_token_does_not_ask_iam_agency_again(start_stack):
    stack = start_stack(TOKEN_CACHE_SECONDS=3600)
    token = sign_up(stack).token
    stack.get("/v1/me", headers=bearer(token))

    authentications = {
        "service": "iam_agency",
        "entrypoint": "authenticate",
        "kind": "rpc",
        "outcome": "success",
    }
    before = REGISTRY.get_sample_value("mercato_entrypoint_calls_total", authentications)

    with entrypoint_waiter(stack.iam, "me"):  # iam answered me: the request is over
        assert stack.get("/v1/me", headers=bearer(token)).status_code == 200

    assert REGISTRY.get_sample_value("mercato_entrypoint_calls_total", authentications) == before


def test_unknown_route_is_a_json_404_with_a_request_id(stack):
    response = stack.get("/v1/nothing-here", headers={"X-Request-ID": "lost-1"})

    assert_error(response, 404, "NOT_FOUND")
    assert response.headers["X-Request-ID"] == "lost-1"


def test_wrong_method_is_a_json_405_listing_the_allowed_ones(stack):
    response = stack.delete("/v1/accounts")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


def test_request_id_is_echoed_and_reaches_iam_agency(stack):
    token = sign_up(stack).token

    with entrypoint_waiter(stack.iam, "me") as waited:
        response = stack.get("/v1/me", headers={**bearer(token), "X-Request-ID": "req-42.a:b"})

    assert response.headers["X-Request-ID"] == "req-42.a:b"
    assert waited.worker_ctx.data["correlation_id"] == "req-42.a:b"


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200, "semi;colon"])
def test_request_id_is_generated_when_absent_or_not_a_sane_token(stack, sent):
    headers = {"X-Request-ID": sent} if sent else {}
    first = stack.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = stack.get("/healthz", headers=headers).headers["X-Request-ID"]

    assert first != sent
    assert len(first) == 32 and first != second


def test_error_response_carries_the_request_id_sent(stack):
    response = stack.post("/v1/accounts", json={}, headers={"X-Request-ID": "bad-req-7"})
    assert_error(response, 400, "VALIDATION_ERROR")
    assert response.headers["X-Request-ID"] == "bad-req-7"


def test_iam_agency_down_is_503(start_stack):
    stack = start_stack(with_iam=False)

    response = stack.post("/v1/auth/tokens", json={"email": "a@acme.test", "password": PASSWORD})

    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "iam_agency" in body["message"]


# -- the account's time zone ----------------------------------------------------


@pytest.mark.parametrize("role", ["buyer", "seller", "reseller"])
def test_an_account_changes_its_time_zone_and_me_shows_it(stack, role):
    client = sign_up(stack, role)
    assert stack.get("/v1/me", headers=bearer(client.token)).json()["account"]["time_zone"] == "UTC"

    response = client.request("PATCH", "/v1/account", json={"time_zone": "Asia/Shanghai"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": client.id,
        "name": "Acme",
        "type": role,
        "time_zone": "Asia/Shanghai",
    }
    me = stack.get("/v1/me", headers=bearer(client.token)).json()
    assert me["account"]["time_zone"] == "Asia/Shanghai"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"time_zone": 8}, "time_zone"),
        ({}, "time_zone"),
        ({"time_zone": "UTC", "colour": "red"}, "colour"),
    ],
    ids=["unknown-zone", "a-path", "empty", "a-number", "missing", "unknown-field"],
)
def test_a_time_zone_that_is_no_iana_zone_is_400_naming_it(stack, body, field):
    client = sign_up(stack, "buyer")

    response = client.request("PATCH", "/v1/account", json=body)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["fields"]
    if field == "time_zone" and isinstance(body.get("time_zone"), str):
        assert "an IANA time zone such as Asia/Shanghai" in error["fields"]["time_zone"][0]
    me = stack.get("/v1/me", headers=bearer(client.token)).json()
    assert me["account"]["time_zone"] == "UTC"


def test_changing_the_time_zone_needs_a_token(stack):
    response = stack.request("PATCH", "/v1/account", json={"time_zone": "Asia/Shanghai"})
    assert_error(response, 401, "UNAUTHENTICATED")
