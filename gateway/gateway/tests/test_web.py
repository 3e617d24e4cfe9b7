"""Reading a request body: within the limit, as a JSON object, or a 400/413 naming why."""

import io

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.errors import PayloadTooLarge
from gateway.web import BODY_FIELD, read_json
from mercato.errors import ValidationError

LIMIT = 64


def request_with(body: bytes, **kwargs) -> Request:
    return Request(EnvironBuilder(method="POST", data=body, **kwargs).get_environ())


def chunked_request(body: bytes) -> Request:
    """What eventlet hands over for ``Transfer-Encoding: chunked``: no Content-Length,
    a stream already de-chunked."""
    environ = EnvironBuilder(method="POST", headers={"Transfer-Encoding": "chunked"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(body)
    return Request(environ)


def test_json_object_body_is_read():
    assert read_json(request_with(b'{"a": [1, 2]}'), LIMIT) == {"a": [1, 2]}


def test_empty_body_reads_as_an_empty_object():
    assert read_json(request_with(b""), LIMIT) == {}


@pytest.mark.parametrize(
    "body, rule",
    [
        (b'{"a": ', "Not valid JSON"),
        (b"\xff\xfe\x00", "Not valid JSON"),
        (b'{"a": NaN}', "Not valid JSON"),
        (b'{"a": 1, "a": 2}', "Not valid JSON: duplicate key 'a'"),
        (b"[1, 2]", "Must be a JSON object."),
        (b'"text"', "Must be a JSON object."),
        (b"[" * 60, "Not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_validation_error(body, rule):
    with pytest.raises(ValidationError) as caught:
        read_json(request_with(body), LIMIT)
    assert list(caught.value.fields) == [BODY_FIELD]
    assert caught.value.fields[BODY_FIELD][0].startswith(rule)


def test_nesting_deeper_than_the_parser_allows_is_a_validation_error():
    deep = b"[" * 100_000
    with pytest.raises(ValidationError):
        read_json(request_with(deep), len(deep))


def test_declared_length_over_the_limit_is_refused_before_reading():
    with pytest.raises(PayloadTooLarge):
        read_json(request_with(b"{}" + b" " * LIMIT), LIMIT)


def test_chunked_body_over_the_limit_is_refused_by_what_was_read():
    with pytest.raises(PayloadTooLarge):
        read_json(chunked_request(b'{"a": "' + b"x" * LIMIT + b'"}'), LIMIT)


def test_chunked_body_within_the_limit_is_read():
    assert read_json(chunked_request(b'{"a": 1}'), LIMIT) == {"a": 1}


def test_answers_keep_only_documented_fields_at_every_depth():
    from gateway.web import project, response_plan
    from mercato.contracts import catalog

    answer = {
        "id": "prd_1",
        "name": "Backup",
        "internal_score": 0.93,  # not documented: dropped
        "seller": {"id": "acc_s", "company_name": "Acme", "email": None, "secret_note": "x"},
        "specifications": [
            {
                "id": "spc_1",
                "name": "Standard",
                "quantity": None,
                "prices": [
                    {
                        "billing_mode": "one_time",
                        "period_unit": None,
                        "price": {"amount": 900, "currency": "USD", "fx": 1.0},
                    },
                ],
                "cost_to_seller": 1,
            }
        ],
    }
    projected = project(response_plan(catalog.ProductResponse), answer)
    assert "internal_score" not in projected
    assert projected["seller"] == {"id": "acc_s", "company_name": "Acme", "email": None}
    [spec] = projected["specifications"]
    assert "cost_to_seller" not in spec and spec["quantity"] is None
    assert spec["prices"][0]["price"] == {"amount": 900, "currency": "USD"}


def test_request_only_fields_never_appear_in_an_answer():
    from gateway.web import response_plan
    from mercato.contracts.iam_agency import ResellerCustomerRequest

    assert "password" not in response_plan(ResellerCustomerRequest)
