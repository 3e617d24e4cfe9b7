"""The AsyncAPI document subscribers read says what the code does.

``docs/asyncapi.yaml`` is generated from the contracts; a contract changed without
regenerating it would mislead every subscriber, so the checked-in file must equal the
generated one. And a schema that accepted anything would be worthless, so each message
schema must accept a real envelope (built by the producer's own code) and refuse what
the consumer's marshmallow schemas refuse.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError as JsonSchemaError
from marshmallow import ValidationError as SchemaError

from mercato.config import ROOT
from mercato.contracts import EVENT_CONTRACTS, asyncapi
from mercato.errors import MercatoError
from mercato.inbox import load_event

CONTRACTS = sorted(EVENT_CONTRACTS.values(), key=lambda c: (c.type, c.version))


def _id(contract) -> str:
    return f"{contract.type}.v{contract.version}"


@pytest.fixture(scope="module")
def document() -> dict:
    """The checked-in document, as a subscriber reads it."""
    return yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text())


def _example(contract) -> dict:
    """The contract's example envelope; a contract without one fails, by name."""
    envelope = asyncapi.example_payload(contract)
    if envelope is None:
        pytest.fail(
            f"{_id(contract)} has no example: register it with example= and example_subject="
        )
    return envelope


def _payload_schema(document, contract) -> dict:
    return document["components"]["messages"][asyncapi.message_name(contract)]["payload"]


def test_checked_in_document_equals_the_generated_one():
    assert asyncapi.DOCUMENT_PATH.read_text() == asyncapi.render(asyncapi.build_document()), (
        f"docs/asyncapi.yaml is stale: run `{asyncapi.REGENERATE}`"
    )


def test_check_command_passes_on_the_checked_in_document():
    result = subprocess.run(
        [sys.executable, "-m", "mercato.contracts.asyncapi", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr


def test_check_fails_with_a_diff_and_the_command_to_run_when_stale(tmp_path, capsys):
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(
        asyncapi.DOCUMENT_PATH.read_text().replace("title: Mercato events", "title: Old events")
    )

    assert asyncapi.main(["--check", "--output", str(stale)]) == 1
    hint = capsys.readouterr().err
    assert asyncapi.REGENERATE in hint
    assert "-  title: Old events" in hint
    assert "+  title: Mercato events" in hint

    assert asyncapi.main(["--output", str(stale)]) == 0
    assert asyncapi.main(["--check", "--output", str(stale)]) == 0


def test_check_fails_when_the_document_is_missing(tmp_path):
    assert asyncapi.main(["--check", "--output", str(tmp_path / "missing.yaml")]) == 1


def test_document_is_asyncapi_2_6_with_the_delivery_guarantee(document):
    assert document["asyncapi"] == "2.6.0"
    assert document["info"]["x-delivery-guarantee"] == "at least once, deduplicate by envelope id"
    assert "Deduplicate by the envelope `id`" in document["info"]["description"]
    assert document["servers"]["broker"]["protocol"] == "amqp"


@pytest.mark.parametrize("contract", CONTRACTS, ids=_id)
def test_every_contract_is_a_message_on_its_exchange_and_routing_key(document, contract):
    channel = document["channels"][f"{contract.source}.events/{contract.type}"]
    amqp = channel["bindings"]["amqp"]
    assert amqp["is"] == "routingKey"
    assert (amqp["exchange"]["name"], amqp["exchange"]["type"]) == (contract.exchange, "topic")
    message = channel["subscribe"]["message"]
    refs = [m["$ref"] for m in message.get("oneOf", [message])]
    assert f"#/components/messages/{contract.type}.v{contract.version}" in refs
    for ref in refs:  # every reference resolves
        assert ref.removeprefix("#/components/messages/") in document["components"]["messages"]

    described = document["components"]["messages"][f"{contract.type}.v{contract.version}"]
    assert described["summary"] == contract.summary
    assert contract.subject in described["description"]
    assert "deduplicate by envelope id" in described["description"]
    assert described["x-version"] == contract.version
    assert described["bindings"]["amqp"]["messageType"] == contract.type


@pytest.mark.parametrize("contract", CONTRACTS, ids=_id)
def test_message_schema_accepts_a_real_dumped_envelope(document, contract):
    schema = _payload_schema(document, contract)
    Draft7Validator.check_schema(schema)
    envelope = _example(contract)

    Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).validate(envelope)
    assert load_event(envelope).data == contract.example  # and the consumer loads it
    shown = document["components"]["messages"][asyncapi.message_name(contract)]["examples"]
    assert shown == [{"name": f"v{contract.version}", "payload": envelope}]


def _drop_a_required_data_field(envelope, schema):
    del envelope["data"][schema["properties"]["data"]["required"][0]]


def _add_an_undeclared_data_field(envelope, _schema):
    envelope["data"]["not_in_the_contract"] = "x"


@pytest.mark.parametrize(
    "contract",
    sorted(EVENT_CONTRACTS.values(), key=lambda c: (c.type, c.version)),
    ids=lambda c: f"{c.type}.v{c.version}",
)
def test_an_added_top_level_data_field_is_tolerated_by_schema_and_consumer(contract):
    """Within a version a producer may add an optional field to data's top level."""
    envelope = asyncapi.example_payload(contract)
    _add_an_undeclared_data_field(envelope, None)
    Draft7Validator(asyncapi.payload_schema(contract)).validate(envelope)
    assert "not_in_the_contract" not in load_event(envelope).data


def _add_an_undeclared_envelope_field(envelope, _schema):
    envelope["priority"] = "high"


def _change_the_version(envelope, _schema):
    envelope["version"] += 1


def _drop_the_id(envelope, _schema):
    del envelope["id"]


def _null_the_correlation_id(envelope, _schema):
    envelope["correlation_id"] = None


def _malform_the_timestamp(envelope, _schema):
    envelope["occurred_at"] = "yesterday at noon"


def _change_the_type(envelope, _schema):
    envelope["type"] = "orders.order.teleported"


BREAKAGES = [
    _drop_a_required_data_field,
    _add_an_undeclared_envelope_field,
    _change_the_version,
    _drop_the_id,
    _null_the_correlation_id,
    _malform_the_timestamp,
    _change_the_type,
]


@pytest.mark.parametrize("breaks_it", BREAKAGES, ids=lambda f: f.__name__.lstrip("_"))
@pytest.mark.parametrize("contract", CONTRACTS, ids=_id)
def test_message_schema_refuses_what_the_consumer_refuses(document, contract, breaks_it):
    schema = _payload_schema(document, contract)
    envelope = copy.deepcopy(_example(contract))
    breaks_it(envelope, schema)

    with pytest.raises(JsonSchemaError):
        Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).validate(envelope)
    with pytest.raises((SchemaError, MercatoError)):
        load_event(envelope)
