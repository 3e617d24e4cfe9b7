"""Cards: what a payment or top-up charges, and the cards an account keeps.

Card numbers never reach Mercato. A body names a card as ``{token}`` (got from the
provider by the client) or ``{card_id}`` (a card the account keeps: the provider holds
the card, billing its reference, brand, last four digits and expiry). Either becomes a
``domain.Card`` whose ``source`` the provider charges.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from billing.domain import Card
from billing.models import BoundCard
from billing.payment_gateway import GatewayError, PaymentGateway, UnknownCard
from mercato.clock import Clock
from mercato.db import new_id
from mercato.errors import NotFound, ServiceUnavailable, ValidationError

_log = logging.getLogger(__name__)


def card_view(card: BoundCard) -> dict[str, Any]:
    return {
        "id": card.id,
        "brand": card.brand,
        "last4": card.last4,
        "expiry": card.expiry,
        "created_at": card.created_at,
    }


def card_to_charge(
    uow, gateway: PaymentGateway, *, account_id: str, card: dict[str, Any], now: dt.datetime
) -> Card:
    """The card a body names (``{token}`` or ``{card_id}``), ready to charge; a
    ValidationError naming ``card.token`` or ``card.card_id`` when there is no such card
    (another account's card is no card of this one) or it has expired, and
    ServiceUnavailable when the provider cannot say (nothing changed either way)."""
    if card.get("card_id"):
        kept = uow.cards.of_account(account_id, card["card_id"])
        if kept is None:
            raise ValidationError(
                "no such card", {"card.card_id": ["is not a card this account keeps"]}
            )
        found = Card(
            source=kept.provider_card_id, brand=kept.brand, last4=kept.last4, expiry=kept.expiry
        )
        field = "card.card_id"
    else:
        try:
            token_card = gateway.card(card["token"])
        except GatewayError as exc:
            raise ServiceUnavailable(f"the card provider did not answer: {exc}") from None
        if token_card is None:
            raise ValidationError(
                "unknown card token",
                {"card.token": ["is not a token of the card provider (POST /v1/tokens there)"]},
            )
        found, field = token_card, "card.token"
    if _expired(found.expiry, now):
        raise ValidationError("the card has expired", {field: ["the card has expired"]})
    return found


def _expired(expiry: str, now: dt.datetime) -> bool:
    """A card works through the last day of its ``MM/YY`` month."""
    month, _, year = expiry.partition("/")
    current = now.astimezone(dt.UTC)
    return (2000 + int(year), int(month)) < (current.year, current.month)


def bind_card(
    uow,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    account_id: str,
    token: str,
    request_key: str | None,
) -> dict[str, Any]:
    """Keep the token's card on the account: the provider keeps the card, billing its
    reference. With a request key (the request's Idempotency-Key), a retry answers the
    first card and the provider keeps it once."""
    if request_key:
        existing = uow.cards.by_request_key(account_id, request_key)
        if existing is not None:
            view = card_view(existing)
            uow.rollback()
            return view
    uow.rollback()  # hold no connection while the provider answers
    card_id = new_id("card")
    try:
        kept = gateway.keep(token, f"{account_id}.{request_key or card_id}")
    except UnknownCard:
        raise ValidationError(
            "unknown card token",
            {"token": ["is not a token of the card provider (POST /v1/tokens there)"]},
        ) from None
    except GatewayError as exc:
        raise ServiceUnavailable(f"the card provider did not answer: {exc}") from None
    if _expired(kept.expiry, clock.now()):
        raise ValidationError("the card has expired", {"token": ["the card has expired"]})
    row = BoundCard(
        id=card_id,
        account_id=account_id,
        provider_card_id=kept.source,
        brand=kept.brand,
        last4=kept.last4,
        expiry=kept.expiry,
        request_key=request_key,
        created_at=clock.now(),
    )
    if not uow.cards.add(row):
        uow.rollback()  # the same request bound it at the same moment: answer that one
        assert request_key is not None
        first = uow.cards.by_request_key(account_id, request_key)
        return card_view(first)
    uow.commit()
    _log.info("card %s bound to %s (%s ****%s)", row.id, account_id, row.brand, row.last4)
    return card_view(row)


def list_cards(uow, *, account_id: str, page: int, page_size: int) -> dict[str, Any]:
    return uow.cards.page(account_id, page, page_size).view(card_view)


def delete_card(uow, gateway: PaymentGateway, *, account_id: str, card_id: str) -> None:
    """Forget a card the account keeps, at the provider too (NotFound for another
    account's card, or a card already deleted)."""
    card = uow.cards.of_account(account_id, card_id)
    if card is None:
        raise NotFound(f"no card {card_id}")
    try:
        gateway.forget(card.provider_card_id)
    except GatewayError as exc:
        raise ServiceUnavailable(f"the card provider did not answer: {exc}") from None
    uow.cards.delete(card)
    uow.commit()
    _log.info("card %s of %s deleted", card_id, account_id)
