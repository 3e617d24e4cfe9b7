"""Who is asking: the caller's identity and correlation id, carried in nameko context data.

The gateway authenticates a request and writes the identity into its worker's context
data; nameko copies context data into the headers of every RPC it sends, so each
service downstream sees the same caller and the same correlation id. ``Caller`` is the
dependency services use to read it and to require a role or ownership.

The broker is no trust boundary: anyone who may publish to ``nameko-rpc`` could write
those headers. So the identity travels signed: ``caller_signature`` is an HMAC-SHA256,
with a key only Mercato's processes hold (``MERCATO_CONTEXT_KEY``), over the account,
user, account type, roles, enterprise project, reseller account and ``caller_expires``
(Unix seconds, ``CONTEXT_TTL_SECONDS`` after signing). Whoever makes a worker act as
someone (``act_as``: the gateway once it authenticated a token, a timer or an event
handler acting as its own service) signs; every RPC worker verifies before its method
runs, and a context that is unsigned, altered or expired is refused with
``Unauthenticated`` before anything changes. An RPC with no identity at all is an
anonymous caller, as before (signing up, browsing).

Events are facts, not requests: they carry no identity (``mercato.db``), and an event
handler works as its own service (``service_identity``), whatever its headers say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from prometheus_client import Counter

from mercato import config
from mercato.errors import Forbidden, NotFound, Unauthenticated

_log = logging.getLogger(__name__)

# context data keys (nameko sends each as an AMQP header "nameko.<key>")
CORRELATION_ID = "correlation_id"
CAUSATION_EVENT_ID = "causation_event_id"
ACCOUNT_ID = "account_id"
ACCOUNT_TYPE = "account_type"
USER_ID = "user_id"
ROLES = "roles"
ENTERPRISE_PROJECT_ID = "enterprise_project_id"
RESELLER_ACCOUNT_ID = "reseller_account_id"
# the digest of the client's Idempotency-Key, set by the gateway on a POST that honours
# one: a service that creates or charges something keeps it with what it made, so a
# retry of the same request (the client's, after a lost answer) finds the first result
REQUEST_KEY = "request_key"

# the signature over the identity keys, and until when it holds (Unix seconds)
CALLER_EXPIRES = "caller_expires"
CALLER_SIGNATURE = "caller_signature"

IDENTITY_KEYS = (
    ACCOUNT_ID,
    ACCOUNT_TYPE,
    USER_ID,
    ROLES,
    ENTERPRISE_PROJECT_ID,
    RESELLER_ACCOUNT_ID,
)
# what a worker drops of a context it does not believe
SIGNED_CONTEXT_KEYS = (*IDENTITY_KEYS, CALLER_EXPIRES, CALLER_SIGNATURE)

BUYER, SELLER, RESELLER, OPERATOR = "buyer", "seller", "reseller", "operator"
ACCOUNT_TYPES = (BUYER, SELLER, RESELLER, OPERATOR)
# a service's own work (a timer, an event handler): its account type and only role
SERVICE = "service"

# long enough for any chain of calls one request or one sweep makes (the gateway's
# budget is seconds), short enough that a context copied off the bus soon stops working
CONTEXT_TTL_SECONDS = 300
# a key shorter than this is a password, not a key
MIN_CONTEXT_KEY_LENGTH = 32
_SIGNATURE_VERSION = "v1"

CONTEXTS_REFUSED = Counter(
    "mercato_caller_context_refused_total",
    "RPC requests refused because their caller context was unsigned, altered or expired",
    ["service", "reason"],
)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def ensure_correlation_id(worker_ctx) -> str:
    """The worker's correlation id: inherited from the caller's context data, else the
    X-Request-ID of an HTTP request (if it is a sane token), else a new one."""
    correlation_id = worker_ctx.data.get(CORRELATION_ID)
    if not correlation_id:
        request = worker_ctx.args[0] if worker_ctx.args else None
        header = getattr(getattr(request, "headers", None), "get", lambda _key: None)
        requested = header("X-Request-ID")
        correlation_id = (
            requested if requested and _REQUEST_ID.match(requested) else new_correlation_id()
        )
        worker_ctx.data[CORRELATION_ID] = correlation_id
    return correlation_id


@dataclass(frozen=True)
class Identity:
    account_id: str
    user_id: str
    account_type: str
    roles: tuple[str, ...] = field(default_factory=tuple)
    enterprise_project_id: str | None = None
    # set for a reseller's customer: the reseller pays for this account's orders
    reseller_account_id: str | None = None

    def to_context(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            ACCOUNT_ID: self.account_id,
            USER_ID: self.user_id,
            ACCOUNT_TYPE: self.account_type,
            ROLES: list(self.roles),
        }
        if self.enterprise_project_id:
            data[ENTERPRISE_PROJECT_ID] = self.enterprise_project_id
        if self.reseller_account_id:
            data[RESELLER_ACCOUNT_ID] = self.reseller_account_id
        return data

    @classmethod
    def from_context(cls, data: Mapping[str, Any]) -> Identity | None:
        if not data.get(ACCOUNT_ID) or not data.get(USER_ID):
            return None
        return cls(
            account_id=str(data[ACCOUNT_ID]),
            user_id=str(data[USER_ID]),
            account_type=str(data.get(ACCOUNT_TYPE, "")),
            roles=tuple(data.get(ROLES) or ()),
            enterprise_project_id=data.get(ENTERPRISE_PROJECT_ID),
            reseller_account_id=data.get(RESELLER_ACCOUNT_ID),
        )

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_service(self) -> bool:
        """A service's own work (``service_identity``), not a person's request."""
        return self.account_type == SERVICE and SERVICE in self.roles


def service_identity(service_name: str) -> Identity:
    """Who a service's own work is: a timer's sweep, an event handler. It holds no
    buyer's, seller's or operator's role, so it passes no ``require_role`` of theirs;
    a service's internal RPC may accept it (``Identity.is_service``)."""
    principal = f"svc_{service_name}"
    return Identity(principal, principal, SERVICE, (SERVICE,))


class ContextKeyMissing(RuntimeError):
    """``MERCATO_CONTEXT_KEY`` is unset or too short: the process cannot sign or verify."""


def parse_context_keys(raw: str | None) -> tuple[bytes, ...]:
    """The keys of ``MERCATO_CONTEXT_KEY``: comma-separated, the first signs, any of them
    verifies (to rotate: add the new key second, roll out, move it first, roll out,
    drop the old one). Each at least ``MIN_CONTEXT_KEY_LENGTH`` characters."""
    keys = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not keys:
        raise ContextKeyMissing(
            f"{config.MERCATO_CONTEXT_KEY} is not set: every Mercato process needs the same "
            "secret key to sign and verify who is calling (make run generates one into "
            "var/; the Helm chart keeps it in a Secret)"
        )
    short = [index for index, key in enumerate(keys) if len(key) < MIN_CONTEXT_KEY_LENGTH]
    if short:
        raise ContextKeyMissing(
            f"{config.MERCATO_CONTEXT_KEY}: each key needs at least {MIN_CONTEXT_KEY_LENGTH} "
            f"random characters (key {short[0] + 1} is shorter)"
        )
    return tuple(key.encode() for key in keys)


def context_keys_from(settings: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The keys a process's config names (its config.yaml reads the environment), else
    the environment's own (a container started from a plain dict, in tests)."""
    raw = settings.get(config.MERCATO_CONTEXT_KEY) or os.environ.get(config.MERCATO_CONTEXT_KEY)
    return parse_context_keys(str(raw) if raw else None)


def _canonical(identity: Identity, expires: int) -> bytes:
    # a JSON list: unambiguous whatever the fields hold, and roles in a fixed order
    return json.dumps(
        [
            _SIGNATURE_VERSION,
            identity.account_id,
            identity.user_id,
            identity.account_type,
            sorted(identity.roles),
            identity.enterprise_project_id or "",
            identity.reseller_account_id or "",
            expires,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


class ContextSigner:
    """Signs an identity into context data and verifies the context a worker received.

    ``now`` reads the system clock (Unix seconds): the context's expiry guards the
    transport, not a business rule, so the test clock does not move it.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        ttl_seconds: int = CONTEXT_TTL_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ContextKeyMissing(f"{config.MERCATO_CONTEXT_KEY}: no key")
        self._keys = tuple(keys)
        self._ttl = int(ttl_seconds)
        self._now = now

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> ContextSigner:
        return cls(context_keys_from(settings))

    def _digest(self, key: bytes, identity: Identity, expires: int) -> str:
        return hmac.new(key, _canonical(identity, expires), hashlib.sha256).hexdigest()

    def sign(self, identity: Identity) -> dict[str, Any]:
        """``identity``'s context data, signed, valid for the next ``ttl_seconds``."""
        expires = int(self._now()) + self._ttl
        data = identity.to_context()
        data[CALLER_EXPIRES] = expires
        data[CALLER_SIGNATURE] = self._digest(self._keys[0], identity, expires)
        return data

    def verify(self, data: Mapping[str, Any]) -> Identity | None:
        """The caller ``data`` names, if its signature holds; None when it names no one
        (no identity key, no signature: an anonymous caller). ``Unauthenticated`` when
        it is unsigned, altered, malformed or expired; its ``code`` says which
        (``CONTEXT_UNSIGNED``, ``CONTEXT_ALTERED``, ``CONTEXT_MALFORMED``,
        ``CONTEXT_EXPIRED``)."""
        if not any(data.get(key) not in (None, "", []) for key in SIGNED_CONTEXT_KEYS):
            return None
        signature = data.get(CALLER_SIGNATURE)
        expires = data.get(CALLER_EXPIRES)
        if not isinstance(signature, str) or not signature:
            raise Unauthenticated("the caller context is not signed", code="CONTEXT_UNSIGNED")
        identity = _strict_identity(data)
        if identity is None or isinstance(expires, bool) or not isinstance(expires, int):
            raise Unauthenticated("the caller context is malformed", code="CONTEXT_MALFORMED")
        if not any(
            hmac.compare_digest(signature, self._digest(key, identity, expires))
            for key in self._keys
        ):
            raise Unauthenticated(
                "the caller context's signature does not match", code="CONTEXT_ALTERED"
            )
        if expires <= self._now():
            raise Unauthenticated("the caller context has expired", code="CONTEXT_EXPIRED")
        return identity


def _strict_identity(data: Mapping[str, Any]) -> Identity | None:
    """The identity ``data`` names, only if every field has the type signing gave it."""
    roles = data.get(ROLES)
    optional = (data.get(ENTERPRISE_PROJECT_ID), data.get(RESELLER_ACCOUNT_ID))
    if not all(isinstance(data.get(key), str) for key in (ACCOUNT_ID, USER_ID, ACCOUNT_TYPE)):
        return None
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        return None
    if not all(value is None or isinstance(value, str) for value in optional):
        return None
    return Identity.from_context(data)


class CallerContext:
    """What one worker knows about its caller. ``signer`` signs what ``act_as`` carries;
    without one (a test of the rules alone) ``act_as`` carries the identity unsigned."""

    def __init__(self, worker_ctx, signer: ContextSigner | None = None) -> None:
        self._worker_ctx = worker_ctx
        self._signer = signer

    @property
    def correlation_id(self) -> str:
        return ensure_correlation_id(self._worker_ctx)

    @property
    def request_key(self) -> str | None:
        """The request's downstream idempotency key (``REQUEST_KEY``), None without one."""
        key = self._worker_ctx.data.get(REQUEST_KEY)
        return str(key) if key else None

    @property
    def identity(self) -> Identity | None:
        return Identity.from_context(self._worker_ctx.data)

    def require(self) -> Identity:
        identity = self.identity
        if identity is None:
            raise Unauthenticated("this call needs an authenticated caller")
        return identity

    def require_role(self, *roles: str) -> Identity:
        """The caller, if it holds one of ``roles``; else Forbidden."""
        identity = self.require()
        if not identity.has_role(*roles):
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        return identity

    def require_account(self, owner_account_id: str, what: str = "resource") -> Identity:
        """The caller, if it owns the thing; else NotFound, so nothing leaks."""
        identity = self.require()
        if identity.account_id != owner_account_id and not identity.has_role(OPERATOR):
            raise NotFound(f"{what} not found")
        return identity

    def carry_request_key(self, key: str) -> None:
        """Carry ``key`` (``REQUEST_KEY``) on every RPC this worker sends from now on."""
        self._worker_ctx.data[REQUEST_KEY] = key

    def act_as(self, identity: Identity) -> None:
        """Carry ``identity``, signed, on every RPC this worker sends from now on."""
        for key in SIGNED_CONTEXT_KEYS:
            self._worker_ctx.data.pop(key, None)
        signed = self._signer.sign(identity) if self._signer else identity.to_context()
        self._worker_ctx.data.update(signed)


class Caller(DependencyProvider):
    """Injects a ``CallerContext``; makes sure every worker has a correlation id and a
    caller it may believe.

    Before the worker's method runs: an RPC whose caller context does not verify is
    refused (``Unauthenticated``, counted in ``mercato_caller_context_refused_total``);
    a timer or an event handler works as its own service (``service_identity``), signed,
    so the RPCs it makes carry a caller the callee can believe. A process without
    ``MERCATO_CONTEXT_KEY`` does not start.
    """

    def setup(self):
        self.signer = ContextSigner.from_config(self.container.config)

    def worker_setup(self, worker_ctx):
        ensure_correlation_id(worker_ctx)
        entrypoint = worker_ctx.entrypoint
        own_work = isinstance(entrypoint, (Timer, EventHandler))
        if own_work:
            # an event's headers say nothing we act on: events carry no identity
            for key in SIGNED_CONTEXT_KEYS:
                worker_ctx.data.pop(key, None)
            CallerContext(worker_ctx, self.signer).act_as(
                service_identity(self.container.service_name)
            )
            return
        try:
            self.signer.verify(worker_ctx.data)
        except Unauthenticated as refused:
            for key in SIGNED_CONTEXT_KEYS:
                worker_ctx.data.pop(key, None)
            CONTEXTS_REFUSED.labels(self.container.service_name, refused.code).inc()
            _log.warning(
                "refused %s.%s: %s",
                self.container.service_name,
                entrypoint.method_name,
                refused.message,
            )
            _refuse(worker_ctx, refused)

    def get_dependency(self, worker_ctx):
        return CallerContext(worker_ctx, self.signer)


def _refuse(worker_ctx, refused: Unauthenticated) -> None:
    """Make the worker answer ``refused`` instead of running its method.

    A dependency's ``worker_setup`` may not raise (nameko would stop the whole
    container), and nameko looks the method up on the worker's own service instance
    only after every ``worker_setup``: shadowing it there refuses this one call, through
    the entrypoint's usual error path, and runs nothing of the service's."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        # the reason's code stays in the log and the metric: the caller learns only this
        raise Unauthenticated(f"this call's caller could not be verified: {refused.message}")

    setattr(worker_ctx.service, worker_ctx.entrypoint.method_name, refuse)
