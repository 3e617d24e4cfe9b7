"""The WSGI application: one base URL serves every simulated service (their paths do
not collide), plus the simulator's own ``/sim`` routes.

Every cloud request goes the same way: authenticate the AK/SK signature, check the
path's project belongs to the caller, authorize the route's IAM action (and apply any
injected fault), run the service's handler, answer JSON with ``X-Request-Id``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import admin, ecs, eip, evs, iam, ims, kms, rfs, vpc
from .errors import FORBIDDEN_CODE, CloudError
from .faults import FaultOutcome
from .routing import Call, Route, Settings
from .store import Store

SERVICE_ROUTES: list[Route] = [
    *iam.ROUTES,
    *kms.ROUTES,
    *ecs.ROUTES,
    *evs.ROUTES,
    *vpc.ROUTES,
    *eip.ROUTES,
    *ims.ROUTES,
    *rfs.ROUTES,
]

_log_lock = threading.Lock()


def log(event: str, **fields: Any) -> None:
    """One JSON object a line on stdout; secrets and tokens are never passed in."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        **fields,
    }
    with _log_lock:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()


def json_response(status: int, body: Any, request_id: str) -> Response:
    payload = b"" if body is None else json.dumps(body).encode("utf-8")
    response = Response(payload, status=status)
    if body is not None:
        response.headers["Content-Type"] = "application/json"
    response.headers["X-Request-Id"] = request_id
    return response


class CloudSimulator:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.routes = SERVICE_ROUTES
        self.url_map = Map(
            [
                Rule(route.path, endpoint=str(index), methods=[route.method])
                for index, route in enumerate(self.routes)
            ],
            strict_slashes=False,
        )
        ims.seed_images(store)
        rfs.resume_after_restart(store, settings)

    def __call__(self, environ, start_response):
        request = Request(environ)
        request_id = uuid.uuid4().hex
        started = time.monotonic()
        if request.path.startswith("/sim/") or request.path == "/sim":
            response = self.admin(request, request_id)
            log("admin", method=request.method, path=request.path, status=response.status_code)
        else:
            response, action, caller = self.cloud(request, request_id)
            log(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                action=action,
                domain_id=caller,
                request_id=request_id,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
        return response(environ, start_response)

    # -- the cloud's own API ------------------------------------------------------------

    def cloud(self, request: Request, request_id: str) -> tuple[Response, str | None, str | None]:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            index, params = adapter.match()
        except (NotFound, MethodNotAllowed):
            return (
                json_response(
                    404,
                    {
                        "error_code": "APIGW.0101",
                        "error_msg": "The API does not exist or has not been published in the environment",
                        "request_id": request_id,
                    },
                    request_id,
                ),
                None,
                None,
            )
        route = self.routes[int(index)]
        caller_domain = None
        try:
            raw = request.get_data(cache=True)
            caller = iam.authenticate(
                self.store,
                request.method,
                request.path,
                list(request.args.items(multi=True)),
                request.headers,
                raw,
            )
            caller_domain = caller.domain_id
            if route.project_scoped and params.get("project_id") not in (None, caller.project_id):
                raise CloudError(
                    403,
                    route.style,
                    FORBIDDEN_CODE.get(route.style, "RF.0403"),
                    "The project in the path is not the caller's project.",
                )
            outcome = (
                iam.authorize(self.store, caller, route.action) if route.action else FaultOutcome()
            )
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise CloudError(400, route.style, "SIM.0400", "The body is not JSON.") from None
            call = Call(
                store=self.store,
                settings=self.settings,
                caller=caller,
                params=dict(params),
                query=request.args,
                body=body,
                headers=request.headers,
                request_id=request_id,
                style=route.style,
                outcome=outcome,
            )
            status, answer = route.handler(call)
            return json_response(status, answer, request_id), route.action, caller_domain
        except CloudError as error:
            return (
                json_response(error.status, error.body(request_id), request_id),
                route.action,
                caller_domain,
            )
        except Exception:
            log("error", request_id=request_id, traceback=traceback.format_exc())
            internal = CloudError(500, route.style, "SIM.0500", "Internal error in the simulator.")
            return (
                json_response(500, internal.body(request_id), request_id),
                route.action,
                caller_domain,
            )

    # -- /sim: set the world up, look at what is left -------------------------------------

    def admin(self, request: Request, request_id: str) -> Response:
        parts = [p for p in request.path.split("/") if p][1:]
        method = request.method
        try:
            body = request.get_json(force=True, silent=True) or {}
            if not isinstance(body, dict):
                raise admin.AdminError(400, "the body must be a JSON object")
            answer: Any
            status = 200
            if parts == ["health"] and method == "GET":
                answer = {"status": "ok"}
            elif parts == ["accounts"] and method == "POST":
                answer, status = admin.create_account(self.store, self.settings.region, body), 201
            elif parts == ["accounts"] and method == "GET":
                answer = admin.list_accounts(self.store)
            elif len(parts) == 3 and parts[0] == "accounts" and parts[2] == "resources":
                answer = admin.account_resources(self.store, parts[1])
            elif len(parts) == 3 and parts[0] == "accounts" and parts[2] == "quotas":
                if method == "GET":
                    answer = {"quotas": admin.account_quotas(self.store, parts[1])}
                else:
                    answer = admin.update_quotas(self.store, parts[1], body)
            elif parts == ["images"] and method == "POST":
                answer, status = admin.register_image(self.store, body), 201
            elif parts == ["images"] and method == "GET":
                answer = {"images": ims.all_images(self.store)}
            elif parts == ["faults"] and method == "POST":
                answer, status = admin.add_fault(self.store, body), 201
            elif parts == ["faults"] and method == "GET":
                answer = {"faults": admin.faults.list_faults(self.store)}
            elif parts == ["faults"] and method == "DELETE":
                admin.faults.clear_faults(self.store)
                answer, status = None, 204
            elif parts == ["clock"] and method == "POST":
                answer = admin.advance_clock(self.store, body)
            elif parts == ["clock"] and method == "GET":
                answer = {"now": iam.iso(self.store.now())}
            else:
                raise admin.AdminError(404, "no such simulator route")
        except admin.AdminError as error:
            return json_response(error.status, {"error": error.message}, request_id)
        return json_response(status, answer, request_id)
