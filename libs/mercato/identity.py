"""Who is asking: the caller's identity and correlation id, carried in nameko context data.

The gateway authenticates a request and writes the identity into its worker's context
data; nameko copies context data into the headers of every RPC and event it sends, so
each service downstream sees the same caller and the same correlation id.
``Caller`` is the dependency services use to read it and to require a role or ownership.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko.extensions import DependencyProvider

from mercato.errors import Forbidden, NotFound, Unauthenticated

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

IDENTITY_KEYS = (
    ACCOUNT_ID,
    ACCOUNT_TYPE,
    USER_ID,
    ROLES,
    ENTERPRISE_PROJECT_ID,
    RESELLER_ACCOUNT_ID,
)

BUYER, SELLER, RESELLER, OPERATOR = "buyer", "seller", "reseller", "operator"
ACCOUNT_TYPES = (BUYER, SELLER, RESELLER, OPERATOR)


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


class CallerContext:
    """What one worker knows about its caller."""

    def __init__(self, worker_ctx) -> None:
        self._worker_ctx = worker_ctx

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
        """Carry ``identity`` on every RPC and event this worker sends from now on."""
        for key in IDENTITY_KEYS:
            self._worker_ctx.data.pop(key, None)
        self._worker_ctx.data.update(identity.to_context())


class Caller(DependencyProvider):
    """Injects a ``CallerContext``; makes sure every worker has a correlation id."""

    def worker_setup(self, worker_ctx):
        ensure_correlation_id(worker_ctx)

    def get_dependency(self, worker_ctx):
        return CallerContext(worker_ctx)
