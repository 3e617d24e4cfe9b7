"""Every statement supervision's use cases run, behind a named method (``uow.flows``,
``uow.appeals``, ``uow.attachments``, ``uow.messages``).

The timers find their work with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite runs
one writer at a time), so two replicas never act on the same flow; every locked read
refreshes the loaded object, since another worker may have changed the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mercato.db import Page, fetch_page, insert_now, insert_or_ignore
from mercato.request_keys import RequestKeys
from mercato.terms import AWAITING_ACCEPTANCE
from supervision import domain
from supervision.models import Appeal, Attachment, Flow, FlowRecord, Message, Submission


def _locked(query: sa.Select) -> sa.Select:
    return query.with_for_update().execution_options(populate_existing=True)


class FlowRepository:
    """Flows, their operation records and their requests and provisions."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def exists_for_order(self, order_id: str) -> bool:
        return self.session.scalar(sa.select(Flow.id).where(Flow.order_id == order_id)) is not None

    def add(self, flow: Flow) -> None:
        self.session.add(flow)

    def get(self, flow_id: str) -> Flow | None:
        return self.session.get(Flow, flow_id)

    def lock(self, flow_id: str) -> Flow | None:
        return self.session.scalar(_locked(sa.select(Flow).where(Flow.id == flow_id)))

    def lock_of_subscription(self, subscription_id: str) -> Flow | None:
        return self.session.scalar(
            _locked(sa.select(Flow).where(Flow.subscription_id == subscription_id))
        )

    def lock_of_order(self, order_id: str) -> Flow | None:
        return self.session.scalar(_locked(sa.select(Flow).where(Flow.order_id == order_id)))

    def page_of_party(
        self,
        account_id: str,
        *,
        page: int,
        page_size: int,
        step: str | None = None,
        q: str | None = None,
    ) -> Page:
        """The flows the account is buyer or seller of, newest first; ``q`` matches an
        order id exactly or the product's name in part."""
        query = sa.select(Flow).where(
            sa.or_(Flow.buyer_account_id == account_id, Flow.seller_account_id == account_id)
        )
        if step is not None:
            query = query.where(Flow.step == step)
        if q is not None:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(
                sa.or_(
                    Flow.order_id == q,
                    Flow.product_name.ilike(f"%{escaped}%", escape="\\"),
                )
            )
        query = query.order_by(Flow.created_at.desc(), Flow.id.desc())
        return fetch_page(self.session, query, page, page_size)

    def of_orders(self, order_ids: list[str], party_account_id: str) -> list[tuple[str, str]]:
        """(order id, flow id) of those orders whose flow the account is a party of."""
        rows = self.session.execute(
            sa.select(Flow.order_id, Flow.id).where(
                Flow.order_id.in_(order_ids),
                sa.or_(
                    Flow.buyer_account_id == party_account_id,
                    Flow.seller_account_id == party_account_id,
                ),
            )
        )
        return [(order_id, flow_id) for order_id, flow_id in rows]

    # -- what the timers look for --------------------------------------------------------

    def lock_due_for_auto_acceptance(self, now: dt.datetime, limit: int) -> list[Flow]:
        return self._claim(
            Flow.accept_by,
            limit,
            Flow.step == AWAITING_ACCEPTANCE,
            Flow.accept_by <= now,
            Flow.open_appeal_id.is_(None),
        )

    def lock_due_for_acceptance_notice(self, notice_from: dt.datetime, limit: int) -> list[Flow]:
        """Flows to be accepted automatically by ``notice_from`` whose buyer was not told."""
        return self._claim(
            Flow.accept_by,
            limit,
            Flow.step == AWAITING_ACCEPTANCE,
            Flow.accept_by <= notice_from,
            Flow.accept_notice_sent.is_(False),
            Flow.open_appeal_id.is_(None),
        )

    def lock_due_for_confirmation_reminder(self, now: dt.datetime, limit: int) -> list[Flow]:
        return self._claim(
            Flow.confirm_by,
            limit,
            Flow.step == domain.AWAITING_CONFIRMATION,
            Flow.confirm_by <= now,
            Flow.confirm_reminded.is_(False),
        )

    def lock_due_for_request_reminder(self, now: dt.datetime, limit: int) -> list[Flow]:
        return self._claim(
            Flow.request_by,
            limit,
            Flow.step == domain.AWAITING_REQUEST,
            Flow.request_by <= now,
            Flow.request_reminded.is_(False),
        )

    def _claim(self, due: Any, limit: int, *conditions: Any) -> list[Flow]:
        """Up to ``limit`` flows meeting ``conditions``, the longest due first, locked;
        rows another replica holds are skipped."""
        query = sa.select(Flow).where(*conditions).order_by(due).limit(limit)
        claimed = query.with_for_update(skip_locked=True).execution_options(populate_existing=True)
        return list(self.session.scalars(claimed))

    def count_by_step(self) -> dict[str, int]:
        rows = self.session.execute(sa.select(Flow.step, sa.func.count()).group_by(Flow.step))
        return {step: int(count) for step, count in rows}

    # -- records and submissions -----------------------------------------------------------

    def add_record(self, record: FlowRecord) -> None:
        insert_now(self.session, record)

    def records_of(self, flow_id: str) -> list[FlowRecord]:
        return list(
            self.session.scalars(
                sa.select(FlowRecord).where(FlowRecord.flow_id == flow_id).order_by(FlowRecord.id)
            )
        )

    def has_record(self, flow_id: str, action: str) -> bool:
        found = self.session.scalar(
            sa.select(FlowRecord.id)
            .where(FlowRecord.flow_id == flow_id, FlowRecord.action == action)
            .limit(1)
        )
        return found is not None

    def add_submission(self, submission: Submission) -> None:
        self.session.add(submission)

    def submissions_of(self, flow_id: str) -> list[Submission]:
        return list(
            self.session.scalars(
                sa.select(Submission)
                .where(Submission.flow_id == flow_id)
                .order_by(Submission.created_at, Submission.id)
            )
        )

    def latest_request(self, flow_id: str) -> Submission | None:
        return self.session.scalar(
            sa.select(Submission)
            .where(Submission.flow_id == flow_id, Submission.kind == "request")
            .order_by(Submission.created_at.desc(), Submission.id.desc())
            .limit(1)
        )


class AppealRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, appeal: Appeal) -> None:
        self.session.add(appeal)

    def get(self, appeal_id: str) -> Appeal | None:
        return self.session.get(Appeal, appeal_id)

    def lock(self, appeal_id: str) -> Appeal | None:
        return self.session.scalar(_locked(sa.select(Appeal).where(Appeal.id == appeal_id)))

    def latest_of_flow(self, flow_id: str) -> Appeal | None:
        return self.session.scalar(
            sa.select(Appeal)
            .where(Appeal.flow_id == flow_id)
            .order_by(Appeal.opened_at.desc(), Appeal.id.desc())
            .limit(1)
        )

    def page_open(self, page: int, page_size: int) -> Page:
        """Open appeals, the earliest due (so the overdue) first."""
        query = (
            sa.select(Appeal).where(Appeal.status == domain.OPEN).order_by(Appeal.due_at, Appeal.id)
        )
        return fetch_page(self.session, query, page, page_size)

    def count_open(self, now: dt.datetime) -> tuple[int, int]:
        """How many appeals are open, and how many of those are overdue."""
        row = self.session.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(Appeal.due_at <= now),
            ).where(Appeal.status == domain.OPEN)
        ).one()
        return int(row[0]), int(row[1])

    def order_of(self, appeal: Appeal) -> str:
        order_id = self.session.scalar(sa.select(Flow.order_id).where(Flow.id == appeal.flow_id))
        assert order_id is not None
        return order_id


class AttachmentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, attachment: Attachment) -> None:
        insert_now(self.session, attachment)

    def get(self, attachment_id: str) -> Attachment | None:
        return self.session.get(Attachment, attachment_id)

    def lock_many(self, attachment_ids: Iterable[str]) -> list[Attachment]:
        ids = sorted(set(attachment_ids))
        if not ids:
            return []
        return list(
            self.session.scalars(
                _locked(sa.select(Attachment).where(Attachment.id.in_(ids)).order_by(Attachment.id))
            )
        )

    def has_appeal_on_flow(self, flow_id: str) -> bool:
        found = self.session.scalar(sa.select(Appeal.id).where(Appeal.flow_id == flow_id).limit(1))
        return found is not None

    def get_by_storage_key(self, storage_key: str) -> Attachment | None:
        return self.session.scalar(
            sa.select(Attachment).where(Attachment.storage_key == storage_key)
        )


class MessageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def send(self, values: dict[str, Any]) -> bool:
        """A message, once per ``dedup_key``: True when it was new."""
        return insert_or_ignore(self.session, Message, values, unique=["dedup_key"])

    def page_of(
        self, account_id: str, *, page: int, page_size: int, unread: bool | None = None
    ) -> Page:
        query = sa.select(Message).where(Message.account_id == account_id)
        if unread is True:
            query = query.where(Message.read_at.is_(None))
        elif unread is False:
            query = query.where(Message.read_at.is_not(None))
        query = query.order_by(Message.created_at.desc(), Message.id.desc())
        return fetch_page(self.session, query, page, page_size)

    def unread_count(self, account_id: str) -> int:
        count = self.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.account_id == account_id, Message.read_at.is_(None))
        )
        return int(count or 0)

    def get(self, message_id: str) -> Message | None:
        return self.session.get(Message, message_id)


REPOSITORIES = {
    "flows": FlowRepository,
    "appeals": AppealRepository,
    "attachments": AttachmentRepository,
    "messages": MessageRepository,
    "request_keys": RequestKeys,
}
