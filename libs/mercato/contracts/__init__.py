"""The contracts: one envelope, a marshmallow schema per event type, one registry; and
one schema per RPC request and answer.

Producers validate an event's ``data`` against its schema before it enters the outbox;
consumers load it with the same schema. ``asyncapi.py`` renders the registry as the
AsyncAPI document that subscribers read (kept in step by a test).

An RPC's request schema is loaded by the gateway (for a public route) and again by the
service; its answer schema is what the service dumps and what the gateway's response
keeps. The gateway's OpenAPI document is generated from them.

Importing this package registers every event type: each module beside this one other
than ``envelope``, ``registry``, ``asyncapi`` and ``common`` holds one source's
contracts: the events it publishes and what its RPCs accept and answer. ``common``
holds the shapes several sources' RPCs share.
"""

import importlib
import pkgutil

from mercato.contracts.envelope import Envelope, EnvelopeSchema, new_envelope
from mercato.contracts.registry import (
    EVENT_CONTRACTS,
    ContractViolation,
    EventContract,
    contract_for,
    register,
)

# Every other module here is one source's event types: import them all, so the set of
# registered contracts (and the AsyncAPI document) never depends on what else a process
# happened to import.
_NOT_CONTRACTS = {"asyncapi", "common", "envelope", "registry"}
for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _module.name not in _NOT_CONTRACTS:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "EVENT_CONTRACTS",
    "ContractViolation",
    "Envelope",
    "EnvelopeSchema",
    "EventContract",
    "contract_for",
    "new_envelope",
    "register",
]
