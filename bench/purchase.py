"""``make bench``: the buyer's journey measured against a baseline taken in the same run.

Starts the whole system the way ``make run`` does (the embedded default: SQLite files,
here in a temporary folder, and the local RabbitMQ in a throw-away vhost), seeds 10,000
published products, and measures:

- baseline: a trivial nameko echo RPC, called sequentially by one caller;
- ``GET /v1/products/{id}`` through the gateway at concurrency 1 and 8, each product
  as likely as any other (the gateway's product cache rarely helps), and at
  concurrency 8 with a few products read far more than the rest (Zipf, s=1);
- a full-text search (``GET /v1/products?q=…``, with and without filters);
- place an order then pay it by balance (two POSTs), at concurrency 1 and 8 (eight
  buyers);

and prints each rate, p50, p95 and p99, the ratio of each rate to the baseline, and
the resident memory of every process. The machine is shared and noisy: compare the
ratios, which are measured side by side, rather than the absolute figures.

    make bench                      # or: .venv/bin/python bench/purchase.py --help
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import http.client  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from mercato.config import DEFAULT_AMQP_URI  # noqa: E402
from mercato.topology import BY_NAME, GATEWAY, PROCESSES  # noqa: E402
from mercato_devrun import listening_on, start, wait_until_ready  # noqa: E402
from mercato_testing import free_port, management_uri_for, with_vhost  # noqa: E402

BENCH = Path(__file__).resolve().parent
SEARCH_TERMS = [
    "firewall",
    "backup",
    "postgresql",
    "pipeline",
    "vision",
    "gateway",
    "dashboard",
    "wiki",
    "secure vault",
    "managed cache",
    "nimbus",
    "acme",
]


@dataclass
class Figures:
    name: str
    latencies: list[float]  # seconds, one per operation
    elapsed: float  # wall seconds for all of them

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"beam.smp" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def nameko_processes(pid: int) -> list[int]:
    """The ``nameko run`` processes below ``pid`` (honcho forks a helper for each)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        path = Path(f"/proc/{current}/task/{current}/children")
        kids = [int(c) for c in path.read_text().split()] if path.exists() else []
        pending.extend(kids)
        if b"nameko" in Path(f"/proc/{current}/cmdline").read_bytes():
            found.append(current)
    return found


def process_name(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    target = next((part.decode() for part in reversed(cmdline) if b":" in part), "?")
    return target.split(".", 1)[0]


class Client:
    """One keep-alive HTTP connection (green under eventlet)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        self.connection.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=self.headers
        )
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload else {})


def timed(name: str, operations, concurrency: int = 1) -> Figures:
    """Run ``operations`` (a list of callables taking a worker index) over
    ``concurrency`` green threads; each latency is one callable's duration."""
    latencies: list[float] = []
    queue = list(operations)

    def worker(index: int) -> None:
        while queue:
            operation = queue.pop()
            started = time.perf_counter()
            operation(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    pool = eventlet.GreenPool(concurrency)
    for index in range(concurrency):
        pool.spawn(worker, index)
    pool.waitall()
    return Figures(name, latencies, time.perf_counter() - started)


def create_vhost(amqp_uri: str) -> tuple[str, str | None]:
    """A throw-away vhost when the management API answers, else the given URI."""
    import requests

    vhost = f"mercato_bench_{uuid.uuid4().hex[:8]}"
    api = management_uri_for(amqp_uri)
    try:
        user = amqp_uri.split("//", 1)[1].split(":", 1)[0]
        requests.put(f"{api}/api/vhosts/{vhost}", timeout=5).raise_for_status()
        requests.put(
            f"{api}/api/permissions/{vhost}/{user}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=5,
        ).raise_for_status()
    except Exception as exc:
        # queues left in the shared vhost by an earlier run (or by ``make run``) would
        # be drained during this one, and counted as its work
        print(
            f"warning: no throw-away vhost ({type(exc).__name__}: is RabbitMQ's "
            "management plugin enabled?); measuring in the given vhost",
            file=sys.stderr,
        )
        return amqp_uri, None
    return with_vhost(amqp_uri, vhost), vhost


def delete_vhost(amqp_uri: str, vhost: str | None) -> None:
    if vhost:
        import requests

        requests.delete(f"{management_uri_for(amqp_uri)}/api/vhosts/{vhost}", timeout=10)


def seed_catalog(database_url: str, count: int) -> list[str]:
    from catalog.demo import seed_demo_products
    from catalog.models import metadata
    from mercato.migrations import upgrade
    from mercato.standalone import standalone_unit_of_work

    upgrade(BY_NAME["catalog"], database_url)
    with standalone_unit_of_work(
        database_url, metadata, service_name="catalog", command="bench_seed"
    ) as uow:
        return seed_demo_products(uow, seller_account_id="acc_bench_seller", count=count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--baseline-calls", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--purchases", type=int, default=200)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mercato-bench-"))
    amqp_uri, vhost = create_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI))
    ports = {process.name: free_port() for process in PROCESSES}
    payments = f"127.0.0.1:{free_port()}"  # the simulated card provider make run starts
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore",
        "PAYMENTS_SIMULATOR_ADDRESS": payments,
        "PAYMENTS_SIMULATOR_DB": str(workdir / "payments-simulator.sqlite3"),
        "CARD_GATEWAY_URL": f"http://{payments}",
        **listening_on(ports),
    }
    for process in PROCESSES:
        env[f"{process.env_prefix}_DATABASE_URL"] = f"sqlite:///{workdir}/{process.name}.sqlite3"
    gateway = f"http://127.0.0.1:{ports[GATEWAY.name]}"

    print(f"seeding {args.products:,} products …", flush=True)
    product_ids = seed_catalog(env["CATALOG_DATABASE_URL"], args.products)

    log = open(workdir / "system.log", "wb")
    system = start(env, log)
    echo_config = workdir / "echo.yaml"
    echo_config.write_text(f"AMQP_URI: {amqp_uri}\nmax_workers: 10\n")
    echo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nameko",
            "run",
            "--config",
            str(echo_config),
            "echo_service:EchoService",
        ],
        cwd=BENCH,
        env={**env, "PYTHONPATH": str(BENCH)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        return run(args, env, gateway, ports, product_ids, system, echo, amqp_uri)
    finally:
        for process in (system, echo):
            process.send_signal(signal.SIGINT)
        for process in (system, echo):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        delete_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), vhost)
        print(f"logs and databases: {workdir}")


def wait_ready(ports: dict[str, int], deadline: float) -> None:
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    if not_ready := wait_until_ready(deadline, bases):
        raise SystemExit(f"not ready: {not_ready}")


def card_token(provider: str) -> str:
    """A token of the good test card from the card provider: card numbers go to it, never
    to Mercato."""
    status, body = Client(provider).call(
        "POST", "/v1/tokens", {"number": "4242424242424242", "expiry": "12/35", "cvc": "123"}
    )
    assert status == 201, body
    return body["token"]


def new_buyer(gateway: str, provider: str) -> Client:
    """A signed-up buyer with a balance large enough for the whole run."""
    anonymous = Client(gateway)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    password = "bench password!"
    status, body = anonymous.call(
        "POST",
        "/v1/accounts",
        {"name": "Bench Buyer", "email": email, "password": password, "type": "buyer"},
    )
    assert status == 201, body
    status, body = anonymous.call("POST", "/v1/auth/tokens", {"email": email, "password": password})
    assert status == 201, body
    buyer = Client(gateway, body["token"])
    status, body = buyer.call(
        "POST",
        "/v1/billing/top-ups",
        {
            "amount": {"amount": 10**11, "currency": "USD"},
            "card": {"token": card_token(provider)},
        },
    )
    assert status == 201, body
    return buyer


def one_time_configurations(client: Client, product_ids: list[str]) -> list[dict]:
    """Order bodies for products sold once (no period), at their lowest quantity."""
    configurations = []
    for product_id in product_ids:
        _status, product = client.call("GET", f"/v1/products/{product_id}")
        for spec in product["specifications"]:
            if any(price["billing_mode"] == "one_time" for price in spec["prices"]):
                configurations.append(
                    {
                        "product_id": product_id,
                        "specification_id": spec["id"],
                        "billing_mode": "one_time",
                        "quantity": (spec.get("quantity") or {}).get("min", 1),
                        "accept_terms": True,
                    }
                )
                break
    assert configurations, "no one-time product to buy"
    return configurations


def run(args, env, gateway, ports, product_ids, system, echo, amqp_uri) -> int:
    from nameko.standalone.rpc import ClusterRpcProxy

    wait_ready(ports, time.monotonic() + 120)
    rng = random.Random(7)
    results: list[Figures] = []

    # -- baseline: one caller, a trivial RPC, one after another ------------------------
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster:
        for _ in range(100):  # warm up
            cluster.bench_echo.echo("x")
        baseline = timed(
            "baseline: echo RPC, sequential",
            [lambda _i: cluster.bench_echo.echo("x")] * args.baseline_calls,
        )
    results.append(baseline)

    # -- product reads ---------------------------------------------------------------
    # Uniform: every read picks any of the 10,000 products alike, so the gateway's
    # product cache rarely helps. Popular: product pages are read the way shoppers
    # read them, a few products far more than the rest (Zipf, s=1, over all 10,000).
    popularity = list(itertools.accumulate(1 / rank for rank in range(1, len(product_ids) + 1)))
    pickers = {
        "uniform": lambda: rng.choice(product_ids),
        "popular": lambda: rng.choices(product_ids, cum_weights=popularity)[0],
    }
    for pattern, concurrency in (("uniform", 1), ("uniform", 8), ("popular", 8)):
        clients = [Client(gateway) for _ in range(concurrency)]
        pick = pickers[pattern]

        def read(index: int, clients=clients, pick=pick) -> None:
            status, _ = clients[index].call("GET", f"/v1/products/{pick()}")
            assert status == 200, status

        for index in range(concurrency):  # warm up each connection
            read(index)
        results.append(
            timed(
                f"GET /v1/products/{{id}}, {pattern}, concurrency {concurrency}",
                [read] * args.reads,
                concurrency,
            )
        )

    # -- search -----------------------------------------------------------------------
    searcher = Client(gateway)
    queries = []
    for _ in range(args.searches):
        query = f"q={rng.choice(SEARCH_TERMS).replace(' ', '+')}"
        if rng.random() < 0.5:
            query += "&" + rng.choice(
                [
                    "delivery_method=saas",
                    "billing_mode=one_time",
                    "sort=price_asc",
                    "max_price=50000",
                    "category=security",
                    "sort=newest",
                ]
            )
        queries.append(query)

    def search(_index: int) -> None:
        status, body = searcher.call("GET", f"/v1/products?{queries.pop()}&page_size=20")
        assert status == 200, (status, body)

    # warm up, as the reads and purchases do: the first searches read the full-text
    # index from disk
    for term in SEARCH_TERMS:
        status, body = searcher.call("GET", f"/v1/products?q={term.replace(' ', '+')}")
        assert status == 200, (status, body)
    results.append(timed(f"search over {len(product_ids):,} products", [search] * args.searches))

    # -- place an order, then pay it -------------------------------------------------------
    buyers = [new_buyer(gateway, env["CARD_GATEWAY_URL"]) for _ in range(8)]
    configurations = one_time_configurations(buyers[0], product_ids[:300])

    def place_and_pay(index: int) -> None:
        buyer = buyers[index]
        status, order = buyer.call("POST", "/v1/orders", rng.choice(configurations))
        assert status == 201, order
        status, paid = buyer.call(
            "POST", f"/v1/orders/{order['id']}/pay", {"payment_method": "balance"}
        )
        assert status == 200 and paid["status"] == "paid", paid

    for index in range(len(buyers)):  # warm up each buyer's connection
        place_and_pay(index)
    watched = {process_name(pid): pid for pid in nameko_processes(system.pid)}
    if (broker := broker_pid()) is not None:
        watched["rabbitmq"] = broker
    watched["bench client"] = os.getpid()
    cpu_per_purchase: dict[int, dict[str, float]] = {}
    for concurrency in (1, 8):
        before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        figures = timed(
            f"place an order, then pay it, concurrency {concurrency}",
            [place_and_pay] * args.purchases,
            concurrency,
        )
        results.append(figures)
        cpu_per_purchase[concurrency] = {
            name: (cpu_seconds(pid) - before[name]) / len(figures.latencies) * 1000
            for name, pid in watched.items()
        }

    # -- report ---------------------------------------------------------------------------
    print()
    print(
        f"{'measurement':<50} {'rate/s':>9} {'x base':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    for figures in results:
        print(
            f"{figures.name:<50} {figures.rate:>9.1f} {figures.rate / baseline.rate:>7.2f} "
            f"{figures.percentile(50):>8.2f} {figures.percentile(95):>8.2f} "
            f"{figures.percentile(99):>8.2f}"
        )
    print()
    # CPU time is less at the mercy of a noisy machine than a rate is; what a later
    # concurrency-8 figure adds is work the system finished after the requests had
    # been answered (events still in flight)
    print("CPU per purchase (ms), by process:   concurrency 1   concurrency 8")
    for name in sorted(cpu_per_purchase[8], key=lambda name: -cpu_per_purchase[8][name]):
        print(f"  {name:<33} {cpu_per_purchase[1][name]:13.2f} {cpu_per_purchase[8][name]:15.2f}")
    totals = {level: sum(figures.values()) for level, figures in cpu_per_purchase.items()}
    print(f"  {'total':<33} {totals[1]:13.2f} {totals[8]:15.2f}")
    print()
    print("resident memory after the run:")
    for pid in sorted(nameko_processes(system.pid), key=process_name):
        print(f"  {process_name(pid):<14} {rss_mb(pid):7.1f} MB")
    print(f"  {'bench_echo':<14} {rss_mb(echo.pid):7.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
