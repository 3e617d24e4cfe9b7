"""Every event type Mercato publishes, with its schema, version and meaning."""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from mercato.errors import ValidationError


@dataclass(frozen=True)
class EventContract:
    """One event type at one version.

    ``type`` is ``<source>.<entity>.<fact>``, e.g. ``orders.order.paid``; it is also the
    routing key on the source's ``<source>.events`` topic exchange.
    """

    type: str
    version: int
    schema: type[Schema]
    summary: str
    subject: str  # what the envelope's ``subject`` identifies, e.g. "the order id"

    @property
    def source(self) -> str:
        return self.type.split(".", 1)[0]

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"


EVENT_CONTRACTS: dict[tuple[str, int], EventContract] = {}


def register(
    type: str, version: int, schema: type[Schema], *, summary: str, subject: str
) -> EventContract:
    contract = EventContract(type, version, schema, summary, subject)
    if (type, version) in EVENT_CONTRACTS:
        raise RuntimeError(f"event {type} v{version} is registered twice")
    EVENT_CONTRACTS[(type, version)] = contract
    return contract


def contract_for(type: str, version: int | None = None) -> EventContract:
    """The contract of ``type`` at ``version`` (the latest when not given)."""
    if version is None:
        versions = [v for (t, v) in EVENT_CONTRACTS if t == type]
        if not versions:
            raise ValidationError(f"unknown event type {type}", {"type": ["unknown event type"]})
        version = max(versions)
    try:
        return EVENT_CONTRACTS[(type, version)]
    except KeyError:
        raise ValidationError(
            f"unknown event {type} v{version}", {"version": ["unknown version"]}
        ) from None
