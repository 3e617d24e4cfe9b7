"""Where orders keeps upgrade quotes and finds what auto-renewal works on: every
statement behind a named method (``uow.upgrades``), registered in
``orders.repository.REPOSITORIES``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, lazyload

from mercato.terms import COMPLETED, ENABLED, RENEWAL, UNPAID
from orders.models import Order, OrderLine, Subscription, UpgradeQuote


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

    # -- auto-renewal --

    def claim_due_auto_renewals(self, now: dt.datetime, *, limit: int) -> Sequence[Subscription]:
        """Enabled subscriptions with auto-renew on whose attempt is due, locked; rows
        another replica holds are skipped."""
        return self.session.scalars(
            sa.select(Subscription)
            .where(
                Subscription.auto_renew.is_(True),
                Subscription.next_auto_renew_at <= now,
                Subscription.status == ENABLED,
                Subscription.expires_at > now,
            )
            .order_by(Subscription.next_auto_renew_at)
            .limit(limit)
            .options(lazyload(Subscription.line))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()

    def count_due_auto_renewals(self, now: dt.datetime) -> int:
        return int(
            self.session.scalar(
                sa.select(sa.func.count())
                .select_from(Subscription)
                .where(
                    Subscription.auto_renew.is_(True),
                    Subscription.next_auto_renew_at <= now,
                    Subscription.status == ENABLED,
                    Subscription.expires_at > now,
                )
            )
            or 0
        )

    def auto_renewal_order(self, key: str) -> Order | None:
        """The automatic renewal order of one period, locked, if it was placed."""
        return self.session.scalar(
            sa.select(Order)
            .where(Order.auto_renewal_key == key)
            .options(lazyload(Order.lines))
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def unpaid_auto_renewals_of(self, subscription_id: str) -> Sequence[Order]:
        """The subscription's automatic renewal orders still unpaid, locked."""
        return self.session.scalars(
            sa.select(Order)
            .where(
                Order.subscription_id == subscription_id,
                Order.type == RENEWAL,
                Order.auto_renewal_key.is_not(None),
                Order.status == UNPAID,
            )
            .options(lazyload(Order.lines))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
