"""The OpenAPI document: valid OpenAPI 3, generated from the routes, complete."""

import re

import pytest
from openapi_spec_validator import validate

from gateway import openapi
from gateway.service import GatewayService


@pytest.fixture(scope="module")
def document():
    return openapi.build(GatewayService)


def test_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_is_documented_with_its_methods(document):
    declared = {
        (openapi.openapi_path(route.rule), method.lower())
        for route in openapi.routes(GatewayService)
        for method in route.methods
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert declared == documented
    assert ("/v1/accounts", "post") in documented


def test_a_route_without_an_operation_entry_fails_the_build(monkeypatch):
    monkeypatch.delitem(openapi.OPERATIONS, "me")
    with pytest.raises(LookupError, match="me"):
        openapi.build(GatewayService)


def test_every_post_takes_an_idempotency_key_and_every_operation_a_request_id(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refs = {p["$ref"].rsplit("/", 1)[-1] for p in operation["parameters"]}
            assert "RequestId" in refs, (path, method)
            assert ("IdempotencyKey" in refs) == (method == "post"), (path, method)
            for status, response in operation["responses"].items():
                assert "X-Request-ID" in response["headers"], (path, method, status)


def test_errors_use_the_error_body_and_authenticated_routes_need_bearer(document):
    me = document["paths"]["/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert me["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    sign_up = document["paths"]["/v1/accounts"]["post"]
    assert {"201", "400", "409", "413", "422", "500", "503"} <= set(sign_up["responses"])
    assert "EMAIL_TAKEN" in sign_up["responses"]["409"]["description"]


def test_request_bodies_come_from_the_schemas(document):
    sign_up = document["components"]["schemas"]["SignUpRequest"]
    assert set(sign_up["required"]) == {"name", "email", "password", "type"}
    assert sign_up["additionalProperties"] is False
    assert sign_up["properties"]["type"]["enum"] == ["buyer", "seller", "reseller"]
    assert sign_up["properties"]["password"]["writeOnly"] is True


def test_docs_page_shows_every_operation_and_runs_no_script(document):
    page = openapi.render_html(document)
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?https?://""", page)
    for path in document["paths"]:
        assert f'<span class="path">{path}</span>' in page
    assert 'id="schema-Error"' in page
