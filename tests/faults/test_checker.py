"""The fault suite's checker counts what it should from the records alone (no system:
this module runs with every other test)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.faults.checker import COUNTS, Observed, count
from tests.faults.workload import Purchase

ORDER = "ord_1"
APP = "sub_1"


def purchase(**changes) -> Purchase:
    buyer = SimpleNamespace(account_id="acc_1", email="b@example.com", top_up_tokens=["tok_t"])
    bought = Purchase(buyer, "saas", "credit_card", order_id=ORDER, placed=True, paid=True)
    bought.card_token = "tok_1"
    for name, value in changes.items():
        setattr(bought, name, value)
    return bought


def order(status: str = "completed", paid: bool = True, id_: str = ORDER) -> dict:
    return {"id": id_, "status": status, "paid_at": "2026-12-03T12:00:00+00:00" if paid else None}


def movement(kind: str, amount: int = 1500, order_id: str = ORDER) -> dict:
    return {"kind": kind, "order_id": order_id, "amount": {"amount": amount, "currency": "USD"}}


def event(type_: str, subject: str = ORDER, id_: str | None = None) -> dict:
    return {"id": id_ or f"evt-{type_}-{subject}", "type": type_, "subject": subject}


EVERY_EVENT = [
    event("orders.order.created"),
    event("orders.order.paid"),
    event("orders.order.completed"),
    event("orders.subscription.created", APP),
    event("orders.subscription.activated", APP),
]

CANCELLED = [*EVERY_EVENT[:2], *EVERY_EVENT[3:], event("orders.order.cancelled")]

CANCELLED = [*EVERY_EVENT[:2], *EVERY_EVENT[3:], event("orders.order.cancelled")]


def observed(**changes) -> Observed:
    seen = Observed(
        orders={"acc_1": [order()]},
        movements={"acc_1": [movement("payment")]},
        apps={"acc_1": [{"id": APP, "order_id": ORDER, "status": "enabled"}]},
        received=list(EVERY_EVENT),
        provider={
            "charges": [
                {"id": "ch_1", "source": "tok_1", "status": "succeeded", "amount": 1500},
                {"id": "ch_t", "source": "tok_t", "status": "succeeded", "amount": 90000},
            ],
            "refunds": [],
        },
    )
    for name, value in changes.items():
        setattr(seen, name, value)
    return seen


def failing(verdict) -> dict[str, int]:
    return {name: n for name, n in verdict.counts.items() if n}


def test_a_purchase_that_went_right_counts_nothing():
    verdict = count([purchase()], observed())
    assert verdict.counts == dict.fromkeys(COUNTS, 0), verdict.details


def test_a_redelivery_of_the_same_event_is_not_a_duplicate():
    again = {**EVERY_EVENT[1], "redelivered": True}
    assert failing(count([purchase()], observed(received=[*EVERY_EVENT, again]))) == {}


@pytest.mark.parametrize(
    ("changes", "bought", "expected"),
    [
        (
            {"orders": {"acc_1": []}, "movements": {"acc_1": []}, "provider": None},
            {},
            {"orders lost": 1},
        ),
        (
            {
                "orders": {"acc_1": [order("unpaid", paid=False)]},
                "movements": {"acc_1": []},
                "provider": None,
            },
            {},
            {"orders lost": 1},
        ),
        (
            {
                "orders": {"acc_1": [order(), order("unpaid", paid=False, id_="ord_2")]},
                "received": [*EVERY_EVENT, event("orders.order.created", "ord_2")],
            },
            {},
            {"orders duplicated": 1},
        ),
        (
            {"movements": {"acc_1": [movement("payment"), movement("payment")]}},
            {},
            {"payments duplicated": 1},
        ),
        (
            {"orders": {"acc_1": [order("cancelled")]}, "received": CANCELLED},
            {},
            {"refunds missing": 2},
        ),
        (
            {
                "orders": {"acc_1": [order("cancelled")]},
                "received": CANCELLED,
                "movements": {
                    "acc_1": [movement("payment"), movement("refund"), movement("refund")]
                },
                "provider": None,
            },
            {},
            {"refunds duplicated": 1},
        ),
        ({"received": EVERY_EVENT[:1] + EVERY_EVENT[2:]}, {}, {"events lost": 1}),
        (
            {"received": [*EVERY_EVENT, event("orders.order.paid", id_="evt-other")]},
            {},
            {"events duplicated": 1},
        ),
        ({}, {"error": "POST /v1/orders/ord_1/pay: [503, 503]", "paid": False}, {"buys failed": 1}),
    ],
    ids=[
        "order answered 201 missing",
        "order answered paid unpaid",
        "two orders from one key",
        "two ledger payments",
        "cancelled and not refunded (ledger and provider)",
        "refunded twice",
        "event never received",
        "one fact under two event ids",
        "purchase never answered",
    ],
)
def test_each_thing_that_went_wrong_is_counted(changes, bought, expected):
    verdict = count([purchase(**bought)], observed(**changes))
    assert failing(verdict) == expected, verdict.details


def test_the_provider_charging_one_card_token_twice_is_a_duplicate_payment():
    charges = [
        {"id": "ch_1", "source": "tok_1", "status": "succeeded", "amount": 1500},
        {"id": "ch_2", "source": "tok_1", "status": "succeeded", "amount": 1500},
        {"id": "ch_3", "source": "tok_1", "status": "declined", "amount": 1500},
    ]
    verdict = count([purchase()], observed(provider={"charges": charges, "refunds": []}))
    assert failing(verdict) == {"payments duplicated": 1}, verdict.details


def test_a_death_is_a_process_that_exited_unasked(tmp_path):
    from tests.faults.system import FaultySystem

    system = FaultySystem.__new__(FaultySystem)
    system.log_path = tmp_path / "make-run.log"
    system.log_path.write_text(
        "11:59:59 billing      | an earlier test's line\n"
        "12:00:00 system       | orders stopped (rc=-9)\n"  # the suite's SIGKILL
        "12:00:00 system       | orders exited unasked; restarting it in 1s\n"
        "12:00:01 system       | orders started (pid=2)\n"
        "12:00:05 system       | billing stopped (rc=1)\n"  # died by itself
        "12:00:05 system       | sending SIGTERM to catalog (pid 3)\n"
        "12:00:06 system       | catalog stopped (rc=0)\n"  # make run stopped it
        "12:00:07 system       | SIGINT received\n"
        "12:00:08 system       | gateway stopped (rc=0)\n"  # the suite stopped make run
        "mercato | migrated 7 databases\n"
        "12:01:00 system       | gateway stopped (rc=1)\n"  # died by itself
    )
    system.log_offset = len("11:59:59 billing      | an earlier test's line\n")
    system.killed_names = ["orders"]

    assert system.deaths() == ["billing (rc=1)", "gateway (rc=1)"]
