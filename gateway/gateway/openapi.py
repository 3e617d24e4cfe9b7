"""The OpenAPI 3 document of the gateway, generated from its route declarations.

Each ``routing.Route`` gives its path, method, summary, tag, description, who may call
it, its success status and the errors it may answer beyond the usual ones; bodies come
from the marshmallow schemas it names (apispec's MarshmallowPlugin), the contracts'
RPC schemas with their metadata. An ``@http`` entrypoint no declaration made fails the
build, so the document cannot fall behind the routes.

``render_html`` turns the document into ``/docs``: one self-contained page, no script.
"""

from __future__ import annotations

import html
import inspect
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from werkzeug.wrappers import Response

from gateway import schemas
from gateway.errors import BEARER_CHALLENGE
from gateway.idempotency import IDEMPOTENCY_KEY_HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER
from gateway.routing import ANYONE, TOKEN_OPTIONAL, Route
from gateway.web import BODY_FIELD, REQUEST_ID_HEADER, GatewayHttp

OPENAPI_VERSION = "3.0.3"
# what ``idempotency.idempotency_key`` takes: visible ASCII
IDEMPOTENCY_KEY_PATTERN = "^[\\x21-\\x7e]+$"
API_VERSION = "1.0.0"
TITLE = "Mercato public API"

ACCOUNTS = "Accounts and sign-in"
CATALOG = "Catalog"
ORDERS = "Orders and payment"
PURCHASED_APPS = "Purchased apps"
SUPERVISION = "Service supervision"
MESSAGES = "Messages"
ATTACHMENTS = "Attachments"
OPERATIONS_TAG = "Operations"
TEST_CLOCK = "Test clock"
AGENCIES = "Agencies and cloud accounts"
PROJECTS = "Enterprise projects"
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
        "name": PROJECTS,
        "description": "The units a buyer's spending is accounted to: `default` and the "
        "projects it creates (commercial or test), enabled or disabled.",
    },
    {
        "name": SUPERVISION,
        "description": "Licenses, professional services and supervised SaaS from payment to "
        "acceptance: the buyer's request, the seller's confirmation and provision, the "
        "buyer's acceptance (automatic after the acceptance period), appeals that operators "
        "decide.",
    },
    {"name": MESSAGES, "description": "Direct messages: what waits for you, appeal results."},
    {
        "name": AGENCIES,
        "description": "Images are deployed into the buyer's own cloud account, under two "
        "agencies the buyer authorises once with keys Mercato never keeps: link the "
        "account, authorise, check, cancel; and what the account offers to deploy on.",
    },
    {
        "name": ATTACHMENTS,
        "description": "Files for a service request, a provision or an appeal: uploaded "
        "first, then named by their ids.",
    },
    {
        "name": TEST_CLOCK,
        "description": "Move every service's time forward, for tests of what happens when "
        "time passes (only when the system runs with MERCATO_CLOCK=controllable; 404 "
        "otherwise, and always in production).",
    },
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
running, 409 `CONFLICT`. Keys are kept at least 24 hours, per account. A request refused
with a 4xx releases its key; one that failed with a 5xx keeps it, and the same request
sent again runs again, each service answering the first result of its work (a retry
after a 503 is always safe). Answers that carry secrets (`Cache-Control: no-store`) are
never stored: their retry runs again.

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


def routes(service_cls: type) -> Iterator[tuple[str, str, str]]:
    """(method name, method, werkzeug rule) of every ``@http`` entrypoint a service
    class has: the routes it serves, declared or not."""
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, GatewayHttp):
                for method in entrypoint.method.split(","):
                    yield name, method.strip().upper(), entrypoint.url


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


def _error_statuses(route: Route) -> dict[int, str]:
    statuses = {500}
    if route.method == "POST":
        statuses |= {400, 409, 413, 422}
    if route.body is not None or route.raw_body is not None:
        statuses |= {400, 413}
    if route.query is not None:
        statuses.add(400)
    if route.who != ANYONE:
        statuses.add(401)
    role = _roles_text(route.roles) if route.roles else None
    if role is not None:
        statuses.add(403)
    if route.path_ids:
        statuses.add(404)
    if route.calls_services:
        statuses.add(503)
    errors = dict(route.errors)
    if role is not None:
        errors.setdefault(403, f"FORBIDDEN: only a {role} may do this")
    meanings: dict[int, str] = {}
    for status in sorted(statuses | set(errors)):
        parts = [errors[status]] if status in errors else []
        if status in STATUS_MEANINGS and (status not in errors or status == 409):
            parts.append(STATUS_MEANINGS[status])
        meanings[status] = "; or ".join(parts)
    return meanings


def _roles_text(roles: tuple[str, ...]) -> str:
    """``buyer``; ``buyer or seller``; ``buyer, seller or operator``."""
    return roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[Any] = ["RequestId"]  # apispec makes a name a $ref to the component
    if route.method == "POST":
        parameters.append("IdempotencyKey")
    for name in route.path_ids:
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if route.query is not None:
        # apispec's MarshmallowPlugin spreads the schema into one parameter per field
        parameters.append({"in": "query", "schema": route.query})
    success: dict[str, Any] = {
        "description": _first_paragraph(route.about) or "OK",
        "headers": {REQUEST_ID_HEADER: REQUEST_ID_HEADER},
    }
    if route.method == "POST":
        success["headers"][REPLAYED_HEADER] = REPLAYED_HEADER
    body_schema: Any = route.response or route.raw_response
    if body_schema is not None:
        success["content"] = {route.media_type: {"schema": body_schema}}
    responses: dict[str, Any] = {str(route.status): success}
    for status, meaning in _error_statuses(route).items():
        if str(status) in responses:
            continue
        responses[str(status)] = _error_response(meaning)
    if "503" in responses and route.response is schemas.ReadinessResponse:
        # /readyz's 503 has the probe's own body
        responses["503"]["content"] = {"application/json": {"schema": schemas.ReadinessResponse}}
    security: list[dict[str, list[str]]] = []
    if route.who == TOKEN_OPTIONAL:
        security = [{}, {"bearerAuth": []}]  # either anonymous or a bearer token
    elif route.who != ANYONE:
        security = [{"bearerAuth": []}]
    spec: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "description": route.about,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": responses,
        "security": security,
    }
    if route.body is not None:
        spec["requestBody"] = {
            # a body whose fields are all optional may be left out
            "required": any(f.required for f in route.body().fields.values()),
            "content": {"application/json": {"schema": route.body}},
        }
    elif route.raw_body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {route.body_media_type: {"schema": dict(route.raw_body)}},
        }
    return spec


def build(service_cls: type) -> dict[str, Any]:
    """The document of the routes ``service_cls`` declares (``routing.serves``). An
    ``@http`` entrypoint that no declaration made fails the build: every route the
    gateway serves is in the document."""
    declared: tuple[Route, ...] = getattr(service_cls, "routes", ())
    names = {route.name for route in declared}
    for name, method, rule in routes(service_cls):
        if name not in names:
            raise LookupError(f"{name} ({method} {rule}) is served but not declared")
    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title=TITLE,
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[marshmallow],
        info={"description": INTRO},
        tags=TAGS,
    )
    # OpenAPI's format for a URL is "uri" (apispec writes "url", which no validator knows)
    marshmallow.map_to_openapi_type(fields.Url, "string", "uri")
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
            "description": "Names the request in every service's logs: kept when it is 1 to "
            "128 of `A-Z a-z 0-9 . _ : -`, any other value is replaced by a new id (never "
            "refused); generated if absent.",
            # whatever a client sends is taken (and replaced if it is not sane)
            "schema": {"type": "string"},
        },
    )
    spec.components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "required": False,
            "description": "Makes a retry safe: the same key and body answer the first "
            "response again, without doing the work twice. Kept at least 24 hours, per "
            f"account. 1 to {MAX_KEY_LENGTH} visible ASCII characters (a 400 otherwise).",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": IDEMPOTENCY_KEY_PATTERN,
            },
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
    for route in sorted(declared, key=lambda r: (r.rule, r.name)):
        by_path.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return _empty_query_values_allowed(spec.to_dict())


def _empty_query_values_allowed(document: dict[str, Any]) -> dict[str, Any]:
    """Say of every optional query parameter what the server does: an empty value
    (``?status=``) counts as not given (``mercato.validation.QuerySchema``)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return document


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
