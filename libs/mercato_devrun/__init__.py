"""``make run``: the whole system on one machine, with demo data.

1. checks that RabbitMQ answers at ``AMQP_URI`` (starts one with testcontainers when a
   Docker engine is present; otherwise says in one line how to start one), and declares
   the subscriber queues of ``EVENT_SUBSCRIBER_QUEUES`` (docs/events.md) and every
   service's event handler queues (``mercato.migrations.declare_event_queues``), so no
   event is published before the queue that must receive it exists;
2. migrates every service's database (SQLite files under ``var/`` unless the
   ``<SERVICE>_DATABASE_URL`` variables say otherwise);
3. creates the demo operator (the command-line way, as in production);
4. gives provisioning a credential encryption key (made once into ``var/``, unless
   ``PROVISIONING_CREDENTIAL_KEYS`` is set);
5. starts the simulated cloud (``simulators/cloud``, ``mercato_devrun.cloud``) with
   Mercato's own cloud account and a demo buyer's, and gives iam-agency and
   provisioning its address and Mercato's keys; starts the simulated card provider
   (``simulators/payments``, ``mercato_devrun.payments``) on 127.0.0.1:8500 and gives
   billing its address (``CARD_GATEWAY_URL``);
6. starts the seven processes under honcho, each line of their logs prefixed by name,
   and starts again, after a backoff, any that dies (``mercato_devrun.restarts``);
7. once every ``/readyz`` answers 200, signs up the demo buyer and seller through the
   public API, has the seller list and publish a few products (two SaaS products, one
   of them supervised; a license and a professional service, which are always
   supervised), issues the seller's SaaS interface credentials and starts the
   reference seller application (``examples/seller-saas``) with them, so the demo
   SaaS products can be bought and opened at once; lists an image product and links
   the demo buyer's cloud account; then prints the gateway URL and the demo
   credentials;
8. then gives the demo buyer two enterprise projects besides ``default`` (Production,
   commercial; Staging, test) with purchases paid by card in each, and requests an
   invoice for the Production backup order (billing's sweep issues it), all through the
   public API (``seed_demo_purchases``).

Ctrl-C stops all of them (SIGTERM, then nameko's graceful stop); a process that exits
unasked is restarted, never the cause of the others stopping.

Every variable of the environment reaches every process: ``MERCATO_CLOCK=controllable
make run`` runs the system on the test clock (``mercato.clock``), which an operator moves
with ``POST /v1/admin/clock``, and ``MERCATO_CLOCK_START`` starts it at an instant.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import requests
from kombu import Connection

from mercato import config
from mercato.clock import CONTROLLABLE
from mercato.topology import GATEWAY, PROCESSES, SERVICES, Process
from mercato_devrun import cloud, payments
from mercato_devrun.children import ChildProcess
from mercato_devrun.restarts import RestartingManager

READY_TIMEOUT_SECONDS = 90
CREDENTIAL_KEYS_FILE = Path("var") / "provisioning-credential-keys"
CONTEXT_KEY_FILE = Path("var") / "context-key"
SELLER_APP = Path("examples") / "seller-saas" / "seller_saas.py"


def start(env: Mapping[str, str], output: IO[bytes]) -> subprocess.Popen:
    """``make run`` as a child process, as the end-to-end tests and the benchmark start
    it: ``env`` is its whole environment, its output goes to ``output``, and it leads a
    session of its own, so that one signal reaches everything it starts."""
    return subprocess.Popen(
        [sys.executable, "-m", "mercato_devrun"],
        cwd=config.ROOT,
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# the key of ``listening_on``'s ports for the gateway's operations server (its /metrics)
GATEWAY_OPS = "gateway_ops"


def listening_on(ports: Mapping[str, int]) -> dict[str, str]:
    """The environment that has each process serve HTTP on 127.0.0.1 at its port in
    ``ports`` (by name): a service its /metrics and /readyz, the gateway its API, and
    its /metrics at ``ports[GATEWAY_OPS]`` (any free port when not given)."""
    env = {
        f"{process.env_prefix}_OPS_ADDRESS": f"127.0.0.1:{ports[process.name]}"
        for process in SERVICES
    }
    env["GATEWAY_ADDRESS"] = f"127.0.0.1:{ports[GATEWAY.name]}"
    env["GATEWAY_OPS_ADDRESS"] = f"127.0.0.1:{ports.get(GATEWAY_OPS, 0)}"
    return env


def seller_app_address() -> str:
    """Where the demo seller's SaaS application listens (``DEMO_SELLER_SAAS_ADDRESS``)."""
    return os.environ.get("DEMO_SELLER_SAAS_ADDRESS", "127.0.0.1:8300")


DEMO_OPERATOR = {
    "name": "Demo Operator",
    "email": "operator@demo.mercato",
    "password": "operator-demo-pass",
}
DEMO_ACCOUNTS = [
    {
        "name": "Demo Buyer",
        "email": "buyer@demo.mercato",
        "password": "buyer-demo-pass",
        "type": "buyer",
    },
    {
        "name": "Demo Seller",
        "email": "seller@demo.mercato",
        "password": "seller-demo-pass",
        "type": "seller",
    },
]


def _say(message: str) -> None:
    print(f"mercato | {message}", flush=True)


def ensure_broker() -> str | None:
    """The AMQP URI to use, or None after saying why there is none."""
    amqp_uri = os.environ.get("AMQP_URI", config.DEFAULT_AMQP_URI)
    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return amqp_uri
    except Exception as exc:
        from mercato_testing import docker_available

        if docker_available():
            from testcontainers.rabbitmq import RabbitMqContainer

            _say(f"RabbitMQ not reachable ({exc}); starting one with testcontainers")
            rabbit = RabbitMqContainer("rabbitmq:3.13-management")
            rabbit.start()
            return f"amqp://guest:guest@{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(5672)}/"
        safe = Connection(amqp_uri).as_uri()
        print(
            f"RabbitMQ is not reachable at {safe} ({type(exc).__name__}): start one "
            "(`rabbitmq-server -detached`, or `docker run -d -p 5672:5672 rabbitmq:3-management`) "
            "or set AMQP_URI.",
            file=sys.stderr,
        )
        return None


def http_base(process: Process) -> str:
    """Where a process serves /readyz (the gateway: its API), read from its config (so
    from the environment)."""
    loaded = config.load(process.config_path)
    address = loaded.get("WEB_SERVER_ADDRESS") or loaded.get(config.OPS_ADDRESS)
    host, _, port = str(address).rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
    return f"http://{host}:{port}"


def wait_until_ready(
    deadline: float,
    bases: Mapping[str, str] | None = None,
    *,
    running: Callable[[], bool] = lambda: True,
) -> list[str]:
    """Names of the processes not ready by ``deadline`` (empty when all are), or as soon
    as ``running`` says they are no longer running. ``bases``: where each one serves
    /readyz, by name (default: where this process's environment puts them)."""
    pending = dict(bases or {process.name: http_base(process) for process in PROCESSES})
    while pending and time.monotonic() < deadline and running():
        for name, base in list(pending.items()):
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    del pending[name]
            except requests.RequestException:
                pass
        if pending:
            time.sleep(0.5)
    return sorted(pending)


DEMO_PROFILE = {
    "company_name": "Demo Seller Co",
    "email": "support@demo.mercato",
    "mobile": "+1 555 0100",
    "support_range": "Weekdays 09:00-18:00 UTC, email and phone",
}
DEMO_PRODUCTS = [
    {
        "name": "Nimbus Backup for ECS",
        "summary": "Incremental, encrypted backups of your cloud servers.",
        "description": "Backs up every disk of your ECS servers hourly and keeps 30 days.",
        "category": "storage",
        "delivery_method": "saas",
        "service_supervision": False,
        "product_guide_url": "https://demo.mercato/guides/backup",
        "terms": "Backups are kept 30 days. Cancel any time.",
        # the reference seller application started beside the services
        "saas_endpoint_url": "http://{seller_app}/saas",
        "specifications": [
            {
                "name": "Standard",
                "prices": [
                    {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 1500},
                    {"billing_mode": "yearly_monthly", "period_unit": "year", "amount": 15000},
                ],
                "quantity": {"name": "servers", "min": 1, "max": 100},
            }
        ],
    },
    {
        "name": "Granite Firewall License",
        "summary": "A next-generation firewall you run on your own servers.",
        "description": "Layer-7 rules, intrusion prevention and a web console.",
        "category": "security",
        "delivery_method": "license",
        # a license is always supervised: the buyer accepts it once it is activated
        "service_supervision": True,
        "product_guide_url": "https://demo.mercato/guides/firewall",
        "terms": "One license per protected server.",
        "specifications": [
            {
                "name": "Per server",
                "prices": [{"billing_mode": "one_time", "amount": 49900}],
                "quantity": {"name": "licenses", "min": 1, "max": 1000},
            }
        ],
    },
    {
        "name": "Helix Database Migration Service",
        "summary": "Engineers move your database to the cloud with no downtime.",
        "description": "Assessment, migration plan, rehearsal and cut-over by our team.",
        "category": "database",
        "delivery_method": "professional_service",
        "service_supervision": True,
        "product_guide_url": "https://demo.mercato/guides/migration",
        "terms": "Delivered within 10 working days of the kick-off call.",
        # what a buyer is asked in its service request (set after creating the product)
        "request_template": "Database engine and version:\nSize (GB):\n"
        "Source location:\nTarget region:\nA maintenance window we may use:",
        "specifications": [
            {"name": "Up to 1 TB", "prices": [{"billing_mode": "one_time", "amount": 250000}]}
        ],
    },
    {
        "name": "Lumen Analytics Workspace",
        "summary": "A managed analytics workspace, set up with you and accepted by you.",
        "description": "Dashboards and reports on your own data; our team connects your "
        "sources, and the workspace is yours once you accept it.",
        "category": "analytics",
        "delivery_method": "saas",
        # delivered by the seller's application, then accepted by the buyer
        "service_supervision": True,
        "product_guide_url": "https://demo.mercato/guides/analytics",
        "terms": "The workspace is set up within 2 working days; cancel any time.",
        "saas_endpoint_url": "http://{seller_app}/saas",
        "specifications": [
            {
                "name": "Team",
                "prices": [
                    {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 9900},
                    {"billing_mode": "yearly_monthly", "period_unit": "year", "amount": 99000},
                ],
                "quantity": {"name": "users", "min": 1, "max": 50},
            }
        ],
    },
]


# an image: servers deployed into the buyer's own cloud account under its agencies
DEMO_IMAGE_PRODUCT = {
    "name": "Helix CMS Server",
    "summary": "A content management server on Ubuntu, deployed into your cloud account.",
    "description": "Helix CMS preinstalled on Ubuntu 22.04, behind the seller's recommended "
    "security group (SSH and HTTPS). Deployed on servers in your own account.",
    "category": "collaboration",
    "delivery_method": "image",
    "service_supervision": False,
    "product_guide_url": "https://demo.mercato/guides/helix-cms",
    "terms": "The image is licensed per server; the cloud resources are billed with it.",
    "specifications": [
        {
            "name": "Standard",
            "prices": [
                {"billing_mode": "yearly_monthly", "period_unit": "month", "amount": 2900},
                {"billing_mode": "pay_per_use", "period_unit": "hour", "amount": 6},
            ],
            "image": {
                "image_id": "mkp-demo-ubuntu-22.04",
                "flavors": ["s6.medium.2", "s6.large.2"],
                "min_system_disk_gb": 40,
                "recommended_security_group": {
                    "name": "helix-cms-web",
                    "rules": [
                        {"direction": "ingress", "protocol": "tcp", "port_range": "22"},
                        {"direction": "ingress", "protocol": "tcp", "port_range": "443"},
                    ],
                },
            },
            "cloud_prices": [
                {
                    "period_unit": "month",
                    "flavors": {"s6.medium.2": 2400, "s6.large.2": 4800},
                    "disk_gb": 10,
                    "eip_mbps": 300,
                },
                {
                    "period_unit": "hour",
                    "flavors": {"s6.medium.2": 4, "s6.large.2": 8},
                    "disk_gb": 1,
                    "eip_mbps": 1,
                },
            ],
        }
    ],
}
DEMO_PRODUCTS.append(DEMO_IMAGE_PRODUCT)


# the demo buyer's enterprise projects besides ``default``, each with purchases (by
# product name; paid by card), and the invoice it asks for its Production backup order
DEMO_PROJECTS = [
    {
        "name": "Production",
        "description": "Live workloads our customers use.",
        "type": "commercial",
    },
    {
        "name": "Staging",
        "description": "Releases tried out before they reach production.",
        "type": "test",
    },
]
DEMO_PURCHASES: list[dict[str, Any]] = [
    {
        "project": "Production",
        "product": "Nimbus Backup for ECS",
        "billing_mode": "yearly_monthly",
        "period": {"unit": "year", "count": 1},
        "quantity": 5,
    },
    {
        "project": "Production",
        "product": "Granite Firewall License",
        "billing_mode": "one_time",
        "quantity": 2,
    },
    {
        "project": "Staging",
        "product": "Nimbus Backup for ECS",
        "billing_mode": "yearly_monthly",
        "period": {"unit": "month", "count": 1},
        "quantity": 1,
    },
]
DEMO_INVOICE = {
    "project": "Production",
    "product": "Nimbus Backup for ECS",
    "title": "Demo Buyer Ltd",
    "tax_id": "DEMO-TAX-0001",
    "address": "1 Demo Street, Springfield",
    "email": "accounts@demo.mercato",
}
# a test card of the simulated card provider (simulators/payments/README.md)
DEMO_CARD = {"number": "4242424242424242", "expiry": "12/35", "cvc": "123"}
# how long billing may take to hear of a paid order (its events) before invoicing it
INVOICE_WAIT_SECONDS = 30


def seed_demo_accounts(gateway: str) -> None:
    for account in DEMO_ACCOUNTS:
        response = requests.post(f"{gateway}/v1/accounts", json=account, timeout=10)
        if response.status_code not in (201, 409):
            _say(f"could not create {account['email']}: {response.status_code} {response.text}")


def demo_seller_headers(gateway: str) -> dict[str, str]:
    seller = next(account for account in DEMO_ACCOUNTS if account["type"] == "seller")
    token = requests.post(
        f"{gateway}/v1/auth/tokens",
        json={"email": seller["email"], "password": seller["password"]},
        timeout=10,
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def link_demo_buyer_cloud(gateway: str, accounts: dict) -> None:
    """The demo buyer's cloud account, linked once (``PUT /v1/cloud-account``); its
    agencies are the buyer's to authorise (README, "Deploy an image")."""
    buyer = next(account for account in DEMO_ACCOUNTS if account["type"] == "buyer")
    token = requests.post(
        f"{gateway}/v1/auth/tokens",
        json={"email": buyer["email"], "password": buyer["password"]},
        timeout=10,
    ).json()["token"]
    linked = requests.put(
        f"{gateway}/v1/cloud-account",
        json=cloud.demo_buyer_cloud_account(accounts),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if linked.status_code != 200:
        _say(f"could not link the demo buyer's cloud account: {linked.status_code} {linked.text}")


def seed_demo_products(gateway: str) -> None:
    """The demo seller lists and publishes a few products, through the public API like
    any seller, once each: a later run lists only those it does not find by name (a
    product added to ``DEMO_PRODUCTS`` since the databases under ``var/`` were made)."""
    headers = demo_seller_headers(gateway)
    listed = requests.get(
        f"{gateway}/v1/seller/products", params={"page_size": 100}, headers=headers, timeout=10
    ).json()
    missing = [
        product
        for product in DEMO_PRODUCTS
        if product["name"] not in {item["name"] for item in listed["items"]}
    ]
    if not missing:
        return
    if not listed["total"]:
        requests.put(f"{gateway}/v1/seller/profile", json=DEMO_PROFILE, headers=headers, timeout=10)
    for product in missing:
        template = product.get("request_template")
        product = {key: value for key, value in product.items() if key != "request_template"}
        if "saas_endpoint_url" in product:
            endpoint = str(product["saas_endpoint_url"]).format(seller_app=seller_app_address())
            product = {**product, "saas_endpoint_url": endpoint}
        created = requests.post(
            f"{gateway}/v1/seller/products", json=product, headers=headers, timeout=10
        )
        if created.status_code != 201:
            _say(f"could not list {product['name']}: {created.status_code} {created.text}")
            continue
        product_id = created.json()["id"]
        if template:
            requests.put(
                f"{gateway}/v1/seller/products/{product_id}/request-template",
                json={"template": template},
                headers=headers,
                timeout=10,
            )
        requests.post(
            f"{gateway}/v1/seller/products/{product_id}/publish", headers=headers, timeout=10
        )


class SeedError(Exception):
    """The gateway refused a step of the demo seeding."""


def _expect(response: requests.Response, *statuses: int) -> dict:
    if response.status_code not in statuses:
        request = response.request
        raise SeedError(
            f"{request.method} {request.path_url}: {response.status_code} {response.text[:500]}"
        )
    return response.json() if response.content else {}


def demo_buyer_headers(gateway: str) -> dict[str, str]:
    buyer = next(account for account in DEMO_ACCOUNTS if account["type"] == "buyer")
    issued = requests.post(
        f"{gateway}/v1/auth/tokens",
        json={"email": buyer["email"], "password": buyer["password"]},
        timeout=10,
    )
    return {"Authorization": f"Bearer {_expect(issued, 201)['token']}"}


def seed_demo_projects(gateway: str, headers: dict[str, str]) -> dict[str, str]:
    """The demo buyer's projects of ``DEMO_PROJECTS``, created once (found by name
    afterwards); answers their ids by name."""
    listed = _expect(
        requests.get(
            f"{gateway}/v1/enterprise-projects",
            params={"page_size": 100},
            headers=headers,
            timeout=10,
        ),
        200,
    )
    ids = {item["name"]: item["id"] for item in listed["items"]}
    for project in DEMO_PROJECTS:
        if project["name"] in ids:
            continue
        created = requests.post(
            f"{gateway}/v1/enterprise-projects", json=project, headers=headers, timeout=10
        )
        ids[project["name"]] = _expect(created, 201)["id"]
    return ids


def _card_token() -> dict[str, str]:
    """A token of the demo card from the card provider billing charges (as a client
    gets one: the card number never goes to Mercato)."""
    provider = os.environ.get("CARD_GATEWAY_URL") or payments.endpoint()
    answer = requests.post(f"{provider}/v1/tokens", json=DEMO_CARD, timeout=10)
    return {"token": _expect(answer, 201)["token"]}


def _published_products(gateway: str) -> dict[str, dict]:
    found = _expect(
        requests.get(f"{gateway}/v1/products", params={"page_size": 100}, timeout=10), 200
    )
    return {item["name"]: item for item in found["items"]}


def _order_of(orders: list[dict], project_id: str, product_name: str) -> dict | None:
    """The demo buyer's order of ``product_name`` in the project, if one stands."""
    for order in orders:
        if (
            order["enterprise_project_id"] == project_id
            and order["status"] not in ("cancelled", "failed")
            and any(line["product_name"] == product_name for line in order["lines"])
        ):
            return order
    return None


def seed_demo_purchases(gateway: str) -> list[str]:
    """The demo buyer's projects (``DEMO_PROJECTS``), a purchase of each of
    ``DEMO_PURCHASES`` in its project paid by card, and an invoice asked for the
    ``DEMO_INVOICE`` order, through the public API as a buyer does it. Each is made
    once: a later run finds what the databases under ``var/`` hold and makes only what
    is missing (an order placed but unpaid is paid). Answers what it made, in words;
    ``SeedError`` when the gateway refuses a step."""
    headers = demo_buyer_headers(gateway)
    made: list[str] = []
    projects = seed_demo_projects(gateway, headers)
    products = _published_products(gateway)
    orders = _expect(
        requests.get(
            f"{gateway}/v1/orders", params={"page_size": 100}, headers=headers, timeout=10
        ),
        200,
    )["items"]
    for purchase in DEMO_PURCHASES:
        project_id = projects[purchase["project"]]
        order = _order_of(orders, project_id, purchase["product"])
        if order is None:
            product = _expect(
                requests.get(
                    f"{gateway}/v1/products/{products[purchase['product']]['id']}", timeout=10
                ),
                200,
            )
            body = {
                "product_id": product["id"],
                "specification_id": product["specifications"][0]["id"],
                "billing_mode": purchase["billing_mode"],
                "quantity": purchase["quantity"],
                "enterprise_project_id": project_id,
                "accept_terms": True,
            }
            if "period" in purchase:
                body["period"] = purchase["period"]
            order = _expect(
                requests.post(
                    f"{gateway}/v1/orders",
                    json=body,
                    headers={**headers, "Idempotency-Key": f"demo-order-{uuid.uuid4().hex}"},
                    timeout=15,
                ),
                201,
            )
            orders.append(order)
        if order["status"] == "unpaid":
            paid = _expect(
                requests.post(
                    f"{gateway}/v1/orders/{order['id']}/pay",
                    json={"payment_method": "credit_card", "card": _card_token()},
                    headers={**headers, "Idempotency-Key": f"demo-pay-{uuid.uuid4().hex}"},
                    timeout=30,
                ),
                200,
            )
            order.update(status=paid["status"])
            made.append(f"{purchase['product']} in {purchase['project']}")
    invoiced = _expect(
        requests.get(
            f"{gateway}/v1/invoices", params={"page_size": 1}, headers=headers, timeout=10
        ),
        200,
    )
    if not invoiced["total"]:
        order = _order_of(orders, projects[DEMO_INVOICE["project"]], DEMO_INVOICE["product"])
        if order is None:
            raise SeedError(f"no {DEMO_INVOICE['product']} order to invoice")
        invoice = _request_invoice(gateway, headers, order["id"])
        made.append(f"invoice {invoice['id']} for order {order['id']}")
    return made


def _request_invoice(gateway: str, headers: dict[str, str], order_id: str) -> dict:
    """``POST /v1/invoices`` for the order, asked again while billing has not heard of
    its payment yet (the order's events reach billing a moment after the payment)."""
    body = {
        "order_ids": [order_id],
        **{key: DEMO_INVOICE[key] for key in ("title", "tax_id", "address", "email")},
    }
    deadline = time.monotonic() + INVOICE_WAIT_SECONDS
    while True:
        requested = requests.post(
            f"{gateway}/v1/invoices",
            json=body,
            headers={**headers, "Idempotency-Key": f"demo-invoice-{uuid.uuid4().hex}"},
            timeout=15,
        )
        if requested.status_code not in (404, 409) or time.monotonic() > deadline:
            return _expect(requested, 201)
        time.sleep(1)


class SellerApp(ChildProcess):
    """The demo seller's SaaS application (the reference app), run beside the
    services with interface credentials the demo seller issues through the API at
    each start (a new pair replaces the last)."""

    def __init__(self) -> None:
        super().__init__("seller-saas")

    def start(self, gateway: str) -> None:
        issued = requests.post(
            f"{gateway}/v1/seller/interface-credentials",
            json={},
            headers=demo_seller_headers(gateway),
            timeout=10,
        )
        if issued.status_code != 201:
            _say(f"no SaaS interface credentials: {issued.status_code} {issued.text}")
            return
        host, _, port = seller_app_address().rpartition(":")
        database = os.environ.get("DEMO_SELLER_SAAS_DB", str(Path("var") / "seller-saas.sqlite3"))
        self.spawn(
            [
                sys.executable,
                str(SELLER_APP),
                f"--host={host}",
                f"--port={port}",
                f"--db={database}",
            ],
            env={
                **os.environ,
                "SELLER_ACCESS_KEY": issued.json()["access_key"],
                "SELLER_SECRET": issued.json()["secret"],
            },
        )


def ensure_credential_keys() -> None:
    """provisioning seals delivered passwords under ``PROVISIONING_CREDENTIAL_KEYS``;
    on a laptop the key is made once and kept in ``var/`` (never for production)."""
    if os.environ.get("PROVISIONING_CREDENTIAL_KEYS"):
        return
    if not CREDENTIAL_KEYS_FILE.exists():
        # the setting's documented form, key_id:base64(32 random bytes)
        CREDENTIAL_KEYS_FILE.touch(mode=0o600)
        key = base64.b64encode(os.urandom(32)).decode()
        CREDENTIAL_KEYS_FILE.write_text(f"dev-1:{key}\n")
    os.environ["PROVISIONING_CREDENTIAL_KEYS"] = CREDENTIAL_KEYS_FILE.read_text().strip()


def ensure_context_key() -> None:
    """Every process signs and verifies who is calling with ``MERCATO_CONTEXT_KEY``
    (``mercato.identity``); on a laptop it is made once and kept in ``var/``."""
    if os.environ.get(config.MERCATO_CONTEXT_KEY):
        return
    if not CONTEXT_KEY_FILE.exists():
        CONTEXT_KEY_FILE.touch(mode=0o600)
        CONTEXT_KEY_FILE.write_text(secrets.token_urlsafe(32) + "\n")
    os.environ[config.MERCATO_CONTEXT_KEY] = CONTEXT_KEY_FILE.read_text().strip()


def announce_when_ready(started: float, seller_app: SellerApp, accounts: dict) -> None:
    not_ready = wait_until_ready(started + READY_TIMEOUT_SECONDS)
    if not_ready:
        _say(f"not ready after {READY_TIMEOUT_SECONDS}s: {', '.join(not_ready)} (see their logs)")
        return
    gateway = http_base(GATEWAY)
    seed_demo_accounts(gateway)
    seed_demo_products(gateway)
    link_demo_buyer_cloud(gateway, accounts)
    seller_app.start(gateway)
    _say(f"all {len(PROCESSES)} processes ready in {time.monotonic() - started:.1f}s")
    _say(f"gateway: {gateway}  (API docs: {gateway}/docs)")
    _say("demo accounts (sign in with POST /v1/auth/tokens):")
    for account in [{**DEMO_OPERATOR, "type": "operator"}, *DEMO_ACCOUNTS]:
        _say(f"  {account['type']:<9} {account['email']:<24} {account['password']}")
    _say(f"demo seller's SaaS application: http://{seller_app_address()}/saas")
    _say(
        f"simulated cloud: {cloud.endpoint()} (the demo buyer's cloud keys, to authorise "
        f"its agencies: {os.environ.get('CLOUD_ACCOUNTS_FILE', cloud.ACCOUNTS_FILE)})"
    )
    _say(
        f"simulated card provider: {payments.endpoint()} (a card token: POST "
        f"{payments.endpoint()}/v1/tokens; test cards in simulators/payments/README.md)"
    )
    if os.environ.get(config.MERCATO_CLOCK, "").strip().lower() == CONTROLLABLE:
        _say(
            "test clock: the demo operator moves every service's time with "
            f'POST {gateway}/v1/admin/clock {{"advance_seconds": …}}'
        )
    _say("Ctrl-C stops everything")
    try:
        made = seed_demo_purchases(gateway)
    except (SeedError, requests.RequestException, KeyError) as exc:
        _say(f"demo purchases not seeded: {exc}")
        return
    names = ", ".join(f"{p['name']} ({p['type']})" for p in DEMO_PROJECTS)
    _say(
        f"demo purchases seeded: the demo buyer's projects {names}"
        + (f"; made now: {'; '.join(made)}" if made else " (already there)")
    )


def main() -> int:
    from honcho.printer import Printer

    started = time.monotonic()
    os.chdir(config.ROOT)
    Path("var").mkdir(exist_ok=True)
    amqp_uri = ensure_broker()
    if amqp_uri is None:
        return 2
    os.environ["AMQP_URI"] = amqp_uri

    # subscribers' queues (EVENT_SUBSCRIBER_QUEUES) exist before anything publishes
    from mercato_subscribers import InvalidSubscriberQueues, QueueConflict, declare_from_environment

    try:
        declared = declare_from_environment(amqp_uri)
    except (InvalidSubscriberQueues, QueueConflict) as exc:
        print(exc, file=sys.stderr)
        return 2
    if declared:
        _say(f"declared subscriber queues: {', '.join(queue.queue for queue in declared)}")
    # and every service's event handler queues, with their dead-letter and delay queues
    from mercato.migrations import declare_event_queues

    _say(f"declared {len(declare_event_queues(amqp_uri))} event handler queues")

    from mercato.migrations import database_url, upgrade

    for process in PROCESSES:
        upgrade(process, database_url(process))
    _say(f"migrated {len(PROCESSES)} databases")
    subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [
            str(Path(sys.executable).with_name("mercato-create-operator")),
            "--if-missing",
            "--name",
            DEMO_OPERATOR["name"],
            "--email",
            DEMO_OPERATOR["email"],
        ],
        env={**os.environ, "MERCATO_OPERATOR_PASSWORD": DEMO_OPERATOR["password"]},
        check=True,
        stdout=subprocess.DEVNULL,
    )

    ensure_credential_keys()
    ensure_context_key()
    # the simulated cloud, with Mercato's own account and the demo buyer's
    simulated_cloud = cloud.SimulatedCloud()
    simulated_cloud.start()
    accounts = cloud.ensure_accounts()
    for key, value in cloud.service_environment(accounts).items():
        os.environ.setdefault(key, value)
    # the simulated card provider billing charges cards at
    simulated_payments = payments.SimulatedPayments()
    simulated_payments.start()
    os.environ.setdefault("CARD_GATEWAY_URL", payments.endpoint())
    # the demo seller's application listens on 127.0.0.1: allowed on a laptop only
    os.environ.setdefault("PROVISIONING_ALLOW_PRIVATE_SELLER_ENDPOINTS", "true")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # the processes write into honcho's pipes, not the terminal: say what it is
    env.setdefault("LOG_FORMAT", "text" if sys.stdout.isatty() else "json")
    manager = RestartingManager(Printer(sys.stdout))
    for process in PROCESSES:
        command = f"exec {sys.executable} -m nameko run --config {process.config_path} {process.nameko_target}"
        manager.add_process(process.name, command, env=env, cwd=str(config.ROOT))
    seller_app = SellerApp()
    threading.Thread(
        target=announce_when_ready, args=(started, seller_app, accounts), daemon=True
    ).start()
    try:
        manager.loop()
    finally:
        seller_app.stop()
        simulated_payments.stop()
        simulated_cloud.stop()
    return manager.returncode or 0
