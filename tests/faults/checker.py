"""After the faults: let the system finish what it started, then count, as Jepsen's
checker would, what went wrong, from the services' own records (the orders and the
ledger through the API) and from what the subscriber received.

The counts (each must be zero):

- ``orders lost``: an order the client was answered 201 for that the system does not
  have, or one it was answered "paid" for that is not paid;
- ``orders duplicated``: orders of a buyer beyond one per ``Idempotency-Key`` it placed
  with (every buyer is new to its test);
- ``payments duplicated``: ledger payments of an order beyond the first; and, at the card
  provider (its own records, ``GET /sim/ledger`` of simulators/payments), succeeded
  charges of one purchase's card token (or one top-up's) beyond the first;
- ``refunds missing``: an order that is cancelled (or not paid, or unknown) while the
  ledger holds its payment unrefunded, or while the provider keeps its card's charge;
- ``refunds duplicated``: ledger refunds of an order beyond the first, or refunded more
  than paid (in the ledger or at the provider);
- ``events lost``: a fact the purchase's state implies (order created, paid, completed or
  cancelled; each subscription created, activated) the subscriber never received;
- ``events duplicated``: a fact received under more than one event id (a redelivery of
  the same id is at-least-once delivery, not a duplicate);
- ``buys failed``: a purchase the careful client could not complete (refused, or no
  answer within its patience): a fault may delay a purchase, not refuse it;
- ``dead letters``: events a handler gave up on during the test (its dead-letter queue
  grew): a fault the retries should have outlasted;
- ``processes died``: a process that died without the suite killing it (a broker blip
  must not kill one), and ``system stopped``: `make run` exited instead of restarting it.
"""

from __future__ import annotations

import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.faults.workload import LICENSE, Purchase, Unanswered, has_provider, send

COUNTS = (
    "orders lost",
    "orders duplicated",
    "payments duplicated",
    "refunds missing",
    "refunds duplicated",
    "events lost",
    "events duplicated",
    "buys failed",
    "dead letters",
    "processes died",
    "system stopped",
)
SETTLED_FOR = 6.0  # nothing changed for this long: the system has finished
TRANSITIONAL = {"paid", "delivering"}


@dataclass
class Verdict:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    details: list[str] = field(default_factory=list)
    purchases: int = 0

    def add(self, count: str, detail: str, n: int = 1) -> None:
        self.counts[count] += n
        self.details.append(f"{count}: {detail}")

    def summary(self) -> str:
        failing = {k: v for k, v in self.counts.items() if v}
        return f"{failing} over {self.purchases} purchases\n" + "\n".join(self.details[:40])


def accept_licenses(purchases: list[Purchase]) -> None:
    """The buyer accepts each paid license once its flow waits for acceptance."""
    for purchase in purchases:
        if purchase.product != LICENSE or not purchase.order_id:
            continue
        buyer = purchase.buyer
        try:
            flows = buyer.get("/v1/supervision/flows", q=purchase.order_id)["items"]
        except AssertionError:
            continue
        for flow in flows:
            if flow.get("step") == "awaiting_acceptance":
                try:
                    send(
                        buyer.system,
                        "POST",
                        f"/v1/supervision/flows/{flow['id']}/acceptance",
                        {},
                        headers=buyer.headers,
                        key=uuid.uuid4().hex,
                        patience=30,
                    )
                except Unanswered:
                    pass


def snapshot(purchases: list[Purchase], subscriber_out: Path) -> tuple:
    buyers = {p.buyer.account_id: p.buyer for p in purchases}.values()
    orders = tuple(sorted((o["id"], o["status"]) for b in buyers for o in b.all("/v1/orders")))
    movements = sum(len(b.all("/v1/billing/transactions")) for b in buyers)
    received = len(subscriber_out.read_text().splitlines()) if subscriber_out.exists() else 0
    return orders, movements, received


def settle(purchases: list[Purchase], subscriber_out: Path, timeout: float = 150.0) -> bool:
    """Wait until no order of the test is on its way (paid, delivering) and nothing has
    changed for ``SETTLED_FOR`` seconds; licenses are accepted on the way. False when
    ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        accept_licenses(purchases)
        now = snapshot(purchases, subscriber_out)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLED_FOR and not any(
            status in TRANSITIONAL or status == "awaiting_acceptance" for _id, status in now[0]
        ):
            return True
        time.sleep(1.0)
    return False


def implied_events(order: dict, apps: list[dict]) -> set[tuple[str, str]]:
    """The order events the order's state, as the API shows it, says were announced
    (``apps``: the buyer's purchased apps)."""
    facts = {("orders.order.created", order["id"])}
    if order.get("paid_at"):
        facts.add(("orders.order.paid", order["id"]))
        mine = [app for app in apps if app["order_id"] == order["id"]]
        facts |= {("orders.subscription.created", app["id"]) for app in mine}
        facts |= {
            ("orders.subscription.activated", app["id"])
            for app in mine
            if app["status"] in ("enabled", "expired", "frozen")
        }
    if order["status"] == "completed":
        facts.add(("orders.order.completed", order["id"]))
    if order["status"] == "cancelled":
        facts.add(("orders.order.cancelled", order["id"]))
    return facts


def received_events(subscriber_out: Path) -> list[dict]:
    if not subscriber_out.exists():
        return []
    return [json.loads(line) for line in subscriber_out.read_text().splitlines() if line.strip()]


@dataclass
class Observed:
    """What the system's records say once it has settled: per buyer (by account id) its
    orders, ledger movements and purchased apps; what the subscriber received; and the
    card provider's charges and refunds (None without the provider's simulator)."""

    orders: dict[str, list[dict]]
    movements: dict[str, list[dict]]
    apps: dict[str, list[dict]]
    received: list[dict]
    provider: dict | None = None


def observe(purchases: list[Purchase], subscriber_out: Path) -> Observed:
    buyers = {p.buyer.account_id: p.buyer for p in purchases}
    system = purchases[0].buyer.system if purchases else None
    provider = None
    if system is not None and has_provider(system):
        provider = requests.get(f"{system.payments_url}/sim/ledger", timeout=30).json()
    return Observed(
        orders={k: b.all("/v1/orders") for k, b in buyers.items()},
        movements={k: b.all("/v1/billing/transactions") for k, b in buyers.items()},
        apps={k: b.all("/v1/purchased-apps") for k, b in buyers.items()},
        received=received_events(subscriber_out),
        provider=provider,
    )


def check(purchases: list[Purchase], subscriber_out: Path) -> Verdict:
    return count(purchases, observe(purchases, subscriber_out))


def count(purchases: list[Purchase], observed: Observed) -> Verdict:
    """The counts of the module's docstring, from what the client was told
    (``purchases``) and what the system's records say (``observed``)."""
    verdict = Verdict(purchases=len(purchases))
    by_buyer: dict[str, list[Purchase]] = collections.defaultdict(list)
    for purchase in purchases:
        by_buyer[purchase.buyer.account_id].append(purchase)
        if purchase.error:
            verdict.add("buys failed", f"{purchase.order_id}: {purchase.error[:300]}")
    ids_by_fact: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for line in observed.received:
        ids_by_fact[(line["type"], line["subject"])].add(line["id"])

    for account_id, bought in by_buyer.items():
        buyer = bought[0].buyer
        orders = {o["id"]: o for o in observed.orders.get(account_id, [])}
        movements = observed.movements.get(account_id, [])

        # orders
        for purchase in bought:
            order = orders.get(purchase.order_id or "")
            if purchase.placed and order is None:
                verdict.add("orders lost", f"{purchase.order_id} answered 201, not found")
            elif purchase.paid and order is not None and not order.get("paid_at"):
                verdict.add(
                    "orders lost", f"{order['id']} answered paid, now {order['status']} unpaid"
                )
        extra = len(orders) - len(bought)
        if extra > 0:
            verdict.add(
                "orders duplicated",
                f"{buyer.email}: {len(orders)} orders from {len(bought)} keys "
                f"(place answers {[p.place_seen for p in bought]})",
                extra,
            )

        # the ledger
        payments: collections.Counter = collections.Counter()
        paid_amount: collections.Counter = collections.Counter()
        refunded_amount: collections.Counter = collections.Counter()
        refunds: collections.Counter = collections.Counter()
        for m in movements:
            if m.get("order_id") and m["kind"] == "payment":
                payments[m["order_id"]] += 1
                paid_amount[m["order_id"]] += abs(m["amount"]["amount"])
            if m.get("order_id") and m["kind"] == "refund":
                refunds[m["order_id"]] += 1
                refunded_amount[m["order_id"]] += abs(m["amount"]["amount"])
        for order_id, n in payments.items():
            if n > 1:
                verdict.add("payments duplicated", f"{order_id}: {n} ledger payments", n - 1)
        for order_id in set(payments) | set(refunds):
            order = orders.get(order_id)
            kept = paid_amount[order_id] - refunded_amount[order_id]
            owed = order is not None and order.get("paid_at") and order["status"] != "cancelled"
            if kept > 0 and not owed:
                state = "unknown" if order is None else order["status"]
                verdict.add("refunds missing", f"{order_id} ({state}) keeps {kept}")
            if refunds[order_id] > 1 or kept < 0:
                verdict.add(
                    "refunds duplicated",
                    f"{order_id}: {refunds[order_id]} refunds, {refunded_amount[order_id]} of "
                    f"{paid_amount[order_id]}",
                    max(1, refunds[order_id] - 1),
                )

        # the card provider's own records
        if observed.provider is not None:
            check_provider(verdict, observed.provider, bought, orders)

        # the subscriber
        for order in orders.values():
            for fact in implied_events(order, observed.apps.get(account_id, [])):
                ids = ids_by_fact.get(fact, set())
                if not ids:
                    verdict.add("events lost", f"{fact[0]} {fact[1]}")
                elif len(ids) > 1:
                    verdict.add("events duplicated", f"{fact[0]} {fact[1]}: {sorted(ids)}")
    return verdict


def check_provider(verdict: Verdict, provider: dict, bought: list[Purchase], orders: dict) -> None:
    """Charges and refunds as the card provider made them, by the token each purchase
    (or top-up) paid with: every token of the suite's is used for one payment only."""
    charges: dict[str, list[dict]] = collections.defaultdict(list)
    for charge in provider.get("charges", []):
        if charge.get("status") == "succeeded":
            charges[charge.get("source", "")].append(charge)
    refunded: collections.Counter = collections.Counter()
    refunds: collections.Counter = collections.Counter()
    for refund in provider.get("refunds", []):
        if refund.get("status") == "succeeded":
            refunded[refund["charge"]] += refund["amount"]
            refunds[refund["charge"]] += 1
    tokens = {p.card_token: p for p in bought if p.card_token}
    for token in bought[0].buyer.top_up_tokens:
        if len(charges.get(token, [])) > 1:
            n = len(charges[token])
            verdict.add("payments duplicated", f"top-up token {token}: {n} charges", n - 1)
    for token, purchase in tokens.items():
        made = charges.get(token, [])
        if len(made) > 1:
            verdict.add(
                "payments duplicated",
                f"{purchase.order_id}: {len(made)} card charges at the provider",
                len(made) - 1,
            )
        order = orders.get(purchase.order_id or "")
        owed = order is not None and order.get("paid_at") and order["status"] != "cancelled"
        kept = sum(c["amount"] for c in made) - sum(refunded[c["id"]] for c in made)
        if kept > 0 and not owed:
            state = "unknown" if order is None else order["status"]
            verdict.add(
                "refunds missing", f"{purchase.order_id} ({state}) kept {kept} at the provider"
            )
        for charge in made:
            if refunds[charge["id"]] > 1 or refunded[charge["id"]] > charge["amount"]:
                verdict.add(
                    "refunds duplicated",
                    f"{purchase.order_id}: {refunds[charge['id']]} refunds of {charge['id']}",
                    max(1, refunds[charge["id"]] - 1),
                )
