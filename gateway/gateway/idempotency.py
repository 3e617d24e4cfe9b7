"""``Idempotency-Key`` on POST: the same request twice does the work once.

A POST that carries ``Idempotency-Key: <key>``:

- first time: the gateway inserts an in-flight record for (scope, key) *before* doing
  the work, relying on the primary key, so of two requests racing with one key exactly
  one inserts and works (PostgreSQL and SQLite alike); the other answers 409 CONFLICT;
- after a 2xx: the record keeps the response; the same key with the same request gets
  it again (same status and body, header ``Idempotent-Replayed: true``), with no work;
- the same key with another request (method, path or body): 422 IDEMPOTENCY_KEY_REUSED;
- after a refusal (a 4xx: invalid, not allowed, a rule broken): the key is released. A
  refused request changed nothing, so the client may retry with the same key and the
  retry sees the present state (a 402 that a top-up has since cured goes through);
- after a failure that may have done the work (a 5xx: a service that did not answer in
  time, a broken connection, a bug; or a worker killed mid-request): the record stays,
  ``unknown``. The same key with the same request runs it again, and every RPC it makes
  carries the same downstream key (``downstream_key``, the context's ``request_key``),
  which the service kept with what the first attempt did: it answers that first result
  instead of doing the work twice;
- a 2xx whose response must not be stored (``Cache-Control: no-store``: a sign-in's
  token, a seller's interface secret) is not kept either: the record stays, ``unkept``,
  so the key still belongs to that request (another body is 422), and a retry runs it
  again: the service answers what is valid now (a new token; the same interface
  secret while it is the seller's, from the service's own keyring), never a copy of a
  secret that may since have been revoked or rotated;
- records live ``IDEMPOTENCY_TTL_HOURS`` after their request (then ``purge`` deletes
  them); an in-flight record whose replica died is taken over by a retry once its
  lease (``IDEMPOTENCY_LEASE_SECONDS``) has run out.

Scope: the caller's account (``account:<id>``); requests without a caller (sign-up,
sign-in) share the scope ``anonymous``.

Nothing secret is stored in the clear, though requests always hold secrets (passwords):

- ``fingerprint`` = HMAC-SHA256(IDEMPOTENCY_SECRET, label_1 | method | path | body);
- the response is encrypted with AES-256-GCM under
  HKDF-SHA256(HMAC-SHA256(IDEMPOTENCY_SECRET, label_2 | method | path | body)),
  bound to its scope, key and status, so only a replay carrying the very same body (the
  same password) can decrypt it, and a stolen database with no secret reveals neither.

The body is canonical JSON (sorted keys, no spaces), so key order and whitespace do not
make two requests different.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nameko.extensions import DependencyProvider
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from gateway.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, status_for
from gateway.models import COMPLETED, IN_FLIGHT, IdempotencyRecord
from gateway.settings import DEV_IDEMPOTENCY_SECRET, Settings
from mercato.clock import Clock, ContainerClock, SystemClock
from mercato.db import Database
from mercato.errors import ValidationError
from mercato.identity import Identity

_log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
ANONYMOUS_SCOPE = "anonymous"
MAX_KEY_LENGTH = 255
_KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, as a header value can carry safely

_FINGERPRINT_LABEL = b"mercato.gateway.idempotency.fingerprint.v1"
_RESPONSE_KEY_LABEL = b"mercato.gateway.idempotency.response-key.v1"
_HKDF_INFO = b"mercato.gateway.idempotency.aes-256-gcm.v1"
_SEALED_VERSION = b"\x01"
_NONCE_BYTES = 12
_CLAIM_ATTEMPTS = 3
# a record's states beside IN_FLIGHT and COMPLETED: its request ran, and its response
# is not kept, so a retry runs it again (the services answer their first result)
UNKNOWN = "unknown"  # it failed in a way that may have done the work (a 5xx)
UNKEPT = "unkept"  # it succeeded with a response that must not be stored (no-store)
RERUN = (UNKNOWN, UNKEPT)

IDEMPOTENCY = Counter(
    "mercato_gateway_idempotency_total",
    "POSTs with an Idempotency-Key by outcome: claimed, replayed, rerun, reused, in_flight, "
    "released, unknown, unkept",
    ["outcome"],
)


def canonical_request(method: str, path: str, body: Any) -> bytes:
    """The request as the fingerprint and the response key see it."""
    canonical_body = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # a lone surrogate (which JSON can carry, "\ud800") must not fail the request here:
    # kept as its code unit's bytes, the same request gives the same material
    return b"\x00".join([method.upper().encode(), _utf8(path), _utf8(canonical_body)])


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class Keyring:
    """Fingerprints requests and seals responses under IDEMPOTENCY_SECRET."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("IDEMPOTENCY_SECRET must not be empty")
        self._secret = secret.encode()

    def _mac(self, label: bytes, material: bytes) -> bytes:
        return hmac.new(self._secret, label + b"\x00" + material, hashlib.sha256).digest()

    def fingerprint(self, material: bytes) -> str:
        return self._mac(_FINGERPRINT_LABEL, material).hex()

    def _cipher(self, material: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
        return AESGCM(hkdf.derive(self._mac(_RESPONSE_KEY_LABEL, material)))

    def seal(self, material: bytes, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _SEALED_VERSION + nonce + self._cipher(material).encrypt(nonce, plaintext, context)

    def unseal(self, material: bytes, sealed: bytes, context: bytes) -> bytes:
        """The plaintext; ``InvalidTag`` for another request's material or a tampered row."""
        if not sealed.startswith(_SEALED_VERSION):
            raise InvalidTag("unknown sealed format")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        return self._cipher(material).decrypt(nonce, sealed[1 + _NONCE_BYTES :], context)


@dataclass(frozen=True)
class Claim:
    """This request holds the key: do the work, then ``complete``, ``settle`` or
    ``release``."""

    scope: str
    key: str
    lease: str
    material: bytes
    # the key's request ran before with no answer kept: this is its retry
    rerun: bool = False


@dataclass(frozen=True)
class Replay:
    """The key's request already completed: answer this again."""

    status: int
    content_type: str | None
    body: bytes

    def response(self) -> Response:
        return Response(
            self.body,
            status=self.status,
            content_type=self.content_type,
            headers={REPLAYED_HEADER: "true"},
        )


def _associated_data(scope: str, key: str, status: int, content_type: str | None) -> bytes:
    return b"\x00".join(
        [scope.encode(), key.encode(), str(status).encode(), (content_type or "").encode()]
    )


class IdempotencyStore:
    """The idempotency records of one database. Each method runs its own short
    transaction, apart from the request's work."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        keyring: Keyring,
        *,
        ttl: dt.timedelta,
        lease: dt.timedelta,
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._keyring = keyring
        self.ttl = ttl
        self.lease = lease
        self.clock: Clock = clock or SystemClock()

    def _record(self, scope: str, key: str) -> sa.ColumnElement[bool]:
        return sa.and_(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)

    def claim(self, scope: str, key: str, material: bytes) -> Claim | Replay:
        """Hold ``key`` for this request, or the first answer to replay; raises
        IdempotencyKeyReused (another request's key) or IdempotencyKeyInFlight."""
        fingerprint = self._keyring.fingerprint(material)
        for _attempt in range(_CLAIM_ATTEMPTS):
            claimed = self._insert(scope, key, fingerprint, material)
            if claimed is not None:
                return claimed
            outcome = self._existing(scope, key, fingerprint, material)
            if outcome is not None:
                return outcome
            # the record went away (released, expired) between the two: try again
        raise IdempotencyKeyInFlight(
            "another request with this Idempotency-Key is being handled; retry shortly"
        )

    def _insert(self, scope: str, key: str, fingerprint: str, material: bytes) -> Claim | None:
        now = self.clock.now()
        lease = uuid.uuid4().hex
        record = IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state=IN_FLIGHT,
            lease=lease,
            locked_until=now + self.lease,
            created_at=now,
            expires_at=now + self.ttl,
        )
        try:
            with self._sessions() as session, session.begin():
                session.add(record)
        except IntegrityError:
            return None
        return Claim(scope, key, lease, material)

    def _existing(
        self, scope: str, key: str, fingerprint: str, material: bytes
    ) -> Claim | Replay | None:
        now = self.clock.now()
        with self._sessions() as session, session.begin():
            record = session.get(IdempotencyRecord, (scope, key))
            if record is None:
                return None
            if record.expires_at <= now:
                session.execute(
                    sa.delete(IdempotencyRecord).where(
                        self._record(scope, key), IdempotencyRecord.expires_at <= now
                    )
                )
                return None
            if not hmac.compare_digest(record.fingerprint, fingerprint):
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with another request; use a new key"
                )
            if record.state == COMPLETED:
                return self._replay(record, material)
            if record.state == IN_FLIGHT and record.locked_until > now:
                raise IdempotencyKeyInFlight(
                    "the first request with this Idempotency-Key is still being handled; "
                    "retry shortly"
                )
            # ran before with no answer kept (unknown, unkept), or abandoned by a replica
            # that died mid-request: this retry runs it again, holding the key meanwhile
            lease = uuid.uuid4().hex
            taken = session.execute(
                sa.update(IdempotencyRecord)
                .where(
                    self._record(scope, key),
                    IdempotencyRecord.lease == record.lease,
                    IdempotencyRecord.state == record.state,
                )
                .values(state=IN_FLIGHT, lease=lease, locked_until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return Claim(scope, key, lease, material, rerun=True)

    def _replay(self, record: IdempotencyRecord, material: bytes) -> Replay:
        assert record.status_code is not None and record.response is not None
        context = _associated_data(
            record.scope, record.key, record.status_code, record.content_type
        )
        body = self._keyring.unseal(material, record.response, context)
        return Replay(record.status_code, record.content_type, body)

    def complete(self, claim: Claim, status: int, content_type: str | None, body: bytes) -> bool:
        """Keep the response for replays; False if the claim was lost meanwhile."""
        now = self.clock.now()
        context = _associated_data(claim.scope, claim.key, status, content_type)
        sealed = self._keyring.seal(claim.material, body, context)
        with self._sessions() as session, session.begin():
            result = session.execute(
                sa.update(IdempotencyRecord)
                .where(
                    self._record(claim.scope, claim.key),
                    IdempotencyRecord.lease == claim.lease,
                    IdempotencyRecord.state == IN_FLIGHT,
                )
                .values(
                    state=COMPLETED,
                    status_code=status,
                    content_type=content_type,
                    response=sealed,
                    expires_at=now + self.ttl,
                )
                .execution_options(synchronize_session=False)
            )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def settle(self, claim: Claim, state: str) -> bool:
        """Keep the key for its request without its response (``UNKNOWN``, ``UNKEPT``):
        a retry with the same request may run it again at once; False if the claim was
        lost meanwhile."""
        assert state in RERUN
        now = self.clock.now()
        with self._sessions() as session, session.begin():
            result = session.execute(
                sa.update(IdempotencyRecord)
                .where(
                    self._record(claim.scope, claim.key),
                    IdempotencyRecord.lease == claim.lease,
                    IdempotencyRecord.state == IN_FLIGHT,
                )
                .values(
                    state=state,
                    locked_until=now,
                    status_code=None,
                    content_type=None,
                    response=None,
                    expires_at=now + self.ttl,
                )
                .execution_options(synchronize_session=False)
            )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def release(self, claim: Claim) -> None:
        """Forget the key: the request changed nothing, a retry may do it afresh."""
        with self._sessions() as session, session.begin():
            session.execute(
                sa.delete(IdempotencyRecord).where(
                    self._record(claim.scope, claim.key),
                    IdempotencyRecord.lease == claim.lease,
                    IdempotencyRecord.state == IN_FLIGHT,
                )
            )

    def purge(self) -> int:
        """Delete expired records. Safe with any number of replicas at once: each
        deletes what is expired, a row another already deleted is simply not there."""
        with self._sessions() as session, session.begin():
            result = session.execute(
                sa.delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= self.clock.now())
            )
        return int(result.rowcount)  # type: ignore[attr-defined]


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; a malformed one is a 400."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not _KEY.match(key):
        raise ValidationError(
            f"the {IDEMPOTENCY_KEY_HEADER} header must be 1 to {MAX_KEY_LENGTH} visible ASCII "
            "characters",
            {IDEMPOTENCY_KEY_HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."]},
        )
    return key


def downstream_key(request: Request) -> str | None:
    """The request's Idempotency-Key as a service may keep it (the SHA-256 of the key,
    64 hex characters, whatever the key's length); None without one. A service that
    moves money remembers it per account, so that a retry after the gateway forgot the
    key (past its TTL, or a record lost in a crash) still does the work once."""
    key = idempotency_key(request)
    return None if key is None else hashlib.sha256(key.encode()).hexdigest()


def scope_of(worker_data: dict[str, Any]) -> str:
    identity = Identity.from_context(worker_data)
    return f"account:{identity.account_id}" if identity else ANONYMOUS_SCOPE


def _is_success(status: int) -> bool:
    return 200 <= status < 300


def _changed_nothing(status: int | None) -> bool:
    """A refusal (4xx): the request was invalid, not allowed or broke a rule, and a
    refused request changes nothing. Anything else (a 5xx, an unmapped error, a worker
    killed mid-request) may have done the work somewhere downstream."""
    return status is not None and 400 <= status < 500


def _must_not_be_stored(response: Response) -> bool:
    return "no-store" in response.cache_control


class IdempotentRequests:
    """One worker's access to the store: ``once(request, body, work)``."""

    def __init__(self, store: IdempotencyStore, worker_ctx) -> None:
        self._store = store
        self._worker_ctx = worker_ctx

    def once(self, request: Request, body: Any, work: Callable[[], Response]) -> Response:
        """``work()``'s response, or the first one again if this key already has it.

        Call it after authentication (the scope is the caller's account) and after
        validation (a request that fails validation holds no key). What ``work`` ends
        with decides what the key keeps: a 2xx its response (or nothing, for a
        no-store one), a refusal (4xx) nothing at all, anything else the key alone
        (``UNKNOWN``), so that the retry runs again with the same downstream key."""
        key = idempotency_key(request)
        if key is None:
            return work()
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        material = canonical_request(request.method, path, body)
        try:
            outcome = self._store.claim(scope_of(self._worker_ctx.data), key, material)
        except IdempotencyKeyReused:
            IDEMPOTENCY.labels("reused").inc()
            raise
        except IdempotencyKeyInFlight:
            IDEMPOTENCY.labels("in_flight").inc()
            raise
        if isinstance(outcome, Replay):
            IDEMPOTENCY.labels("replayed").inc()
            return outcome.response()
        IDEMPOTENCY.labels("rerun" if outcome.rerun else "claimed").inc()
        try:
            response = work()
        except BaseException as exc:
            if _changed_nothing(status_for(exc)):
                self._release(outcome)
            else:
                self._settle(outcome, UNKNOWN)
            raise
        if _is_success(response.status_code):
            if _must_not_be_stored(response):
                self._settle(outcome, UNKEPT)
            else:
                self._complete(outcome, response)
        elif _changed_nothing(response.status_code):
            self._release(outcome)
        else:
            self._settle(outcome, UNKNOWN)
        return response

    def _complete(self, claim: Claim, response: Response) -> None:
        try:
            kept = self._store.complete(
                claim, response.status_code, response.content_type, response.get_data()
            )
        except Exception:
            # the work is done: answer it; a retry after the lease may do it again
            _log.exception("could not keep the response of Idempotency-Key %s", claim.key)
            return
        if not kept:
            _log.warning("Idempotency-Key %s was taken over before its request ended", claim.key)

    def _settle(self, claim: Claim, state: str) -> None:
        IDEMPOTENCY.labels(state).inc()
        try:
            kept = self._store.settle(claim, state)
        except Exception:
            # the claim stays in flight until its lease runs out; then a retry takes it over
            _log.exception("could not keep Idempotency-Key %s as %s", claim.key, state)
            return
        if not kept:
            _log.warning("Idempotency-Key %s was taken over before its request ended", claim.key)

    def _release(self, claim: Claim) -> None:
        IDEMPOTENCY.labels("released").inc()
        try:
            self._store.release(claim)
        except Exception:
            # the claim stays until its lease runs out; then a retry takes it over
            _log.exception("could not release Idempotency-Key %s", claim.key)

    def purge(self) -> int:
        return self._store.purge()


class Idempotency(DependencyProvider):
    """The idempotency store of the service's ``Database``; injects
    ``IdempotentRequests`` per worker."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        if settings.idempotency_secret == DEV_IDEMPOTENCY_SECRET:
            _log.warning(
                "IDEMPOTENCY_SECRET is the development default: set GATEWAY_IDEMPOTENCY_SECRET "
                "to a long random secret in production"
            )
        databases = [d for d in self.container.dependencies if isinstance(d, Database)]
        if len(databases) != 1:
            raise RuntimeError("Idempotency needs exactly one Database dependency beside it")
        database = databases[0]
        self.store = IdempotencyStore(
            lambda: database.sessionmaker(),
            Keyring(settings.idempotency_secret),
            ttl=settings.idempotency_ttl,
            lease=settings.idempotency_lease,
            # the service's clock: a record expires by the test clock when it runs
            clock=ContainerClock(self.container),
        )

    def get_dependency(self, worker_ctx):
        return IdempotentRequests(self.store, worker_ctx)
