"""The AsyncAPI 2.6 document of every event Mercato publishes, made from the contracts.

::

    python -m mercato.contracts.asyncapi           # writes docs/asyncapi.yaml
    python -m mercato.contracts.asyncapi --check   # exit 1 when docs/asyncapi.yaml is stale

Subscribers read the document, not the code. Each event type is a channel on its
source's topic exchange, named ``<source>.events/<type>`` (exchange, then routing key),
with one message per version. A message's payload is the envelope with ``data`` replaced
by that version's schema, both converted from the marshmallow schemas by apispec, so the
document cannot say anything the producer's and consumer's checks do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter

from mercato.config import ROOT
from mercato.contracts.envelope import EnvelopeSchema, new_envelope
from mercato.contracts.registry import EVENT_CONTRACTS, EventContract
from mercato.identity import (
    CAUSATION_EVENT_ID,
    CORRELATION_ID,
)

ASYNCAPI_VERSION = "2.6.0"
AMQP_BINDING_VERSION = "0.2.0"
DOCUMENT_PATH = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = "python -m mercato.contracts.asyncapi"

DELIVERY_GUARANTEE = "at least once, deduplicate by envelope id"
DELIVERY = (
    "Delivery is at least once: an event is written to its producer's outbox in the "
    "transaction that made it true and published with publisher confirms, so after a "
    "failure the same event can arrive again. Deduplicate by the envelope `id`, "
    "recording it in the transaction of your effect. Order is not guaranteed, not even "
    "between the events of one subject: a retried publish, a redelivery or two replicas "
    "publishing at once can reorder them. An event published while no queue is bound "
    "to its routing key is dropped by the broker: declare your queue before it matters "
    "(docs/events.md, Late subscribers)."
)
VERSIONING = (
    "Each version of the event is its own message on this routing key (the envelope's "
    "`version` tells them apart). A producer may add an optional field at the top level "
    "of `data` within a version; any other change is published as a new version "
    "alongside the old one, so handle the versions you know and ignore the others."
)
HEADER_PREFIX = "nameko"

# The example envelope around each contract's example data: fixed, so the document is
# the same on every run.
EXAMPLE_ID = "8c6a4c1e0f9b4d2a9e7f3b5d1c2a4e6f"
EXAMPLE_OCCURRED_AT = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
EXAMPLE_ACCOUNT_ID = "acc_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EXAMPLE_CORRELATION_ID = "3f2b7c9d1e4a4b6c8d0e2f4a6b8c0d1e"
EXAMPLE_CAUSATION_ID = "gateway.post_request.6d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"

_HEADERS: dict[str, tuple[dict[str, Any], str]] = {
    CORRELATION_ID: ({"type": "string"}, "Correlation id of the request (as in the payload)."),
    CAUSATION_EVENT_ID: ({"type": "string"}, "This event's id, the cause of what it leads to."),
}
# no caller (account, user, roles, signature): an event is a fact, not a request, and a
# subscriber has no use for who asked (mercato.identity)


def _converter() -> OpenAPIConverter:
    # OpenAPI 3.1 schemas are JSON Schema (nullable is `type: [..., "null"]`), which is
    # what an AsyncAPI 2.6 payload is. No name resolver: nested schemas are inlined, so
    # every payload stands alone.
    spec = APISpec("Mercato events", "1", "3.1.0")
    return OpenAPIConverter("3.1.0", lambda _schema: None, spec)


def payload_schema(contract: EventContract) -> dict[str, Any]:
    """JSON schema of the envelope of ``contract``'s events, its ``data`` included."""
    converter = _converter()
    schema = converter.schema2jsonschema(EnvelopeSchema)
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": contract.type}
    properties["version"] = {**properties["version"], "const": contract.version}
    properties["source"] = {**properties["source"], "const": contract.source}
    properties["subject"] = {
        **properties["subject"],
        "description": f"{contract.subject[:1].upper()}{contract.subject[1:]}.",
    }
    data = converter.schema2jsonschema(contract.schema)
    # consumers are tolerant readers of data's top level (mercato.inbox.load_event): a
    # version may gain optional fields there; anything else takes a new version
    data["additionalProperties"] = True
    properties["data"] = {"description": properties["data"]["description"], **data}
    return schema


def example_payload(contract: EventContract) -> dict[str, Any] | None:
    """A real envelope of ``contract``, built by the producer's own code path."""
    if contract.example is None:
        return None
    envelope = new_envelope(
        contract.type,
        version=contract.version,
        subject=contract.example_subject or "example-subject",
        data=dict(contract.example),
        id=EXAMPLE_ID,
        occurred_at=EXAMPLE_OCCURRED_AT,
        account_id=EXAMPLE_ACCOUNT_ID,
        correlation_id=EXAMPLE_CORRELATION_ID,
        causation_id=EXAMPLE_CAUSATION_ID,
    )
    return envelope.dump()


def message_name(contract: EventContract) -> str:
    return f"{contract.type}.v{contract.version}"


def channel_name(contract: EventContract) -> str:
    return f"{contract.exchange}/{contract.type}"


def _message(contract: EventContract) -> dict[str, Any]:
    message: dict[str, Any] = {
        "messageId": message_name(contract),
        "name": contract.type,
        "title": f"{contract.type} v{contract.version}",
        "summary": contract.summary,
        "description": (
            f"Version {contract.version} of `{contract.type}`. The envelope's `subject` "
            f"is {contract.subject}. Delivery: {DELIVERY_GUARANTEE}."
        ),
        "contentType": "application/json",
        "correlationId": {
            "description": "The request that led to the event.",
            "location": "$message.payload#/correlation_id",
        },
        "headers": {
            "type": "object",
            "description": "AMQP headers: the correlation and the cause, for nameko subscribers.",
            "properties": {
                f"{HEADER_PREFIX}.{key}": {**schema, "description": description}
                for key, (schema, description) in _HEADERS.items()
            },
        },
        "payload": payload_schema(contract),
        "bindings": {
            "amqp": {
                "contentEncoding": "utf-8",
                "messageType": contract.type,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        "x-version": contract.version,
    }
    example = example_payload(contract)
    if example is not None:
        message["examples"] = [{"name": f"v{contract.version}", "payload": example}]
    return message


def _channel(type_: str, contracts: list[EventContract]) -> dict[str, Any]:
    latest = contracts[-1]
    refs = [{"$ref": f"#/components/messages/{message_name(c)}"} for c in contracts]
    return {
        "description": (
            f"`{type_}` events: the topic exchange `{latest.exchange}`, routing key "
            f"`{type_}`. Bind a durable queue of your own to it. {VERSIONING} "
            f"Delivery: {DELIVERY_GUARANTEE}."
        ),
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": latest.exchange,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        "subscribe": {
            "operationId": f"receive_{type_.replace('.', '_')}",
            "summary": latest.summary,
            "description": DELIVERY,
            "tags": [{"name": latest.source}],
            "bindings": {
                "amqp": {
                    "cc": [type_],  # the routing key it is published with
                    "deliveryMode": 2,
                    "mandatory": False,
                    "timestamp": True,
                    "ack": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
            "message": refs[0] if len(refs) == 1 else {"oneOf": refs},
        },
    }


def _package_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def build_document(contracts: Iterable[EventContract] | None = None) -> dict[str, Any]:
    ordered = sorted(
        EVENT_CONTRACTS.values() if contracts is None else contracts,
        key=lambda contract: (contract.type, contract.version),
    )
    by_type: dict[str, list[EventContract]] = {}
    for contract in ordered:
        by_type.setdefault(contract.type, []).append(contract)
    sources = sorted({contract.source for contract in ordered})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:mercato:events",
        "info": {
            "title": "Mercato events",
            "version": _package_version(),
            "description": (
                "Every event Mercato's services publish. Each travels in one envelope "
                "(`id`, `type`, `version`, `occurred_at`, `source`, `subject`, "
                "`account_id`, `correlation_id`, `causation_id`, `data`); `data` is "
                "defined per type and version. Within a version a producer may add an "
                "optional field at the top level of `data` (so ignore fields you do not "
                "know there); any other change (removing, renaming or retyping a field, "
                "or adding a required one) is published as a new version.\n\n" + DELIVERY
            ),
            "x-delivery-guarantee": DELIVERY_GUARANTEE,
        },
        "servers": {
            "broker": {
                "url": "{host}:{port}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The RabbitMQ the services publish to (their AMQP_URI).",
                "variables": {"host": {"default": "localhost"}, "port": {"default": "5672"}},
            }
        },
        "defaultContentType": "application/json",
        "tags": [{"name": source, "description": f"Published by {source}."} for source in sources],
        "channels": {
            channel_name(contracts_[-1]): _channel(type_, contracts_)
            for type_, contracts_ in by_type.items()
        },
        "components": {
            "messages": {message_name(contract): _message(contract) for contract in ordered}
        },
    }


def render(document: dict[str, Any]) -> str:
    header = f"# Generated from mercato.contracts by `{REGENERATE}`; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=88)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=REGENERATE, description="Write (or check) the AsyncAPI document of the events."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="%(default)s")
    args = parser.parse_args(argv)
    expected = render(build_document())
    if not args.check:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(expected)
        print(f"wrote {args.output}")
        return 0
    current = args.output.read_text() if args.output.exists() else ""
    if current == expected:
        return 0
    diff = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=f"{args.output} (checked in)",
            tofile=f"{args.output} (from the contracts)",
        )
    )
    shown = "".join(diff[:60]) + ("…\n" if len(diff) > 60 else "")
    print(
        f"{args.output} is out of date with mercato.contracts; run `{REGENERATE}` "
        f"and commit the result.\n{shown}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
