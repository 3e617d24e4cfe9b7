"""The domain error hierarchy every service raises and the gateway maps to HTTP.

An error crosses RPC as nameko serializes it: its type's module path and ``args``.
Every class here is registered with ``nameko.exceptions.registry`` so the caller gets
the same type back, with the same code, message and fields, instead of a RemoteError.
Services declare them in ``@rpc(expected_exceptions=EXPECTED)`` so they are logged as
the caller's fault, not the service's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nameko.exceptions import deserialize_to_instance


class MercatoError(Exception):
    """Base of every error a caller is meant to see.

    ``code`` is the machine-readable error of the API's error body; ``fields`` maps a
    field name to the rules it broke (validation errors only).
    """

    default_code: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.fields = fields or {}
        self.code = code or self.default_code
        # args are what nameko serializes; they rebuild the same error on the caller's side
        super().__init__(message, self.fields, self.code)

    def __str__(self) -> str:
        return self.message

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


@deserialize_to_instance
class ValidationError(MercatoError):
    default_code = "VALIDATION_ERROR"


@deserialize_to_instance
class Unauthenticated(MercatoError):
    default_code = "UNAUTHENTICATED"


@deserialize_to_instance
class Forbidden(MercatoError):
    default_code = "FORBIDDEN"


@deserialize_to_instance
class NotFound(MercatoError):
    default_code = "NOT_FOUND"


@deserialize_to_instance
class Conflict(MercatoError):
    default_code = "CONFLICT"


@deserialize_to_instance
class PaymentRequired(MercatoError):
    default_code = "PAYMENT_REQUIRED"


@deserialize_to_instance
class BusinessRuleViolation(MercatoError):
    """A business rule refused the request; ``code`` names the rule (TERMS_NOT_ACCEPTED)."""

    default_code = "BUSINESS_RULE_VIOLATED"


@deserialize_to_instance
class RateLimited(MercatoError):
    """Too many requests of one kind; ``retry_after`` is how many seconds until one may
    go through again (the gateway's ``Retry-After``)."""

    default_code = "RATE_LIMITED"
    DEFAULT_RETRY_AFTER_SECONDS: ClassVar[int] = 60

    def __init__(
        self,
        message: str,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, fields, code)
        given = self.DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after
        self.retry_after = max(1, int(given))
        # crosses RPC with the rest of the error
        self.args = (*self.args, self.retry_after)


@deserialize_to_instance
class ServiceUnavailable(MercatoError):
    """A service this request depends on did not answer in time."""

    default_code = "SERVICE_UNAVAILABLE"


# What every @rpc declares as the caller's fault.
EXPECTED: tuple[type[Exception], ...] = (
    ValidationError,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PaymentRequired,
    BusinessRuleViolation,
    RateLimited,
)
