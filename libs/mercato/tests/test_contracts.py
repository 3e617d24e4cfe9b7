"""The producer's and the consumer's side of an event contract agree.

``new_envelope`` is what ``UnitOfWork.emit`` puts in the outbox and ``load_event`` is
what ``handles_event`` reads; whatever one accepts the other must, and what breaks the
contract must fail at the producer, not at every subscriber.
"""

import datetime as dt

import pytest
from marshmallow import ValidationError as SchemaError

from mercato.contracts import (
    ContractViolation,
    Envelope,
    contract_for,
    new_envelope,
    register,
)
from mercato.errors import ValidationError
from mercato.inbox import load_event

ACCOUNT_CREATED = "iam_agency.account.created"
DATA = {
    "account_id": "acc_1",
    "name": "Contoso",
    "type": "reseller",
    "reseller_account_id": None,
}


def _envelope(data=DATA, **overrides):
    return new_envelope(
        ACCOUNT_CREATED,
        subject="acc_1",
        data=data,
        account_id=overrides.pop("account_id", "acc_1"),
        correlation_id="corr-1",
        causation_id=None,
        **overrides,
    )


def test_an_emitted_envelope_loads_back_as_the_consumer_reads_it():
    sent = _envelope()

    received = load_event(sent.dump())

    assert received == sent
    assert received.occurred_at.tzinfo is not None
    assert (received.source, received.version) == ("iam_agency", 1)


def test_the_envelope_is_plain_json_with_an_aware_timestamp():
    payload = _envelope(occurred_at=dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)).dump()

    assert payload["occurred_at"] == "2026-03-01T09:30:00+00:00"
    assert set(payload) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "source",
        "subject",
        "account_id",
        "correlation_id",
        "causation_id",
        "data",
    }


def test_data_missing_a_required_field_breaks_the_contract():
    with pytest.raises(ContractViolation, match="name"):
        _envelope({key: value for key, value in DATA.items() if key != "name"})


def test_data_with_a_field_the_contract_does_not_declare_breaks_it():
    """``dump`` alone would drop the key; the producer must hear about its typo."""
    with pytest.raises(ContractViolation, match="reseller_acount_id"):
        _envelope({**DATA, "reseller_acount_id": "acc_2"})


def test_data_with_a_value_outside_the_contract_breaks_it():
    with pytest.raises(ContractViolation, match="type"):
        _envelope({**DATA, "type": "administrator"})


def test_an_unknown_event_type_names_the_type_not_the_version():
    with pytest.raises(ValidationError) as raised:
        contract_for("orders.order.teleported", 1)
    assert raised.value.fields == {"type": ["unknown event type"]}


def test_an_unknown_version_of_a_known_type_names_the_version():
    with pytest.raises(ValidationError) as raised:
        contract_for(ACCOUNT_CREATED, 99)
    assert raised.value.fields == {"version": ["unknown version"]}


@pytest.fixture
def two_versions():
    """A throw-away type at v1 and v2, removed again so no other test sees it."""
    from marshmallow import Schema, fields

    from mercato.contracts import EVENT_CONTRACTS

    class V1(Schema):
        name = fields.String(required=True)

    class V2(Schema):
        full_name = fields.String(required=True)

    keys = [("testing.thing.renamed", 1), ("testing.thing.renamed", 2)]
    register(*keys[1], V2, summary="v2", subject="the thing")
    register(*keys[0], V1, summary="v1", subject="the thing")
    yield
    for key in keys:
        EVENT_CONTRACTS.pop(key, None)


def test_the_latest_version_is_used_when_none_is_given(two_versions):
    assert contract_for("testing.thing.renamed").version == 2
    assert contract_for("testing.thing.renamed", 1).version == 1
    with pytest.raises(ContractViolation):
        contract_for("testing.thing.renamed").dump_data({"name": "v1 shape"})


def test_a_type_and_version_cannot_be_registered_twice():
    contract = contract_for(ACCOUNT_CREATED, 1)

    with pytest.raises(RuntimeError, match="registered twice"):
        register(ACCOUNT_CREATED, 1, contract.schema, summary="again", subject="again")


def test_the_consumer_refuses_data_that_breaks_the_contract():
    payload = _envelope().dump()
    payload["data"] = {**payload["data"], "type": "administrator"}

    with pytest.raises(SchemaError):
        load_event(payload)


def test_the_consumer_refuses_an_envelope_missing_its_id():
    payload = _envelope().dump()
    del payload["id"]

    with pytest.raises(SchemaError):
        load_event(payload)


def test_an_envelope_is_immutable():
    envelope = _envelope()

    with pytest.raises(AttributeError):
        envelope.subject = "acc_2"  # type: ignore[misc]
    assert isinstance(envelope, Envelope)
