"""The test clock's two RPCs, which every service answers from the shared base
(``mercato.service.MercatoService``), on PostgreSQL and RabbitMQ; and a process configured
with the test clock in production, which does not start."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.clock import ClockRefused
from mercato.errors import Forbidden, NotFound, ValidationError
from mercato_testing import signed_context
from mercato_testing.interface import caller
from orders.service import OrdersService
from supervision.service import SupervisionService

pytestmark = pytest.mark.interface

OPERATOR = caller("acc_ops", "operator")
BUYER = caller("acc_buyer", "buyer")
START = "2025-03-25T00:00:00Z"
DAY_AND_AN_HOUR = 25 * 3600


def _orders(container_factory, config):
    container = container_factory(OrdersService, config)
    container.start()
    return container


def _when(answer) -> dt.datetime:
    return dt.datetime.fromisoformat(answer["now"])


def test_an_operator_reads_and_moves_a_services_clock_and_a_restart_keeps_it(
    container_factory, make_service_config
):
    config = make_service_config("orders", MERCATO_CLOCK="controllable", MERCATO_CLOCK_START=START)
    running = _orders(container_factory, config)

    with ServiceRpcProxy(
        "orders", config, timeout=10, context_data=signed_context(OPERATOR)
    ) as orders:
        state = orders.clock_state()
        started = dt.datetime(2025, 3, 25, tzinfo=dt.UTC)
        # started at that instant, to the second (offsets are whole seconds)
        assert abs(_when(state) - started) < dt.timedelta(minutes=1)
        target = state["offset_seconds"] + DAY_AND_AN_HOUR

        moved = orders.move_clock({"offset_seconds": target})
        assert moved["offset_seconds"] == target
        assert _when(moved) - _when(state) >= dt.timedelta(seconds=DAY_AND_AN_HOUR)
        # the same move again, or one from an older reading, changes nothing
        assert orders.move_clock({"offset_seconds": target})["offset_seconds"] == target
        assert orders.move_clock({"offset_seconds": target - 60})["offset_seconds"] == target
        with pytest.raises(ValidationError) as refused:
            orders.move_clock({"offset_seconds": "tomorrow"})
        assert "offset_seconds" in refused.value.fields

    running.stop()
    _orders(container_factory, config)  # the same database, MERCATO_CLOCK_START again
    with ServiceRpcProxy("orders", config, timeout=10) as orders:
        assert orders.clock_state()["offset_seconds"] == target


def test_only_an_operator_moves_the_clock(container_factory, make_service_config):
    config = make_service_config("orders", MERCATO_CLOCK="controllable")
    _orders(container_factory, config)

    with ServiceRpcProxy(
        "orders", config, timeout=10, context_data=signed_context(BUYER)
    ) as orders:
        with pytest.raises(Forbidden):
            orders.move_clock({"offset_seconds": 3600})
        assert orders.clock_state()["offset_seconds"] == 0


def test_a_service_on_the_system_clock_has_no_test_clock(container_factory, make_service_config):
    config = make_service_config("supervision")  # MERCATO_CLOCK defaults to system
    container_factory(SupervisionService, config).start()

    with ServiceRpcProxy(
        "supervision", config, timeout=10, context_data=signed_context(OPERATOR)
    ) as service:
        with pytest.raises(NotFound):
            service.clock_state()
        with pytest.raises(NotFound):
            service.move_clock({"offset_seconds": 3600})


def test_a_service_configured_with_the_test_clock_in_production_does_not_start(
    container_factory, make_service_config, caplog
):
    config = make_service_config(
        "supervision", MERCATO_CLOCK="controllable", MERCATO_ENVIRONMENT="production"
    )
    container = container_factory(SupervisionService, config)

    with caplog.at_level(logging.CRITICAL, logger="mercato.clock"):
        with pytest.raises(ClockRefused, match="refused in production"):
            container.start()
    assert "supervision does not start" in caplog.text
    assert "MERCATO_ENVIRONMENT=production" in caplog.text
