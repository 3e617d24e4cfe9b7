"""Test harness: a real RabbitMQ and a real PostgreSQL for every test tier.

Where each comes from, in order:

1. ``AMQP_URI`` and ``DATABASE_URL`` when set;
2. the local default when it answers: RabbitMQ at ``amqp://guest:guest@127.0.0.1:5672/``
   with its management plugin on 15672, PostgreSQL at
   ``postgresql://postgres@127.0.0.1:5432/postgres``;
3. a container started with testcontainers when a Docker engine answers;
4. otherwise the session stops with a message saying what to set. No test is ever
   skipped for want of a broker or a database.

``DATABASE_URL`` names a server (any database on it; the harness creates its own).
Each service's migrations run once per session into a template database; every test
that asks for a service database gets a fresh copy (``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kombu
import requests
import sqlalchemy as sa

from mercato import config
from mercato.topology import BY_NAME


class MissingInfrastructure(RuntimeError):
    pass


LOCAL_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answering_broker(amqp_uri: str) -> str | None:
    """``amqp_uri`` if a RabbitMQ answers there and its management API (which nameko's
    test fixtures use) answers too; else None."""
    try:
        with kombu.Connection(amqp_uri, connect_timeout=2) as connection:
            connection.connect()
        requests.get(f"{management_uri_for(amqp_uri)}/api/overview", timeout=2).raise_for_status()
    except Exception:
        return None
    return amqp_uri


def _answering_postgres(url: str) -> str | None:
    """``url`` if a PostgreSQL answers there; else None."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception:
        return None
    finally:
        engine.dispose()
    return url


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@dataclass
class Infrastructure:
    amqp_uri: str
    management_uri: str
    postgres_url: str
    _containers: list[Any] = field(default_factory=list)

    @classmethod
    def start(cls) -> Infrastructure:
        amqp_uri = os.environ.get("AMQP_URI") or _answering_broker(LOCAL_AMQP_URI)
        postgres_url = os.environ.get("DATABASE_URL") or _answering_postgres(LOCAL_DATABASE_URL)
        containers: list[Any] = []
        if not (amqp_uri and postgres_url) and not docker_available():
            missing = [
                n for n, v in (("AMQP_URI", amqp_uri), ("DATABASE_URL", postgres_url)) if not v
            ]
            raise MissingInfrastructure(
                f"{' and '.join(missing)} not set, nothing answers at the local default, and "
                "no Docker engine for testcontainers: start RabbitMQ (with "
                "`rabbitmq-plugins enable rabbitmq_management`) and PostgreSQL, or set "
                f"AMQP_URI={LOCAL_AMQP_URI} and DATABASE_URL={LOCAL_DATABASE_URL} to where "
                "they run"
            )
        if not amqp_uri:
            from testcontainers.rabbitmq import RabbitMqContainer

            rabbit = RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672)
            rabbit.start()
            containers.append(rabbit)
            host = rabbit.get_container_host_ip()
            amqp_uri = f"amqp://guest:guest@{host}:{rabbit.get_exposed_port(5672)}/"
            management_uri = f"http://guest:guest@{host}:{rabbit.get_exposed_port(15672)}"
        else:
            management_uri = os.environ.get("RABBIT_API_URI") or management_uri_for(amqp_uri)
        if not postgres_url:
            from testcontainers.postgres import PostgresContainer

            postgres = PostgresContainer("postgres:15-alpine", driver="psycopg2")
            postgres.start()
            containers.append(postgres)
            postgres_url = postgres.get_connection_url()
        return cls(amqp_uri, management_uri, postgres_url, containers)

    def stop(self) -> None:
        for container in self._containers:
            with contextlib.suppress(Exception):
                container.stop()


def management_uri_for(amqp_uri: str) -> str:
    parts = urlsplit(amqp_uri)
    user = parts.username or "guest"
    password = parts.password or "guest"
    return f"http://{user}:{password}@{parts.hostname or 'localhost'}:15672"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_vhost(amqp_uri: str, vhost: str) -> str:
    """``amqp_uri`` on the virtual host ``vhost`` instead of its own."""
    base = amqp_uri.rstrip("/")
    base = base[: base.rfind("/")] if base.count("/") > 2 else base
    return f"{base}/{vhost}"


def free_port() -> int:
    """A local TCP port nothing listens on just now (another program may take it before
    the caller binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct local TCP ports nothing listens on just now: all held open
    while they are chosen, so that no two of them are the same port."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _normalise(url: str) -> str:
    # testcontainers and people write postgres:// or postgresql+psycopg2://
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


class Databases:
    """Creates databases on one PostgreSQL server and drops them at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = _normalise(server_url)
        self._admin = sa.create_engine(
            with_database(self.server_url, "postgres"), isolation_level="AUTOCOMMIT", pool_size=1
        )
        self._templates: dict[str, str] = {}
        self._created: list[str] = []
        self._run = uuid.uuid4().hex[:8]

    def _create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
        self._created.append(name)
        return with_database(self.server_url, name)

    def template_for(self, service: str) -> str:
        """A database migrated to head for ``service``, made once per session."""
        if service not in self._templates:
            from mercato.migrations import upgrade

            name = f"mercato_tpl_{service}_{self._run}"
            upgrade(BY_NAME[service], self._create(name))
            self._templates[service] = name
        return self._templates[service]

    def fresh(self, service: str) -> str:
        """URL of a new database with ``service``'s schema at head."""
        template = self.template_for(service)
        return self._create(f"mercato_t_{service}_{uuid.uuid4().hex[:12]}", template)

    def empty(self, label: str = "empty") -> str:
        return self._create(f"mercato_t_{label}_{uuid.uuid4().hex[:12]}")

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in reversed(self._created):
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


# provisioning's credential keyring in tests: one throw-away AES-256 key
TEST_CREDENTIAL_KEYS = "test:" + base64.b64encode(os.urandom(32)).decode()
# the caller context's signing key in tests (conftest.py puts it in the environment, so
# every process a test starts, nameko's or a whole system's, holds the same one)
TEST_CONTEXT_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def signed_context(who: Any) -> dict[str, Any] | None:
    """Context data for a test's RPC proxy, its identity signed as the gateway signs it.

    ``who`` is an ``Identity``, a context dict (``{"account_id", "user_id", "roles", …}``
    and anything else, kept as it is) or None (anonymous)."""
    from mercato.identity import SIGNED_CONTEXT_KEYS, ContextSigner, Identity

    if who is None:
        return None
    data = who.to_context() if isinstance(who, Identity) else dict(who)
    identity = Identity.from_context(data)
    if identity is None:
        return data
    rest = {key: value for key, value in data.items() if key not in SIGNED_CONTEXT_KEYS}
    return {**rest, **ContextSigner.from_config({}).sign(identity)}


def service_config(
    service: str, *, amqp_uri: str, database_url: str | None, **overrides: Any
) -> dict[str, Any]:
    """The service's own config.yaml, pointed at the test broker and database."""
    loaded = config.load(BY_NAME[service].config_path)
    loaded.pop("LOGGING", None)
    loaded[config.AMQP_URI] = amqp_uri
    if database_url is not None:
        loaded[config.DATABASE_URL] = database_url
    loaded[config.OPS_ADDRESS] = "127.0.0.1:0"  # any free port
    loaded[config.OUTBOX_SWEEP_SECONDS] = 0.2
    if service == "provisioning" and not loaded.get("CREDENTIAL_KEYS"):
        loaded["CREDENTIAL_KEYS"] = TEST_CREDENTIAL_KEYS
    if not loaded.get(config.MERCATO_CONTEXT_KEY):
        loaded[config.MERCATO_CONTEXT_KEY] = os.environ.get(
            config.MERCATO_CONTEXT_KEY, TEST_CONTEXT_KEY
        )
    loaded.update(overrides)
    return loaded


@contextlib.contextmanager
def infrastructure() -> Iterator[Infrastructure]:
    infra = Infrastructure.start()
    try:
        yield infra
    finally:
        infra.stop()
