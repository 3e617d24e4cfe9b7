"""Shapes that more than one source's RPCs share: an empty body, a period, a card, the
test clock every service answers about (``mercato.service.MercatoService``).

Money is ``mercato.money``'s; a page query and a page answer are
``mercato.validation.PageSchema`` and ``page_of``. Like every RPC schema in this
package, these are also the public API's bodies: the gateway loads a request with the
very schema the service loads it with again, and its OpenAPI document shows their
``metadata`` (description, example).
"""

from __future__ import annotations

from marshmallow import fields, validate

from mercato.clock import MAX_OFFSET_SECONDS
from mercato.terms import PERIOD_UNITS_OF_A_TERM, YEAR
from mercato.validation import AnswerSchema, StrictSchema

# an id a client names (in a body or a query): what a service's ids can be
ID_RULE = validate.Length(min=1, max=40)


class EmptyRequest(StrictSchema):
    """No body is needed (the path says it all); an empty object is accepted and any
    field is refused."""


class PeriodSchema(StrictSchema):
    """How long a yearly/monthly purchase runs."""

    unit = fields.String(
        required=True, validate=validate.OneOf(PERIOD_UNITS_OF_A_TERM), metadata={"example": YEAR}
    )
    count = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=60),
        metadata={
            "description": "How many units; the product decides what it sells "
            "(1-11 months or 1-5 years).",
            "example": 1,
        },
    )


class CardRequest(StrictSchema):
    """A payment card, passed on to billing, which checks the number (Luhn), expiry
    and CVC. Only its brand and last four digits are ever stored."""

    number = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=12, max=23),
        metadata={
            "example": "4242424242424242",
            "description": "Up to 19 digits, optionally in groups.",
        },
    )
    expiry = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=4, max=7),
        metadata={"description": "MM/YY.", "example": "12/30"},
    )
    cvc = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=3, max=4),
        metadata={"example": "123"},
    )


# the longest one move of the test clock: ten years
MAX_CLOCK_ADVANCE_SECONDS = 10 * 366 * 86400


class ClockResponse(AnswerSchema):
    """The test clock: what time every service reads, and how far it is from the wall
    clock."""

    now = fields.AwareDateTime(
        required=True,
        metadata={
            "description": "The time the services read now (RFC 3339, UTC).",
            "example": "2025-03-27T09:30:00+00:00",
        },
    )
    offset_seconds = fields.Integer(
        required=True,
        metadata={
            "description": "Seconds the services' time is ahead of the wall clock "
            "(negative when it was started in the past with MERCATO_CLOCK_START).",
            "example": 90000,
        },
    )


class ClockAdvanceRequest(StrictSchema):
    """Move the test clock forward."""

    advance_seconds = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_CLOCK_ADVANCE_SECONDS),
        metadata={
            "description": "How far to move every service's time forward, in whole seconds "
            f"(1 to {MAX_CLOCK_ADVANCE_SECONDS}); time never goes back.",
            "example": 90000,
        },
    )


class ClockMoveRequest(StrictSchema):
    """A service's ``move_clock`` RPC: the offset its clock is to have (the gateway
    sends every service the same one)."""

    offset_seconds = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=-MAX_OFFSET_SECONDS, max=MAX_OFFSET_SECONDS),
    )
