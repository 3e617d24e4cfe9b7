"""Fixtures of the catalog's tests: the service running on PostgreSQL, or on either
backend (``any_catalog``), each with a clock the test moves."""

import pytest

from catalog.tests.support import sqlite_url, start_catalog


@pytest.fixture
def catalog(container_factory, make_service_config):
    """The catalog on PostgreSQL and this test's RabbitMQ vhost: ``(config, clock)``."""
    config = make_service_config("catalog")
    return config, start_catalog(container_factory, config)


@pytest.fixture(params=["postgresql", "sqlite"])
def any_catalog(request, container_factory, make_service_config, tmp_path):
    """The catalog on PostgreSQL, then on SQLite (a file in a temp dir, as ``make
    run`` uses): ``(config, clock)``."""
    if request.param == "sqlite":
        config = make_service_config("catalog", database_url=sqlite_url(tmp_path))
    else:
        config = make_service_config("catalog")
    return config, start_catalog(container_factory, config)
