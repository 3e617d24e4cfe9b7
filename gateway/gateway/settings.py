"""The gateway's own configuration keys, read from its config.yaml in one place.

Every extension that needs a value builds ``Settings.from_config(container.config)``
in its ``setup()``; entrypoints read them through the ``settings`` dependency.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko.extensions import DependencyProvider

# config keys (names, not values)
MAX_BODY_BYTES = "MAX_BODY_BYTES"
TOKEN_CACHE_SECONDS = "TOKEN_CACHE_SECONDS"  # noqa: S105
IDEMPOTENCY_SECRET = "IDEMPOTENCY_SECRET"  # noqa: S105
IDEMPOTENCY_TTL_HOURS = "IDEMPOTENCY_TTL_HOURS"
IDEMPOTENCY_LEASE_SECONDS = "IDEMPOTENCY_LEASE_SECONDS"
UPLOAD_SPOOL_DIR = "UPLOAD_SPOOL_DIR"
SIGN_IN_LIMIT_PER_EMAIL = "SIGN_IN_LIMIT_PER_EMAIL"
SIGN_IN_LIMIT_PER_ADDRESS = "SIGN_IN_LIMIT_PER_ADDRESS"
SIGN_UP_LIMIT_PER_EMAIL = "SIGN_UP_LIMIT_PER_EMAIL"
SIGN_UP_LIMIT_PER_ADDRESS = "SIGN_UP_LIMIT_PER_ADDRESS"
TRUSTED_PROXIES = "TRUSTED_PROXIES"

# the value config.yaml falls back to: fine on a laptop, refused nowhere, logged loudly
DEV_IDEMPOTENCY_SECRET = "dev-only-idempotency-secret-change-me"  # noqa: S105


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` in each fixed window of ``seconds``."""

    attempts: int
    seconds: int

    @classmethod
    def parse(cls, key: str, value: str) -> Limit | None:
        """``"10/60"`` (10 attempts a minute); ``off``: no limit."""
        text = value.strip().lower()
        if text == "off":
            return None
        attempts, _, seconds = text.partition("/")
        try:
            limit = cls(int(attempts), int(seconds))
        except ValueError:
            limit = None
        if limit is None or limit.attempts < 1 or limit.seconds < 1:
            raise ValueError(f"{key} must be ATTEMPTS/SECONDS (10/60) or off, not {value!r}")
        return limit


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 65536
    token_cache_seconds: float = 5.0
    idempotency_secret: str = DEV_IDEMPOTENCY_SECRET
    idempotency_ttl: dt.timedelta = dt.timedelta(hours=24)
    idempotency_lease: dt.timedelta = dt.timedelta(seconds=60)
    # where uploads are spooled while they arrive; None: the system's temporary folder
    upload_spool_dir: str | None = None
    # sign-in and sign-up attempts (gateway.ratelimits); None: no limit
    sign_in_per_email: Limit | None = Limit(10, 60)
    sign_in_per_address: Limit | None = Limit(100, 60)
    sign_up_per_email: Limit | None = Limit(10, 3600)
    sign_up_per_address: Limit | None = Limit(300, 3600)
    # proxies whose X-Forwarded-For names the client (none: the peer is the client)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=tuple
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        defaults = cls()

        def number(key: str, default: float) -> float:
            value = config.get(key)
            return default if value in (None, "") else float(value)

        def limit(key: str, default: Limit | None) -> Limit | None:
            value = config.get(key)
            return default if value in (None, "") else Limit.parse(key, str(value))

        secret = config.get(IDEMPOTENCY_SECRET)
        spool = config.get(UPLOAD_SPOOL_DIR)
        return cls(
            max_body_bytes=int(number(MAX_BODY_BYTES, defaults.max_body_bytes)),
            token_cache_seconds=number(TOKEN_CACHE_SECONDS, defaults.token_cache_seconds),
            idempotency_secret=str(secret) if secret else defaults.idempotency_secret,
            idempotency_ttl=dt.timedelta(
                hours=number(IDEMPOTENCY_TTL_HOURS, defaults.idempotency_ttl.total_seconds() / 3600)
            ),
            idempotency_lease=dt.timedelta(
                seconds=number(
                    IDEMPOTENCY_LEASE_SECONDS, defaults.idempotency_lease.total_seconds()
                )
            ),
            upload_spool_dir=str(spool) if spool else None,
            sign_in_per_email=limit(SIGN_IN_LIMIT_PER_EMAIL, defaults.sign_in_per_email),
            sign_in_per_address=limit(SIGN_IN_LIMIT_PER_ADDRESS, defaults.sign_in_per_address),
            sign_up_per_email=limit(SIGN_UP_LIMIT_PER_EMAIL, defaults.sign_up_per_email),
            sign_up_per_address=limit(SIGN_UP_LIMIT_PER_ADDRESS, defaults.sign_up_per_address),
            trusted_proxies=trusted_networks(str(config.get(TRUSTED_PROXIES) or "")),
        )


def trusted_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7"``: the networks (a lone address is one) of the proxies
    trusted to say who their client is."""
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{TRUSTED_PROXIES} lists addresses or networks (10.0.0.0/8), not {item!r}"
            ) from None
    return tuple(networks)


class SettingsProvider(DependencyProvider):
    """Injects the container's ``Settings``."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings
