"""Alembic for every service: one migration history per service, applied by a command.

``mercato-migrate [service ...]`` (``make migrate``) upgrades each service's database
to head, reading ``DATABASE_URL`` from that service's config.yaml (so from the
environment). On PostgreSQL it holds an advisory lock for the whole upgrade, so two
replicas or two Helm hook attempts never race; the second waits, then finds nothing
to do.

Then, when ``AMQP_URI`` is set, it declares the broker's side of those services: every
event handler's durable queue bound to its source's exchange, its dead-letter queue
and the retry delay queues (``declare_event_queues``), so that no event is published
before the queue that must receive it exists. ``mercato-declare-event-queues`` does
that step alone (the Helm chart's hook Job, ``make run``).

Each service's ``migrations/env.py`` is two lines::

    from mercato.migrations import run_env
    from catalog.models import metadata; run_env(metadata)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import zlib
from pathlib import Path

import kombu
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from mercato import config as mercato_config
from mercato.db import create_engine
from mercato.inbox import declare_retry_topology, retry_delays
from mercato.topology import BY_NAME, EVENT_HANDLERS, PROCESSES, Process

_log = logging.getLogger("mercato.migrate")


# the revision every service's history begins with: the kernel's messaging tables
MESSAGING_MIGRATIONS = Path(__file__).resolve().parent / "messaging_migrations"


def alembic_config(process: Process, connection=None) -> Config:
    """The service's own revisions (``migrations/versions``) and the kernel's first one."""
    cfg = Config()
    cfg.set_main_option("script_location", str(process.migrations))
    own = process.migrations / "versions"
    locations = [str(path) for path in (own, MESSAGING_MIGRATIONS) if path.is_dir()]
    cfg.set_main_option("version_path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    cfg.attributes["connection"] = connection
    return cfg


def run_env(metadata: sa.MetaData) -> None:
    """Body of every service's alembic env.py (online mode only)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through mercato-migrate (make migrate)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _lock_key(process: Process) -> int:
    return zlib.crc32(f"mercato-migrate:{process.name}".encode())


def upgrade(process: Process, url: str, revision: str = "head") -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(process)}
                )
                connection.commit()
            try:
                command.upgrade(alembic_config(process, connection), revision)
                connection.commit()
            finally:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(process)}
                    )
                    connection.commit()
    finally:
        engine.dispose()


def database_url(process: Process) -> str:
    return str(mercato_config.load(process.config_path)[mercato_config.DATABASE_URL])


def declare_event_queues(amqp_uri: str, services: list[str] | None = None) -> list[str]:
    """Declare the event handler queues of ``services`` (default: all) with their
    bindings, dead-letter queues and the retry delay queues; return the handler queues.

    The queues are declared as nameko declares them when a handler starts (durable,
    no arguments), so either may come first. Idempotent: it only ever adds.
    """
    handlers = [h for h in EVENT_HANDLERS if services is None or h.service in services]
    with kombu.Connection(amqp_uri, connect_timeout=10) as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.channel()
        for handler in handlers:
            exchange = kombu.Exchange(handler.exchange, type="topic", durable=True)
            kombu.Queue(
                handler.queue, exchange=exchange, routing_key=handler.event_type, durable=True
            )(channel).declare()
        declare_retry_topology(
            channel, retry_delays(dict(os.environ)), [handler.queue for handler in handlers]
        )
    return [handler.queue for handler in handlers]


def _parse_services(parser: argparse.ArgumentParser, argv: list[str] | None) -> list[str]:
    parser.add_argument("services", nargs="*", help="service names (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.services or [process.name for process in PROCESSES]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return names


def declare_main(argv: list[str] | None = None) -> int:
    """``mercato-declare-event-queues [service ...]`` with ``AMQP_URI`` set."""
    parser = argparse.ArgumentParser(
        description="Declare the event queues of each service (and their dead-letter and "
        "retry queues) on the broker at AMQP_URI."
    )
    names = _parse_services(parser, argv)
    amqp_uri = os.environ.get(mercato_config.AMQP_URI)
    if not amqp_uri:
        parser.error("AMQP_URI is not set")
    declared = declare_event_queues(amqp_uri, names)
    _log.info("declared %d event queues for %s", len(declared), ", ".join(names))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Upgrade each service's database to head; with AMQP_URI set, declare "
        "its event queues too."
    )
    names = _parse_services(parser, argv)
    for name in names:
        process = BY_NAME[name]
        url = database_url(process)
        _log.info(
            "migrating %s (%s)", name, sa.engine.make_url(url).render_as_string(hide_password=True)
        )
        upgrade(process, url)
    amqp_uri = os.environ.get(mercato_config.AMQP_URI)
    if amqp_uri:
        declared = declare_event_queues(amqp_uri, names)
        _log.info("declared %d event queues", len(declared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
