"""Every event type Mercato publishes, with its schema, version and meaning."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

from mercato.errors import ValidationError


class ContractViolation(ValueError):
    """A producer tried to emit ``data`` its event's contract does not allow.

    A programming error, not the caller's fault: the producer's request fails (500)
    instead of sending subscribers an event they cannot load.
    """


@dataclass(frozen=True)
class EventContract:
    """One event type at one version.

    ``type`` is ``<source>.<entity>.<fact>``, e.g. ``orders.order.paid``; it is also the
    routing key on the source's ``<source>.events`` topic exchange. ``example`` is a
    realistic ``data`` (and ``example_subject`` its subject): the AsyncAPI document
    shows it and the contract tests check the published schema accepts it.
    """

    type: str
    version: int
    schema: builtins.type[Schema]  # (``type`` is a field here)
    summary: str
    subject: str  # what the envelope's ``subject`` identifies, e.g. "the order id"
    example: Mapping[str, Any] | None = None
    example_subject: str | None = None

    @property
    def source(self) -> str:
        return self.type.split(".", 1)[0]

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"

    # Building a schema instance (deep-copying its declared fields, nested schemas
    # included) costs more than the dump or load it is built for (docs/performance.md,
    # "Schemas built once"). A marshmallow 3 schema keeps no state between loads and
    # dumps, so one instance per contract serves every green thread (as
    # ``mercato.validation`` does for RPC schemas). ``cached_property`` writes to the
    # instance ``__dict__``, which a frozen dataclass allows.
    @functools.cached_property
    def instance(self) -> Schema:
        """The contract's schema, built once."""
        return self.schema()

    @functools.cached_property
    def _declared(self) -> frozenset[str]:
        return frozenset(
            field.attribute or name for name, field in self.instance.dump_fields.items()
        )

    def dump_data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` as subscribers will read it; ``ContractViolation`` if it breaks the
        contract, including a key the schema does not declare (``dump`` alone would
        drop it without a word, e.g. a misspelt optional field)."""
        schema = self.instance
        declared = self._declared
        payload = schema.dump(data)
        errors: dict[str, Any] = dict(schema.validate(payload))
        for key in sorted(set(data) - declared):
            errors[key] = ["Unknown field."]
        if errors:
            raise ContractViolation(f"{self.type} v{self.version} breaks its contract: {errors}")
        return payload


EVENT_CONTRACTS: dict[tuple[str, int], EventContract] = {}


def register(
    type: str,
    version: int,
    schema: type[Schema],
    *,
    summary: str,
    subject: str,
    example: Mapping[str, Any] | None = None,
    example_subject: str | None = None,
) -> EventContract:
    contract = EventContract(type, version, schema, summary, subject, example, example_subject)
    if (type, version) in EVENT_CONTRACTS:
        raise RuntimeError(f"event {type} v{version} is registered twice")
    EVENT_CONTRACTS[(type, version)] = contract
    return contract


def contract_for(type: str, version: int | None = None) -> EventContract:
    """The contract of ``type`` at ``version`` (the latest when not given)."""
    versions = [v for (t, v) in EVENT_CONTRACTS if t == type]
    if not versions:
        raise ValidationError(f"unknown event type {type}", {"type": ["unknown event type"]})
    if version is None:
        version = max(versions)
    try:
        return EVENT_CONTRACTS[(type, version)]
    except KeyError:
        raise ValidationError(
            f"unknown event {type} v{version}", {"version": ["unknown version"]}
        ) from None
