"""The OpenAPI document and the running gateway agree: schemathesis generates requests
from the document the gateway serves at ``/openapi.json`` (valid ones and ones that
break a stated rule), a bounded number per operation, each with a token of a role the
route is for, and checks every answer against the document: no 5xx, a status it lists,
its media type, headers and body schema, and a request that breaks a stated rule
refused."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import openapi
from gateway.routes import ROUTES
from gateway.routing import ANYONE
from gateway.service import GatewayService
from mercato.identity import BUYER, OPERATOR, RESELLER, SELLER
from mercato_devrun import DEMO_OPERATOR

pytestmark = pytest.mark.e2e
# schemathesis's pytest plugin, for this module only: pyproject's addopts keep it from
# loading with pytest, where it would import ssl before the root conftest.py's eventlet
# monkey patch (and every TLS connection would then recurse in SSLContext.options)
pytest_plugins = ["schemathesis.pytest.plugin"]

CASES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# signing out would revoke the token every other case is sent with
SKIPPED = {"sign_out"}
PASSWORD = "conformance password"
ROLES = {route.name: route for route in ROUTES}


def _token(gateway: str, email: str, password: str) -> str:
    issued = requests.post(
        f"{gateway}/v1/auth/tokens", json={"email": email, "password": password}, timeout=15
    )
    assert issued.status_code == 201, issued.text
    return issued.json()["token"]


@pytest.fixture(scope="module")
def tokens(system) -> dict[str, str]:
    """A bearer token of each role: a new buyer, seller and reseller, and the demo operator."""
    found = {OPERATOR: _token(system.gateway, DEMO_OPERATOR["email"], DEMO_OPERATOR["password"])}
    for role in (BUYER, SELLER, RESELLER):
        email = f"conformance-{role}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"name": f"Conformance {role}", "email": email, "password": PASSWORD, "type": role}
        created = requests.post(f"{system.gateway}/v1/accounts", json=body, timeout=15)
        assert created.status_code == 201, created.text
        found[role] = _token(system.gateway, email, PASSWORD)
    return found


# the very document the gateway serves (test_the_document_is_the_one_served checks it),
# built here so that each operation is a test of its own
DOCUMENT = openapi.document(GatewayService)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(operation_id=sorted(SKIPPED))


def test_the_document_is_the_one_served(system):
    served = requests.get(f"{system.gateway}/openapi.json", timeout=15)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))


def _headers_for(case, tokens: dict[str, str]) -> dict[str, str]:
    route = ROLES[case.operation.definition.raw["operationId"]]
    if route.who == ANYONE:
        return {}
    role = route.roles[0] if route.roles else BUYER
    return {"Authorization": f"Bearer {tokens[role]}"}


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_is_as_documented(case, system, tokens):
    case.call_and_validate(
        base_url=system.gateway, headers=_headers_for(case, tokens), checks=CHECKS, timeout=30
    )
