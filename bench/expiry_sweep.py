"""``make bench-expiry``: the expiry sweeps over many subscriptions, beside a baseline
measured in the same run.

Loads N enabled yearly/monthly SaaS subscriptions (``--subscriptions``, default
100,000; half bought for a month, half for a year, all expiring at the same 23:59:59)
into a fresh orders database and the deliveries of the first D of them
(``--delivered``, default 10,000) into a fresh provisioning database, both on the
PostgreSQL server at ``DATABASE_URL`` and migrated by the services' own migrations,
and those D live tenants into the reference seller app (``examples/seller-saas``,
started as a process on a local port, its SQLite in /dev/shm). Then, on a test clock, it
moves time past the expiry, the grace period and the retention period, and times:

- orders' lifecycle sweep (``orders.lifecycle.run_due``) at each step over the N:
  enabled -> expired, expired -> frozen, frozen -> released;
- provisioning's instance-action sweep (``provisioning.instance_actions.run_due``)
  working off the D freezes (``updateInstanceStatus`` FREEZE) and then the D releases
  (``releaseInstance``) at the seller app, over HTTP, signed. D is smaller than N
  because the reference app (one Python process, SQLite) answers some 50 to 100 calls
  a second on a small machine: ``--delivered 100000`` calls it for all of them.

Between the two, the events orders wrote in its outbox (``orders.subscription.frozen``
and ``.released``) become provisioning's instance actions as its event handler makes
them (``domain.planned_actions``; untimed: the broker is not part of this
measurement).

The baseline is the same work with a batch of one (and, for the seller calls, one call
at a time) over a smaller set loaded the same way (``--baseline``, default 1,000, of
which ``--baseline-delivered``, default 200), in the same run. Figures are
subscriptions per second; the machine is shared and noisy, so read the ratios, which
are measured side by side. Nothing here asserts a time.

    make bench-expiry                          # or: .venv/bin/python bench/expiry_sweep.py --help
    make bench-expiry BENCH_ARGS="--subscriptions 10000 --delivered 2000"
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from mercato.clock import ManualClock  # noqa: E402
from mercato.db import create_engine  # noqa: E402
from mercato.inbox import load_event  # noqa: E402
from mercato.standalone import standalone_unit_of_work  # noqa: E402
from mercato_testing import Databases, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SELLER_APP = ROOT / "examples" / "seller-saas" / "seller_saas.py"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

# every subscription of the run expires at this moment (a busy day's expiries: the
# sweep's worst case is them all at once)
EXPIRES_AT = dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=dt.UTC)
SELLER = "acc_bench_seller"
PRODUCTS = [f"prd_bench_{n}" for n in range(10)]
BUYERS = 1_000
CHUNK = 5_000  # rows per INSERT while loading


@dataclass
class Figure:
    phase: str
    subscriptions: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.subscriptions / self.seconds if self.seconds > 0 else float("inf")


# -- the databases ---------------------------------------------------------------------


def chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def load_orders(url: str, count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` paid purchase orders of one SaaS line each and their enabled
    subscriptions; answers what provisioning needs of each."""
    from orders.models import metadata

    bought = []
    orders, lines, subscriptions = [], [], []
    for n in range(count):
        monthly = n % 2 == 0
        activated = EXPIRES_AT + dt.timedelta(seconds=1) - dt.timedelta(days=30 if monthly else 365)
        order_id, line_id, subscription_id = (
            f"ord_{tag}{n:08d}",
            f"oln_{tag}{n:08d}",
            f"sub_{tag}{n:08d}",
        )
        buyer = f"acc_bench_buyer_{n % BUYERS}"
        product = PRODUCTS[n % len(PRODUCTS)]
        price = 9_900 if monthly else 99_000
        orders.append(
            {
                "id": order_id,
                "type": "purchase",
                "account_id": buyer,
                "payer_account_id": buyer,
                "enterprise_project_id": "default",
                "status": "completed",
                "amount_due": price,
                "currency": "USD",
                "payment_deadline": activated,
                "payment_id": f"pay_{tag}{n:08d}",
                "payment_method": "balance",
                "paid_at": activated,
                "share_contact": False,
                "created_at": activated,
                "updated_at": activated,
            }
        )
        line = {
            "id": line_id,
            "order_id": order_id,
            "position": 0,
            "product_id": product,
            "product_name": f"Bench CRM {product[-1]}",
            "seller_account_id": SELLER,
            "seller_company_name": "Bench Seller",
            "specification_id": f"spc_{product}",
            "specification_name": "Standard, 10 users",
            "delivery_method": "saas",
            "service_supervision": False,
            "billing_mode": "yearly_monthly",
            "period_unit": "month" if monthly else "year",
            "period_count": 1,
            "quantity": 1,
            "unit_price": price,
            "amount": price,
            "currency": "USD",
        }
        lines.append(line)
        subscriptions.append(
            {
                "id": subscription_id,
                "order_id": order_id,
                "order_line_id": line_id,
                "account_id": buyer,
                "enterprise_project_id": "default",
                "status": "enabled",
                "auto_renew": False,
                "activated_at": activated,
                "expires_at": EXPIRES_AT,
                "time_zone": "UTC",
                "period_started_at": activated,
                # the reminders were sent before: the sweeps measured are the moves
                "reminded_stage": 0,
                "auto_renew_failures": 0,
                "created_at": activated,
                "updated_at": activated,
            }
        )
        bought.append({**line, "subscription_id": subscription_id, "account_id": buyer})
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for table, rows in (
                ("orders", orders),
                ("order_lines", lines),
                ("subscriptions", subscriptions),
            ):
                for chunk in chunks(rows):
                    connection.execute(metadata.tables[table].insert(), chunk)
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()
    return bought


def load_provisioning(
    url: str, bought: list[dict[str, Any]], keyring, access_key: str, secret: str
) -> list[str]:
    """A succeeded SaaS delivery of each subscription, with its seller instance, and the
    seller's interface key; answers the instance ids (the seller app's tenants)."""
    from provisioning import domain
    from provisioning.models import metadata

    delivered_at = EXPIRES_AT - dt.timedelta(days=30)
    instance_ids, deliveries = [], []
    for item in bought:
        instance_id = uuid.uuid4().hex
        instance_ids.append(instance_id)
        deliveries.append(
            {
                "id": "dlv_" + item["subscription_id"][4:],
                "subscription_id": item["subscription_id"],
                "order_id": item["order_id"],
                "order_line_id": item["id"],
                "account_id": item["account_id"],
                "product_id": item["product_id"],
                "product_name": item["product_name"],
                "seller_account_id": SELLER,
                "specification_id": item["specification_id"],
                "specification_name": item["specification_name"],
                "delivery_method": "saas",
                "service_supervision": False,
                "billing_mode": "yearly_monthly",
                "period_unit": item["period_unit"],
                "period_count": 1,
                "quantity": 1,
                "starts_at": delivered_at,
                "expires_at": EXPIRES_AT,
                "status": domain.SUCCEEDED,
                "attempts": 1,
                "deadline_at": delivered_at,
                "instance_id": instance_id,
                "username": "admin",
                "management_url": f"http://127.0.0.1/tenants/{instance_id}/admin/",
                "delivered_at": delivered_at,
                "release_attempts": 0,
                "created_at": delivered_at,
                "updated_at": delivered_at,
            }
        )
    sealed = keyring.seal(secret, bound_to=domain.interface_binding(SELLER, access_key))
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for chunk in chunks(deliveries):
                connection.execute(metadata.tables["deliveries"].insert(), chunk)
            connection.execute(
                metadata.tables["seller_interface_keys"].insert(),
                {
                    "seller_account_id": SELLER,
                    "access_key": access_key,
                    "secret_key_id": sealed.key_id,
                    "secret_sealed": sealed.ciphertext,
                    "created_at": delivered_at,
                },
            )
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()
    return instance_ids


# -- the seller app ----------------------------------------------------------------------


def seed_seller(db_path: Path, bought: list[dict[str, Any]], instance_ids: list[str]) -> None:
    """The seller app's tenants, running, written straight into its SQLite file (its
    schema is the app's own, created by starting it once)."""
    now = time.time()
    connection = sqlite3.connect(db_path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO instances (instance_id, order_id, order_line_id, business_id, "
                "product_id, specification_id, specification_name, customer_id, "
                "charging_mode, period_unit, period_count, quantity, expire_time, test_flag, "
                "state, frozen, ready_after, user_name, password, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'yearly_monthly', ?, 1, 1, ?, '0', "
                "'running', 0, 0, 'admin', 'x', ?, ?)",
                [
                    (
                        instance_id,
                        item["order_id"],
                        item["id"],
                        item["order_id"],
                        item["product_id"],
                        item["specification_id"],
                        item["specification_name"],
                        item["account_id"],
                        item["period_unit"],
                        EXPIRES_AT.strftime("%Y%m%d%H%M%S"),
                        now,
                        now,
                    )
                    for item, instance_id in zip(bought, instance_ids, strict=True)
                ],
            )
    finally:
        connection.close()


@contextlib.contextmanager
def seller_app(
    folder: Path, access_key: str, secret: str, seed: Callable[[Path], None]
) -> Iterator[str]:
    """The reference seller app on a free local port, its SQLite file seeded first;
    yields its endpoint URL."""
    db_path = folder / "seller.sqlite3"
    env = {**os.environ, "SELLER_ACCESS_KEY": access_key, "SELLER_SECRET": secret}
    port = free_port()
    command = [sys.executable, str(SELLER_APP), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--db", str(db_path), "--provision-delay", "0"]
    # started once to create its schema, then seeded while it is stopped
    for seeding in (True, False):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the seller app did not start: {process.stderr.read().decode()}"
                        ) from None
                    time.sleep(0.1)
            if not seeding:
                yield f"http://127.0.0.1:{port}/saas"
        finally:
            process.terminate()
            process.wait(timeout=10)
        if seeding:
            seed(db_path)


# -- the sweeps ----------------------------------------------------------------------------


def orders_periods():
    """orders' grace and retention periods from its defaults (the service reads them
    from SUBSCRIPTION_GRACE_DAYS and SUBSCRIPTION_RETENTION_DAYS)."""
    from orders import lifecycle

    return lifecycle.periods_from({})


def orders_lifecycle_sweep(url: str, clock: ManualClock, batch: int) -> int:
    """orders' lifecycle sweep (``lifecycle.run_due``: every due move, batch after
    batch, then its gauge); answers how many moves it made."""
    from orders import lifecycle
    from orders.models import metadata
    from orders.repository import REPOSITORIES

    with standalone_unit_of_work(
        url, metadata, service_name="orders", command="bench", repositories=REPOSITORIES
    ) as uow:
        return lifecycle.run_due(uow, clock, orders_periods(), batch_size=batch)


def events_of(url: str, event_type: str) -> list[Any]:
    """The events orders wrote in its outbox of one type, loaded as a subscriber would."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT payload FROM outbox_messages WHERE event_type = :t ORDER BY id"),
                {"t": event_type},
            ).scalars()
            return [load_event(row) for row in rows]
    finally:
        engine.dispose()


def enqueue_instance_actions(url: str, clock: ManualClock, events: list[Any]) -> int:
    """What provisioning's handler records of each event (``domain.planned_actions``
    of its delivery, the rows ``instance_actions.enqueue`` writes), 1,000 events a
    statement: the handler's own transaction per event is not what is measured here.
    Answers the actions recorded."""
    from provisioning import domain
    from provisioning.models import metadata

    now = clock.now()
    recorded = 0
    with standalone_unit_of_work(
        url, metadata, service_name="provisioning", command="bench", repositories=repositories()
    ) as uow:
        for start in range(0, len(events), 1_000):
            batch = events[start : start + 1_000]
            found = uow.deliveries.of_subscriptions([e.data["subscription_id"] for e in batch])
            rows = []
            for event in batch:
                delivery = found.get(event.data["subscription_id"])
                delivered = delivery and domain.SubscriptionDelivered(
                    delivery_method=delivery.delivery_method,
                    status=delivery.status,
                    instance_id=delivery.instance_id,
                )
                for kind, payload in domain.planned_actions(event.type, event.data, delivered):
                    rows.append(
                        {
                            "subscription_id": event.data["subscription_id"],
                            "kind": kind,
                            "payload": payload,
                            "cause_event_id": event.id,
                            "status": domain.ACTION_PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "lease_until": None,
                            "last_error": None,
                            "created_at": now,
                            "updated_at": now,
                            "finished_at": None,
                        }
                    )
            uow.instance_actions.add_all(rows)
            uow.commit()
            recorded += len(rows)
    # fresh statistics, as autovacuum's analyze gives them within a minute or so of such
    # a burst: with the statistics of the empty table, PostgreSQL plans the claim's "no
    # earlier pending action" as a scan of every pending action per candidate once each
    # subscription has an earlier (done) action, and a claim of 200 takes seconds
    # (docs/performance.md, "The expiry sweeps")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE instance_actions"))
    finally:
        engine.dispose()
    return recorded


def repositories() -> dict[str, Any]:
    """provisioning's repositories, as its service names them."""
    from provisioning import service

    database = service.ProvisioningService.db
    return dict(database.repositories)


class Catalog:
    """catalog's answer for every product of the run: the seller app's endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def delivery_settings(self, product_id: str) -> dict[str, Any]:
        return {"saas_endpoint_url": self.endpoint}


def instance_action_sweep(
    url: str, clock: ManualClock, endpoint: str, keyring, *, batch: int, concurrency: int
) -> int:
    """provisioning's instance-action sweep until nothing is due; answers how many
    actions it finished."""
    import seller_interface
    from provisioning import domain, instance_actions
    from provisioning.models import metadata

    policy = dataclasses.replace(
        domain.InstanceActionPolicy(), batch=batch, concurrency=concurrency
    )

    def client(endpoint: str, access_key: str, secret: str, address: str | None = None):
        return seller_interface.SellerClient(endpoint, access_key, secret, timeout=10)

    done = 0
    catalog = Catalog(endpoint)
    with standalone_unit_of_work(
        url, metadata, service_name="provisioning", command="bench", repositories=repositories()
    ) as uow:
        while True:
            claimed = instance_actions.run_due(
                uow,
                clock,
                policy,
                keyring=keyring,
                catalog=catalog,
                seller_client=client,
                iam_agency=None,
                driver=None,
                allow_private_endpoints=True,
            )
            if not claimed:
                return done
            done += claimed


def statuses(url: str, action: str) -> str:
    """``1,999 done, 1 pending (the last error)``: the instance actions of a kind."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT status, count(*), max(last_error) FROM instance_actions "
                    "WHERE kind = :k GROUP BY status ORDER BY status"
                ),
                {"k": action},
            ).all()
    finally:
        engine.dispose()
    return ", ".join(
        f"{n:,} {status}" + (f" ({error[:80]})" if error and status != "done" else "")
        for status, n, error in rows
    )


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


# -- one run ---------------------------------------------------------------------------------


def timed(name: str, subscriptions: int, work: Callable[[], int]) -> tuple[Figure, int]:
    started = time.perf_counter()
    result = work()
    return Figure(name, subscriptions, time.perf_counter() - started), result


def lifecycle_available() -> bool:
    """Whether orders has its lifecycle sweep (``orders.lifecycle``) in this tree."""
    try:
        from orders import lifecycle  # noqa: F401
    except ImportError:
        return False
    return True


def events_made_here(
    bought: list[dict[str, Any]], event_type: str, clock: ManualClock, grace, retention
) -> list[Any]:
    """orders' events of each subscription, built here from the loaded rows (only when
    orders has no lifecycle sweep to write them)."""
    from mercato.contracts import new_envelope

    now = clock.now()
    events = []
    for item in bought:
        facts = {
            "subscription_id": item["subscription_id"],
            "order_id": item["order_id"],
            "account_id": item["account_id"],
            "seller_account_id": SELLER,
            "product_id": item["product_id"],
            "product_name": item["product_name"],
            "specification_name": item["specification_name"],
            "delivery_method": "saas",
            "billing_mode": "yearly_monthly",
        }
        if event_type.endswith(".frozen"):
            data = {
                **facts,
                "expires_at": EXPIRES_AT,
                "frozen_at": now,
                "release_at": EXPIRES_AT + grace + retention,
            }
        else:
            data = {**facts, "reason": "expired", "released_at": now}
        envelope = new_envelope(
            event_type,
            subject=item["subscription_id"],
            data=data,
            account_id=item["account_id"],
            correlation_id="bench",
            causation_id=None,
        )
        events.append(load_event(envelope.dump()))
    return events


def run(
    databases: Databases,
    folder: Path,
    n: int,
    *,
    label: str,
    delivered_n: int,
    orders_batch: int | None,
    actions_batch: int | None,
    concurrency: int | None,
) -> list[Figure]:
    """Load ``n`` subscriptions, the first ``delivered_n`` of them with a delivery at the
    seller app, and time every sweep over them; a ``None`` batch keeps the service's
    default."""
    from provisioning import domain
    from provisioning.keyring import Keyring, generate_key_spec

    with_lifecycle = lifecycle_available()
    default_policy = domain.InstanceActionPolicy()
    actions_batch = actions_batch or default_policy.batch
    concurrency = concurrency or default_policy.concurrency
    tag = uuid.uuid4().hex[:6]
    delivered_n = min(n, delivered_n)
    print(
        f"\n{label}: loading {n:,} subscriptions, {delivered_n:,} of them delivered ...",
        flush=True,
    )
    started = time.perf_counter()
    orders_url = databases.fresh("orders")
    provisioning_url = databases.fresh("provisioning")
    bought = load_orders(orders_url, n, tag)
    keyring = Keyring.from_spec(generate_key_spec("bench"))
    access_key = "ak_" + uuid.uuid4().hex
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    delivered = bought[:delivered_n]
    instance_ids = load_provisioning(provisioning_url, delivered, keyring, access_key, secret)
    print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)

    if with_lifecycle:
        from orders import lifecycle

        orders_batch = orders_batch or lifecycle.DEFAULT_BATCH_SIZE
        periods = orders_periods()
        grace, retention = periods.grace, periods.retention
    else:
        print("  orders has no lifecycle sweep (orders.lifecycle) in this tree: its phases")
        print("  are left out and its events are made here from the loaded rows")
        grace = retention = dt.timedelta(days=15)
    figures = []
    clock = ManualClock(EXPIRES_AT - dt.timedelta(days=1))
    run_folder = folder / f"{label}-{tag}"
    run_folder.mkdir()
    with seller_app(
        run_folder, access_key, secret, lambda path: seed_seller(path, delivered, instance_ids)
    ) as endpoint:
        steps = (
            ("expire", EXPIRES_AT + dt.timedelta(seconds=1), "expired", None),
            ("freeze", EXPIRES_AT + grace + dt.timedelta(seconds=1), "frozen", "freeze"),
            (
                "release",
                EXPIRES_AT + grace + retention + dt.timedelta(seconds=1),
                "released",
                "release",
            ),
        )
        for step, moment, status, action in steps:
            clock.set(moment)
            event_type = f"orders.subscription.{status}"
            if with_lifecycle:
                figure, _moved = timed(
                    f"orders: {step} (batch {orders_batch})",
                    n,
                    lambda: orders_lifecycle_sweep(orders_url, clock, orders_batch),
                )
                reached = count(
                    orders_url, f"SELECT count(*) FROM subscriptions WHERE status = '{status}'"
                )
                figures.append(figure)
                print(f"  {figure.phase}: {reached:,} {status}, {figure.rate:,.0f}/s", flush=True)
            if action is None:
                continue
            events = (
                events_of(orders_url, event_type)
                if with_lifecycle
                else events_made_here(delivered, event_type, clock, grace, retention)
            )
            enqueued_started = time.perf_counter()
            recorded = enqueue_instance_actions(provisioning_url, clock, events)
            print(
                f"  provisioning: {recorded:,} {action} actions from {len(events):,} "
                f"{event_type} events in {time.perf_counter() - enqueued_started:.1f} s "
                "(untimed)",
                flush=True,
            )
            figure, _finished = timed(
                f"provisioning: {action} at the seller (batch {actions_batch}, "
                f"{concurrency} at once)",
                delivered_n,
                lambda: instance_action_sweep(
                    provisioning_url,
                    clock,
                    endpoint,
                    keyring,
                    batch=actions_batch,
                    concurrency=concurrency,
                ),
            )
            outcomes = statuses(provisioning_url, action)
            figures.append(figure)
            print(f"  {figure.phase}: {outcomes}, {figure.rate:,.0f}/s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument(
        "--baseline",
        type=int,
        default=1_000,
        help="subscriptions of the baseline run (a batch of one; 0 to skip it)",
    )
    parser.add_argument(
        "--delivered",
        type=int,
        default=10_000,
        help="of them, subscriptions delivered at the seller app, whose freeze and release "
        "are called there (the reference app serves some 50 to 100 calls a second)",
    )
    parser.add_argument(
        "--baseline-delivered", type=int, default=200, help="the same, of the baseline run"
    )
    parser.add_argument("--orders-batch", type=int, help="orders' sweep batch (its default)")
    parser.add_argument("--actions-batch", type=int, help="instance actions per claim")
    parser.add_argument("--concurrency", type=int, help="seller calls in flight at once")
    args = parser.parse_args(argv)
    server = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    if not server.startswith("postgresql"):
        parser.error("DATABASE_URL must name a PostgreSQL server")

    # the seller app's SQLite in memory (/dev/shm) when there is one: the seller's disk
    # is not what is measured
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    databases = Databases(server)
    try:
        with tempfile.TemporaryDirectory(prefix="mercato-bench-expiry-", dir=shm) as folder:
            measured = run(
                databases,
                Path(folder),
                args.subscriptions,
                label="measured",
                delivered_n=args.delivered,
                orders_batch=args.orders_batch,
                actions_batch=args.actions_batch,
                concurrency=args.concurrency,
            )
            baseline = (
                run(
                    databases,
                    Path(folder),
                    args.baseline,
                    label="baseline",
                    delivered_n=args.baseline_delivered,
                    orders_batch=1,
                    actions_batch=1,
                    concurrency=1,
                )
                if args.baseline
                else []
            )
    finally:
        databases.drop_all()

    print()
    print(
        f"{'phase':<58} {'subs':>8} {'seconds':>8} {'subs/s':>9} {'baseline/s':>11} {'x base':>7}"
    )
    for position, figure in enumerate(measured):
        base = baseline[position] if position < len(baseline) else None
        base_rate = f"{base.rate:>11,.0f}" if base else f"{'-':>11}"
        ratio = f"{figure.rate / base.rate:>7.1f}" if base else f"{'-':>7}"
        print(
            f"{figure.phase:<58} {figure.subscriptions:>8,} {figure.seconds:>8.1f} "
            f"{figure.rate:>9,.0f} {base_rate} {ratio}"
        )
    if baseline:
        print(
            f"\nbaseline: the same phases over {args.baseline:,} subscriptions with a batch "
            "of 1 (and one seller call at a time)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
