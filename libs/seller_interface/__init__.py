"""Mercato's side of the SaaS seller interface v1: how Mercato asks a seller's own
system to create, query, renew, freeze, upgrade and release a SaaS tenant.

The protocol is specified for sellers in ``docs/seller-saas-interface.md``; this module
is the one place Mercato implements it (the provisioning service and the conformance kit
both call sellers through ``SellerClient``). In short: one JSON POST per product,
signed with the seller's secret over ``access_key + nonce + timestamp + sha256(body)``
and carried in the query string; the seller answers HTTP 200 with ``resultCode`` and a
``Body-Sign`` header bound to the request's nonce, so an old answer cannot be replayed::

    client = SellerClient("https://seller.example.com/saas", "ak_…", secret)
    answer = client.call("newInstance", {"businessId": "…", "orderId": "…", …})
    answer.result_code  # "000000"
    answer.data  # {"instanceId": "…"}

A call either returns a ``SellerAnswer`` (whatever its result code) or raises a
``SellerCallError`` whose ``reason`` is safe to log and show: it never carries the
secret or a delivered password.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import urllib3

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "1"
CONTENT_TYPE = "application/json;charset=utf-8"
ACCESS_KEY_HEADER = "X-Mercato-Access-Key"
BODY_SIGN_HEADER = "Body-Sign"
SIGN_TYPE = "HMAC-SHA256"

DEFAULT_TIMEOUT_SECONDS = 5.0
TIMESTAMP_TOLERANCE_SECONDS = 60  # a seller refuses a request further than this from its clock
NONCE_TTL_SECONDS = 300  # a seller remembers every nonce at least this long
MAX_ANSWER_BYTES = 1024 * 1024
MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SIGNATURE_PARAMS = ("signature", "timestamp", "nonce")


class Activity(enum.StrEnum):
    NEW_INSTANCE = "newInstance"
    QUERY_INSTANCE = "queryInstance"
    REFRESH_INSTANCE = "refreshInstance"
    UPDATE_INSTANCE_STATUS = "updateInstanceStatus"
    UPGRADE_INSTANCE = "upgradeInstance"
    RELEASE_INSTANCE = "releaseInstance"


ACTIVITIES: tuple[str, ...] = tuple(activity.value for activity in Activity)


class ResultCode(enum.StrEnum):
    SUCCESS = "000000"
    AUTHENTICATION_FAILED = "000001"
    BAD_PARAMETERS = "000002"
    NO_SUCH_INSTANCE = "000003"
    PROCESSING = "000004"
    INTERNAL_ERROR = "000005"


RESULT_CODES: frozenset[str] = frozenset(code.value for code in ResultCode)

# The fields a seller must find in each activity's body besides ``activity``; the
# optional ones are listed in the protocol document.
REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = {
    Activity.NEW_INSTANCE: (
        "businessId",
        "orderId",
        "orderLineId",
        "productId",
        "specificationId",
        "customerId",
        "chargingMode",
        "quantity",
    ),
    Activity.QUERY_INSTANCE: ("instanceId",),
    Activity.REFRESH_INSTANCE: ("instanceId", "orderId", "orderLineId", "expireTime"),
    Activity.UPDATE_INSTANCE_STATUS: ("instanceId", "status"),
    Activity.UPGRADE_INSTANCE: (
        "instanceId",
        "orderId",
        "orderLineId",
        "specificationId",
        "quantity",
    ),
    Activity.RELEASE_INSTANCE: ("instanceId",),
}

CHARGING_MODES = ("yearly_monthly", "pay_per_use", "one_time")
PERIOD_UNITS = ("month", "year")
INSTANCE_STATUSES = ("FREEZE", "UNFREEZE")
APP_INFO_FIELDS = ("frontEndUrl", "adminUrl", "userName", "password")

_NONCE_RE = re.compile(r"[0-9a-f]{64}")
_BODY_SIGN_RE = re.compile(r'^\s*sign_type="(?P<type>[^"]*)"\s*,\s*signature="(?P<sig>[^"]*)"\s*$')
_SECRET_FIELDS = frozenset({"password"})


# -- signing -------------------------------------------------------------------------


def body_digest(body: bytes) -> str:
    """Lowercase hex SHA-256 of the raw body bytes, exactly as sent on the wire."""
    return hashlib.sha256(body).hexdigest()


def canonical_string(access_key: str, nonce: str, timestamp: int | str, body: bytes) -> str:
    """``access_key + nonce + timestamp + sha256hex(body)``: what both sides sign."""
    return f"{access_key}{nonce}{timestamp}{body_digest(body)}"


def sign(secret: str, access_key: str, nonce: str, timestamp: int | str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 keyed by the secret's UTF-8 bytes.

    The same function signs a request (over the request body) and an answer (over the
    answer body, with the request's nonce and timestamp).
    """
    canonical = canonical_string(access_key, nonce, timestamp, body)
    return hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(
    signature: str, secret: str, access_key: str, nonce: str, timestamp: int | str, body: bytes
) -> bool:
    """Whether ``signature`` is ``sign(...)`` of these values, compared in constant time."""
    expected = sign(secret, access_key, nonce, timestamp, body)
    return hmac.compare_digest(expected, signature.strip().lower())


def body_sign_header(
    secret: str, access_key: str, nonce: str, timestamp: int | str, body: bytes
) -> str:
    """The ``Body-Sign`` header a seller puts on an answer to the request (nonce, timestamp)."""
    signature = sign(secret, access_key, nonce, timestamp, body)
    return f'sign_type="{SIGN_TYPE}", signature="{signature}"'


def parse_body_sign(header: str) -> tuple[str, str]:
    """``(sign_type, signature)`` of a ``Body-Sign`` header; ValueError if malformed."""
    match = _BODY_SIGN_RE.match(header or "")
    if match is None:
        raise ValueError('Body-Sign is not of the form sign_type="…", signature="…"')
    return match.group("type"), match.group("sig")


def new_nonce() -> str:
    """64 lowercase hex characters (256 random bits), fresh for every request."""
    return secrets.token_hex(32)


def is_nonce(value: str) -> bool:
    return bool(_NONCE_RE.fullmatch(value))


def new_access_key() -> str:
    """A seller's public key id: ``ak_`` and 32 hex characters."""
    return "ak_" + secrets.token_hex(16)


def new_secret() -> str:
    """A seller's secret: 256 random bits, URL-safe base64 without padding."""
    return secrets.token_urlsafe(32)


def encode_body(fields: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the body format of both requests and answers."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(when: dt.datetime) -> str:
    """A timezone-aware datetime as the protocol writes times: ``2026-01-31T16:00:00Z``."""
    if when.tzinfo is None:
        raise ValueError("protocol times must be timezone-aware")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def redact(value: Any) -> Any:
    """A copy of an answer's data with every password replaced, fit for logs and reasons."""
    if isinstance(value, Mapping):
        return {
            key: ("***" if key in _SECRET_FIELDS else redact(item)) for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


# -- endpoint URLs ---------------------------------------------------------------------


def validate_endpoint_url(url: str) -> None:
    """Refuse an endpoint Mercato must not call, with a message naming the rule.

    HTTPS everywhere; plain HTTP only to a loopback host (127.0.0.1, ::1, localhost),
    for a seller's own tests. No credentials in the URL, no fragment, and none of the
    query parameters Mercato adds (``signature``, ``timestamp``, ``nonce``).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("endpoint URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"endpoint URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError("endpoint URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"endpoint URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"endpoint URL must use https, not {scheme or 'no scheme'!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("endpoint URL has no host")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"endpoint URL must use https: plain http is allowed only to a loopback host "
            f"(127.0.0.1, ::1, localhost), not {host!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("endpoint URL must not contain credentials (user:password@)")
    if parts.fragment:
        raise ValueError("endpoint URL must not have a fragment (#…)")
    if port == 0:
        raise ValueError("endpoint URL has port 0")
    reserved = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    reserved &= set(SIGNATURE_PARAMS)
    if reserved:
        raise ValueError(
            "endpoint URL must not carry the query parameters Mercato adds: "
            + ", ".join(sorted(reserved))
        )


def signed_url(endpoint_url: str, signature: str, timestamp: int, nonce: str) -> str:
    """The endpoint with ``signature``, ``timestamp`` and ``nonce`` added to its query."""
    parts = urlsplit(endpoint_url)
    params = urlencode({"signature": signature, "timestamp": str(timestamp), "nonce": nonce})
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


# -- errors and answers ----------------------------------------------------------------


class SellerCallError(Exception):
    """A call that got no usable answer. ``reason`` is safe to log and to show a seller."""

    retryable: ClassVar[bool] = True

    def __init__(self, reason: str, activity: str = "") -> None:
        self.reason = reason
        self.activity = activity
        super().__init__(reason)

    def __str__(self) -> str:
        return f"{self.activity}: {self.reason}" if self.activity else self.reason


class SellerUnreachable(SellerCallError):
    """No connection, a timeout, or an HTTP status other than 200."""


class SellerBadSignature(SellerCallError):
    """The answer had no ``Body-Sign`` header or one that does not verify."""


class SellerBadAnswer(SellerCallError):
    """The answer is not a JSON object with a known ``resultCode``."""


@dataclass(frozen=True)
class SellerAnswer:
    """A verified answer. ``data`` is the body without ``resultCode`` and ``resultMsg``.

    ``repr`` hides passwords, so an answer may be logged as it is.
    """

    result_code: str
    result_msg: str
    data: dict[str, Any] = field(repr=False)
    elapsed_seconds: float

    @property
    def ok(self) -> bool:
        return self.result_code == ResultCode.SUCCESS

    def __repr__(self) -> str:
        return (
            f"SellerAnswer(result_code={self.result_code!r}, result_msg={self.result_msg!r}, "
            f"data={redact(self.data)!r}, elapsed_seconds={self.elapsed_seconds:.3f})"
        )


@dataclass(frozen=True)
class SignedRequest:
    """One request ready to post: the exact bytes that were signed and how."""

    activity: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    nonce: str
    timestamp: int


# -- the client ------------------------------------------------------------------------


class SellerClient:
    """Calls one seller endpoint with one access key.

    ``call`` signs and posts; ``prepare`` and ``send`` are its two halves, for the
    conformance kit, which sends requests that are deliberately wrong (another secret,
    an old timestamp) or the same request twice. Every ``send`` is a real HTTP POST
    bounded by ``timeout`` seconds overall, never follows a redirect, and is not
    retried here: retry policy belongs to the caller (each retry is a new ``call``,
    so a new nonce). Like the ``requests.Session`` it holds, a client belongs to one
    worker at a time; close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        endpoint_url: str,
        access_key: str,
        secret: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        validate_endpoint_url(endpoint_url)
        if not access_key:
            raise ValueError("access key is empty")
        if not secret:
            raise ValueError("secret is empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoint_url = endpoint_url
        self.access_key = access_key
        self._secret = secret
        self.timeout = timeout
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._clock = clock
        self._host = urlsplit(endpoint_url).netloc

    def __repr__(self) -> str:
        return f"SellerClient({self.endpoint_url!r}, access_key={self.access_key!r})"

    def __enter__(self) -> SellerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def call(self, activity: str, fields: Mapping[str, Any]) -> SellerAnswer:
        """Sign ``{"activity": activity, **fields}``, post it and return the verified answer."""
        return self.send(self.prepare(activity, fields))

    def prepare(
        self,
        activity: str,
        fields: Mapping[str, Any],
        *,
        nonce: str | None = None,
        timestamp_ms: int | None = None,
        signing_secret: str | None = None,
    ) -> SignedRequest:
        """Build and sign a request. The keyword arguments exist to make wrong ones."""
        if "activity" in fields:
            raise ValueError("pass the activity as its own argument, not in fields")
        body = encode_body({"activity": activity, **fields})
        nonce = nonce if nonce is not None else new_nonce()
        timestamp = timestamp_ms if timestamp_ms is not None else int(self._clock() * 1000)
        secret = signing_secret if signing_secret is not None else self._secret
        signature = sign(secret, self.access_key, nonce, timestamp, body)
        return SignedRequest(
            activity=activity,
            url=signed_url(self.endpoint_url, signature, timestamp, nonce),
            headers={
                "Content-Type": CONTENT_TYPE,
                "Accept": "application/json",
                "Accept-Encoding": "identity",  # Body-Sign covers the bytes as sent
                ACCESS_KEY_HEADER: self.access_key,
            },
            body=body,
            nonce=nonce,
            timestamp=timestamp,
        )

    def send(self, request: SignedRequest) -> SellerAnswer:
        """Post a prepared request; verify, parse and return its answer, or raise."""
        activity = request.activity
        started = time.monotonic()
        try:
            status, headers, raw = self._post(request, started)
        except SellerCallError as exc:
            exc.activity = activity
            self._log_failure(exc, time.monotonic() - started)
            raise
        elapsed = time.monotonic() - started
        try:
            answer = self._read_answer(request, status, headers, raw, elapsed)
        except SellerCallError as exc:
            exc.activity = activity
            self._log_failure(exc, elapsed)
            raise
        log.info(
            "seller call %s to %s answered %s in %.0f ms",
            activity,
            self._host,
            answer.result_code,
            elapsed * 1000,
            extra={
                "seller_host": self._host,
                "activity": activity,
                "result_code": answer.result_code,
                "elapsed_ms": round(elapsed * 1000, 1),
            },
        )
        return answer

    def _post(
        self, request: SignedRequest, started: float
    ) -> tuple[int, requests.structures.CaseInsensitiveDict[str], bytes]:
        try:
            response = self._session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise SellerUnreachable(
                f"no answer from {self._host} within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise SellerUnreachable(
                f"cannot reach {self._host}: {_connection_problem(exc)}"
            ) from None
        try:
            if response.status_code != 200:
                raise SellerUnreachable(
                    f"{self._host} answered HTTP {response.status_code}, not 200"
                )
            raw = self._read_body(response, started)
            return response.status_code, response.headers, raw
        finally:
            response.close()

    def _read_body(self, response: requests.Response, started: float) -> bytes:
        # requests' timeout bounds each socket operation; the deadline bounds the whole
        # answer, so a seller that trickles bytes cannot hold a worker past the timeout.
        deadline = started + self.timeout
        late = f"answer from {self._host} not complete within {self.timeout:g} s"
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SellerUnreachable(late)
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = raw.read1(16384)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise SellerBadAnswer(f"answer is larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if _is_timeout(exc):
                raise SellerUnreachable(late) from None
            raise SellerUnreachable(
                f"connection to {self._host} broke while reading the answer: "
                f"{_connection_problem(exc)}"
            ) from None
        return b"".join(chunks)

    def _read_answer(
        self,
        request: SignedRequest,
        status: int,
        headers: Mapping[str, str],
        raw: bytes,
        elapsed: float,
    ) -> SellerAnswer:
        header = headers.get(BODY_SIGN_HEADER)
        if not header:
            raise SellerBadSignature("answer has no Body-Sign header")
        try:
            sign_type, signature = parse_body_sign(header)
        except ValueError as exc:
            raise SellerBadSignature(str(exc)) from None
        if sign_type.upper() != SIGN_TYPE:
            raise SellerBadSignature(f"Body-Sign sign_type is {sign_type!r}, not {SIGN_TYPE!r}")
        if not verify(
            signature, self._secret, self.access_key, request.nonce, request.timestamp, raw
        ):
            raise SellerBadSignature(
                "Body-Sign does not verify: it must be HMAC-SHA256 with the seller's secret over "
                "access key + request nonce + request timestamp + SHA-256 of the answer body"
            )
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SellerBadAnswer(f"answer body is not UTF-8 JSON ({len(raw)} bytes)") from None
        if not isinstance(body, dict):
            raise SellerBadAnswer(f"answer body is a JSON {type(body).__name__}, not an object")
        code = body.pop("resultCode", None)
        if not isinstance(code, str):
            raise SellerBadAnswer("answer has no resultCode string")
        if code not in RESULT_CODES:
            raise SellerBadAnswer(
                f"resultCode {code[:16]!r} is not one of {', '.join(sorted(RESULT_CODES))}"
            )
        message = body.pop("resultMsg", "")
        return SellerAnswer(
            result_code=code,
            result_msg=message if isinstance(message, str) else str(message),
            data=body,
            elapsed_seconds=elapsed,
        )

    def _log_failure(self, exc: SellerCallError, elapsed: float) -> None:
        log.warning(
            "seller call %s to %s failed after %.0f ms: %s",
            exc.activity,
            self._host,
            elapsed * 1000,
            exc.reason,
            extra={
                "seller_host": self._host,
                "activity": exc.activity,
                "error": type(exc).__name__,
                "elapsed_ms": round(elapsed * 1000, 1),
            },
        )


def _is_timeout(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError
        ) or "timed out" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


_CONNECTION_PROBLEMS = (
    ("connection refused", "connection refused"),
    ("econnrefused", "connection refused"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("connection reset", "connection reset"),
    ("econnreset", "connection reset"),
    ("certificate_verify_failed", "TLS certificate not trusted"),
    ("remote end closed connection", "connection closed without an answer"),
    ("remotedisconnected", "connection closed without an answer"),
)


def _connection_problem(exc: BaseException) -> str:
    """A short description of a connection failure, without the signed URL in it."""
    text = str(exc).lower()
    for needle, description in _CONNECTION_PROBLEMS:
        if needle in text:
            return description
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return type(exc).__name__
