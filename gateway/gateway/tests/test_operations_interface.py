"""The operations endpoints: probes, OpenAPI and docs on the gateway's own port, metrics
on its operations port only."""

import logging

import pytest
import requests
from openapi_spec_validator import validate

from gateway.web import GatewayWebServer
from mercato.logs import ContextFilter
from mercato_testing import free_port

pytestmark = pytest.mark.interface


def served_routes(container) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every rule the running web server routes."""
    url_map = container.shared_extensions[GatewayWebServer].make_url_map()
    return {
        (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
        for rule in url_map.iter_rules()
        for method in rule.methods
        if method not in ("HEAD", "OPTIONS")
    }


def test_healthz_answers_ok_with_a_request_id(stack):
    response = stack.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]


def test_readyz_is_ready_when_database_and_iam_agency_answer(stack):
    response = stack.get("/readyz", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "problems": {}}
    assert response.headers["X-Request-ID"] == "probe-1"


def test_readyz_is_503_naming_iam_agency_when_it_is_absent(start_stack):
    stack = start_stack(with_iam=False)
    response = stack.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert "iam_agency" in body["problems"]
    assert "db" not in body["problems"]


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(start_stack):
    stack = start_stack(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    response = stack.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"]["db"].startswith("database unreachable")


def test_metrics_are_on_the_operations_port_only(start_stack):
    ops_port = free_port()
    stack = start_stack(OPS_ADDRESS=f"127.0.0.1:{ops_port}")
    stack.get("/healthz")

    assert stack.get("/metrics").status_code == 404  # the public port: nothing to see
    response = requests.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert (
        'mercato_entrypoint_calls_total{entrypoint="healthz",kind="http",outcome="success",'
        'service="gateway"}' in response.text
    )
    assert "mercato_gateway_unrouted_requests_total" in response.text


def test_openapi_json_is_valid_and_describes_every_route_served(stack):
    response = stack.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == served_routes(stack.gateway)


def test_docs_page_is_self_contained_html(stack):
    response = stack.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in response.text.lower()
    assert "/v1/accounts" in response.text and "IDEMPOTENCY_KEY_REUSED" in response.text


def test_access_log_line_names_the_request_id(stack, caplog):
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="nameko.web.server"), requests.Session() as http:
        http.get(stack.url("/healthz"), headers={"X-Request-ID": "access-1"}, timeout=30)
        # the same connection's next answer comes after the first request's log line
        http.get(stack.url("/healthz"), headers={"X-Request-ID": "access-2"}, timeout=30)

    access = [
        r for r in caplog.records if r.name == "nameko.web.server" and "/healthz" in r.getMessage()
    ]
    assert access[0].correlation_id == "access-1"
