"""Where orders keeps unsubscription requests and finds what may be unsubscribed from:
every statement behind a named method (``uow.unsubscriptions``), registered in
``orders.repository.REPOSITORIES``.

The order and the subscription a decision is about are locked through ``uow.orders``
(``lock``, ``lock_subscription``: the order first, as every other writer of them does),
then the request here (``lock``): reads that decide something read the row afresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mercato.db import Page, fetch_page, insert_now
from mercato.terms import (
    APPROVED,
    CANCELLED,
    IMAGE,
    LICENSE,
    PAY_PER_USE,
    PENDING_REVIEW,
    PROFESSIONAL_SERVICE,
    REJECTED,
    RELEASED,
    SAAS,
    YEARLY_MONTHLY,
)
from orders.domain import GUARANTEE_PERIOD_STATUSES
from orders.models import Order, OrderLine, Subscription, Unsubscription

_PENDING_OF_SUBSCRIPTION = sa.select(Unsubscription.id).where(
    Unsubscription.subscription_id == sa.bindparam("subscription_id"),
    Unsubscription.status == PENDING_REVIEW,
)


def _afresh(query):
    return query.execution_options(populate_existing=True)


class UnsubscriptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, request: Unsubscription) -> None:
        """A new request, written as it is (its moves were made before)."""
        insert_now(self.session, request)

    def get(self, unsubscription_id: str) -> Unsubscription | None:
        return self.session.scalar(
            _afresh(sa.select(Unsubscription).where(Unsubscription.id == unsubscription_id))
        )

    def lock(self, unsubscription_id: str) -> Unsubscription | None:
        """The request read afresh and locked until the transaction ends (after its order
        and subscription: see the module's docstring)."""
        return self.session.scalar(
            _afresh(
                sa.select(Unsubscription)
                .where(Unsubscription.id == unsubscription_id)
                .with_for_update()
            )
        )

    def has_pending(self, subscription_id: str) -> bool:
        """Whether a request of the subscription awaits the seller's review (read under
        the lock of its order: one pending request per subscription)."""
        found = self.session.scalar(_PENDING_OF_SUBSCRIPTION, {"subscription_id": subscription_id})
        return found is not None

    def close_pending_of(
        self, subscription_ids: Sequence[str], reason: str, now: dt.datetime
    ) -> list[tuple[str, str]]:
        """Close, with one statement, the requests of these subscriptions awaiting review
        (``rejected`` with ``reason``, reviewed now): ``(request id, subscription id)``
        of each closed. The caller holds the subscriptions' locks."""
        if not subscription_ids:
            return []
        closed = self.session.execute(
            sa.update(Unsubscription)
            .where(
                Unsubscription.subscription_id.in_(list(subscription_ids)),
                Unsubscription.status == PENDING_REVIEW,
            )
            .values(status=REJECTED, rejection_reason=reason, reviewed_at=now, updated_at=now)
            .returning(Unsubscription.id, Unsubscription.subscription_id)
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.subscription_id) for row in closed]

    def lock_approved_of_order(self, order_id: str) -> Sequence[Unsubscription]:
        """The approved requests whose refund is the order's (one at most), locked."""
        return self.session.scalars(
            _afresh(
                sa.select(Unsubscription)
                .where(Unsubscription.order_id == order_id, Unsubscription.status == APPROVED)
                .with_for_update()
            )
        ).all()

    def oldest_approved_at(self) -> dt.datetime | None:
        """When the longest-waiting approved request was approved (its refund not made
        yet); None when every approved one was refunded."""
        return self.session.scalar(
            sa.select(sa.func.min(Unsubscription.reviewed_at)).where(
                Unsubscription.status == APPROVED
            )
        )

    def page_of_account(
        self, account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        query = sa.select(Unsubscription).where(Unsubscription.account_id == account_id)
        return self._page(query, status, page, page_size)

    def page_of_seller(
        self, seller_account_id: str, *, status: str | None, page: int, page_size: int
    ) -> Page:
        query = sa.select(Unsubscription).where(
            Unsubscription.seller_account_id == seller_account_id
        )
        return self._page(query, status, page, page_size)

    def _page(self, query, status: str | None, page: int, page_size: int) -> Page:
        if status:
            query = query.where(Unsubscription.status == status)
        query = query.order_by(Unsubscription.requested_at.desc(), Unsubscription.id)
        return fetch_page(self.session, query, page, page_size)

    def page_of_eligible(
        self, account_id: str, now: dt.datetime, *, page: int, page_size: int
    ) -> Page:
        """The account's subscriptions that may be unsubscribed from now, newest first:
        ``orders.domain.unsubscription_refusal`` as a query (not released, its first order
        not cancelled, no request pending; an image by the year or month with time left
        in the period its first order bought (never renewed);
        a license, a professional service or a supervised SaaS product whose order is
        still in its guarantee period)."""
        pending = (
            sa.select(Unsubscription.id)
            .where(
                Unsubscription.subscription_id == Subscription.id,
                Unsubscription.status == PENDING_REVIEW,
            )
            .exists()
        )
        guaranteed = Order.status.in_(GUARANTEE_PERIOD_STATUSES)
        query = (
            sa.select(Subscription)
            .join(OrderLine, OrderLine.id == Subscription.order_line_id)
            .join(Order, Order.id == Subscription.order_id)
            .where(
                Subscription.account_id == account_id,
                Subscription.status != RELEASED,
                Order.status != CANCELLED,
                OrderLine.billing_mode != PAY_PER_USE,
                sa.not_(pending),
                sa.or_(
                    sa.and_(
                        OrderLine.delivery_method == IMAGE,
                        OrderLine.billing_mode == YEARLY_MONTHLY,
                        Subscription.expires_at > now,
                        # the first order's period (never renewed: domain.was_renewed)
                        sa.or_(
                            Subscription.period_started_at.is_(None),
                            Subscription.period_started_at <= Subscription.activated_at,
                        ),
                    ),
                    sa.and_(
                        OrderLine.delivery_method.in_((LICENSE, PROFESSIONAL_SERVICE)),
                        guaranteed,
                    ),
                    sa.and_(
                        OrderLine.delivery_method == SAAS,
                        OrderLine.service_supervision.is_(True),
                        guaranteed,
                    ),
                ),
            )
            .order_by(Subscription.created_at.desc(), Subscription.id)
        )
        return fetch_page(self.session, query, page, page_size)
