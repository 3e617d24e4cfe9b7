"""Fixtures for every test tier (see mercato_testing for where the broker and the
database come from). nameko's pytest plugin gives ``container_factory`` and a
throw-away RabbitMQ vhost per test (``rabbit_config``)."""

import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading

import os  # noqa: E402

import pytest  # noqa: E402

from mercato_testing import (  # noqa: E402
    TEST_CONTEXT_KEY,
    Databases,
    Infrastructure,
    MissingInfrastructure,
    service_config,
)

# every Mercato process signs and verifies the caller context with this key: the
# containers tests start and the systems they run (mercato.identity)
os.environ.setdefault("MERCATO_CONTEXT_KEY", TEST_CONTEXT_KEY)

_infra: Infrastructure | None = None


def pytest_configure(config):
    global _infra
    if hasattr(config, "workerinput"):  # pragma: no cover - no xdist here
        return
    try:
        _infra = Infrastructure.start()
    except MissingInfrastructure as exc:
        pytest.exit(str(exc), returncode=3)
    # nameko's rabbit_config fixture reads these options
    config.option.RABBIT_AMQP_URI = _infra.amqp_uri
    config.option.RABBIT_API_URI = _infra.management_uri
    config.option.suppress_eventlet_notification = True


def pytest_unconfigure(config):
    if _infra is not None:
        _infra.stop()


@pytest.fixture(scope="session")
def infra() -> Infrastructure:
    assert _infra is not None
    return _infra


@pytest.fixture(scope="session")
def databases(infra):
    dbs = Databases(infra.postgres_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def make_service_config(rabbit_config, databases):
    """``make_service_config("catalog")``: the service's config on a fresh migrated
    database and this test's own vhost."""

    def make(service: str, **overrides):
        database_url = overrides.pop("database_url", None) or databases.fresh(service)
        return service_config(
            service, amqp_uri=rabbit_config["AMQP_URI"], database_url=database_url, **overrides
        )

    return make


@pytest.fixture(scope="session")
def cloud_simulator(tmp_path_factory):
    """One simulated cloud (``simulators/cloud``) for the session; each test makes its
    own accounts (``cloud_simulator.create_account(name)``) so tests stay independent."""
    from mercato_testing.cloud import start_cloud_simulator

    handle = start_cloud_simulator(tmp_path_factory.mktemp("cloud-simulator"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def payments_simulator(tmp_path_factory):
    """One simulated card provider (``simulators/payments``) for the session: billing's
    ``CARD_GATEWAY_URL``. Tests get their own tokens (``payments_simulator.token(number)``)."""
    from mercato_testing.payments import start_payments_simulator

    handle = start_payments_simulator(tmp_path_factory.mktemp("payments-simulator"))
    yield handle
    handle.stop()
