"""Alembic for every service: one migration history per service, applied by a command.

``mercato-migrate [service ...]`` (``make migrate``) upgrades each service's database
to head, reading ``DATABASE_URL`` from that service's config.yaml (so from the
environment). On PostgreSQL it holds an advisory lock for the whole upgrade, so two
replicas or two Helm hook attempts never race; the second waits, then finds nothing
to do.

Each service's ``migrations/env.py`` is two lines::

    from mercato.migrations import run_env
    from catalog.models import metadata; run_env(metadata)
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from mercato import config as mercato_config
from mercato.db import create_engine
from mercato.topology import BY_NAME, PROCESSES, Process

_log = logging.getLogger("mercato.migrate")


def alembic_config(process: Process, connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(process.migrations))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upgrade each service's database to head.")
    parser.add_argument("services", nargs="*", help="service names (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.services or [process.name for process in PROCESSES]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    for name in names:
        process = BY_NAME[name]
        url = database_url(process)
        _log.info(
            "migrating %s (%s)", name, sa.engine.make_url(url).render_as_string(hide_password=True)
        )
        upgrade(process, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def create_messaging_tables_v1() -> None:
    """Create the outbox, inbox and dead-letter tables as version 1 defines them.

    Every service's first migration calls this. It is a frozen copy of
    ``mercato.outbox.add_messaging_tables`` at version 1: a later change to those
    tables gets a migration of its own in every service, never an edit here.
    """
    from alembic import op
    from sqlalchemy.dialects.postgresql import JSONB

    from mercato.tables import UTCDateTime

    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "outbox_messages",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.Column("headers", json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_outbox_messages_published_at_id", "outbox_messages", ["published_at", "id"])
    op.create_table(
        "inbox_messages",
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("payload", json, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dead_letters_handler_event_id", "dead_letters", ["handler", "event_id"])


def drop_messaging_tables_v1() -> None:
    from alembic import op

    op.drop_table("dead_letters")
    op.drop_table("inbox_messages")
    op.drop_table("outbox_messages")
