"""Rules of accounts and credentials, and of the agencies buyers authorise. No nameko,
no SQL.

Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 low-memory profile:
3 passes over 64 MiB). The hash runs in a real OS thread (eventlet's tpool) so that a
sign-in does not stall the other green threads of the process for its ~50 ms. At most
``PASSWORD_HASHING.slots`` hashes run at once in a process; one that cannot start
within ``PASSWORD_HASHING.wait_seconds`` is refused (RateLimited, retry in a second),
so a flood of sign-ins or sign-ups queues a bounded amount of work (64 MiB a hash)
instead of all of it.

API tokens are 256 random bits; the database keeps only their SHA-256 digest, which is
enough for a secret that is never chosen by a person.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool
from eventlet.semaphore import Semaphore

from mercato.domain import StateMachine
from mercato.errors import BusinessRuleViolation, RateLimited
from mercato.identity import BUYER, OPERATOR, RESELLER, SELLER

TOKEN_PREFIX = "mkt_"  # noqa: S105 - a prefix, not a secret
DEFAULT_PROJECT_ID = "default"

ROLES_BY_ACCOUNT_TYPE = {
    BUYER: [BUYER],
    SELLER: [SELLER],
    RESELLER: [RESELLER],
    OPERATOR: [OPERATOR],
}

_hasher = PasswordHasher()
# verified when an email is unknown, so a wrong email costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class HashingSlots:
    """At most ``slots`` Argon2 computations at once; a caller waits ``wait_seconds`` at
    most for one, then is refused with RateLimited (Retry-After: 1)."""

    def __init__(self, slots: int = 4, wait_seconds: float = 2.0) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = Semaphore(slots)

    def run(self, work, *args):
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            raise RateLimited(
                "too many sign-ins and sign-ups are being checked just now; retry shortly",
                retry_after=1,
            )
        try:
            return tpool.execute(work, *args)
        finally:
            self._semaphore.release()


PASSWORD_HASHING = HashingSlots()


def hash_password(password: str) -> str:
    return PASSWORD_HASHING.run(_hasher.hash, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return bool(
            PASSWORD_HASHING.run(_hasher.verify, password_hash or _DUMMY_HASH, password)
        ) and (password_hash is not None)
    except (VerificationError, InvalidHashError):
        return False


# -- enterprise projects (guide section 2.3) ---------------------------------------
# Every account has ``default`` (commercial, never disabled); a buyer adds others and
# disables or enables them. Disabling a disabled project, or enabling an enabled one,
# is no change and announces nothing.

COMMERCIAL = "commercial"
TEST = "test"
PROJECT_ENABLED = "enabled"
PROJECT_DISABLED = "disabled"
DEFAULT_PROJECT_REQUIRED = "DEFAULT_PROJECT_REQUIRED"
PROJECT_ID_PREFIX = "eps"

ENTERPRISE_PROJECT = StateMachine(
    "enterprise project",
    {
        "disable": ((PROJECT_ENABLED,), PROJECT_DISABLED),
        "enable": ((PROJECT_DISABLED,), PROJECT_ENABLED),
    },
)


def project_status_after(move: str, project_id: str, status: str) -> str | None:
    """The status ``move`` (``disable`` or ``enable``) gives the project, or None when it
    is in that status already. ``default`` may not be disabled: orders that name no
    other project, and every pay-per-use order, are accounted to it."""
    if move == "disable" and project_id == DEFAULT_PROJECT_ID:
        raise BusinessRuleViolation(
            "the default enterprise project cannot be disabled", code=DEFAULT_PROJECT_REQUIRED
        )
    if not ENTERPRISE_PROJECT.allows(move, status):
        return None
    return ENTERPRISE_PROJECT.move(move, status)


# -- the account's time zone ------------------------------------------------

DEFAULT_TIME_ZONE = "UTC"


def time_zone_changes(current: str | None, wanted: str) -> bool:
    """Whether choosing ``wanted`` changes the account's zone (an account without one is
    in UTC): the same zone again is no change, and announces nothing."""
    return (current or DEFAULT_TIME_ZONE) != wanted


def normalise_email(email: str) -> str:
    return email.strip().lower()


def new_token() -> tuple[str, str]:
    """A new bearer token and the digest to store."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 < len(token) < 100


def token_is_live(
    expires_at: dt.datetime, revoked_at: dt.datetime | None, now: dt.datetime
) -> bool:
    return revoked_at is None and now < expires_at


# -- agencies -------------------------------------------------------------------------
# An agency's stored status moves by the buyer's authorisation and deletion and by the
# checks; ``needs_reauthorization`` is not stored: it is what an authorised agency is
# while Mercato asks for a newer policy version than the one granted.

NOT_AUTHORIZED = "not_authorized"
AUTHORIZED = "authorized"
NEEDS_REAUTHORIZATION = "needs_reauthorization"
BROKEN = "broken"
AGENCY_STATUSES = (NOT_AUTHORIZED, AUTHORIZED, NEEDS_REAUTHORIZATION, BROKEN)

AGENCY = StateMachine(
    "agency",
    {
        "authorize": ((NOT_AUTHORIZED, AUTHORIZED, BROKEN), AUTHORIZED),
        "break": ((AUTHORIZED,), BROKEN),
        "revoke": ((NOT_AUTHORIZED, AUTHORIZED, BROKEN), NOT_AUTHORIZED),
    },
)

# the errors deployment_readiness and agency_credentials answer
AGENCY_NOT_AUTHORIZED = "AGENCY_NOT_AUTHORIZED"
AGENCY_REAUTHORIZATION_REQUIRED = "AGENCY_REAUTHORIZATION_REQUIRED"
AGENCY_BROKEN = "AGENCY_BROKEN"

# what a check finds wrong (each problem is {code, message})
AGENCY_MISSING = "AGENCY_MISSING"
AGENCY_REPLACED = "AGENCY_REPLACED"
TRUST_CHANGED = "TRUST_CHANGED"
POLICY_MISSING = "POLICY_MISSING"
POLICY_CHANGED = "POLICY_CHANGED"
POLICY_NOT_GRANTED = "POLICY_NOT_GRANTED"
POLICY_REUSED = "POLICY_REUSED"
ASSUME_FAILED = "ASSUME_FAILED"
CHECK_REFUSED = "CHECK_REFUSED"


def problem(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def effective_status(stored: str, granted_version: int | None, current_version: int) -> str:
    """What the buyer sees: an authorised agency granted an older policy version than
    Mercato now asks for needs to be authorised again."""
    if stored == AUTHORIZED and (granted_version or 0) < current_version:
        return NEEDS_REAUTHORIZATION
    return stored


def readiness(statuses: dict[str, str]) -> dict[str, object]:
    """May a deployment start, from every agency's effective status (by name)?
    ``{ready, error, message}``; the first agency not ready names the error."""
    for name, status in statuses.items():
        if status == NOT_AUTHORIZED:
            return {
                "ready": False,
                "error": AGENCY_NOT_AUTHORIZED,
                "message": f"{name} is not authorised: authorise the agencies first",
            }
    for name, status in statuses.items():
        if status in (NEEDS_REAUTHORIZATION, BROKEN):
            why = "is broken" if status == BROKEN else "needs a newer policy version"
            return {
                "ready": False,
                "error": AGENCY_REAUTHORIZATION_REQUIRED,
                "message": f"{name} {why}: authorise the agencies again",
            }
    return {"ready": True, "error": None, "message": "the agencies are authorised"}


def credentials_refusal(statuses: dict[str, str]) -> tuple[str, str] | None:
    """Why temporary credentials may not be handed out ((code, message)), or None."""
    for code, wanted in (
        (AGENCY_NOT_AUTHORIZED, NOT_AUTHORIZED),
        (AGENCY_BROKEN, BROKEN),
        (AGENCY_REAUTHORIZATION_REQUIRED, NEEDS_REAUTHORIZATION),
    ):
        for name, status in statuses.items():
            if status == wanted:
                return code, f"{name} is {status.replace('_', ' ')}"
    return None


def _statement_key(statement: dict) -> tuple:
    actions = statement.get("Action") or []
    actions = [actions] if isinstance(actions, str) else actions
    rest = {k: v for k, v in statement.items() if k not in ("Effect", "Action")}
    return (
        str(statement.get("Effect", "")).lower(),
        tuple(sorted(str(a) for a in actions)),
        repr(sorted(rest.items())),
    )


def policy_differences(expected: dict, found: dict) -> list[str]:
    """How ``found`` differs from ``expected``, in words; empty when they mean the same
    (the order of statements and of actions does not matter)."""
    if str(found.get("Version")) != str(expected.get("Version")):
        return [f"version {found.get('Version')} instead of {expected.get('Version')}"]
    expected_keys = sorted(_statement_key(s) for s in expected.get("Statement") or [])
    found_keys = sorted(_statement_key(s) for s in found.get("Statement") or [])
    if expected_keys == found_keys:
        return []
    wanted = {a for key in expected_keys if key[0] == "allow" for a in key[1]}
    have = {a for key in found_keys if key[0] == "allow" for a in key[1]}
    differences = []
    if wanted - have:
        differences.append("lacks " + ", ".join(sorted(wanted - have)))
    if have - wanted:
        differences.append("adds " + ", ".join(sorted(have - wanted)))
    if any(key[0] != "allow" for key in found_keys):
        differences.append("has Deny statements")
    return differences or ["its statements differ"]
