"""Rules of accounts and credentials. No nameko, no SQL.

Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 low-memory profile:
3 passes over 64 MiB). The hash runs in a real OS thread (eventlet's tpool) so that a
sign-in does not stall the other green threads of the process for its ~50 ms.

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


def hash_password(password: str) -> str:
    return tpool.execute(_hasher.hash, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return bool(tpool.execute(_hasher.verify, password_hash or _DUMMY_HASH, password)) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


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
