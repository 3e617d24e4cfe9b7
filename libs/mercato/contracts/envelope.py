"""The envelope every event travels in (DESIGN.md, "Events are a public contract").

Example::

    {"id": "6f1c…", "type": "iam_agency.account.created", "version": 1,
     "occurred_at": "2026-11-27T03:00:00.000000+00:00", "source": "iam_agency",
     "subject": "acc_…", "account_id": "acc_…", "correlation_id": "9d2e…",
     "causation_id": "iam_agency.sign_up.…", "data": {…}}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, fields, validate


class EnvelopeSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.Length(min=3, max=128))
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    source = fields.String(required=True)
    subject = fields.String(required=True)
    account_id = fields.String(required=True, allow_none=True)
    correlation_id = fields.String(required=True)
    causation_id = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)


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
        return EnvelopeSchema().dump(self)

    @classmethod
    def load(cls, payload: dict[str, Any]) -> Envelope:
        return cls(**EnvelopeSchema().load(payload))
