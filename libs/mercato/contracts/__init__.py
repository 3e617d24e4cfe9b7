"""The event contract: one envelope, a marshmallow schema per event type, one registry.

Producers validate an event's ``data`` against its schema before it enters the outbox;
consumers load it with the same schema. ``asyncapi.py`` renders the registry as the
AsyncAPI document that subscribers read (kept in step by a test).

Importing this package registers every event type (the modules below).
"""

from mercato.contracts.registry import (
    EVENT_CONTRACTS,
    EventContract,
    contract_for,
    register,
)
from mercato.contracts.envelope import Envelope, EnvelopeSchema
from mercato.contracts import iam_agency  # noqa: F401  (registers its event types)

__all__ = [
    "EVENT_CONTRACTS",
    "Envelope",
    "EnvelopeSchema",
    "EventContract",
    "contract_for",
    "register",
]
