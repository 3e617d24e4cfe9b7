"""Where automatic renewal finds what it works on: every statement behind a named method
(``uow.auto_renewals``), registered in ``orders.repository.REPOSITORIES``.

Locks are taken order first, then subscription, as on the pay path
(``usecases.record_payment``): the sweep, which claims subscriptions first, takes their
orders with SKIP LOCKED and never waits for one while it holds a subscription."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction, lazyload

from mercato.terms import ENABLED, RENEWAL, UNPAID
from orders.models import Order, Subscription


def _due(now: dt.datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        Subscription.auto_renew.is_(True),
        Subscription.next_auto_renew_at <= now,
        Subscription.status == ENABLED,
        Subscription.expires_at > now,
    )


class AutoRenewalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def savepoint(self) -> SessionTransaction:
        """A savepoint (``with``): what is done inside is undone alone if it fails."""
        return self.session.begin_nested()

    def claim_due(self, now: dt.datetime, *, limit: int) -> Sequence[Subscription]:
        """Enabled subscriptions with auto-renew on whose attempt is due, locked; rows
        another replica holds are skipped."""
        return self.session.scalars(
            sa.select(Subscription)
            .where(*_due(now))
            .order_by(Subscription.next_auto_renew_at)
            .limit(limit)
            .options(lazyload(Subscription.line))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()

    def count_due(self, now: dt.datetime) -> int:
        return int(
            self.session.scalar(
                sa.select(sa.func.count()).select_from(Subscription).where(*_due(now))
            )
            or 0
        )

    def order_id_of_period(self, key: str) -> str | None:
        """The id of the automatic renewal order of one period, if it was placed (not
        locked)."""
        return self.session.scalar(sa.select(Order.id).where(Order.auto_renewal_key == key))

    def lock_order_unless_held(self, order_id: str) -> Order | None:
        """The order read afresh and locked, or None while another transaction holds it
        (a payment being applied): never waited for."""
        return self.session.scalar(
            sa.select(Order)
            .where(Order.id == order_id)
            .options(lazyload(Order.lines))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )

    def lock_unpaid_orders_of(self, subscription_id: str) -> Sequence[Order]:
        """The subscription's automatic renewal orders still unpaid, locked (before the
        subscription is)."""
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
