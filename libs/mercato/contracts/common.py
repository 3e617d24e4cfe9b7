"""Shapes that more than one source's RPCs share: an empty body, a period, a card, the
test clock every service answers about (``mercato.service.MercatoService``).

Money is ``mercato.money``'s; a page query and a page answer are
``mercato.validation.PageSchema`` and ``page_of``. Like every RPC schema in this
package, these are also the public API's bodies: the gateway loads a request with the
very schema the service loads it with again, and its OpenAPI document shows their
``metadata`` (description, example).
"""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import ValidationError, fields, validate, validates_schema

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
    """A card to pay with. Card numbers never reach Mercato: a client exchanges the card
    for a ``token`` at the card provider (``POST /v1/tokens`` there), or names a card
    the account keeps (``card_id``, see ``/v1/billing/cards``). Exactly one of them."""

    token = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "A token from the card provider (`POST /v1/tokens` there).",
            "example": "tok_4c1f0e9a2b3d4e5f6a7b8c9d0e1f2a3b",
        },
    )
    card_id = fields.String(
        validate=ID_RULE,
        metadata={
            "description": "A card the account keeps (`POST /v1/billing/cards`).",
            "example": "card_2b7e4f1a9c3d4e5f8a6b0c1d2e3f4a5b",
        },
    )

    @validates_schema
    def _one_card(self, data, **kwargs):
        if "token" in data and "card_id" in data:
            raise ValidationError("give a token or a card_id, not both", "card_id")
        if "token" not in data and "card_id" not in data:
            raise ValidationError("give a token from the card provider, or a card_id", "token")


# what a card's number looks like in a body: refused whole, never passed on
RAW_CARD_FIELDS = frozenset({"number", "expiry", "cvc", "exp_month", "exp_year"})


class CardField(fields.Nested):
    """A body's ``card`` (``CardRequest``). A card number, expiry or CVC in it is refused
    naming ``card`` itself, before anything reads it: they go to the card provider,
    never to Mercato."""

    def __init__(self, **kwargs) -> None:
        super().__init__(CardRequest, **kwargs)

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if isinstance(value, Mapping) and RAW_CARD_FIELDS & set(value):
            raise ValidationError(
                "card numbers are not taken: send {token} from the card provider "
                "(POST /v1/tokens there) or {card_id} of a kept card"
            )
        return super()._deserialize(value, attr, data, partial=partial, **kwargs)


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
