"""Where orders keeps upgrade quotes: every statement behind a named method
(``uow.upgrades``), registered in ``orders.repository.REPOSITORIES``. Automatic
renewal has its own (``orders.auto_renewal_repository``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mercato.terms import COMPLETED, RENEWAL
from orders.models import Order, OrderLine, UpgradeQuote


class UpgradeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- upgrade quotes --

    def add_quote(self, quote: UpgradeQuote) -> None:
        self.session.add(quote)
        self.session.flush()

    def lock_quote(self, quote_id: str) -> UpgradeQuote | None:
        """The quote read afresh and locked: one order per quote."""
        return self.session.scalar(
            sa.select(UpgradeQuote)
            .where(UpgradeQuote.id == quote_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def quote(self, quote_id: str | None) -> UpgradeQuote | None:
        if quote_id is None:
            return None
        return self.session.get(UpgradeQuote, quote_id)

    def period_of_last_renewal(self, subscription_id: str) -> dict | None:
        """The period the subscription's last applied renewal bought, if it was renewed:
        the current period's (an upgrade prices the time left of it)."""
        row = self.session.execute(
            sa.select(OrderLine.period_unit, OrderLine.period_count)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                Order.subscription_id == subscription_id,
                Order.type == RENEWAL,
                Order.status == COMPLETED,
            )
            .order_by(Order.paid_at.desc())
            .limit(1)
        ).first()
        if row is None or row.period_unit is None:
            return None
        return {"unit": row.period_unit, "count": row.period_count}
