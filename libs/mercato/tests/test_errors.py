"""Domain errors cross RPC as nameko serializes them and come back as the same type.

The gateway maps an error to an HTTP status by its type and writes its code, message and
fields into the body; if any of those were lost on the way back from a service, a
buyer would get a 500 (a ``RemoteError``) or a 400 that names no field.
"""

import json

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

from mercato import errors

REGISTERED = [*errors.EXPECTED, errors.ServiceUnavailable]


def _across_the_wire(exc: Exception) -> Exception:
    """What the caller gets: nameko's serialized form through JSON (the serializer
    every Mercato config uses), rebuilt."""
    return deserialize(json.loads(json.dumps(serialize(exc))))


@pytest.mark.parametrize("error_type", REGISTERED, ids=lambda t: t.__name__)
def test_error_comes_back_with_its_type_code_message_and_fields(error_type):
    sent = error_type(
        "quantity must be between 1 and 100",
        {"lines.0.quantity": ["Must be greater than or equal to 1."]},
    )

    received = _across_the_wire(sent)

    assert type(received) is error_type
    assert received.code == error_type.default_code
    assert received.message == "quantity must be between 1 and 100"
    assert received.fields == {"lines.0.quantity": ["Must be greater than or equal to 1."]}
    assert received.to_body() == sent.to_body()


def test_business_rule_keeps_the_code_naming_the_rule():
    sent = errors.BusinessRuleViolation(
        "accept the product's terms first", code="TERMS_NOT_ACCEPTED"
    )

    received = _across_the_wire(sent)

    assert isinstance(received, errors.BusinessRuleViolation)
    assert received.to_body() == {
        "error": "TERMS_NOT_ACCEPTED",
        "message": "accept the product's terms first",
    }


def test_error_without_fields_has_an_empty_mapping_not_none():
    received = _across_the_wire(errors.NotFound("order not found"))

    assert received.fields == {}
    assert "fields" not in received.to_body()
    assert str(received) == "order not found"


def test_an_unregistered_error_arrives_as_a_remote_error():
    """The base class is not registered: raising it is a bug the gateway shows as 500,
    never as a client error it was not meant to be."""
    received = _across_the_wire(errors.MercatoError("boom"))

    assert isinstance(received, RemoteError)
    assert received.exc_type == "MercatoError"
