"""What a client sees when the gateway itself fails, and what the operator gets."""

import logging

import pytest
from werkzeug.wrappers import Request

from gateway.errors import INTERNAL_MESSAGE
from gateway.service import GatewayService
from gateway.web import http
from mercato.logs import ContextFilter

pytestmark = pytest.mark.interface


class BrokenGateway(GatewayService):
    """The gateway with one entrypoint that fails the way a bug does."""

    @http("GET", "/v1/broken")
    def broken(self, request: Request):
        raise RuntimeError("connection string postgresql://admin:hunter2@db")


def test_unexpected_error_is_a_generic_500_logged_with_the_request_id(start_stack, caplog):
    stack = start_stack(with_iam=False, service_cls=BrokenGateway)
    caplog.handler.addFilter(ContextFilter())

    with caplog.at_level(logging.ERROR):
        response = stack.get("/v1/broken", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.json() == {"error": "INTERNAL", "message": INTERNAL_MESSAGE}
    assert response.headers["X-Request-ID"] == "boom-1"
    assert "hunter2" not in response.text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged and all(r.correlation_id == "boom-1" for r in logged)
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in logged)
