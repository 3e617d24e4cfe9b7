"""The envelope every event travels in (docs/architecture.md, "Rules every service keeps").

Example::

    {"id": "6f1c…", "type": "iam_agency.account.created", "version": 1,
     "occurred_at": "2026-11-27T03:00:00.000000+00:00", "source": "iam_agency",
     "subject": "acc_…", "account_id": "acc_…", "correlation_id": "9d2e…",
     "causation_id": "iam_agency.sign_up.…", "data": {…}}
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from marshmallow import fields, validate

from mercato.contracts.registry import contract_for
from mercato.validation import StrictSchema


class EnvelopeSchema(StrictSchema):
    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Unique id of this event; the key to deduplicate by."},
    )
    type = fields.String(
        required=True,
        validate=validate.Length(min=3, max=128),
        metadata={"description": "`<source>.<entity>.<fact>`; also the routing key."},
    )
    version = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Version of `data`'s schema; a breaking change is a new one."},
    )
    occurred_at = fields.AwareDateTime(
        required=True,
        default_timezone=dt.UTC,
        metadata={"description": "When the fact happened (UTC, RFC 3339)."},
    )
    source = fields.String(
        required=True,
        metadata={
            "description": "The service that announced it; the exchange is `<source>.events`."
        },
    )
    subject = fields.String(
        required=True,
        metadata={"description": "Id of the thing the event is about (see the message)."},
    )
    account_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The marketplace account it concerns, if any."},
    )
    correlation_id = fields.String(
        required=True,
        metadata={
            "description": "Id of the request that led to it, shared by every event "
            "and call of that request."
        },
    )
    causation_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Id of the event (or call) that caused this one."},
    )
    data = fields.Dict(
        required=True, metadata={"description": "The facts, as this type and version define."}
    )


# one instance for every envelope dumped or loaded: building a schema costs more than
# using it, and a marshmallow 3 schema keeps no state between calls
_ENVELOPE_SCHEMA = EnvelopeSchema()


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    version: int
    occurred_at: dt.datetime
    source: str
    subject: str
    account_id: str | None
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return _ENVELOPE_SCHEMA.dump(self)

    @classmethod
    def load(cls, payload: dict[str, Any]) -> Envelope:
        return cls(**_ENVELOPE_SCHEMA.load(payload))


def new_envelope(
    event_type: str,
    *,
    subject: str,
    data: dict[str, Any],
    account_id: str | None,
    correlation_id: str,
    causation_id: str | None,
    version: int | None = None,
    id: str | None = None,
    occurred_at: dt.datetime | None = None,
) -> Envelope:
    """The envelope of a new event, its ``data`` dumped and checked by the contract of
    ``event_type`` at ``version`` (the latest when not given); raises
    ``ContractViolation`` rather than build an event subscribers could not load."""
    contract = contract_for(event_type, version)
    return Envelope(
        id=id or uuid.uuid4().hex,
        type=event_type,
        version=contract.version,
        occurred_at=occurred_at or dt.datetime.now(dt.UTC),
        source=contract.source,
        subject=subject,
        account_id=account_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=contract.dump_data(data),
    )
