"""The error table: every mapped class answers its status with the JSON error body."""

import json

import pytest

from gateway.errors import (
    INTERNAL_MESSAGE,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    error_response,
    mapped_errors,
)
from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationError,
)

# docs/api.md's statuses; the table must say the same
EXPECTED_STATUS = {
    ValidationError: (400, "VALIDATION_ERROR"),
    Unauthenticated: (401, "UNAUTHENTICATED"),
    PaymentRequired: (402, "PAYMENT_REQUIRED"),
    Forbidden: (403, "FORBIDDEN"),
    NotFound: (404, "NOT_FOUND"),
    MethodNotAllowed: (405, "METHOD_NOT_ALLOWED"),
    Conflict: (409, "CONFLICT"),
    PayloadTooLarge: (413, "PAYLOAD_TOO_LARGE"),
    UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE"),
    BusinessRuleViolation: (422, "BUSINESS_RULE_VIOLATED"),
    RateLimited: (429, "RATE_LIMITED"),
    ServiceUnavailable: (503, "SERVICE_UNAVAILABLE"),
}


def test_every_status_of_the_contract_is_in_the_table():
    assert set(mapped_errors) == set(EXPECTED_STATUS)


@pytest.mark.parametrize("error_class", list(mapped_errors), ids=lambda cls: cls.__name__)
def test_mapped_error_answers_its_status_and_json_body(error_class):
    status, code = EXPECTED_STATUS[error_class]
    response = error_response(error_class("what went wrong"))

    assert response.status_code == mapped_errors[error_class] == status
    assert response.content_type == "application/json"
    assert json.loads(response.get_data()) == {"error": code, "message": "what went wrong"}
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_validation_error_names_its_fields():
    response = error_response(ValidationError("bad", {"email": ["Not a valid email address."]}))
    assert json.loads(response.get_data())["fields"] == {"email": ["Not a valid email address."]}


def test_a_business_rule_keeps_its_own_code():
    response = error_response(BusinessRuleViolation("no", code="TERMS_NOT_ACCEPTED"))
    assert (response.status_code, json.loads(response.get_data())["error"]) == (
        422,
        "TERMS_NOT_ACCEPTED",
    )


@pytest.mark.parametrize(
    "error, status, code",
    [
        (IdempotencyKeyInFlight("busy"), 409, "CONFLICT"),
        (IdempotencyKeyReused("other body"), 422, "IDEMPOTENCY_KEY_REUSED"),
    ],
)
def test_gateway_errors_inherit_the_status_of_their_base(error, status, code):
    response = error_response(error)
    assert response.status_code == status
    assert json.loads(response.get_data())["error"] == code


def test_wrong_method_lists_the_allowed_ones():
    response = error_response(MethodNotAllowed("no", ["GET", "HEAD"]))
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("error", [RuntimeError("db password is hunter2"), KeyError("x")])
def test_unmapped_error_is_a_500_that_reveals_nothing(error):
    response = error_response(error)
    body = json.loads(response.get_data())
    assert response.status_code == 500
    assert body == {"error": "INTERNAL", "message": INTERNAL_MESSAGE}
    assert "hunter2" not in response.get_data(as_text=True)
