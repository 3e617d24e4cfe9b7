"""The OpenAPI 3 document of the gateway, generated from its entrypoints and schemas.

Paths and methods come from the ``@http`` entrypoints themselves, descriptions from
their docstrings, bodies from the marshmallow schemas (apispec's MarshmallowPlugin);
``OPERATIONS`` adds what code cannot say (summary, tag, statuses). A route without an
entry in ``OPERATIONS`` fails the build, so the document cannot fall behind the routes.

``render_html`` turns the document into ``/docs``: one self-contained page, no script.
"""

from __future__ import annotations

import html
import inspect
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from werkzeug.wrappers import Response

from gateway import schemas
from gateway.errors import BEARER_CHALLENGE
from gateway.idempotency import IDEMPOTENCY_KEY_HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER
from gateway.web import BODY_FIELD, REQUEST_ID_HEADER, GatewayHttp

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
TITLE = "Mercato public API"

ACCOUNTS = "Accounts and sign-in"
CATALOG = "Catalog"
ORDERS = "Orders and payment"
PURCHASED_APPS = "Purchased apps"
OPERATIONS_TAG = "Operations"
TAGS = [
    {
        "name": ACCOUNTS,
        "description": "Open an account, sign in and out, see who you are; resellers open "
        "their customers' accounts, operators set credit limits.",
    },
    {
        "name": CATALOG,
        "description": "Sellers list products; anyone searches and reads them; buyers keep "
        "a saved list.",
    },
    {
        "name": ORDERS,
        "description": "Buyers order a configuration at a fixed price and pay it from their "
        "balance, a card or credit; the balance, its top-ups and its movements.",
    },
    {"name": PURCHASED_APPS, "description": "What paid orders became: one row per subscription."},
    {
        "name": OPERATIONS_TAG,
        "description": "Probes, metrics and this documentation (no /v1 prefix, no auth).",
    },
]

INTRO = f"""Mercato is a cloud software marketplace. This API is its public contract: JSON
bodies under `/v1`, `Authorization: Bearer <token>` (a token from `POST /v1/auth/tokens`).

Every error answers `{{"error": CODE, "message": "...", "fields": {{...}}}}`; `fields`
names each field of a validation error and the rules it broke (`{BODY_FIELD}` is the body
itself). A rejected request changes nothing.

Every POST accepts an `{IDEMPOTENCY_KEY_HEADER}` header: the same key with the same body
answers the first response again (with `{REPLAYED_HEADER}: true`) without doing the work
twice; with another body it is 422 `IDEMPOTENCY_KEY_REUSED`; while the first is still
running, 409 `CONFLICT`. Keys are kept at least 24 hours, per account. A request that
failed (4xx or 5xx) releases its key.

Every response carries `{REQUEST_ID_HEADER}`: the one the client sent (1 to 128 of
`A-Z a-z 0-9 . _ : -`) or a new one; it names the request in the logs of every service."""

# what each status means wherever it is not given a more precise sentence
STATUS_MEANINGS = {
    400: "VALIDATION_ERROR: malformed JSON, unknown or missing fields, wrong types or values",
    401: "UNAUTHENTICATED: no bearer token, or one that is unknown, expired or revoked",
    402: "PAYMENT_REQUIRED: the balance or the credit left is short; nothing was charged",
    403: "FORBIDDEN: the caller lacks the role this needs",
    404: "NOT_FOUND: no such thing, or it is not the caller's",
    409: f"CONFLICT: the first request with this {IDEMPOTENCY_KEY_HEADER} is still running",
    413: "PAYLOAD_TOO_LARGE: the body is larger than the gateway accepts",
    422: f"IDEMPOTENCY_KEY_REUSED: this {IDEMPOTENCY_KEY_HEADER} was used with another request",
    500: "INTERNAL: an error on our side; quote the X-Request-ID",
    503: "SERVICE_UNAVAILABLE: a service this needs did not answer in time; retry later",
}


@dataclass(frozen=True)
class Operation:
    """What the document says about one entrypoint beyond its route and docstring."""

    summary: str
    tag: str
    status: int = 200
    response: type[Schema] | None = None
    request: type[Schema] | None = None
    query: type[Schema] | None = None  # the query string's parameters
    authenticated: bool = False
    # anyone may call it; a bearer token, if sent, must be valid (401 otherwise)
    optional_auth: bool = False
    role: str | None = None  # the role the service requires (403 otherwise)
    calls_services: bool = True
    media_type: str = "application/json"
    raw_schema: Mapping[str, Any] | None = None  # for a body that is no marshmallow schema
    errors: Mapping[int, str] = field(default_factory=dict)  # more precise meanings


OPERATIONS: dict[str, Operation] = {
    "sign_up": Operation(
        "Open an account",
        ACCOUNTS,
        status=201,
        request=schemas.SignUpRequest,
        response=schemas.AccountResponse,
        errors={409: "EMAIL_TAKEN: the email already has an account"},
    ),
    "sign_in": Operation(
        "Sign in: get a bearer token",
        ACCOUNTS,
        status=201,
        request=schemas.SignInRequest,
        response=schemas.TokenResponse,
        errors={401: "UNAUTHENTICATED: wrong email or password"},
    ),
    "sign_out": Operation(
        "Sign out: revoke this bearer token", ACCOUNTS, status=204, authenticated=True
    ),
    "me": Operation("Who am I", ACCOUNTS, response=schemas.MeResponse, authenticated=True),
    "create_reseller_customer": Operation(
        "Open a reseller customer's account",
        ACCOUNTS,
        status=201,
        request=schemas.ResellerCustomerRequest,
        response=schemas.ResellerCustomerResponse,
        authenticated=True,
        role="reseller",
        errors={409: "EMAIL_TAKEN: the email already has an account"},
    ),
    "set_credit_limit": Operation(
        "Set a buyer's credit limit",
        ACCOUNTS,
        request=schemas.CreditLimitRequest,
        response=schemas.BalanceResponse,
        authenticated=True,
        role="operator",
    ),
    "upsert_seller_profile": Operation(
        "Set the seller's profile",
        CATALOG,
        request=schemas.SellerProfileRequest,
        response=schemas.SellerProfileResponse,
        authenticated=True,
        role="seller",
    ),
    "create_product": Operation(
        "Create a product (draft)",
        CATALOG,
        status=201,
        request=schemas.CreateProductRequest,
        response=schemas.SellerProductDetailsResponse,
        authenticated=True,
        role="seller",
        errors={422: "SELLER_PROFILE_REQUIRED: the seller has no profile yet"},
    ),
    "publish_product": Operation(
        "Publish a draft product",
        CATALOG,
        request=schemas.EmptyRequest,
        response=schemas.SellerProductDetailsResponse,
        authenticated=True,
        role="seller",
        errors={
            409: "CONFLICT: only a draft can be published",
            422: "SAAS_ENDPOINT_REQUIRED: a saas product needs its saas_endpoint_url",
        },
    ),
    "list_seller_products": Operation(
        "The seller's products",
        CATALOG,
        query=schemas.PageQuery,
        response=schemas.SellerProductPage,
        authenticated=True,
        role="seller",
    ),
    "delist_product": Operation(
        "Delist a product",
        CATALOG,
        request=schemas.DelistRequest,
        response=schemas.ProductResponse,
        authenticated=True,
        role="operator",
        errors={409: "CONFLICT: only a published product can be delisted"},
    ),
    "search_products": Operation(
        "Search products",
        CATALOG,
        query=schemas.ProductSearchQuery,
        response=schemas.ProductSummaryPage,
        optional_auth=True,
    ),
    "get_product": Operation(
        "A product's details",
        CATALOG,
        response=schemas.ProductResponse,
        optional_auth=True,
    ),
    "save_product": Operation(
        "Save a product to the list",
        CATALOG,
        status=201,
        request=schemas.SaveProductRequest,
        response=schemas.SavedResponse,
        authenticated=True,
        role="buyer",
    ),
    "list_saved_products": Operation(
        "My Saved List",
        CATALOG,
        query=schemas.PageQuery,
        response=schemas.SavedProductPage,
        authenticated=True,
        role="buyer",
    ),
    "remove_saved_product": Operation(
        "Remove a product from the list",
        CATALOG,
        status=204,
        authenticated=True,
        role="buyer",
    ),
    "place_order": Operation(
        "Place an order",
        ORDERS,
        status=201,
        request=schemas.PlaceOrderRequest,
        response=schemas.OrderResponse,
        authenticated=True,
        role="buyer",
        errors={
            404: "NOT_FOUND: no such published product or specification",
            422: "TERMS_NOT_ACCEPTED: `accept_terms` was not true",
        },
    ),
    "list_orders": Operation(
        "My Orders",
        ORDERS,
        query=schemas.OrdersQuery,
        response=schemas.OrderPage,
        authenticated=True,
    ),
    "get_order": Operation("An order", ORDERS, response=schemas.OrderResponse, authenticated=True),
    "pay_order": Operation(
        "Pay an order",
        ORDERS,
        request=schemas.PayOrderRequest,
        response=schemas.OrderResponse,
        authenticated=True,
        role="buyer",
        errors={
            402: "PAYMENT_REQUIRED: the balance or the credit left is short, or the card "
            "was declined (PAYMENT_DECLINED); nothing was charged",
            409: "CONFLICT: the order is not unpaid (already paid, cancelled, or its "
            "payment window passed)",
        },
    ),
    "cancel_order": Operation(
        "Cancel an unpaid order",
        ORDERS,
        request=schemas.EmptyRequest,
        response=schemas.OrderResponse,
        authenticated=True,
        role="buyer",
        errors={409: "CONFLICT: only an unpaid order can be cancelled"},
    ),
    "get_balance": Operation(
        "Balance and credit", ORDERS, response=schemas.BalanceResponse, authenticated=True
    ),
    "top_up": Operation(
        "Top up the balance from a card",
        ORDERS,
        status=201,
        request=schemas.TopUpRequest,
        response=schemas.TopUpResponse,
        authenticated=True,
    ),
    "list_transactions": Operation(
        "Balance movements",
        ORDERS,
        query=schemas.PageQuery,
        response=schemas.TransactionPage,
        authenticated=True,
    ),
    "list_purchased_apps": Operation(
        "Purchased Apps",
        PURCHASED_APPS,
        query=schemas.PageQuery,
        response=schemas.PurchasedAppPage,
        authenticated=True,
    ),
    "get_purchased_app": Operation(
        "A purchased app",
        PURCHASED_APPS,
        response=schemas.PurchasedAppDetailsResponse,
        authenticated=True,
    ),
    "reveal_credentials": Operation(
        "Reveal a purchased app's password",
        PURCHASED_APPS,
        request=schemas.EmptyRequest,
        response=schemas.CredentialsResponse,
        authenticated=True,
        role="buyer",
        errors={
            404: "NOT_FOUND: not the caller's, or nothing delivered with a password",
            429: "RATE_LIMITED: too many reveals this minute",
        },
    ),
    "issue_interface_credentials": Operation(
        "Issue the seller's SaaS interface credentials",
        CATALOG,
        status=201,
        request=schemas.EmptyRequest,
        response=schemas.InterfaceCredentialsResponse,
        authenticated=True,
        role="seller",
    ),
    "license_public_key": Operation(
        "A seller's license verification key",
        CATALOG,
        response=schemas.LicensePublicKeyResponse,
        optional_auth=True,
        errors={404: "NOT_FOUND: the seller has no license signing key yet"},
    ),
    "healthz": Operation(
        "Liveness probe", OPERATIONS_TAG, response=schemas.HealthResponse, calls_services=False
    ),
    "readyz": Operation(
        "Readiness probe",
        OPERATIONS_TAG,
        response=schemas.ReadinessResponse,
        calls_services=False,
        errors={503: "not ready: the body's problems say why"},
    ),
    "metrics": Operation(
        "Prometheus metrics",
        OPERATIONS_TAG,
        calls_services=False,
        media_type="text/plain; version=0.0.4",
        raw_schema={"type": "string"},
    ),
    "openapi_document": Operation(
        "This document",
        OPERATIONS_TAG,
        calls_services=False,
        raw_schema={"type": "object", "description": "An OpenAPI 3 document."},
    ),
    "docs": Operation(
        "This document as a page",
        OPERATIONS_TAG,
        calls_services=False,
        media_type="text/html",
        raw_schema={"type": "string"},
    ),
}


@dataclass(frozen=True)
class Route:
    """One ``@http`` entrypoint: methods, werkzeug rule and the method that serves it."""

    methods: tuple[str, ...]
    rule: str
    method_name: str
    description: str


def routes(service_cls: type) -> Iterator[Route]:
    """Every ``@http`` route a service class declares."""
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, GatewayHttp):
                yield Route(
                    methods=tuple(m.strip().upper() for m in entrypoint.method.split(",")),
                    rule=entrypoint.url,
                    method_name=name,
                    description=inspect.getdoc(member) or "",
                )


_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(rule: str) -> str:
    """``/v1/orders/<id>`` (werkzeug) as ``/v1/orders/{id}`` (OpenAPI)."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


def _error_response(meaning: str) -> dict[str, Any]:
    return {
        "description": meaning,
        "headers": {REQUEST_ID_HEADER: REQUEST_ID_HEADER},
        "content": {"application/json": {"schema": schemas.ErrorResponse}},
    }


def _error_statuses(route: Route, http_method: str, operation: Operation) -> dict[int, str]:
    statuses = {500}
    if http_method == "POST":
        statuses |= {400, 409, 413, 422}
    if operation.request is not None:
        statuses |= {400, 413}
    if operation.query is not None:
        statuses.add(400)
    if operation.authenticated or operation.optional_auth:
        statuses.add(401)
    if operation.role is not None:
        statuses.add(403)
    if _RULE_VARIABLE.search(route.rule):
        statuses.add(404)
    if operation.calls_services:
        statuses.add(503)
    errors = dict(operation.errors)
    if operation.role is not None:
        errors.setdefault(403, f"FORBIDDEN: only a {operation.role} may do this")
    meanings: dict[int, str] = {}
    for status in sorted(statuses | set(errors)):
        parts = [errors[status]] if status in errors else []
        if status in STATUS_MEANINGS and (status not in errors or status == 409):
            parts.append(STATUS_MEANINGS[status])
        meanings[status] = "; or ".join(parts)
    return meanings


def _operation(route: Route, http_method: str, operation: Operation) -> dict[str, Any]:
    parameters: list[Any] = ["RequestId"]  # apispec makes a name a $ref to the component
    if http_method == "POST":
        parameters.append("IdempotencyKey")
    for name in _RULE_VARIABLE.findall(route.rule):
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if operation.query is not None:
        # apispec's MarshmallowPlugin spreads the schema into one parameter per field
        parameters.append({"in": "query", "schema": operation.query})
    success: dict[str, Any] = {
        "description": _first_paragraph(route.description) or "OK",
        "headers": {REQUEST_ID_HEADER: REQUEST_ID_HEADER},
    }
    if http_method == "POST":
        success["headers"][REPLAYED_HEADER] = REPLAYED_HEADER
    body_schema: Any = operation.response or operation.raw_schema
    if body_schema is not None:
        success["content"] = {operation.media_type: {"schema": body_schema}}
    responses: dict[str, Any] = {str(operation.status): success}
    for status, meaning in _error_statuses(route, http_method, operation).items():
        if str(status) in responses:  # /readyz's 503 has the probe's own body
            continue
        responses[str(status)] = _error_response(meaning)
    if "503" in responses and operation.response is schemas.ReadinessResponse:
        responses["503"]["content"] = {"application/json": {"schema": schemas.ReadinessResponse}}
    security: list[dict[str, list[str]]] = []
    if operation.authenticated:
        security = [{"bearerAuth": []}]
    elif operation.optional_auth:
        security = [{}, {"bearerAuth": []}]  # either anonymous or a bearer token
    spec: dict[str, Any] = {
        "operationId": route.method_name,
        "summary": operation.summary,
        "description": route.description,
        "tags": [operation.tag],
        "parameters": parameters,
        "responses": responses,
        "security": security,
    }
    if operation.request is not None:
        spec["requestBody"] = {
            # a body whose fields are all optional may be left out
            "required": any(f.required for f in operation.request().fields.values()),
            "content": {"application/json": {"schema": operation.request}},
        }
    return spec


def build(service_cls: type) -> dict[str, Any]:
    spec = APISpec(
        title=TITLE,
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": INTRO},
        tags=TAGS,
    )
    spec.components.schema("Error", schema=schemas.ErrorResponse)
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": f"A token from POST /v1/auth/tokens. A 401 answers "
            f"`WWW-Authenticate: {BEARER_CHALLENGE}`.",
        },
    )
    request_id_schema = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}
    spec.components.parameter(
        "RequestId",
        "header",
        {
            "name": REQUEST_ID_HEADER,
            "required": False,
            "description": "Names the request in every service's logs; generated if absent "
            "or not a sane token.",
            "schema": request_id_schema,
        },
    )
    spec.components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "required": False,
            "description": "Makes a retry safe: the same key and body answer the first "
            "response again, without doing the work twice. Kept at least 24 hours, per account.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        },
    )
    spec.components.header(
        REQUEST_ID_HEADER,
        {"description": "The request's id, as sent or generated.", "schema": request_id_schema},
    )
    spec.components.header(
        REPLAYED_HEADER,
        {
            "description": f"`true` when this is the stored answer to an earlier request "
            f"with the same {IDEMPOTENCY_KEY_HEADER}.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    )
    by_path: dict[str, dict[str, Any]] = {}
    for route in sorted(routes(service_cls), key=lambda r: (r.rule, r.method_name)):
        operation = OPERATIONS.get(route.method_name)
        if operation is None:
            raise LookupError(f"{route.method_name} ({route.rule}) has no entry in OPERATIONS")
        for http_method in route.methods:
            by_path.setdefault(openapi_path(route.rule), {})[http_method.lower()] = _operation(
                route, http_method, operation
            )
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


_documents: dict[str, dict[str, Any]] = {}


def document(service_cls: type) -> dict[str, Any]:
    """The document, built once per process."""
    name = f"{service_cls.__module__}.{service_cls.__qualname__}"
    if name not in _documents:
        _documents[name] = build(service_cls)
    return _documents[name]


# -- /docs ----------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#f7f8fa}
main{max-width:960px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid #d8dde6;padding-bottom:4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
pre{background:#eef1f5;padding:8px 12px;border-radius:6px;white-space:pre-wrap}
section.op{background:#fff;border:1px solid #d8dde6;border-radius:8px;margin:16px 0;padding:12px 16px}
.method{display:inline-block;min-width:64px;text-align:center;font-weight:700;color:#fff;border-radius:4px;padding:2px 6px;margin-right:8px}
.get{background:#2f7d32}.post{background:#1565c0}.delete{background:#c62828}.put,.patch{background:#ef6c00}
.path{font-family:ui-monospace,monospace;font-weight:600}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{text-align:left;border-bottom:1px solid #e3e7ee;padding:4px 8px;vertical-align:top}
th{font-size:13px;color:#55606f}
.lock{color:#8a6d00;font-size:13px}nav a{margin-right:12px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


_BACKTICKED = re.compile(r"`([^`]+)`")


def _prose(text: str) -> str:
    """Escaped text whose `backticked` words are code."""
    return _BACKTICKED.sub(r"<code>\1</code>", _esc(text))


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type_of(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f'<a href="#schema-{_esc(name)}">{_esc(name)}</a>'
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type_of(schema["allOf"][0])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type_of(schema['additionalProperties'])}"
    text = _esc(kind)
    if "format" in schema:
        text += f" ({_esc(schema['format'])})"
    if "enum" in schema:
        text += ": " + ", ".join(f"<code>{_esc(v)}</code>" for v in schema["enum"])
    return text


def _rules(schema: Mapping[str, Any]) -> str:
    words = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("pattern", "pattern"),
    ):
        if key in schema:
            words.append(f"{label} <code>{_esc(schema[key])}</code>")
    if schema.get("readOnly"):
        words.append("read only")
    if schema.get("writeOnly"):
        words.append("write only")
    return ", ".join(words)


def _schema_table(name: str, schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = []
    for prop, spec in (schema.get("properties") or {}).items():
        example = (
            f"<code>{_esc(json.dumps(spec['example'], ensure_ascii=False))}</code>"
            if "example" in spec
            else ""
        )
        rows.append(
            f"<tr><td><code>{_esc(prop)}</code></td><td>{_type_of(spec)}</td>"
            f"<td>{'yes' if prop in required else ''}</td>"
            f"<td>{_prose(spec.get('description', ''))} {_rules(spec)}</td><td>{example}</td></tr>"
        )
    return (
        f'<h3 id="schema-{_esc(name)}">{_esc(name)}</h3>'
        "<table><tr><th>field</th><th>type</th><th>required</th><th>about</th>"
        f"<th>example</th></tr>{''.join(rows)}</table>"
    )


def _media_schema(content: Mapping[str, Any]) -> str:
    return "; ".join(
        f"<code>{_esc(media)}</code> {_type_of(body.get('schema', {}))}"
        for media, body in content.items()
    )


def _parameter(document: Mapping[str, Any], parameter: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in parameter:
        return document["components"]["parameters"][_ref_name(parameter["$ref"])]
    return parameter


def _operation_html(
    document: Mapping[str, Any], path: str, method: str, op: Mapping[str, Any]
) -> str:
    parts = [
        f'<section class="op" id="op-{_esc(op.get("operationId", ""))}">',
        f'<span class="method {_esc(method)}">{_esc(method.upper())}</span>'
        f'<span class="path">{_esc(path)}</span> — {_esc(op.get("summary", ""))}',
    ]
    security = op.get("security") or []
    if security:
        need = "takes, if sent," if {} in security else "needs"
        parts.append(
            f'<div class="lock">{need} <code>Authorization: Bearer &lt;token&gt;</code></div>'
        )
    if op.get("description"):
        parts.append(f"<p>{_prose(op['description'])}</p>")
    params = [_parameter(document, p) for p in op.get("parameters", ())]
    if params:
        rows = "".join(
            f"<tr><td><code>{_esc(p['name'])}</code></td><td>{_esc(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else ''}</td><td>{_prose(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>required</th><th>about</th></tr>"
            f"{rows}</table>"
        )
    if "requestBody" in op:
        parts.append(f"<p><b>Body:</b> {_media_schema(op['requestBody']['content'])}</p>")
    rows = "".join(
        f"<tr><td><b>{_esc(status)}</b></td><td>{_prose(answer.get('description', ''))}</td>"
        f"<td>{_media_schema(answer.get('content', {}))}</td></tr>"
        for status, answer in op.get("responses", {}).items()
    )
    parts.append(f"<table><tr><th>status</th><th>meaning</th><th>body</th></tr>{rows}</table>")
    parts.append("</section>")
    return "".join(parts)


def render_html(document: Mapping[str, Any]) -> str:
    """A readable page of the whole document, with no script and nothing fetched."""
    info = document["info"]
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", ())}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for tag in op.get("tags") or ["Other"]:
                by_tag.setdefault(tag, []).append(_operation_html(document, path, method, op))
    descriptions = {tag["name"]: tag.get("description", "") for tag in document.get("tags", ())}
    sections = [
        f'<h2 id="tag-{index}">{_esc(tag)}</h2><p>{_prose(descriptions.get(tag, ""))}</p>'
        + "".join(ops)
        for index, (tag, ops) in enumerate(by_tag.items())
    ]
    schema_tables = "".join(
        _schema_table(name, schema)
        for name, schema in sorted(document.get("components", {}).get("schemas", {}).items())
    )
    nav = (
        "".join(f'<a href="#tag-{index}">{_esc(tag)}</a>' for index, tag in enumerate(by_tag))
        + '<a href="#schemas">Schemas</a><a href="/openapi.json">openapi.json</a>'
    )
    intro = "".join(f"<p>{_prose(p)}</p>" for p in info.get("description", "").split("\n\n"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_esc(info['title'])}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{_esc(info['title'])}</h1><div>version {_esc(info['version'])} · "
        f"OpenAPI {_esc(document['openapi'])}</div><nav>{nav}</nav>{intro}"
        f"{''.join(sections)}<h2 id=schemas>Schemas</h2>{schema_tables}</main></body></html>"
    )


def docs_response(document: Mapping[str, Any]) -> Response:
    return Response(
        render_html(document),
        status=200,
        content_type="text/html; charset=utf-8",
        # the page runs nothing and fetches nothing; say so to the browser too
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
