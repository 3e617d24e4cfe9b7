"""orders' copy of the accounts' enterprise projects, and the rows a move of
subscriptions to another project locks and writes (``uow.projects``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mercato.terms import RENEWAL, UNPAID, UPGRADE
from orders.models import EnterpriseProject, Order, Subscription

_PROJECTS = cast(sa.Table, EnterpriseProject.__table__)
_ORDERS = cast(sa.Table, Order.__table__)
_SUBSCRIPTIONS = cast(sa.Table, Subscription.__table__)
_PROJECT = sa.select(_PROJECTS).where(
    _PROJECTS.c.account_id == sa.bindparam("account_id"),
    _PROJECTS.c.project_id == sa.bindparam("project_id"),
)
# renewal and upgrade orders still to pay, no payment under way: a move takes them along
_WAITING_ORDERS = sa.and_(
    Order.status == UNPAID,
    Order.payment_started_at.is_(None),
    Order.type.in_((RENEWAL, UPGRADE)),
)


def project_row(account_id: str, project: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The copy's row of a project as iam-agency answers it (``get_enterprise_project``)
    or announces it (``EnterpriseProjectV1``); an answer without the newer fields is
    revision 0, so that any event wins over it."""
    return {
        "account_id": account_id,
        "project_id": project.get("enterprise_project_id") or project["id"],
        "name": project["name"],
        "type": project.get("type") or "commercial",
        "status": project.get("status") or "enabled",
        "revision": int(project.get("revision") or 0),
        "updated_at": _time(project.get("updated_at")) or now,
    }


def _time(value: Any) -> dt.datetime | None:
    """An ``updated_at`` as an RPC answer carries it (ISO text) or an event (a datetime)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the copy --

    def get(self, account_id: str, project_id: str) -> dict[str, Any] | None:
        """The account's project as the copy has it: ``{id, name, type, status,
        revision}``; None when the copy has not heard of it."""
        row = self.session.execute(
            _PROJECT, {"account_id": account_id, "project_id": project_id}
        ).first()
        if row is None:
            return None
        return {
            "id": row.project_id,
            "name": row.name,
            "type": row.type,
            "status": row.status,
            "revision": row.revision,
        }

    def keep(self, row: dict[str, Any]) -> bool:
        """Insert the project, or update it when ``row``'s revision is newer than the
        copy's; an older or repeated revision changes nothing. True when written."""
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        statement = insert(_PROJECTS).values(**row)
        changed = {
            key: value for key, value in row.items() if key not in ("account_id", "project_id")
        }
        written = self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[_PROJECTS.c.account_id, _PROJECTS.c.project_id],
                set_=changed,
                where=_PROJECTS.c.revision < row["revision"],
            )
        )
        return cast(sa.CursorResult, written).rowcount == 1

    def names(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``(account_id, project_id) -> name`` of those the copy has, in one SELECT."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = self.session.execute(
            sa.select(_PROJECTS.c.account_id, _PROJECTS.c.project_id, _PROJECTS.c.name).where(
                sa.tuple_(_PROJECTS.c.account_id, _PROJECTS.c.project_id).in_(wanted)
            )
        )
        return {(row.account_id, row.project_id): row.name for row in rows}

    # -- moves (orders.moves) --

    def subscriptions(self, subscription_ids: Sequence[str]) -> Sequence[Subscription]:
        """The subscriptions, not locked (what a move asks about before it locks)."""
        return self.session.scalars(
            sa.select(Subscription).where(Subscription.id.in_(subscription_ids))
        ).all()

    def lock_waiting_orders_of(self, subscription_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Lock the unpaid renewal and upgrade orders of the subscriptions that no
        payment is under way for, in id order: orders before subscriptions, as the pay
        path and auto-renewal lock them. ``(order_id, subscription_id)`` each."""
        rows = self.session.execute(
            sa.select(_ORDERS.c.id, _ORDERS.c.subscription_id)
            .where(Order.subscription_id.in_(subscription_ids), _WAITING_ORDERS)
            .order_by(_ORDERS.c.id)
            .with_for_update()
        )
        return [(row.id, row.subscription_id) for row in rows]

    def waiting_orders_of(self, subscription_ids: Sequence[str]) -> set[str]:
        """The ids of the subscriptions' waiting orders as committed now, not locked:
        a move asks once it holds the subscriptions whether one was placed while it
        waited for them."""
        return set(
            self.session.scalars(
                sa.select(_ORDERS.c.id).where(
                    Order.subscription_id.in_(subscription_ids), _WAITING_ORDERS
                )
            )
        )

    def lock_subscriptions(self, subscription_ids: Sequence[str]) -> Sequence[Subscription]:
        """The subscriptions read afresh with their lines, locked in id order (two
        moves of overlapping sets wait for each other, never deadlock)."""
        return (
            self.session.scalars(
                sa.select(Subscription)
                .where(Subscription.id.in_(subscription_ids))
                .order_by(Subscription.id)
                .with_for_update(of=_SUBSCRIPTIONS)
                .execution_options(populate_existing=True)
            )
            .unique()
            .all()
        )

    def move_waiting_orders(self, order_ids: Sequence[str], project_id: str, now) -> None:
        """The locked waiting orders of moved subscriptions are booked to ``project_id``
        when they are paid (their payment names the order's project)."""
        if order_ids:
            self.session.execute(
                _ORDERS.update()
                .where(_ORDERS.c.id.in_(order_ids))
                .values(enterprise_project_id=project_id, updated_at=now)
            )
