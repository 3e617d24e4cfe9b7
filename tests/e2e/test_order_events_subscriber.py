"""End to end: a subscriber in another team, the example program in
examples/order-events-subscriber, receives the order events of real purchases made
through the gateway, each exactly once in effect, including the events published before
it first ran or while it was stopped, because its queue was declared ahead of time
(mercato_subscribers, docs/events.md "Late subscribers").

The events a purchase must produce are derived from the purchase (its order and the
purchased apps the API lists), not from what the subscriber received. The ``system``
fixture is in conftest.py.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from kombu import Connection, Producer

from mercato.config import ROOT
from mercato.contracts import asyncapi, contract_for
from mercato_subscribers import declare_queues, parse_queues
from mercato_testing.interface import wait_for
from tests.e2e.parties import card

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "order-events-subscriber" / "subscriber.py"
SCHEMAS = ROOT / "docs" / "asyncapi.yaml"
ROUTING_KEYS = ("orders.order.*", "orders.subscription.*")
WAIT_SECONDS = 45.0
# after the expected events arrived, how long a duplicate gets to show up
SETTLE_SECONDS = 2.0


# -- the broker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def amqp_uri(system) -> str:
    """The system's AMQP URI, its vhost included."""
    return system.amqp_uri


def declare_ahead(amqp_uri: str, queue: str, *, quorum: bool = False) -> None:
    """Register the subscriber's queue as EVENT_SUBSCRIBER_QUEUES would."""
    configured = [
        {
            "queue": queue,
            "bindings": [{"exchange": "orders.events", "routing_key": key} for key in ROUTING_KEYS],
            "quorum": quorum,
        }
    ]
    declare_queues(amqp_uri, parse_queues(json.dumps(configured)))


def waiting_in(amqp_uri: str, queue: str) -> int:
    """Messages ready in ``queue`` (none is in a consumer's hands while none runs)."""
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


def wait_until(condition, what: str, timeout: float = WAIT_SECONDS, context=None):
    return wait_for(condition, what, timeout, interval=0.2, context=context)


# -- the subscriber program ----------------------------------------------------------------


class SubscriberProgram:
    """The example program on one queue and one SQLite file, started and stopped as a
    separate process, as often as a test likes."""

    def __init__(self, directory: Path, amqp_uri: str, queue: str) -> None:
        self.directory = directory
        self.amqp_uri = amqp_uri
        self.queue = queue
        self.db = directory / f"{queue}.sqlite3"
        self.runs: list[tuple[subprocess.Popen, Path, Path]] = []

    @property
    def process(self) -> subprocess.Popen:
        return self.runs[-1][0]

    def start(self, *extra: str) -> subprocess.Popen:
        assert not self.runs or self.process.poll() is not None, "already running"
        run = len(self.runs)
        out = self.directory / f"{self.queue}.{run}.out"
        err = self.directory / f"{self.queue}.{run}.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(EXAMPLE),
                    "--queue",
                    self.queue,
                    "--db",
                    str(self.db),
                    "--schemas",
                    str(SCHEMAS),
                    *extra,
                ],
                env={**os.environ, "AMQP_URI": self.amqp_uri},
                stdout=stdout,
                stderr=stderr,
            )
        self.runs.append((process, out, err))
        wait_until(
            lambda: (
                any(r["message"] == "consuming" for r in self.logs(run))
                or process.poll() is not None
            ),
            f"{self.queue} to consume",
        )
        return process

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def kill_all(self) -> None:
        for process, _out, _err in self.runs:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def _lines(self, path: Path) -> list[dict]:
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def printed(self) -> list[dict]:
        """The JSON lines every run printed on stdout: one per processed event."""
        return [line for _process, out, _err in self.runs for line in self._lines(out)]

    def logs(self, run: int | None = None) -> list[dict]:
        runs = self.runs if run is None else [self.runs[run]]
        return [line for _process, _out, err in runs for line in self._lines(err)]

    def table(self, name: str) -> list[dict]:
        """Rows of the program's SQLite file, read as another process would."""
        if not self.db.exists():
            return []
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(f"SELECT * FROM {name} ORDER BY seq")]
        except sqlite3.OperationalError:  # the program has not created its tables yet
            return []
        finally:
            connection.close()

    def events_about(self, order: dict) -> list[tuple[str, str, str]]:
        """(event id, type, subject) of every event processed about ``order``, as often
        as it was processed."""
        rows = []
        for row in self.table("order_events"):
            envelope = json.loads(row["envelope"])
            if envelope["data"].get("order_id") == order["id"]:
                rows.append((row["event_id"], row["type"], row["subject"]))
        return rows

    def dump(self, what: str = "events") -> list[dict]:
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), "--db", str(self.db), "--dump", what],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def subscriber_program(tmp_path, amqp_uri):
    programs: list[SubscriberProgram] = []

    def make(queue: str) -> SubscriberProgram:
        program = SubscriberProgram(tmp_path, amqp_uri, queue)
        programs.append(program)
        return program

    yield make
    for program in programs:
        program.kill_all()


def new_queue(label: str) -> str:
    return f"e2e.{label}.{uuid.uuid4().hex[:8]}"


# -- a purchase through the gateway ---------------------------------------------------------


class Buyer:
    """A new buyer with a balance, who buys the demo backup product and pays."""

    def __init__(self, system) -> None:
        gateway = self.gateway = system.gateway
        self.context = lambda: system.log()[-4000:]
        email = f"subscriber-e2e-{uuid.uuid4().hex[:8]}@example.com"
        password = "a long e2e password"
        created = requests.post(
            f"{gateway}/v1/accounts",
            json={"name": "E2E Buyer", "email": email, "password": password, "type": "buyer"},
            timeout=15,
        )
        assert created.status_code == 201, created.text
        issued = requests.post(
            f"{gateway}/v1/auth/tokens", json={"email": email, "password": password}, timeout=15
        )
        assert issued.status_code == 201, issued.text
        self.headers = {"Authorization": f"Bearer {issued.json()['token']}"}
        topped = self.post(
            "/v1/billing/top-ups",
            {"amount": {"amount": 100_000, "currency": "USD"}, "card": card(system)},
        )
        assert topped.status_code == 201, topped.text

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(
            f"{self.gateway}{path}",
            json=body,
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
            timeout=15,
        )

    def place_order(self) -> dict:
        found = wait_until(
            lambda: requests.get(
                f"{self.gateway}/v1/products", params={"q": "backup"}, timeout=15
            ).json()["items"],
            "the demo products to be published",
            context=self.context,
        )
        product = requests.get(f"{self.gateway}/v1/products/{found[0]['id']}", timeout=15).json()
        placed = self.post(
            "/v1/orders",
            {
                "product_id": product["id"],
                "specification_id": product["specifications"][0]["id"],
                "billing_mode": "yearly_monthly",
                "period": {"unit": "month", "count": 1},
                "quantity": 1,
                "accept_terms": True,
            },
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "unpaid"
        return placed.json()

    def pay(self, order: dict) -> None:
        paid = self.post(f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"})
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "paid"

    def order(self, order_id: str) -> dict:
        found = requests.get(
            f"{self.gateway}/v1/orders/{order_id}", headers=self.headers, timeout=15
        )
        assert found.status_code == 200, found.text
        return found.json()

    def purchased_apps_of(self, order_id: str) -> list[dict]:
        apps = requests.get(
            f"{self.gateway}/v1/purchased-apps", headers=self.headers, timeout=15
        ).json()["items"]
        return [app for app in apps if app["order_id"] == order_id]


Fact = tuple[str, str]  # (event type, subject)


def implied_events(buyer: Buyer, order_id: str) -> set[Fact]:
    """The order events the purchase's state, as the API shows it now, says were
    announced: placed; paid, with a subscription created per order line; each purchased
    app delivered and enabled; the order completed or cancelled."""
    order = buyer.order(order_id)
    apps = buyer.purchased_apps_of(order_id)
    facts = {("orders.order.created", order_id)}
    if order["paid_at"] is not None:
        assert len(apps) == len(order["lines"]), apps
        facts.add(("orders.order.paid", order_id))
        facts |= {("orders.subscription.created", app["id"]) for app in apps}
    facts |= {
        ("orders.subscription.activated", app["id"]) for app in apps if app["status"] == "enabled"
    }
    if order["status"] == "completed":
        facts.add(("orders.order.completed", order_id))
    if order["status"] == "cancelled":
        facts.add(("orders.order.cancelled", order_id))
    return facts


def wait_until_published(buyer: Buyer, order: dict, amqp_uri: str, queue: str) -> set[Fact]:
    """Wait until ``queue`` (with no program consuming it) holds at least as many
    messages as the purchase's state implies events, and neither has changed for a
    while: the flow is over. Answers those events. (At least: an event of an earlier
    test's order may land in the queue too; the program's checks go by order.)"""
    seen: list = []

    def settled():
        now = (implied_events(buyer, order["id"]), waiting_in(amqp_uri, queue))
        if now[1] < len(now[0]) or not seen or seen[0][1] != now:
            seen[:] = [(time.monotonic(), now)]
            return None
        return now[0] if time.monotonic() - seen[0][0] >= SETTLE_SECONDS else None

    return wait_until(settled, f"the events of {order['id']} to wait in {queue}")


def assert_each_exactly_once(program: SubscriberProgram, buyer: Buyer, order: dict) -> set[Fact]:
    """Wait until the program has processed every event the purchase implies, give
    duplicates time to show up, then check it did the work of each exactly once and of
    nothing else about the order. Answers the events."""

    def received() -> set[Fact]:
        return {(type_, subject) for _id, type_, subject in program.events_about(order)}

    def in_step() -> bool:
        return received() == implied_events(buyer, order["id"])

    wait_until(in_step, f"{program.queue} to receive the events of {order['id']}")
    time.sleep(SETTLE_SECONDS)
    wait_until(in_step, f"{program.queue} to receive the events of {order['id']}")
    expected = implied_events(buyer, order["id"])
    processed = program.events_about(order)
    by_fact = collections.Counter((type_, subject) for _id, type_, subject in processed)
    assert by_fact == dict.fromkeys(expected, 1), by_fact
    by_id = collections.Counter(event_id for event_id, _type, _subject in processed)
    assert set(by_id.values()) == {1}, by_id
    printed = collections.Counter(line["id"] for line in program.printed())
    assert all(printed[event_id] == 1 for event_id in by_id), printed
    assert program.table("parked") == []
    return expected


# -- the tests ---------------------------------------------------------------------------


def test_subscriber_receives_every_event_of_a_purchase_exactly_once(
    system, amqp_uri, subscriber_program
):
    queue = new_queue("purchase")
    declare_ahead(amqp_uri, queue)
    program = subscriber_program(queue)
    program.start()
    buyer = Buyer(system)

    order = buyer.place_order()
    buyer.pay(order)

    received = assert_each_exactly_once(program, buyer, order)
    assert {type_ for type_, _subject in received} >= {
        "orders.order.created",
        "orders.order.paid",
        "orders.subscription.created",
    }
    # one line per event on stdout: id, type, version, subject, occurred_at
    line = next(line for line in program.printed() if line["subject"] == order["id"])
    assert set(line) == {"id", "type", "version", "subject", "occurred_at"}
    assert program.stop(signal.SIGTERM) == 0
    dumped = {(row["type"], row["subject"]) for row in program.dump()}
    assert received <= dumped


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_events_published_while_the_subscriber_is_down_arrive_after_its_restart_once(
    system, amqp_uri, subscriber_program, sig
):
    queue = new_queue(f"restart-{sig.name.lower()}")
    declare_ahead(amqp_uri, queue, quorum=True)
    program = subscriber_program(queue)
    program.start()
    buyer = Buyer(system)
    order = buyer.place_order()
    wait_until(
        lambda: program.events_about(order), "orders.order.created before the subscriber stops"
    )

    assert program.stop(sig) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    buyer.pay(order)
    # published while it was down: at least the order paid and its subscription created
    # wait in its queue (orders.order.created too, if the kill came before its ack)
    wait_until(lambda: waiting_in(amqp_uri, queue) >= 2, "the payment's events to wait")
    program.start()

    received = assert_each_exactly_once(program, buyer, order)
    assert ("orders.order.paid", order["id"]) in received
    assert len(program.runs) == 2


def test_a_crash_between_commit_and_ack_is_redelivered_and_recognised_as_a_duplicate(
    system, amqp_uri, subscriber_program
):
    queue = new_queue("crash")
    declare_ahead(amqp_uri, queue)
    program = subscriber_program(queue)
    buyer = Buyer(system)
    order = buyer.place_order()
    buyer.pay(order)
    wait_until_published(buyer, order, amqp_uri, queue)

    crashed = program.start("--crash-before-ack", "1")
    assert crashed.wait(timeout=30) == 70
    (first,) = program.table("order_events")  # its work was committed, its ack never sent
    program.start()

    assert_each_exactly_once(program, buyer, order)
    duplicates = [r for r in program.logs(1) if r["message"] == "duplicate"]
    assert [(r["id"], r["redelivered"]) for r in duplicates] == [(first["event_id"], True)]


def test_a_queue_declared_ahead_gets_the_events_published_before_its_program_first_ran(
    system, amqp_uri, subscriber_program
):
    declared = subscriber_program(new_queue("late"))
    declare_ahead(amqp_uri, declared.queue)
    buyer = Buyer(system)
    order = buyer.place_order()
    buyer.pay(order)
    published = wait_until_published(buyer, order, amqp_uri, declared.queue)
    # the same program on a queue nobody declared ahead: it declares it when it starts
    undeclared = subscriber_program(new_queue("undeclared"))

    declared.start()
    undeclared.start()

    assert assert_each_exactly_once(declared, buyer, order) == published
    missed = {(type_, subject) for _id, type_, subject in undeclared.events_about(order)}
    assert not missed & published  # published before its queue existed: lost to it
    assert any(r["message"].startswith("declared the queue now") for r in undeclared.logs())


def test_a_message_that_breaks_the_schema_is_parked_and_the_subscriber_carries_on(
    system, amqp_uri, subscriber_program
):
    program = subscriber_program(new_queue("invalid"))
    declare_ahead(amqp_uri, program.queue)
    program.start()
    valid = asyncapi.example_payload(contract_for("orders.order.paid"))
    valid["id"] = uuid.uuid4().hex
    broken = {**valid, "id": uuid.uuid4().hex, "data": dict(valid["data"])}
    del broken["data"]["payment_id"]

    with Connection(amqp_uri) as connection:
        producer = Producer(connection.default_channel, auto_declare=False)
        for body in (b"not json", json.dumps(broken).encode(), json.dumps(valid).encode()):
            producer.publish(
                body,
                exchange="orders.events",
                routing_key="orders.order.paid",
                content_type="application/json",
                content_encoding="utf-8",
            )

    wait_until(
        lambda: [row["event_id"] for row in program.table("order_events")] == [valid["id"]],
        "the valid event to be processed",
    )
    parked = program.table("parked")
    assert [row["reason"].split(":")[0] for row in parked] == ["not JSON", "breaks its schema"]
    assert "data: 'payment_id' is a required property" in parked[1]["reason"]
    assert program.process.poll() is None  # still running
    assert [row["reason"] for row in program.dump("parked")] == [row["reason"] for row in parked]
