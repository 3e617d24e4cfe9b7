"""License keys a seller's software verifies offline.

A license key is a signed token: ``MLK1.<payload>.<signature>``, both parts base64url
without padding. The payload is compact JSON of the claims (product, specification,
quantity, buyer account, subscription, expiry, issue time and the signing key's id);
the signature is Ed25519 over the ASCII text ``MLK1.<payload>``, by the seller's own
signing key, whose public half the API publishes
(``GET /v1/sellers/{id}/license-public-key``). A seller's software needs only that
public key and any Ed25519 library to check a key; nothing calls home.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "MLK1"
ALGORITHM = "Ed25519"


class InvalidLicense(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key() -> tuple[bytes, bytes]:
    """(private, public) raw 32-byte Ed25519 keys."""
    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ),
    )


def public_key_document(seller_account_id: str, key_id: str, public_key: bytes) -> dict[str, Any]:
    pem = (
        Ed25519PublicKey.from_public_bytes(public_key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {
        "seller_account_id": seller_account_id,
        "algorithm": ALGORITHM,
        "key_id": key_id,
        "public_key": _b64(public_key),  # raw 32 bytes, base64url
        "public_key_pem": pem,
        "license_format": f"{PREFIX}.<base64url(JSON claims)>.<base64url(Ed25519 signature over "
        f"'{PREFIX}.<payload>')>",
    }


def issue(private_key: bytes, claims: dict[str, Any]) -> str:
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{PREFIX}.{payload}".encode()
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(signing_input)
    return f"{PREFIX}.{payload}.{_b64(signature)}"


def verify(token: str, public_key: bytes) -> dict[str, Any]:
    """The claims of a license key signed by ``public_key``'s private half."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidLicense(f"not a {PREFIX} license key")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            _unb64(parts[2]), f"{PREFIX}.{parts[1]}".encode()
        )
        claims = json.loads(_unb64(parts[1]))
    except (InvalidSignature, ValueError):
        raise InvalidLicense("the license key's signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidLicense("the license key's payload is not an object")
    return claims
