"""A route of the public API is one declaration; ``serves`` makes the entrypoints.

A ``Route`` says everything about one route: its method and path, what the document
says of it (summary, tag, description, the errors it may answer beyond the usual
ones), who may call it, the body or query schema it loads, the schema and status it
answers with, whether it honours ``Idempotency-Key``, the headers it adds, and the one
RPC it calls, or the handler that composes its answer.

``@serves(ROUTES)`` on the service class turns each declaration into a nameko ``@http``
entrypoint method (nameko finds entrypoints among the class's members, so they are made
when the class is, before any container is built). Every one of them does, in order:

1. authenticate: the caller becomes the worker's identity, and a route for a role
   answers Forbidden to anyone else before any service is asked (the services check
   again);
2. the path's ids (``web.path_id``: NotFound for what cannot be an id);
3. the body (``web.read_json``) or the query string (``web.read_query``), loaded with
   the route's schema: the very schema the service loads it with again (a route with a
   ``raw_body``, the upload, leaves its body to its handler, which reads it as it
   arrives); a route with a ``rate_limit`` counts the attempt (429 past the limit);
4. with an ``Idempotency-Key`` on a route that honours it, the first answer again or
   the work once;
5. the RPC, with one convention: the path's ids positionally, then the loaded body or
   query as one dict when the route has one (``orders.pay_order(order_id, payload)``,
   ``catalog.list_seller_products(query)``); a route whose body must be empty
   (``EmptyRequest``: the path says it all) passes none on
   (``orders.cancel_order(order_id)``); a handler is called with the gateway and the
   request before the same arguments;
6. ``web.respond``: the success status, and only the fields the response schema
   documents.

Whatever is raised on the way is answered by ``web.GatewayHttp`` with the status of
``errors.mapped_errors``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema
from werkzeug.wrappers import Request, Response

from gateway.errors import JSON
from gateway.idempotency import downstream_key
from gateway.ratelimits import KINDS as RATE_LIMITS
from gateway.web import http, no_content, path_id, read_json, read_query, respond
from mercato.contracts.common import EmptyRequest
from mercato.identity import ACCOUNT_TYPES
from mercato.transport import TimedRpcProxy
from mercato.validation import load

# who may call a route: anyone (no token is read), anyone with a token optional (a
# token sent must be valid), any signed-in account, or an account with a role (or with
# one of several roles: a tuple of them)
ANYONE = "anyone"
TOKEN_OPTIONAL = "anyone, token optional"  # noqa: S105 - who may call, not a secret
AUTHENTICATED = "authenticated"
WHO = (ANYONE, TOKEN_OPTIONAL, AUTHENTICATED, *ACCOUNT_TYPES)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# the methods whose request has a body (a PATCH's names the fields it changes)
_BODY_METHODS = ("POST", "PUT", "PATCH")
_PATH_VARIABLE = re.compile(r"{([a-z_]+)}")
# what a NotFound for an id that cannot be one calls the thing (default: the variable
# without its ``_id``)
_THINGS = {"subscription_id": "purchased app"}

# A handler composes an answer where one RPC does not: ``handler(gateway, request,
# *path_ids, payload)``. It answers data for the route's response schema, or a whole
# Response (the operations endpoints).
Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    """One route of the gateway, declared once (see the module's docstring)."""

    method: str
    path: str  # OpenAPI's form: /v1/orders/{order_id}/pay
    name: str  # the entrypoint method's name and the document's operationId
    summary: str
    tag: str
    who: str | tuple[str, ...]
    about: str = ""  # the document's description of the route
    rpc: tuple[str, str] | None = None  # (service, method): ("orders", "pay_order")
    handler: Handler | None = None
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    idempotent: bool | None = None  # None: every POST
    headers: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[int, str] = field(default_factory=dict)  # more precise meanings
    calls_services: bool = True  # False: the operations endpoints
    media_type: str = JSON
    # the answer's schema in the document when it is no marshmallow schema
    raw_response: Mapping[str, Any] | None = None
    # a body that is not JSON, which the handler reads itself as it arrives (an
    # upload): its media type and its schema in the document
    raw_body: Mapping[str, Any] | None = None
    body_media_type: str = JSON
    # the largest body this route takes, when it is not the gateway's MAX_BODY_BYTES
    # (only the upload takes more)
    max_body_bytes: int | None = None
    # the limit its attempts count against (``gateway.ratelimits``: sign_in, sign_up),
    # checked once the body is valid and before anything else is done
    rate_limit: str | None = None

    def __post_init__(self) -> None:
        where = f"route {self.method} {self.path}"
        problems = []
        if not self.summary.strip() or not self.tag.strip():
            problems.append("needs a summary and a tag for the document")
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}")
        if isinstance(self.who, tuple):
            if not self.who or not set(self.who) <= set(ACCOUNT_TYPES):
                problems.append(f"who as a tuple names roles: {', '.join(ACCOUNT_TYPES)}")
        elif self.who not in WHO:
            problems.append(f"who must be one of {', '.join(WHO)}")
        if (self.rpc is None) == (self.handler is None):
            problems.append("names either the one RPC it calls or a handler")
        if self.body is not None and self.query is not None:
            problems.append("takes a body or a query, not both")
        if self.raw_body is not None and (self.body is not None or self.query is not None):
            problems.append("a raw body is the whole body: no body schema, no query")
        if self.method in _BODY_METHODS and self.body is None and self.raw_body is None:
            problems.append("needs a body schema (EmptyRequest when it takes none)")
        if self.raw_body is not None and self.handler is None:
            problems.append("a raw body is read by a handler")
        if (self.body_media_type != JSON) != (self.raw_body is not None):
            problems.append("a raw body has its own media type; a JSON body has a schema")
        if self.rate_limit is not None and (
            self.rate_limit not in RATE_LIMITS or self.body is None
        ):
            problems.append(f"a rate limit is one of {', '.join(RATE_LIMITS)}, on a body's route")
        if self.idempotent and self.method != "POST":
            problems.append("Idempotency-Key is honoured on POST only")
        if (self.response is None) != (self.status == 204 or self.raw_response is not None):
            problems.append("answers with a response schema, or 204 with no content")
        if problems:
            raise ValueError(f"{where}: {'; '.join(problems)}")

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles that may call the route; () when it is not for roles."""
        if isinstance(self.who, tuple):
            return self.who
        return (self.who,) if self.who in ACCOUNT_TYPES else ()

    @property
    def rule(self) -> str:
        """The path as a werkzeug rule: ``/v1/orders/<order_id>/pay``."""
        return _PATH_VARIABLE.sub(r"<\1>", self.path)

    @functools.cached_property
    def path_ids(self) -> tuple[str, ...]:
        """The path's variables, in order: ``("order_id",)``."""
        return tuple(_PATH_VARIABLE.findall(self.path))

    @functools.cached_property
    def things(self) -> tuple[str, ...]:
        """What a NotFound calls each path id that cannot be an id: ``("order",)``."""
        return tuple(
            _THINGS.get(name, name.removesuffix("_id").replace("_", " ")) for name in self.path_ids
        )

    @property
    def honours_idempotency_key(self) -> bool:
        return self.method == "POST" if self.idempotent is None else self.idempotent


def _authenticate(gateway: Any, route: Route, request: Request) -> None:
    if route.who == TOKEN_OPTIONAL:
        gateway.auth.authenticate_if_present(request, gateway.iam_agency)
    elif route.who == AUTHENTICATED:
        gateway.auth.authenticate(request, gateway.iam_agency)
    elif route.who != ANYONE:
        gateway.auth.authenticate(request, gateway.iam_agency, *route.roles)


def handle(
    gateway: Any, route: Route, request: Request, path_values: Mapping[str, str]
) -> Response:
    """What every declared route does with a request, in order."""
    _authenticate(gateway, route, request)
    args: list[Any] = [
        path_id(path_values[name], thing)
        for name, thing in zip(route.path_ids, route.things, strict=True)
    ]
    body = None
    if route.body is not None:
        body = read_json(request, gateway.settings.max_body_bytes)
        payload = load(route.body, body)
        if route.rate_limit is not None:
            gateway.rate_limits.check(route.rate_limit, request, payload)
        if route.body is not EmptyRequest:
            args.append(payload)
    elif route.query is not None:
        args.append(load(route.query, read_query(request)))

    def work() -> Response:
        if route.rpc is not None:
            service, method = route.rpc
            answer = getattr(getattr(gateway, service), method)(*args)
        else:
            assert route.handler is not None
            answer = route.handler(gateway, request, *args)
        if isinstance(answer, Response):
            return answer
        if route.response is None:
            return no_content()
        return respond(route.status, route.response, answer, dict(route.headers) or None)

    if route.honours_idempotency_key:
        key = downstream_key(request)
        if key is not None:
            # every RPC this request makes carries the key (a nameko context header)
            gateway.caller.carry_request_key(key)
        return gateway.idempotency.once(request, body, work)
    return work()


def entrypoint(route: Route) -> Callable[..., Response]:
    """The ``@http`` method that serves ``route``."""

    def serve(self: Any, request: Request, **path_values: str) -> Response:
        return handle(self, route, request, path_values)

    serve.__name__ = serve.__qualname__ = route.name
    serve.__doc__ = route.about or route.summary
    return http(route.method, route.rule, max_body_bytes=route.max_body_bytes)(serve)


S = TypeVar("S", bound=type)


def serves(routes: Sequence[Route]) -> Callable[[S], S]:
    """Give the service class an entrypoint per route (and ``routes``, which the
    OpenAPI document is built from). Refuses two routes with one name or one method
    and path, and an RPC to a service the class has no proxy for."""

    def install(service_cls: S) -> S:
        seen: set[Any] = set()
        for route in routes:
            for key in (route.name, (route.method, route.rule)):
                if key in seen:
                    raise ValueError(f"{key} is declared twice")
                seen.add(key)
            if route.rpc is not None and not isinstance(
                getattr(service_cls, route.rpc[0], None), TimedRpcProxy
            ):
                raise ValueError(f"{route.name} calls {route.rpc[0]}, which has no RPC proxy")
            if route.name in vars(service_cls):
                raise ValueError(f"{service_cls.__name__}.{route.name} already exists")
            setattr(service_cls, route.name, entrypoint(route))
        service_cls.routes = tuple(routes)  # type: ignore[attr-defined]
        return service_cls

    return install
