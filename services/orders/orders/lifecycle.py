"""The life of a yearly/monthly subscription after its expiry, moved by a sweep.

    enabled --(expires_at)--> expired --(+ grace)--> frozen --(+ retention)--> released

with reminders (``orders.subscription.expiring``) 7 days before the expiry
(``before_expiry``) and 3 days before an expired subscription is frozen
(``before_freeze``), each sent once per period (``reminded_stage``). Pay-per-use and
one-time subscriptions have no expiry and never move here.

Each move is made in batches: a batch is claimed with ``FOR UPDATE SKIP LOCKED`` (two
replicas sweeping at once each take their own rows, so every subscription moves once),
written with one UPDATE, and committed with its events in one transaction (a crash
loses the batch whole, and the next sweep takes it again). ``run_due`` is the sweep:
``bench/expiry_sweep.py`` times it over 100,000 subscriptions.
"""

from __future__ import annotations

import datetime as dt
import logging

from mercato.clock import Clock
from mercato.terms import EXPIRED, FROZEN, RELEASED
from orders import domain, metrics, unsubscriptions
from orders.domain import (
    BEFORE_EXPIRY,
    BEFORE_FREEZE,
    EXPIRE,
    FREEZE,
    RELEASE_EXPIRED,
    REMIND_EXPIRY,
    REMIND_FREEZE,
    LifecyclePeriods,
)

_log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
# in this order: a subscription the clock moved far past its expiry goes through every
# move (each with its event) in one sweep; a reminder is sent only while its deadline is
# still ahead
MOVES = (EXPIRE, FREEZE, RELEASE_EXPIRED, REMIND_FREEZE, REMIND_EXPIRY)
_REACHES = {
    EXPIRE: EXPIRED,
    FREEZE: FROZEN,
    RELEASE_EXPIRED: RELEASED,
    REMIND_FREEZE: "reminded",
    REMIND_EXPIRY: "reminded",
}

GRACE_DAYS_KEY = "SUBSCRIPTION_GRACE_DAYS"
RETENTION_DAYS_KEY = "SUBSCRIPTION_RETENTION_DAYS"
DEFAULT_GRACE_DAYS = DEFAULT_RETENTION_DAYS = 15


def periods_from(config) -> LifecyclePeriods:
    """The grace and retention periods the settings give (days; fractions allowed)."""
    return LifecyclePeriods(
        grace=dt.timedelta(days=float(config.get(GRACE_DAYS_KEY, DEFAULT_GRACE_DAYS))),
        retention=dt.timedelta(days=float(config.get(RETENTION_DAYS_KEY, DEFAULT_RETENTION_DAYS))),
    )


def _apply(move: str, subscription, now: dt.datetime, periods: LifecyclePeriods) -> None:
    if move == EXPIRE:
        subscription.expire(now, periods)
    elif move == FREEZE:
        subscription.freeze(now, periods)
    elif move == RELEASE_EXPIRED:
        subscription.release(now, domain.RELEASED_EXPIRED)
    elif move == REMIND_FREEZE:
        subscription.remind(BEFORE_FREEZE, now, periods)
    else:
        subscription.remind(BEFORE_EXPIRY, now, periods)


def run_batch(uow, clock: Clock, periods: LifecyclePeriods, move: str, *, batch_size: int) -> int:
    """Claim, move and commit one batch of subscriptions due for ``move``; how many
    moved. Nothing is written if anything fails (the batch is rolled back whole)."""
    now = clock.now()
    try:
        due = uow.orders.claim_due(move, now, periods, limit=batch_size)
        if not due:
            uow.rollback()
            return 0
        for subscription in due:
            _apply(move, subscription, now, periods)
        uow.orders.write_lifecycle(move, due, now)
        if move == RELEASE_EXPIRED:  # their pending unsubscription requests closed
            unsubscriptions.close_pending(uow, due, domain.CLOSED_RELEASED, now)
        uow.emit_recorded_all(due)  # the batch's events with one statement
        uow.commit()
    except Exception:
        uow.rollback()
        raise
    metrics.SUBSCRIPTION_TRANSITIONS.labels(_REACHES[move]).inc(len(due))
    return len(due)


def run_due(
    uow,
    clock: Clock,
    periods: LifecyclePeriods | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Every move that is due now, batch after batch; how many moves were made. Then
    the subscriptions gauge is refreshed from one GROUP BY."""
    periods = periods or domain.DEFAULT_PERIODS
    moved = 0
    for move in MOVES:
        while True:
            count = run_batch(uow, clock, periods, move, batch_size=batch_size)
            moved += count
            if count < batch_size:
                break
    refresh_gauge(uow)
    return moved


def refresh_gauge(uow) -> None:
    counts = uow.orders.count_by_status()
    uow.rollback()
    for status in domain.SUBSCRIPTION_STATUSES_SHOWN:
        metrics.SUBSCRIPTIONS.labels(status).set(counts.get(status, 0))
