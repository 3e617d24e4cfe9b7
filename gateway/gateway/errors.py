"""Every error a request can end with, and the one table that gives each its HTTP status.

Services raise ``mercato.errors`` classes; nameko rebuilds the same type in the gateway
(they are registered with ``deserialize_to_instance``), so the table below is all it
takes to answer with the right status. The body is always
``{"error": CODE, "message": "...", "fields": {...}}`` (``fields`` for validation only).
Anything not in the table is a bug or an outage: 500 with a generic message, never the
exception's text, which may hold internals.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from werkzeug.wrappers import Response

from mercato.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    MercatoError,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationError,
)

_log = logging.getLogger(__name__)

JSON = "application/json"
INTERNAL = "INTERNAL"
INTERNAL_MESSAGE = (
    "something went wrong on our side; the X-Request-ID header of this response names "
    "the request if you report it"
)
BEARER_CHALLENGE = 'Bearer realm="mercato"'


class PayloadTooLarge(MercatoError):
    default_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(MercatoError):
    """An upload whose content is none of the types the route takes."""

    default_code = "UNSUPPORTED_MEDIA_TYPE"


class MethodNotAllowed(MercatoError):
    default_code = "METHOD_NOT_ALLOWED"

    def __init__(self, message: str, allowed: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = tuple(allowed)


class IdempotencyKeyInFlight(Conflict):
    """The first request with this Idempotency-Key has not finished yet."""


class IdempotencyKeyReused(BusinessRuleViolation):
    """The Idempotency-Key was first used with another request."""

    default_code = "IDEMPOTENCY_KEY_REUSED"


# The one table: domain error class -> HTTP status. Subclasses inherit their base's.
mapped_errors: dict[type[MercatoError], int] = {
    ValidationError: 400,
    Unauthenticated: 401,
    PaymentRequired: 402,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    BusinessRuleViolation: 422,
    RateLimited: 429,
    ServiceUnavailable: 503,
}

# What an entrypoint declares as the caller's fault (logged as a warning, not an error).
CALLER_ERRORS: tuple[type[Exception], ...] = tuple(
    error for error, status in mapped_errors.items() if status < 500
)


def status_for(exc: BaseException) -> int | None:
    """The mapped status of ``exc``'s class or of its nearest mapped base; None if unmapped."""
    for cls in type(exc).__mro__:
        if cls in mapped_errors:
            return mapped_errors[cls]
    return None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type=JSON)


def error_response(exc: BaseException) -> Response:
    """The JSON answer to a request that ended with ``exc``."""
    status = status_for(exc)
    if status is None or not isinstance(exc, MercatoError):
        return json_response(500, {"error": INTERNAL, "message": INTERNAL_MESSAGE})
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if isinstance(exc, MethodNotAllowed) and exc.allowed:
        headers["Allow"] = ", ".join(exc.allowed)
    if isinstance(exc, IdempotencyKeyInFlight):
        headers["Retry-After"] = "1"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return json_response(status, exc.to_body(), headers)
