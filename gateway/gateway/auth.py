"""Bearer authentication: who is asking, asked of iam-agency, remembered for a moment.

Every authenticated request names a token (``Authorization: Bearer <token>``);
iam-agency's ``authenticate`` says whose it is. The answer becomes the worker's
``Identity`` (``caller.act_as``), signed with ``MERCATO_CONTEXT_KEY`` and valid for a
few minutes (``mercato.identity``), so every RPC the request makes downstream carries
the caller in its context data and every service can tell it from a forgery.

Asking iam-agency on every request would double the load on it, so a validated token
is kept in this process (a ``mercato.cache.TimedCache``) for ``TOKEN_CACHE_SECONDS``
(default 5), keyed by the token's
SHA-256 (the token itself is never held), never past the token's own expiry, at most
``MAX_CACHED_TOKENS`` of them. The price: a token revoked through another replica (or
straight at iam-agency) keeps working here for up to ``TOKEN_CACHE_SECONDS``. Signing
out through this replica forgets it at once. ``TOKEN_CACHE_SECONDS: 0`` turns the cache off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Counter
from werkzeug.wrappers import Request

from gateway.settings import Settings
from mercato.cache import TimedCache
from mercato.clock import Clock, ContainerClock
from mercato.contracts.iam_agency import AuthenticatedResponse
from mercato.errors import Forbidden, Unauthenticated
from mercato.identity import CallerContext, ContextSigner, Identity

MAX_CACHED_TOKENS = 10_000

TOKEN_CACHE = Counter(
    "mercato_gateway_token_cache_total",
    "Bearer tokens found in the gateway's cache (hit) or asked of iam-agency (miss)",
    ["outcome"],
)

# validated tokens by their SHA-256: who each belongs to
TokenCache = TimedCache[str, Identity]


def token_key(token: str) -> str:
    """What the cache keeps a token under: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def identity_from(answer: dict[str, Any]) -> tuple[Identity, dt.datetime | None]:
    """The caller and its token's expiry. An answer that breaks the schema is
    iam-agency's bug, not the client's: it fails the request with a 500."""
    data = AuthenticatedResponse().load(answer)
    expires_at = data.pop("expires_at")
    # the answer's keys are the context data keys: Identity takes what it knows of them
    identity = Identity.from_context({k: v for k, v in data.items() if v is not None})
    if identity is None:
        raise ValueError("iam-agency authenticated a token without an account or user")
    return identity, expires_at


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; Unauthenticated without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not header:
        raise Unauthenticated("this needs a bearer token: Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("the Authorization header must be: Bearer <token>")
    return token


class Authenticator:
    """What one worker uses to learn and carry who is asking."""

    def __init__(self, cache: TokenCache, caller: CallerContext, clock: Clock) -> None:
        self._cache = cache
        self._caller = caller
        self._clock = clock

    def authenticate(self, request: Request, iam, *roles: str) -> str:
        """Make the bearer of the request's token this worker's caller; with ``roles``,
        require one of them (else Forbidden). Returns the token."""
        token = bearer_token(request)
        key = token_key(token)
        identity = self._cache.get(key)
        TOKEN_CACHE.labels("hit" if identity is not None else "miss").inc()
        if identity is None:
            identity, expires_at = identity_from(iam.authenticate(token))
            # never kept past the token's own expiry
            left = None if expires_at is None else (expires_at - self._clock.now()).total_seconds()
            self._cache.put(key, identity, at_most_seconds=left)
        self._caller.act_as(identity)
        if roles and not identity.has_role(*roles):
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        return token

    def authenticate_if_present(self, request: Request, iam) -> str | None:
        """For a route anyone may call: anonymous without an Authorization header;
        with one, the same as ``authenticate`` (a bad token is still 401, not ignored)."""
        if "Authorization" not in request.headers:
            return None
        return self.authenticate(request, iam)

    def sign_out(self, token: str, iam) -> None:
        """Revoke the token at iam-agency and forget it here at once."""
        try:
            iam.revoke_token(token)
        finally:
            self._cache.forget(token_key(token))


class Authentication(DependencyProvider):
    """Holds the process's token cache and the caller context's signer; injects an
    ``Authenticator`` per worker."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.cache: TokenCache = TimedCache(
            settings.token_cache_seconds, max_entries=MAX_CACHED_TOKENS
        )
        self.clock: Clock = ContainerClock(self.container)
        self.signer = ContextSigner.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return Authenticator(self.cache, CallerContext(worker_ctx, self.signer), self.clock)
