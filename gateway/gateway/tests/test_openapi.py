"""The OpenAPI document: valid OpenAPI 3, generated from the routes, complete."""

import dataclasses
import re

import pytest
from openapi_spec_validator import validate
from werkzeug.wrappers import Request

from gateway import openapi
from gateway.routes import ROUTES
from gateway.service import GatewayService
from gateway.web import http


@pytest.fixture(scope="module")
def document():
    return openapi.build(GatewayService)


def test_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_is_documented_with_its_methods(document):
    declared = {
        (openapi.openapi_path(rule), method.lower())
        for _name, method, rule in openapi.routes(GatewayService)
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert declared == documented
    assert ("/v1/accounts", "post") in documented


def test_a_route_served_but_not_declared_fails_the_build():
    class Undeclared(GatewayService):
        @http("GET", "/v1/undeclared")
        def undeclared(self, request: Request):
            return None

    with pytest.raises(LookupError, match="undeclared"):
        openapi.build(Undeclared)


@pytest.mark.parametrize("missing", ["summary", "tag"])
def test_a_declaration_without_summary_or_tag_fails(missing):
    me = next(route for route in ROUTES if route.name == "me")
    with pytest.raises(ValueError, match="summary and a tag"):
        dataclasses.replace(me, **{missing: " "})


def test_every_declared_route_is_in_the_document_under_its_operation_id(document):
    documented = {
        (path, method): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == {(route.path, route.method.lower()): route.name for route in ROUTES}


def test_every_post_takes_an_idempotency_key_and_every_operation_a_request_id(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refs = {p["$ref"].rsplit("/", 1)[-1] for p in operation["parameters"] if "$ref" in p}
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


# what anyone may call without a token (docs/api.md); every other /v1 route needs one
ANONYMOUS = {("/v1/accounts", "post"), ("/v1/auth/tokens", "post")}
TOKEN_OPTIONAL = {
    ("/v1/products", "get"),
    ("/v1/products/{product_id}", "get"),
    ("/v1/sellers/{seller_id}/license-public-key", "get"),
}


def test_every_v1_route_needs_a_bearer_token_but_sign_up_sign_in_and_browsing(document):
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if (path, method) in ANONYMOUS:
                assert operation["security"] == [], (path, method)
            elif (path, method) in TOKEN_OPTIONAL:
                assert operation["security"] == [{}, {"bearerAuth": []}], (path, method)
                assert "401" in operation["responses"], (path, method)
            else:
                assert operation["security"] == [{"bearerAuth": []}], (path, method)
                assert "401" in operation["responses"], (path, method)


def test_path_ids_are_required_parameters_and_may_be_404(document):
    pay = document["paths"]["/v1/orders/{order_id}/pay"]["post"]
    assert {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}} in (
        pay["parameters"]
    )
    assert "404" in pay["responses"]


def test_query_strings_are_documented_one_parameter_per_field(document):
    search = document["paths"]["/v1/products"]["get"]
    query = {p["name"]: p for p in search["parameters"] if p.get("in") == "query"}
    assert set(query) == {
        "q",
        "delivery_method",
        "category",
        "billing_mode",
        "seller_id",
        "min_price",
        "max_price",
        "service_supervision",
        "sort",
        "page",
        "page_size",
    }
    assert query["page_size"]["schema"]["maximum"] == 100
    assert query["page"]["schema"]["type"] == "integer"
    assert query["service_supervision"]["schema"]["type"] == "boolean"
    assert query["sort"]["schema"]["enum"] == ["relevance", "price_asc", "price_desc", "newest"]
    assert "400" in search["responses"]
    orders = document["paths"]["/v1/orders"]["get"]
    statuses = [p for p in orders["parameters"] if p.get("name") == "status"]
    assert statuses[0]["schema"]["enum"][0] == "unpaid"


def test_routes_a_role_guards_say_which_role_in_their_403(document):
    delist = document["paths"]["/v1/admin/products/{product_id}/delist"]["post"]
    assert "operator" in delist["responses"]["403"]["description"]
    credit = document["paths"]["/v1/admin/accounts/{account_id}/credit-limit"]["post"]
    assert "operator" in credit["responses"]["403"]["description"]
    assert "403" not in document["paths"]["/v1/products"]["get"]["responses"]


def test_payment_statuses_are_documented(document):
    pay = document["paths"]["/v1/orders/{order_id}/pay"]["post"]
    assert "PAYMENT_REQUIRED" in pay["responses"]["402"]["description"]
    assert "not unpaid" in pay["responses"]["409"]["description"]
    place = document["paths"]["/v1/orders"]["post"]
    assert "TERMS_NOT_ACCEPTED" in place["responses"]["422"]["description"]


def test_every_json_answer_has_a_schema_and_every_body_a_request_schema(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status == "204":
                    assert "content" not in response, (path, method)
                    continue
                assert response["content"], (path, method, status)
            if method in ("post", "put") and path.startswith("/v1/"):
                assert "requestBody" in operation, (path, method)


def test_lists_answer_items_total_page_and_page_size(document):
    schemas = document["components"]["schemas"]
    for name in (
        "OrderPage",
        "PurchasedAppPage",
        "TransactionPage",
        "ProductSummaryPage",
        "SellerProductPage",
        "SavedProductPage",
    ):
        assert set(schemas[name]["properties"]) == {"items", "total", "page", "page_size"}, name


def test_a_body_with_no_required_field_may_be_left_out(document):
    cancel = document["paths"]["/v1/orders/{order_id}/cancel"]["post"]
    assert cancel["requestBody"]["required"] is False
    assert document["paths"]["/v1/orders"]["post"]["requestBody"]["required"] is True


def test_passwords_are_write_only_and_a_card_is_a_token_or_a_kept_card(document):
    schemas = document["components"]["schemas"]
    assert schemas["ResellerCustomerRequest"]["properties"]["password"]["writeOnly"] is True
    assert set(schemas["CardRequest"]["properties"]) == {"token", "card_id"}
    assert "/v1/billing/cards" in document["paths"]
    assert "/v1/billing/cards/{card_id}" in document["paths"]


def test_docs_page_marks_optional_tokens(document):
    page = openapi.render_html(document)
    assert "takes, if sent," in page


# -- the document says what the server does (schemathesis checks it against the running
# gateway: tests/e2e/test_openapi_conformance.py) -----------------------------------------


def test_any_x_request_id_is_taken_so_the_document_states_no_pattern_for_it(document):
    parameter = document["components"]["parameters"]["RequestId"]
    assert "pattern" not in parameter["schema"]
    # what comes back is always a sane id
    assert "pattern" in document["components"]["headers"]["X-Request-ID"]["schema"]


def test_the_idempotency_key_s_characters_are_stated(document):
    schema = document["components"]["parameters"]["IdempotencyKey"]["schema"]
    pattern = re.compile(schema["pattern"])
    assert pattern.match("abc-123_~!")
    assert not pattern.match("with space")
    assert not pattern.match("é")


def test_every_optional_query_parameter_may_be_empty(document):
    query = [
        parameter
        for operations in document["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", ())
        if parameter.get("in") == "query"
    ]
    assert query
    assert all(p.get("allowEmptyValue") for p in query if not p.get("required"))


def test_urls_have_openapi_s_uri_format(document):
    formats = re.findall(r"'format': '([a-z-]+)'", str(document))
    assert "url" not in formats
    assert "uri" in formats


def test_saving_an_unknown_product_documents_its_404(document):
    assert "404" in document["paths"]["/v1/saved-products"]["post"]["responses"]
