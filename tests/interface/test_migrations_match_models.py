"""Every service's migrations build exactly the schema its models declare, on PostgreSQL.

Tests that create tables from the models (``metadata.create_all``) would pass while a
migration is missing or differs, and production, which runs only the migrations, would
break. So: a fresh database, the migrations to head, and Alembic's autogenerate
comparison must find nothing to do.

A service whose package is not there yet fails here, by name; it is never skipped.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from mercato.db import create_engine
from mercato.migrations import _lock_key, alembic_config, upgrade
from mercato.topology import BY_NAME, PROCESSES
from mercato_testing.interface import wait_for

pytestmark = pytest.mark.interface

WAIT_SECONDS = 60.0


def _models_metadata(process) -> sa.MetaData:
    try:
        models = importlib.import_module(f"{process.package}.models")
    except ModuleNotFoundError as exc:
        pytest.fail(
            f"{process.name}: cannot import {process.package}.models from "
            f"{process.directory} ({exc}); every process needs its models and migrations"
        )
    return models.metadata


def _head(process) -> str:
    heads = ScriptDirectory.from_config(alembic_config(process)).get_heads()
    assert len(heads) == 1, f"{process.name} has {len(heads)} migration heads: {heads}"
    return heads[0]


@pytest.mark.parametrize("process", PROCESSES, ids=lambda process: process.name)
def test_migrations_at_head_match_the_models(process, databases):
    metadata = _models_metadata(process)
    head = _head(process)
    url = databases.empty(f"mig_{process.name}")

    upgrade(process, url)

    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalars().all() == [head]
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == [], f"{process.name}: migrations and models differ: {differences}"


_UPGRADE_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from mercato.migrations import upgrade
from mercato.topology import BY_NAME
upgrade(BY_NAME[sys.argv[1]], sys.argv[2])
"""


def _scalar(engine, query):
    # a new transaction each time: pg_stat_activity is a snapshot per transaction
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_concurrent_upgrades_wait_for_each_other_and_the_second_does_nothing(databases):
    """Two replicas (or two Helm hook attempts) upgrade the same database at once.

    The test holds the advisory lock itself until both are queued behind it, so they
    start truly together; without the lock they would not wait, and both would try to
    create the same tables.
    """
    process = BY_NAME["catalog"]
    url = databases.empty("mig_concurrent")
    engine = create_engine(url, pool_size=2)
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :database "
        "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
    ).bindparams(database=engine.url.database)
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(process)})
            holder.commit()
            upgrades = [
                subprocess.Popen(
                    [sys.executable, "-c", _UPGRADE_SCRIPT, process.name, url],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(2)
            ]
            try:
                wait_for(
                    lambda: _scalar(engine, waiting) == 2,
                    "both upgrades waiting on the advisory lock",
                    timeout=WAIT_SECONDS,
                )
            finally:
                holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(process)})
                holder.commit()
            outputs = [upgrade.communicate(timeout=WAIT_SECONDS)[0] for upgrade in upgrades]

        assert [upgrade.returncode for upgrade in upgrades] == [0, 0], outputs
        ran = sorted("Running upgrade" in output for output in outputs)
        assert ran == [False, True], outputs
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [_head(process)]
    finally:
        engine.dispose()
