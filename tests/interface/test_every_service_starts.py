"""Every service starts on PostgreSQL and RabbitMQ with its migrations, answers on the
bus, and serves /healthz, /readyz and /metrics on its own port."""

import importlib

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.topology import SERVICES

pytestmark = pytest.mark.interface


def _service_class(process):
    module = importlib.import_module(f"{process.package}.service")
    return getattr(module, process.service_class)


@pytest.mark.parametrize("process", SERVICES, ids=lambda p: p.name)
def test_service_starts_ready_and_counts_its_calls(process, container_factory, make_service_config):
    config = make_service_config(process.name)
    container = container_factory(_service_class(process), config)
    container.start()
    ops = next(d for d in container.dependencies if d.attr_name == "observability").ops_server
    base = f"http://127.0.0.1:{ops.port}"

    with ServiceRpcProxy(process.name, config, timeout=10) as proxy:
        assert proxy.ping() == {"service": process.name, "status": "ok"}

    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "problems": {}}
    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert (
        f'mercato_entrypoint_calls_total{{entrypoint="ping",kind="rpc",outcome="success",'
        f'service="{process.name}"}}' in metrics
    )
    assert f'mercato_outbox_backlog{{service="{process.name}"}}' in metrics


def test_readyz_reports_an_unreachable_database(container_factory, make_service_config):
    from catalog.service import CatalogService

    config = make_service_config(
        "catalog", database_url="postgresql://postgres@127.0.0.1:1/nowhere"
    )
    container = container_factory(CatalogService, config)
    container.start()
    ops = next(d for d in container.dependencies if d.attr_name == "observability").ops_server
    ready = requests.get(f"http://127.0.0.1:{ops.port}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["problems"]["db"].startswith("database unreachable")
