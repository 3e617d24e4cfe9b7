"""The gateway's HTTP plumbing: nameko's ``@http`` with JSON errors and request ids.

- ``GatewayWebServer`` wraps nameko's WSGI app: it settles the request's correlation id
  (a sane ``X-Request-ID`` or a new one), hands it to the worker as context data (so
  it travels on every RPC), returns it on every response, answers unknown routes and
  wrong methods with JSON 404/405, and refuses a declared body over ``MAX_BODY_BYTES``
  (or the route's own limit: the upload's) before any worker starts.
- ``GatewayHttp`` (the ``http`` decorator) turns whatever an entrypoint raises into the
  JSON error body through ``errors.mapped_errors``.
- ``read_json`` reads a body within the limit and parses it, or says why not;
  ``read_query`` gives the query string as one value per name; ``path_id`` checks an id
  taken from the path.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from types import SimpleNamespace
from typing import Any

from marshmallow import Schema, fields
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from prometheus_client import Counter
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound
from werkzeug.wrappers import Request, Response

from gateway.errors import (
    CALLER_ERRORS,
    MethodNotAllowed,
    PayloadTooLarge,
    error_response,
    json_response,
    status_for,
)
from gateway.settings import Settings
from mercato import logs
from mercato.errors import MercatoError, NotFound, ValidationError
from mercato.identity import CORRELATION_ID, ensure_correlation_id

_log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_ENVIRON_KEY = "mercato.correlation_id"
_LOGGED_BY_WORKER = "_mercato_logged_by_worker"
BODY_FIELD = "_body"  # names the body itself in a validation error's fields

UNROUTED_REQUESTS = Counter(
    "mercato_gateway_unrouted_requests_total",
    "Requests answered before any entrypoint: no such route, wrong method, body too large",
    ["status"],
)


def correlation_id_of(environ: dict[str, Any]) -> str:
    """The request's correlation id, settled once: ``ensure_correlation_id``'s rule
    (the client's X-Request-ID if it is a sane token, else a new id)."""
    if _ENVIRON_KEY not in environ:
        probe = SimpleNamespace(data={}, args=(Request(environ, shallow=True),))
        environ[_ENVIRON_KEY] = ensure_correlation_id(probe)
    return environ[_ENVIRON_KEY]


class GatewayWsgiApp(WsgiApp):
    def __init__(self, server: GatewayWebServer) -> None:
        super().__init__(server)
        self.max_body_bytes = server.settings.max_body_bytes
        self.service_name = server.container.service_name

    def __call__(self, environ, start_response):
        correlation_id = correlation_id_of(environ)
        # Left bound on purpose: eventlet writes the access log line after this returns,
        # in this connection's green thread, and it should name the request too. The
        # connection's next request binds its own.
        logs.bind(service=self.service_name, entrypoint="http", correlation_id=correlation_id)
        try:
            response = self._dispatch(environ)
        except Exception as exc:  # a bug in the plumbing itself: still JSON, still an id
            _log.exception("answered 500 INTERNAL: the gateway's dispatch failed")
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = correlation_id
        # answers can hold secrets (a sign-in's token): no cache along the way keeps them
        response.headers.setdefault("Cache-Control", "no-store")
        return response(environ, start_response)

    def _dispatch(self, environ) -> Response:
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            limit = getattr(provider, "max_body_bytes", None) or self.max_body_bytes
            declared = request.content_length
            if declared is not None and declared > limit:
                raise PayloadTooLarge(f"the body is {declared} bytes; at most {limit} are accepted")
        except RoutingNotFound:
            return _unrouted(NotFound(f"no such path: {request.path}"))
        except RoutingMethodNotAllowed as exc:
            allowed = sorted(exc.valid_methods or ())
            return _unrouted(
                MethodNotAllowed(
                    f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
                    allowed,
                )
            )
        except PayloadTooLarge as exc:
            return _unrouted(exc)
        except HTTPException as exc:  # a routing redirect (strict slashes)
            return exc.get_response(environ)  # type: ignore[return-value]
        request.path_values = values  # type: ignore[attr-defined]
        return provider.handle_request(request)


def _unrouted(exc: MercatoError) -> Response:
    response = error_response(exc)
    UNROUTED_REQUESTS.labels(str(response.status_code)).inc()
    return response


class GatewayWebServer(WebServer):
    """nameko's web server with the gateway's WSGI app in front of the entrypoints."""

    def setup(self):
        super().setup()
        self.settings = Settings.from_config(self.container.config)

    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def context_data_from_headers(self, request):
        return {CORRELATION_ID: correlation_id_of(request.environ)}


class GatewayHttp(HttpRequestHandler):
    """``@http`` whose failures are JSON error bodies with the mapped status.
    ``max_body_bytes``: the largest body this entrypoint takes, when it is not the
    gateway's ``MAX_BODY_BYTES`` (the upload's)."""

    server = GatewayWebServer()

    def __init__(self, method, url, max_body_bytes: int | None = None, **kwargs):
        kwargs.setdefault("expected_exceptions", CALLER_ERRORS)
        super().__init__(method, url, **kwargs)
        self.max_body_bytes = max_body_bytes

    def handle_result(self, event, worker_ctx, result, exc_info):
        if exc_info is not None:
            # nameko logged it with the worker's log context (correlation id, traceback)
            setattr(exc_info[1], _LOGGED_BY_WORKER, True)
        return super().handle_result(event, worker_ctx, result, exc_info)

    def response_from_exception(self, exc):
        if status_for(exc) is None:
            # not the caller's fault: one line here, whatever happened (the log context
            # carries the correlation id), the traceback if no worker logged it
            already_logged = getattr(exc, _LOGGED_BY_WORKER, False)
            _log.error(
                "answered 500 %s: %s: %s",
                "INTERNAL",
                type(exc).__name__,
                exc,
                exc_info=None if already_logged else exc,
            )
        return error_response(exc)


http = GatewayHttp.decorator


def read_body(request: Request, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes, whatever its Content-Length claims.

    A chunked body has no Content-Length: eventlet decodes the chunks, and reading one
    byte past the limit tells whether it is too large without holding more.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; at most {limit} are accepted")
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if declared is None and not chunked:
        return b""
    data = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``), or a ValidationError that
    names ``_body`` and says what is wrong with it."""
    raw = read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(
            raw,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValidationError(
            "the body is not valid JSON", {BODY_FIELD: [f"Not valid JSON: {_short(exc)}"]}
        ) from None
    if not isinstance(parsed, dict):
        raise ValidationError(
            "the body must be a JSON object", {BODY_FIELD: ["Must be a JSON object."]}
        )
    return parsed


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0][:200]


def read_query(request: Request) -> dict[str, str]:
    """The query string as ``{name: value}``, every value a string for a query schema to
    convert. A name given twice (``?page=1&page=2``) is a ValidationError naming it: which
    one was meant is not for the gateway to guess."""
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, given in request.args.lists():
        if len(given) > 1:
            repeated[name] = ["Give this parameter once."]
        values[name] = given[0]
    if repeated:
        raise ValidationError(f"invalid request: check {', '.join(sorted(repeated))}", repeated)
    return values


_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def path_id(value: str, what: str) -> str:
    """An id from the path, as given; NotFound when it cannot be one of ours (ids are
    1 to 40 of ``A-Z a-z 0-9 _ -``), so no service is asked about it."""
    if not _ID.match(value):
        raise NotFound(f"{what} not found")
    return value


def respond(
    status: int,
    schema: Schema | type[Schema],
    data: Any,
    headers: dict[str, str] | None = None,
) -> Response:
    """A service's answer as JSON, keeping only the fields the public response schema
    documents. The service already dumped it through its own schema (dates as RFC 3339
    strings, money as integers), so the gateway only projects it: no second load and
    dump on the hottest path."""
    schema_class = schema if isinstance(schema, type) else type(schema)
    return json_response(status, project(response_plan(schema_class), data), headers)


# A plan maps each documented key to the plan of its nested object (None: a plain value).
Plan = dict[str, "Plan | None"]


@functools.cache
def response_plan(schema_class: type[Schema]) -> Plan:
    """Which keys of an answer a response schema documents, nested ones included."""
    plan: Plan = {}
    for name, field in schema_class().fields.items():
        if field.load_only:
            continue
        inner = field.inner if isinstance(field, fields.List) else field
        nested = response_plan(type(inner.schema)) if isinstance(inner, fields.Nested) else None
        plan[field.data_key or name] = nested
    return plan


def project(plan: Plan | None, value: Any) -> Any:
    if plan is None or value is None:
        return value
    if isinstance(value, list):
        return [project(plan, item) for item in value]
    return {key: project(sub, value[key]) for key, sub in plan.items() if key in value}


def no_content() -> Response:
    return Response(status=204)
