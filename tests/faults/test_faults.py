"""The fault suite: a stream of purchases (balance and card, SaaS and license) through
the gateway while one thing goes wrong, then the count of what was lost or done twice
(tests/faults/checker.py). Every count must be zero.

Run with ``make faults``; it prints the table of counts at the end.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from mercato.topology import PROCESSES
from tests.faults.conftest import assert_nothing_went_wrong, finish
from tests.faults.workload import BALANCE, CARD, SAAS, SLOW_CARD, Stream, send

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

# how long a stopped service stays stopped: the two minutes (a wall-time fault
# by nature: heartbeats and the broker's view of a silent consumer)
STOPPED_SECONDS = float(os.environ.get("FAULTS_STOPPED_SECONDS", "120"))
OPERATOR = {"email": "operator@demo.mercato", "password": "operator-demo-pass"}


def advance_clock(system, seconds: int) -> None:
    """Every service's test clock moves ``seconds`` ahead (POST /v1/admin/clock)."""
    token = send(system, "POST", "/v1/auth/tokens", OPERATOR).json()["token"]
    moved = send(
        system,
        "POST",
        "/v1/admin/clock",
        {"advance_seconds": seconds},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert moved.status_code == 200, moved.text


def test_no_fault(system):
    """The control: the same stream with nothing going wrong counts zero everywhere."""
    stream = Stream(system, count=8).prepare().start()
    assert_nothing_went_wrong(finish(system, stream, "no fault"))


def test_rabbitmq_restarted_mid_stream(system):
    """Stopped cleanly once, then killed (SIGKILL) once, each time while purchases are
    in flight, one of them a card payment waiting on a slow provider (billing's worker
    busy, orders' waiting for it), and started again on the same data."""
    stream = Stream(system, count=20, concurrency=6, slow_cards=(2, 11)).prepare()
    stream.start(spacing=0.4)
    for i, crash in ((2, False), (11, True)):
        stream.wait_until(lambda s, i=i: s.purchases[i].paying)
        time.sleep(1.5)  # billing has asked the provider and waits for its answer
        system.rabbit.restart(crash=crash)
    stream.join()
    advance_clock(system, 120)  # billing's recovery settles what is still pending
    assert_nothing_went_wrong(finish(system, stream, "RabbitMQ restarted"))


def test_postgresql_restarted_mid_stream(system):
    stream = Stream(system, count=16).prepare().start(spacing=0.5)
    stream.wait_until(lambda s: s.done() >= 3)
    # down long enough to be noticed (a failover takes seconds), back on the same data
    system.postgres.restart(down_seconds=5)
    assert_nothing_went_wrong(finish(system, stream, "PostgreSQL restarted"))


@pytest.mark.parametrize("name", [process.name for process in PROCESSES])
def test_process_killed_mid_purchase_and_mid_delivery(system, name):
    """SIGKILL while purchases are being placed and paid, and again just after the last
    payment, while its deliveries and events are under way. `make run` must start the
    process again; the purchases must end as if nothing happened."""
    stream = Stream(system, count=8).prepare().start(spacing=0.3)
    stream.wait_until(lambda s: s.in_flight() >= 1 and s.done() >= 1)
    old = system.kill(name)
    restarted = system.wait_restarted(name, old)
    stream.wait_until(lambda s: s.done() == len(s.purchases), timeout=120)
    if restarted:
        old = system.kill(name)
        system.wait_restarted(name, old)
    verdict = finish(system, stream, f"SIGKILL {name}")
    if not restarted:
        verdict.details.append(f"make run did not start {name} again")
    assert_nothing_went_wrong(verdict)
    assert restarted, f"make run did not start {name} again"


def test_a_service_stopped_while_its_events_pile_up(system):
    """provisioning frozen (SIGSTOP) while orders are paid: their events wait in its
    queue, and when it runs again every order is delivered once."""
    stream = Stream(system, count=10, kinds=(SAAS,)).prepare()
    pid = system.kill("provisioning", signal.SIGSTOP)
    try:
        stream.start(spacing=0.5)
        stream.wait_until(lambda s: s.done() == len(s.purchases), timeout=STOPPED_SECONDS)
        time.sleep(max(0.0, STOPPED_SECONDS - (time.monotonic() - stream.started_at)))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_nothing_went_wrong(finish(system, stream, "provisioning stopped 2 min"))


def test_a_slow_card_provider_answers_pending_and_settles_once(system):
    """The provider answers later than billing waits: the pay request answers the
    documented pending payment (200, the order unpaid), never a 503, and billing's
    recovery settles each charge once (the test clock moves past its grace)."""
    stream = Stream(system, count=4, kinds=(SAAS,), methods=(CARD,), card_number=SLOW_CARD)
    stream.prepare().start(spacing=0.2)
    stream.join()
    pay_answers = [p.pay_seen for p in stream.purchases]
    advance_clock(system, 120)
    verdict = finish(system, stream, "slow card provider")
    unavailable = [seen for seen in pay_answers if any(s >= 500 or s == 0 for s in seen)]
    if unavailable:
        verdict.details.append(f"pay answered 5xx/no answer before pending: {unavailable}")
    assert_nothing_went_wrong(verdict)
    assert not unavailable, f"a slow card answered 503 instead of pending: {pay_answers}"
    assert all(
        p.pay_answer and p.pay_answer["status"] in ("unpaid", "paid") for p in stream.purchases
    )


def test_a_seller_endpoint_that_hangs(system):
    """The demo seller's application stops answering (it holds every request): its
    orders are not delivered, the delivery window passes (test clock), and each order is
    cancelled and refunded exactly once; the license purchases are not held up."""
    seller = f"http://{system.seller_address}/_faults"
    requests.post(seller, json={"fault": "hang"}, timeout=5).raise_for_status()
    try:
        stream = Stream(system, count=8, methods=(BALANCE, CARD)).prepare().start(spacing=0.3)
        stream.join()
        time.sleep(5)  # deliveries tried and timed out at least once
        advance_clock(system, 700)  # past the delivery window (600 s here)
        verdict = finish(system, stream, "seller endpoint hangs")
    finally:
        requests.post(seller, json={"fault": "none"}, timeout=5)
    assert_nothing_went_wrong(verdict)
