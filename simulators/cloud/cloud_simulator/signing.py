"""AK/SK request signatures (SDK-HMAC-SHA256), recomputed exactly as
``huaweicloudsdkcore.signer.Signer`` computes them on the client side.

    canonical request = METHOD \\n canonical URI (every segment quoted, trailing "/")
        \\n canonical query (sorted key=value, quoted with "~" safe)
        \\n "name:value" of each signed header \\n signed header names ";"-joined
        \\n hex SHA-256 of the body (or X-Sdk-Content-Sha256, e.g. UNSIGNED-PAYLOAD)
    string to sign    = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex SHA-256(canonical request)
    signature         = hex HMAC-SHA256(secret key, string to sign)
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ALLOWED_SKEW_SECONDS = 15 * 60
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
AUTHORIZATION_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-fA-F]+)$"
)


class SignatureRefused(Exception):
    """Why a request's signature was not accepted (the words the 401 answers with)."""


@dataclass(frozen=True)
class SignedRequest:
    access_key: str
    signed_headers: list[str]
    signature: str
    signed_at: datetime


def _url_encode(text: str) -> str:
    return quote(text, safe="~")


def _as_signed(value: str) -> str:
    """HTTP carries a header's UTF-8 bytes and the server reads them as Latin-1; the
    client signed the text itself."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def canonical_uri(path: str) -> str:
    uri = "/".join(_url_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{_url_encode(k)}={_url_encode(v)}" for k, v in sorted(pairs))


def parse_authorization(headers: Mapping[str, str], now: datetime) -> SignedRequest:
    """Check the Authorization and X-Sdk-Date headers' form and the date's skew."""
    match = AUTHORIZATION_RE.match(headers.get("Authorization", "").strip())
    if not match:
        raise SignatureRefused("Incorrect IAM authentication information: no AK/SK signature.")
    raw_date = headers.get("X-Sdk-Date", "")
    try:
        signed_at = datetime.strptime(raw_date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused(
            "Incorrect IAM authentication information: X-Sdk-Date missing or malformed."
        ) from None
    if abs((now - signed_at).total_seconds()) > ALLOWED_SKEW_SECONDS:
        raise SignatureRefused(
            "Incorrect IAM authentication information: verify aksk signature fail, "
            "X-Sdk-Date is more than 15 minutes away from the server's time."
        )
    return SignedRequest(
        access_key=match["access"],
        signed_headers=match["headers"].split(";"),
        signature=match["signature"].lower(),
        signed_at=signed_at,
    )


def expected_signature(
    secret_key: str,
    method: str,
    path: str,
    query_pairs: list[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
    signed_at: datetime,
) -> str:
    header_lines = "".join(
        f"{name}:{_as_signed(headers.get(name) or '').strip()}\n" for name in signed_headers
    )
    if body:
        payload_hash = headers.get("X-Sdk-Content-Sha256") or hashlib.sha256(body).hexdigest()
    else:
        payload_hash = EMPTY_HASH
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_pairs),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            signed_at.strftime(DATE_FORMAT),
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    return hmac.new(
        secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected, given)
