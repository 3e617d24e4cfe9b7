"""Fixtures of the gateway's tests: a gateway container, with iam-agency beside it when
the test needs one (and catalog, orders and billing for the marketplace's routes),
each on its own fresh PostgreSQL database and the test's vhost, reached over real
HTTP on a free local port."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from billing.service import BillingService
from catalog.service import CatalogService
from gateway.service import GatewayService
from iam_agency.service import IamAgencyService
from mercato_testing import free_port
from mercato_testing.interface import count_rows
from orders.service import OrdersService
from provisioning.service import ProvisioningService

SECRET = "test-idempotency-secret-0123456789abcdef"

# the services behind the marketplace's routes (iam-agency is started on its own)
MARKET_SERVICES = {
    "catalog": CatalogService,
    "orders": OrdersService,
    "billing": BillingService,
    "provisioning": ProvisioningService,
}


BIND_ATTEMPTS = 3


@dataclass
class Stack:
    base_url: str
    gateway_config: dict[str, Any]
    iam_config: dict[str, Any] | None
    gateway: Any
    iam: Any
    # catalog, orders and billing when the test asked for them: name -> (config, container)
    market: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def gateway_rows(self, table: str = "idempotency_records") -> int:
        return count_rows(self.gateway_config, table)

    def iam_rows(self, table: str) -> int:
        assert self.iam_config is not None
        return count_rows(self.iam_config, table)

    def rows(self, service: str, table: str) -> int:
        """Rows of ``table`` in the database of ``service`` (catalog, orders, billing)."""
        return count_rows(self.market[service][0], table)


@pytest.fixture
def start_stack(container_factory, make_service_config, payments_simulator):
    """``start_stack(with_iam=True, iam_clock=None, service_cls=GatewayService,
    with_market=False, **gateway_config_overrides)``; ``with_market`` starts catalog,
    orders and billing too, each on its own fresh database."""

    def start(
        with_iam: bool = True,
        iam_clock=None,
        service_cls=GatewayService,
        with_market: bool = False,
        **overrides,
    ) -> Stack:
        iam_config = None
        iam = None
        if with_iam:
            iam_config = make_service_config("iam_agency")
            iam = container_factory(IamAgencyService, iam_config)
            if iam_clock is not None:
                from nameko.testing.services import replace_dependencies

                replace_dependencies(iam, clock=iam_clock)
            iam.start()
        market: dict[str, tuple[dict[str, Any], Any]] = {}
        if with_market:
            for name, cls in MARKET_SERVICES.items():
                # billing charges cards at the simulated card provider
                extra = {"CARD_GATEWAY_URL": payments_simulator.url} if name == "billing" else {}
                config = make_service_config(name, **extra)
                container = container_factory(cls, config)
                container.start()
                market[name] = (config, container)
        # A port found free can be taken before the gateway binds it (by any
        # connection's ephemeral port, e.g. the containers' own to the broker): try
        # another rather than fail the test.
        for attempt in range(1, BIND_ATTEMPTS + 1):
            port = free_port()
            settings = {
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "OPS_ADDRESS": "",
                "IDEMPOTENCY_SECRET": SECRET,
                "RPC_TIMEOUT_SECONDS": 10,
            }
            settings.update(overrides)
            gateway_config = make_service_config("gateway", **settings)
            gateway = container_factory(service_cls, gateway_config)
            try:
                gateway.start()
                break
            except OSError as exc:
                gateway.kill()
                if exc.errno != errno.EADDRINUSE or attempt == BIND_ATTEMPTS:
                    raise
        return Stack(f"http://127.0.0.1:{port}", gateway_config, iam_config, gateway, iam, market)

    return start


@pytest.fixture
def stack(start_stack) -> Stack:
    return start_stack()


@pytest.fixture
def market(start_stack) -> Stack:
    """The gateway with every service its marketplace routes call."""
    return start_stack(with_market=True)
