"""The cards accounts keep (``bound_cards``), behind named methods: ``uow.cards``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.models import BoundCard
from mercato.db import Page, fetch_page, insert_or_ignore


class CardRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of_account(self, account_id: str, card_id: str) -> BoundCard | None:
        """The account's card ``card_id``; None for another account's or none."""
        return self.session.scalar(
            sa.select(BoundCard).where(BoundCard.id == card_id, BoundCard.account_id == account_id)
        )

    def by_request_key(self, account_id: str, request_key: str) -> BoundCard | None:
        return self.session.scalar(
            sa.select(BoundCard).where(
                BoundCard.account_id == account_id, BoundCard.request_key == request_key
            )
        )

    def add(self, card: BoundCard) -> bool:
        """Write ``card``; False when the account bound a card with its request key first
        (the same request, retried at the same moment)."""
        columns = {c.key: getattr(card, c.key) for c in sa.inspect(BoundCard).column_attrs}
        return insert_or_ignore(self.session, BoundCard, columns)

    def page(self, account_id: str, page: int, page_size: int) -> Page:
        query = (
            sa.select(BoundCard)
            .where(BoundCard.account_id == account_id)
            .order_by(BoundCard.created_at.desc(), BoundCard.id)
        )
        return fetch_page(self.session, query, page, page_size)

    def delete(self, card: BoundCard) -> None:
        self.session.execute(sa.delete(BoundCard).where(BoundCard.id == card.id))
