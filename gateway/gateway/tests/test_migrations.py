"""The gateway's migrations build exactly the tables its models declare."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.models import metadata
from mercato.db import create_engine
from mercato.migrations import upgrade
from mercato.topology import BY_NAME


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migrations_match_the_models(backend, databases, tmp_path):
    if backend == "postgresql":
        url = databases.fresh("gateway")
    else:
        url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        upgrade(BY_NAME["gateway"], url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert "idempotency_records" in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
