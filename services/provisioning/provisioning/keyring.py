"""Encryption at rest of what sellers deliver and what provisioning must keep secret.

AES-256-GCM, an authenticated cipher: a row's ciphertext cannot be read without the
key, nor changed, nor moved to another row unnoticed, because the associated data binds
it to where it belongs (the account and subscription of a password, the seller of an
interface secret or a signing key).

The keys come from the environment (``PROVISIONING_CREDENTIAL_KEYS``, a Kubernetes
Secret in production) as a comma-separated list ``key_id:base64(32 bytes)``. The first
key encrypts; every key listed decrypts, and each row records the id of its key. To
rotate: put a new key first, keep the old ones, re-seal the old rows under the new key
with ``mercato-reseal-credentials`` (``provisioning.cli``), then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYS_CONFIG = "CREDENTIAL_KEYS"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
NONCE_BYTES = 12


class KeyringError(ValueError):
    """The configured keys are unusable, or a row names a key the keyring lacks."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: bytes  # nonce + AES-GCM ciphertext and tag


def generate_key_spec(key_id: str) -> str:
    """A new ``key_id:base64`` entry (for ``make run`` and for operators rotating)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyringError(
                "no credential encryption key: set PROVISIONING_CREDENTIAL_KEYS to "
                "'key_id:base64-of-32-bytes' (first key encrypts, all decrypt)"
            )
        self.active_key_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def from_spec(cls, spec: str | None) -> Keyring:
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(part.strip() for part in (spec or "").split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise KeyringError(
                    f"credential key {position + 1}: expected 'key_id:base64', key_id of "
                    "letters, digits, '_', '.', '-' (at most 32)"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise KeyringError(f"credential key {key_id!r}: not valid base64") from None
            if len(key) != 32:
                raise KeyringError(f"credential key {key_id!r}: must be 32 bytes (AES-256)")
            if any(key_id == known for known, _ in keys):
                raise KeyringError(f"credential key {key_id!r} is listed twice")
            keys.append((key_id, key))
        return cls(keys)

    def seal(self, plaintext: str, *, bound_to: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._ciphers[self.active_key_id]
        ciphertext = cipher.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return Sealed(self.active_key_id, nonce + ciphertext)

    def open(self, sealed: Sealed, *, bound_to: str) -> str:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise KeyringError(
                f"the row was encrypted with key {sealed.key_id!r}, which is no longer "
                "configured: add it back to PROVISIONING_CREDENTIAL_KEYS"
            )
        nonce, ciphertext = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, ciphertext, bound_to.encode()).decode()
        except InvalidTag:
            raise KeyringError("a sealed value failed authentication (tampered or moved)") from None
