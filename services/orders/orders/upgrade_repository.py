"""Where orders keeps upgrade quotes: every statement behind a named method
(``uow.upgrades``), registered in ``orders.repository.REPOSITORIES``. Automatic
renewal has its own (``orders.auto_renewal_repository``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mercato.terms import COMPLETED, RENEWAL, UNPAID, UPGRADE
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

    # -- a renewal and an upgrade in flight together (review 9, finding 6) --

    def mark_quote_ordered(self, quote: UpgradeQuote, order_id: str) -> None:
        """The quote made ``order_id`` (added before): written now, so a second order of
        the same quote meets its unique ``order_id``."""
        quote.order_id = order_id
        self.session.flush()

    def unpaid_renewal_order_id(self, subscription_id: str, now: dt.datetime) -> str | None:
        """A renewal order of the subscription that may still be paid (unpaid, within its
        payment window or with a payment under way), a buyer's or an automatic one."""
        return self.session.scalar(
            sa.select(Order.id)
            .where(
                Order.subscription_id == subscription_id,
                Order.type == RENEWAL,
                Order.status == UNPAID,
                sa.or_(Order.payment_deadline > now, Order.payment_started_at.is_not(None)),
            )
            .order_by(Order.created_at)
            .limit(1)
        )

    def upgrade_completed_since(self, subscription_id: str, since: dt.datetime) -> str | None:
        """An upgrade of the subscription applied at or after ``since`` (a renewal quote
        made before it priced the configuration the subscription no longer has)."""
        return self.session.scalar(
            sa.select(Order.id)
            .where(
                Order.subscription_id == subscription_id,
                Order.type == UPGRADE,
                Order.status == COMPLETED,
                Order.updated_at >= since,
            )
            .limit(1)
        )
