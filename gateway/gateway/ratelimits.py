"""Limits on sign-in and sign-up: per email and per client address, shared by replicas.

Each attempt at ``POST /v1/auth/tokens`` (sign-in) or ``POST /v1/accounts`` (sign-up)
counts against two buckets: its email (normalised as iam-agency does: trimmed, lower
case; kept as its SHA-256) and its client's address. A limit is ``ATTEMPTS/SECONDS``
in fixed windows (``SIGN_IN_LIMIT_PER_EMAIL: 10/60`` lets 10 attempts through in each
minute of the clock); the attempt past it answers 429 ``RATE_LIMITED`` with
``Retry-After``, the seconds left in the window, and changes nothing (no service is
asked). Every attempt counts, whatever its answer: each one costs iam-agency an
Argon2 hash, which is what a flood is after. A limit of ``off`` counts nothing.

The counters are rows of the gateway's database (``RateLimitWindow``), one per bucket
and window, incremented with one upsert, so every replica counts the same attempts.
They follow the service's clock (the test clock moves them) and the purge timer
deletes the windows that ended.

The client's address is the connection's peer, unless the peer is a trusted proxy
(``TRUSTED_PROXIES``: addresses or networks, e.g. the ingress controllers' pod
network): then ``X-Forwarded-For`` is read from the right, past the trusted proxies,
and the first address that is not one is the client. A proxy that is not trusted
cannot choose the address it is counted under. An IPv6 client counts by its /64, the
block one host usually holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request

from gateway.models import RateLimitWindow
from gateway.settings import Limit, Settings
from mercato.clock import Clock, ContainerClock, SystemClock
from mercato.db import Database
from mercato.errors import RateLimited, ServiceUnavailable

_log = logging.getLogger(__name__)

SIGN_IN = "sign_in"
SIGN_UP = "sign_up"
KINDS = (SIGN_IN, SIGN_UP)
FORWARDED_FOR = "X-Forwarded-For"
IPV6_CLIENT_PREFIX = 64

RATE_LIMITED = Counter(
    "mercato_gateway_rate_limited_total",
    "Sign-in and sign-up attempts refused with 429, by limit and what it counts (email, address)",
    ["limit", "per"],
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Bucket:
    """What one attempt counts against: ``sign_in:email:<digest>`` under its limit."""

    name: str
    per: str  # email or address
    limit: Limit


def email_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """Whom the request counts as (see the module's docstring): an address, or an IPv6
    client's /64."""
    peer = _address(request.remote_addr or "")
    if peer is None:
        return request.remote_addr or "unknown"
    client = peer
    if _is_trusted(peer, trusted):
        hops = [
            hop
            for header in request.headers.getlist(FORWARDED_FOR)
            for hop in header.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:  # garbage: the last proxy that spoke sanely is the client
                break
            client = address
            if not _is_trusted(address, trusted):
                break
    if isinstance(client, ipaddress.IPv6Address):
        if client.ipv4_mapped is not None:
            return str(client.ipv4_mapped)
        return str(ipaddress.ip_network(f"{client}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(client)


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]
) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


class RateLimitStore:
    """The counters of one database; each call is one short transaction of its own."""

    def __init__(self, sessions: Callable[[], Session], clock: Clock | None = None) -> None:
        self._sessions = sessions
        self.clock: Clock = clock or SystemClock()

    def hit(self, buckets: Sequence[Bucket]) -> list[tuple[Bucket, float]]:
        """Count one attempt in each bucket; answers the buckets now over their limit,
        each with the seconds left in its window."""
        now = self.clock.now()
        epoch = now.timestamp()
        over = []
        with self._sessions() as session, session.begin():
            insert = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            # always in one order, so two attempts sharing buckets never wait on each other
            for bucket in sorted(buckets, key=lambda b: b.name):
                seconds = bucket.limit.seconds
                start = dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)
                end = start + dt.timedelta(seconds=seconds)
                statement = (
                    insert(RateLimitWindow)
                    .values(bucket=bucket.name, window_start=start, hits=1, expires_at=end)
                    .on_conflict_do_update(
                        index_elements=["bucket", "window_start"],
                        set_={"hits": RateLimitWindow.__table__.c.hits + 1},
                    )
                    .returning(RateLimitWindow.__table__.c.hits)
                )
                hits = session.execute(statement).scalar_one()
                if hits > bucket.limit.attempts:
                    over.append((bucket, (end - now).total_seconds()))
        return over

    def purge(self) -> int:
        """Delete the windows that ended (safe on every replica at once)."""
        with self._sessions() as session, session.begin():
            result = session.execute(
                sa.delete(RateLimitWindow).where(RateLimitWindow.expires_at <= self.clock.now())
            )
        return int(result.rowcount)  # type: ignore[attr-defined]


class RateLimiter:
    """One worker's access to the limits: ``check(kind, request, payload)``."""

    def __init__(self, store: RateLimitStore, settings: Settings) -> None:
        self._store = store
        self._limits = {
            SIGN_IN: {"email": settings.sign_in_per_email, "address": settings.sign_in_per_address},
            SIGN_UP: {"email": settings.sign_up_per_email, "address": settings.sign_up_per_address},
        }
        self._trusted = settings.trusted_proxies

    def check(self, kind: str, request: Request, payload: dict[str, Any]) -> None:
        """Count this attempt; RateLimited (429, Retry-After) when it is one too many."""
        whom = {
            "email": email_digest(str(payload.get("email", ""))),
            "address": client_address(request, self._trusted),
        }
        buckets = [
            Bucket(f"{kind}:{per}:{whom[per]}", per, limit)
            for per, limit in self._limits[kind].items()
            if limit is not None
        ]
        if not buckets:
            return
        try:
            over = self._store.hit(buckets)
        except SQLAlchemyError as exc:
            # without its counters the gateway cannot tell a flood from a user: refuse
            _log.error("the rate limits' counters did not answer: %s", type(exc).__name__)
            raise ServiceUnavailable("this cannot be checked just now; retry shortly") from None
        if not over:
            return
        for bucket, _left in over:
            RATE_LIMITED.labels(kind, bucket.per).inc()
        bucket, left = max(over, key=lambda item: item[1])
        what = "sign-ins" if kind == SIGN_IN else "sign-ups"
        raise RateLimited(
            f"too many {what} for this {bucket.per}: at most {bucket.limit.attempts} in "
            f"{bucket.limit.seconds} s; retry after {math.ceil(left)} s",
            retry_after=math.ceil(left),
        )

    def purge(self) -> int:
        return self._store.purge()


class RateLimits(DependencyProvider):
    """The counters in the service's ``Database``; injects a ``RateLimiter`` per worker."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)
        databases = [d for d in self.container.dependencies if isinstance(d, Database)]
        if len(databases) != 1:
            raise RuntimeError("RateLimits needs exactly one Database dependency beside it")
        database = databases[0]
        self.store = RateLimitStore(
            lambda: database.sessionmaker(), clock=ContainerClock(self.container)
        )

    def get_dependency(self, worker_ctx):
        return RateLimiter(self.store, self.settings)
