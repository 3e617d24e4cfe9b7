"""iam-agency's cloud settings, read once from the service's config (config.yaml, where
each can be set from the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iam_agency import policies
from iam_agency.cloud import CloudSettings, Keys

CLOUD_ENDPOINT = "CLOUD_ENDPOINT"
CLOUD_REGION = "CLOUD_REGION"
CLOUD_TIMEOUT_SECONDS = "CLOUD_TIMEOUT_SECONDS"
MERCATO_CLOUD_DOMAIN_ID = "MERCATO_CLOUD_DOMAIN_ID"
MERCATO_CLOUD_DOMAIN_NAME = "MERCATO_CLOUD_DOMAIN_NAME"
MERCATO_CLOUD_ACCESS_KEY = "MERCATO_CLOUD_ACCESS_KEY"
MERCATO_CLOUD_SECRET_KEY = "MERCATO_CLOUD_SECRET_KEY"  # noqa: S105 - a config key
AGENCY_CHECK_SECONDS = "AGENCY_CHECK_SECONDS"
AGENCY_CHECK_LEASE_SECONDS = "AGENCY_CHECK_LEASE_SECONDS"
AGENCY_POLICY_VERSION = "AGENCY_POLICY_VERSION"
AGENCY_CREDENTIALS_SECONDS = "AGENCY_CREDENTIALS_SECONDS"
# how often the timer looks for accounts whose check is due
AGENCY_CHECK_SWEEP_SECONDS = "AGENCY_CHECK_SWEEP_SECONDS"

DEFAULT_ENDPOINT = "http://127.0.0.1:8400"
# the cloud's limits on temporary credentials of an agency
MIN_CREDENTIALS_SECONDS, MAX_CREDENTIALS_SECONDS = 900, 43200


@dataclass(frozen=True)
class Settings:
    cloud: CloudSettings
    # an authorised account's agencies are checked in the cloud this often
    check_seconds: int = 3600
    # a replica holds an account it checks this long (then another may take it over)
    check_lease_seconds: int = 300
    # the policy version Mercato asks buyers to grant
    policy_version: int = policies.LATEST_VERSION
    # the lifetime asked for the temporary credentials of mkp_agency_trust
    credentials_seconds: int = 3600
    # cached credentials are handed out until this long before they expire
    credentials_margin_seconds: int = 120

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        access_key = str(config.get(MERCATO_CLOUD_ACCESS_KEY) or "")
        secret_key = str(config.get(MERCATO_CLOUD_SECRET_KEY) or "")
        cloud = CloudSettings(
            endpoint=str(config.get(CLOUD_ENDPOINT) or DEFAULT_ENDPOINT).rstrip("/"),
            region=str(config.get(CLOUD_REGION) or ""),
            domain_id=str(config.get(MERCATO_CLOUD_DOMAIN_ID) or ""),
            domain_name=str(config.get(MERCATO_CLOUD_DOMAIN_NAME) or ""),
            keys=Keys(access_key, secret_key) if access_key and secret_key else None,
            timeout_seconds=float(config.get(CLOUD_TIMEOUT_SECONDS) or 30),
        )
        version = config.get(AGENCY_POLICY_VERSION)
        settings = cls(
            cloud=cloud,
            check_seconds=int(config.get(AGENCY_CHECK_SECONDS) or 3600),
            check_lease_seconds=int(config.get(AGENCY_CHECK_LEASE_SECONDS) or 300),
            policy_version=int(version)
            if version not in (None, "", "latest")
            else (policies.LATEST_VERSION),
            credentials_seconds=int(config.get(AGENCY_CREDENTIALS_SECONDS) or 3600),
        )
        if settings.policy_version not in policies.policy_versions():
            known = ", ".join(str(v) for v in policies.policy_versions())
            raise ValueError(f"{AGENCY_POLICY_VERSION} must be one of {known} (or empty: latest)")
        if not MIN_CREDENTIALS_SECONDS <= settings.credentials_seconds <= MAX_CREDENTIALS_SECONDS:
            raise ValueError(
                f"{AGENCY_CREDENTIALS_SECONDS} must be {MIN_CREDENTIALS_SECONDS} to "
                f"{MAX_CREDENTIALS_SECONDS}"
            )
        if settings.check_seconds < 1 or settings.check_lease_seconds < 1:
            raise ValueError(f"{AGENCY_CHECK_SECONDS} and the lease must be positive")
        return settings
