"""The gateway's own configuration keys, read from its config.yaml in one place.

Every extension that needs a value builds ``Settings.from_config(container.config)``
in its ``setup()``; entrypoints read them through the ``settings`` dependency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nameko.extensions import DependencyProvider

# config keys (names, not values)
MAX_BODY_BYTES = "MAX_BODY_BYTES"
TOKEN_CACHE_SECONDS = "TOKEN_CACHE_SECONDS"  # noqa: S105
IDEMPOTENCY_SECRET = "IDEMPOTENCY_SECRET"  # noqa: S105
IDEMPOTENCY_TTL_HOURS = "IDEMPOTENCY_TTL_HOURS"
IDEMPOTENCY_LEASE_SECONDS = "IDEMPOTENCY_LEASE_SECONDS"
UPLOAD_SPOOL_DIR = "UPLOAD_SPOOL_DIR"

# the value config.yaml falls back to: fine on a laptop, refused nowhere, logged loudly
DEV_IDEMPOTENCY_SECRET = "dev-only-idempotency-secret-change-me"  # noqa: S105


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 65536
    token_cache_seconds: float = 5.0
    idempotency_secret: str = DEV_IDEMPOTENCY_SECRET
    idempotency_ttl: dt.timedelta = dt.timedelta(hours=24)
    idempotency_lease: dt.timedelta = dt.timedelta(seconds=60)
    # where uploads are spooled while they arrive; None: the system's temporary folder
    upload_spool_dir: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        defaults = cls()

        def number(key: str, default: float) -> float:
            value = config.get(key)
            return default if value in (None, "") else float(value)

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
        )


class SettingsProvider(DependencyProvider):
    """Injects the container's ``Settings``."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings
