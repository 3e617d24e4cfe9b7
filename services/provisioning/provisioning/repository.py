"""Every statement provisioning's use cases run, behind a named method.

The use cases reach the tables only through these repositories (``uow.deliveries``,
``uow.seller_keys``, ``uow.deployments``), so they read as the flow and run on in-memory stand-ins in unit
tests (``provisioning.tests.fakes``). The order-paid event's path keeps its prebuilt
single-column read and its Core insert (``mercato.db``; docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mercato.db import insert_now, insert_or_ignore
from provisioning import deployments, domain
from provisioning.models import (
    CloudKey,
    CredentialReveal,
    Delivery,
    Deployment,
    InstanceAction,
    SellerInterfaceKey,
    SellerSigningKey,
)

_DELIVERIES = cast(sa.Table, Delivery.__table__)
_DELIVERY_OF_SUBSCRIPTION = sa.select(_DELIVERIES.c.id).where(
    _DELIVERIES.c.subscription_id == sa.bindparam("subscription_id")
)


def _leased_to_no_one(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)


def _values(row: Any) -> dict[str, Any]:
    """A new mapped row's column values, for a Core statement."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class DeliveryRepository:
    """Deliveries and the record of credential reveals.

    A delivery's step runs outside any transaction; the sweep finds its work with
    ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so replicas never claim the same row, and
    a lease (``lease_until``) keeps it a worker's between transactions. Every locked
    read refreshes the loaded object (``populate_existing``): another worker may have
    changed the row since this session last read it.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def exists_for(self, subscription_id: str) -> bool:
        """Whether the subscription's delivery is recorded already (a repeated event)."""
        found = self.session.scalar(_DELIVERY_OF_SUBSCRIPTION, {"subscription_id": subscription_id})
        return found is not None

    def add(self, delivery: Delivery) -> None:
        """A new delivery, written at once (it does not change in this transaction)."""
        insert_now(self.session, delivery)

    def lock_due(self, now: dt.datetime, limit: int) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due by ``now`` and leased to no one, the
        longest due first, locked; rows another worker holds are skipped."""
        return list(
            self.session.scalars(
                sa.select(Delivery)
                .where(
                    Delivery.status == domain.PENDING,
                    Delivery.next_attempt_at <= now,
                    _leased_to_no_one(now),
                )
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )

    def lock_due_release(self, now: dt.datetime) -> Delivery | None:
        """One failed delivery whose seller instance is due to be released and that no
        one has leased, locked; rows another worker holds are skipped."""
        return self.session.scalar(
            sa.select(Delivery)
            .where(
                Delivery.status == domain.FAILED,
                Delivery.release_due_at <= now,
                _leased_to_no_one(now),
            )
            .order_by(Delivery.release_due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )

    def lock(self, delivery_id: str) -> Delivery:
        """The delivery, locked until commit and read afresh."""
        delivery = self.session.scalar(
            sa.select(Delivery)
            .where(Delivery.id == delivery_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert delivery is not None
        return delivery

    def of_subscription(self, subscription_id: str, *, lock: bool = False) -> Delivery | None:
        """The subscription's delivery; ``lock`` holds its row until commit (and reads
        it afresh), so that concurrent reveals of one app are counted one after the
        other."""
        query = sa.select(Delivery).where(Delivery.subscription_id == subscription_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def of_subscriptions(
        self, subscription_ids: list[str], *, lock: bool = False
    ) -> dict[str, Delivery]:
        """The deliveries of these subscriptions, by subscription id, in one statement;
        ``lock`` holds their rows until commit (and reads them afresh)."""
        if not subscription_ids:
            return {}
        query = sa.select(Delivery).where(Delivery.subscription_id.in_(subscription_ids))
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return {delivery.subscription_id: delivery for delivery in self.session.scalars(query)}

    def reveals_since(self, account_id: str, since: dt.datetime) -> int:
        """How many passwords the account has revealed after ``since``."""
        count = self.session.scalar(
            sa.select(sa.func.count())
            .select_from(CredentialReveal)
            .where(
                CredentialReveal.account_id == account_id,
                CredentialReveal.revealed_at > since,
            )
        )
        return count or 0

    def add_reveal(self, reveal: CredentialReveal) -> None:
        self.session.add(reveal)


class SellerKeyRepository:
    """The sellers' interface credentials and license signing keys (sealed)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def interface_key(self, seller_account_id: str) -> SellerInterfaceKey | None:
        return self.session.get(SellerInterfaceKey, seller_account_id)

    def replace_interface_key(self, key: SellerInterfaceKey) -> None:
        """The seller's one pair, inserted or replaced in one statement (INSERT … ON
        CONFLICT DO UPDATE), so two concurrent first issues cannot collide: the last
        pair wins."""
        values = _values(key)
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(SellerInterfaceKey).values(**values)
        self.session.execute(
            insert.on_conflict_do_update(
                index_elements=[SellerInterfaceKey.seller_account_id],
                set_={
                    name: insert.excluded[name] for name in values if name != "seller_account_id"
                },
            )
        )

    def signing_key(self, seller_account_id: str) -> SellerSigningKey | None:
        return self.session.get(SellerSigningKey, seller_account_id)

    def add_signing_key_if_missing(self, key: SellerSigningKey) -> SellerSigningKey:
        """The seller's first signing key, unless another worker made one meanwhile:
        either way, answers the key that stands."""
        insert_or_ignore(self.session, SellerSigningKey, _values(key))
        standing = self.session.get(SellerSigningKey, key.seller_account_id, populate_existing=True)
        assert standing is not None
        return standing


class DeploymentRepository:
    """Deployments and the KMS key made in each buyer's cloud account.

    The timer finds due deployments with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and
    leases them (``lease_until``) for the cloud calls it makes outside any transaction,
    so two replicas never work on the same one and a crashed replica's lease runs out.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, deployment: Deployment) -> None:
        self.session.add(deployment)
        self.session.flush()

    def of_order(self, order_id: str, *, lock: bool = False) -> Deployment | None:
        query = sa.select(Deployment).where(Deployment.order_id == order_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def of_subscription(self, subscription_id: str, *, lock: bool = False) -> Deployment | None:
        query = sa.select(Deployment).where(Deployment.subscription_id == subscription_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def get(self, deployment_id: str, *, lock: bool = False) -> Deployment | None:
        query = sa.select(Deployment).where(Deployment.id == deployment_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def lock(self, deployment_id: str) -> Deployment:
        """The deployment, locked until commit and read afresh."""
        deployment = self.get(deployment_id, lock=True)
        assert deployment is not None
        return deployment

    def lock_due(self, now: dt.datetime, limit: int) -> list[Deployment]:
        """Up to ``limit`` deployments being worked on (creating, compensating,
        releasing), due by ``now`` and leased to no one, the longest due first, locked;
        rows another worker holds are skipped."""
        return list(
            self.session.scalars(
                sa.select(Deployment)
                .where(
                    Deployment.status.in_(deployments.WORKED),
                    Deployment.next_attempt_at <= now,
                    sa.or_(Deployment.lease_until.is_(None), Deployment.lease_until < now),
                )
                .order_by(Deployment.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )

    def of_subscriptions(
        self, subscription_ids: list[str], *, lock: bool = False
    ) -> dict[str, Deployment]:
        """The deployments of these subscriptions, by subscription id, in one statement."""
        if not subscription_ids:
            return {}
        query = sa.select(Deployment).where(Deployment.subscription_id.in_(subscription_ids))
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found = self.session.scalars(query)
        return {str(deployment.subscription_id): deployment for deployment in found}

    def cloud_key(self, account_id: str) -> CloudKey | None:
        return self.session.get(CloudKey, account_id, populate_existing=True)

    def replace_cloud_key(self, account_id: str, key_id: str) -> None:
        """The account's key was deleted in the cloud: the new one replaces it."""
        self.session.execute(
            sa.update(CloudKey).where(CloudKey.account_id == account_id).values(key_id=key_id)
        )

    def add_cloud_key_if_missing(self, key: CloudKey) -> CloudKey:
        """The account's first KMS key, unless another worker recorded one meanwhile:
        either way, answers the key that stands."""
        insert_or_ignore(self.session, CloudKey, _values(key))
        standing = self.session.get(CloudKey, key.account_id, populate_existing=True)
        assert standing is not None
        return standing


_ACTIONS = cast(sa.Table, InstanceAction.__table__)
_EARLIER = _ACTIONS.alias("earlier")


class InstanceActionRepository:
    """The queue of instance actions (``provisioning.instance_actions``).

    Built for sweeps of thousands: actions are added in one INSERT … ON CONFLICT DO
    NOTHING, claimed a batch per statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
    on the partial index of pending rows), leased in one UPDATE and finished in one
    executemany UPDATE.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_all(self, rows: list[dict[str, Any]]) -> None:
        """New actions; one whose (cause_event_id, kind) is recorded already (a
        redelivered event) is skipped. A row without ``occurred_at`` (the time of
        orders' move) is taken to have moved when it was queued (``created_at``)."""
        if not rows:
            return
        rows = [{**row, "occurred_at": row.get("occurred_at") or row["created_at"]} for row in rows]
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        self.session.execute(
            dialect.insert(_ACTIONS).on_conflict_do_nothing(
                index_elements=["cause_event_id", "kind"]
            ),
            rows,
        )

    def lock_due(self, now: dt.datetime, limit: int) -> list[InstanceAction]:
        """Up to ``limit`` due actions leased to no one, each the oldest unfinished
        action of its subscription in the order of orders' moves (``occurred_at``, then
        ``seq``: a later one waits for it, even while it waits for its retry), the
        longest due first, locked; rows another worker holds are skipped."""
        earlier_pending = sa.exists().where(
            _EARLIER.c.subscription_id == InstanceAction.subscription_id,
            _EARLIER.c.status == domain.ACTION_PENDING,
            sa.or_(
                _EARLIER.c.occurred_at < InstanceAction.occurred_at,
                sa.and_(
                    _EARLIER.c.occurred_at == InstanceAction.occurred_at,
                    _EARLIER.c.seq < InstanceAction.seq,
                ),
            ),
        )
        return list(
            self.session.scalars(
                sa.select(InstanceAction)
                .where(
                    InstanceAction.status == domain.ACTION_PENDING,
                    InstanceAction.next_attempt_at <= now,
                    sa.or_(InstanceAction.lease_until.is_(None), InstanceAction.lease_until < now),
                    ~earlier_pending,
                )
                .order_by(InstanceAction.next_attempt_at, InstanceAction.seq)
                .limit(limit)
                .with_for_update(skip_locked=True, of=InstanceAction)
                .execution_options(populate_existing=True)
            )
        )

    def moves_of(self, subscription_id: str) -> list[sa.Row]:
        """Every action recorded for the subscription (any status): seq, kind, status,
        occurred_at, cause_event_id, payload. The caller holds the subscription's
        delivery row, so no other enqueue adds to them meanwhile."""
        return list(
            self.session.execute(
                sa.select(
                    _ACTIONS.c.seq,
                    _ACTIONS.c.kind,
                    _ACTIONS.c.status,
                    _ACTIONS.c.occurred_at,
                    _ACTIONS.c.cause_event_id,
                    _ACTIONS.c.payload,
                ).where(_ACTIONS.c.subscription_id == subscription_id)
            )
        )

    def supersede(self, seqs: list[int], *, reason: str, now: dt.datetime) -> list[sa.Row]:
        """These actions, if still pending, leased to no one and not held by another
        worker (one being claimed or finished is left to run: it comes first anyway),
        end superseded, never run; answers those that did (seq, kind, payload). The
        rows are taken with SKIP LOCKED: an enqueue never waits on an action's row while
        holding a delivery's (the sweep's finish holds them the other way round)."""
        if not seqs:
            return []
        free = list(
            self.session.scalars(
                sa.select(_ACTIONS.c.seq)
                .where(
                    _ACTIONS.c.seq.in_(seqs),
                    _ACTIONS.c.status == domain.ACTION_PENDING,
                    sa.or_(_ACTIONS.c.lease_until.is_(None), _ACTIONS.c.lease_until < now),
                )
                .with_for_update(skip_locked=True)
            )
        )
        if not free:
            return []
        return list(
            self.session.execute(
                sa.update(_ACTIONS)
                .where(_ACTIONS.c.seq.in_(free))
                .values(
                    status=domain.ACTION_SUPERSEDED,
                    last_error=reason[:2000],
                    updated_at=now,
                    finished_at=now,
                )
                .returning(_ACTIONS.c.seq, _ACTIONS.c.kind, _ACTIONS.c.payload)
            )
        )

    def lease(self, seqs: list[int], until: dt.datetime) -> None:
        """The claimed actions are this worker's until ``until``."""
        if seqs:
            self.session.execute(
                sa.update(_ACTIONS).where(_ACTIONS.c.seq.in_(seqs)).values(lease_until=until)
            )

    def lock_leased(self, seqs: list[int], lease_until: dt.datetime) -> set[int]:
        """Which of these actions are still pending under this very lease (no other
        worker took them over after it ran out), locked until commit."""
        if not seqs:
            return set()
        return set(
            self.session.scalars(
                sa.select(_ACTIONS.c.seq)
                .where(
                    _ACTIONS.c.seq.in_(seqs),
                    _ACTIONS.c.status == domain.ACTION_PENDING,
                    _ACTIONS.c.lease_until == lease_until,
                )
                .with_for_update()
            )
        )

    def finish(
        self,
        seqs: list[int],
        *,
        status: str,
        next_attempt_at: dt.datetime | None,
        last_error: str | None,
        now: dt.datetime,
    ) -> None:
        """One outcome of these actions' attempts, in one UPDATE (the use case groups a
        batch's outcomes, so a sweep of a thousand alike takes one statement): one more
        attempt, the lease ended; finished unless still pending (then due again at
        ``next_attempt_at``)."""
        if not seqs:
            return
        values: dict[str, Any] = {
            "status": status,
            "attempts": _ACTIONS.c.attempts + 1,
            "lease_until": None,
            "last_error": last_error,
            "updated_at": now,
        }
        if status == domain.ACTION_PENDING:
            values["next_attempt_at"] = next_attempt_at
        else:
            values["finished_at"] = now
        self.session.execute(sa.update(_ACTIONS).where(_ACTIONS.c.seq.in_(seqs)).values(**values))

    def of_subscription(self, subscription_id: str) -> list[InstanceAction]:
        """A subscription's actions in the order they run (orders' moves')."""
        return list(
            self.session.scalars(
                sa.select(InstanceAction)
                .where(InstanceAction.subscription_id == subscription_id)
                .order_by(InstanceAction.occurred_at, InstanceAction.seq)
                .execution_options(populate_existing=True)
            )
        )

    def pending_by_kind(self) -> dict[str, int]:
        rows = self.session.execute(
            sa.select(_ACTIONS.c.kind, sa.func.count())
            .where(_ACTIONS.c.status == domain.ACTION_PENDING)
            .group_by(_ACTIONS.c.kind)
        )
        return {kind: int(count) for kind, count in rows}

    def oldest_pending(self) -> dt.datetime | None:
        """When the oldest pending action was queued (None: none is)."""
        return cast(
            dt.datetime | None,
            self.session.scalar(
                sa.select(sa.func.min(InstanceAction.created_at)).where(
                    InstanceAction.status == domain.ACTION_PENDING
                )
            ),
        )
