"""The WSGI application: the provider's API under ``/v1`` and the simulator's own
``/sim`` routes (health, injected delays, every charge and refund made).

Bodies are JSON both ways. Every answer carries ``Request-Id``; errors are
``{"error": {"type", "code", "message", "param"}}`` (``param`` names the field).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import provider
from .provider import ApiError, Behaviour
from .store import Store

_log_lock = threading.Lock()
MAX_BODY_BYTES = 64 * 1024


def log(event: str, **fields: Any) -> None:
    """One JSON object a line on stdout; card numbers and CVCs are never passed in."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        **fields,
    }
    with _log_lock:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()


def json_response(status: int, body: Any, request_id: str) -> Response:
    response = Response(
        b"" if body is None else json.dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json" if body is not None else None,
    )
    response.headers["Request-Id"] = request_id
    return response


URLS = Map(
    [
        Rule("/v1/tokens", endpoint="create_token", methods=["POST"]),
        Rule("/v1/tokens/<token>", endpoint="get_token", methods=["GET"]),
        Rule("/v1/cards", endpoint="save_card", methods=["POST"]),
        Rule("/v1/cards/<card_id>", endpoint="get_card", methods=["GET"]),
        Rule("/v1/cards/<card_id>", endpoint="delete_card", methods=["DELETE"]),
        Rule("/v1/charges", endpoint="charge", methods=["POST"]),
        Rule("/v1/charges", endpoint="find_charges", methods=["GET"]),
        Rule("/v1/charges/<charge_id>", endpoint="get_charge", methods=["GET"]),
        Rule("/v1/refunds", endpoint="refund", methods=["POST"]),
        Rule("/v1/refunds", endpoint="find_refunds", methods=["GET"]),
        Rule("/sim/health", endpoint="health", methods=["GET"]),
        Rule("/sim/faults", endpoint="add_fault", methods=["POST"]),
        Rule("/sim/faults", endpoint="faults", methods=["GET"]),
        Rule("/sim/faults", endpoint="clear_faults", methods=["DELETE"]),
        Rule("/sim/ledger", endpoint="ledger", methods=["GET"]),
    ],
    strict_slashes=False,
)

# the calls an injected delay (``POST /sim/faults``) slows down: the provider's
# answers about money
_DELAYED = {"charge", "find_charges", "refund", "find_refunds"}


class PaymentsSimulator:
    def __init__(self, store: Store, behaviour: Behaviour) -> None:
        self.store = store
        self.behaviour = behaviour

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        started = time.monotonic()
        endpoint = None
        try:
            endpoint, params = URLS.bind_to_environ(environ).match()
            status, body, wait = self.dispatch(endpoint, params, request)
            delay = self.store.take_delay() if endpoint in _DELAYED else 0.0
            if wait or delay:
                time.sleep(wait + delay)  # the work is done and kept; only the answer is late
            response = json_response(status, body, request_id)
        except ApiError as error:
            response = json_response(error.status, error.body(), request_id)
        except (NotFound, MethodNotAllowed):
            missing = ApiError(404, "route_missing", f"no route {request.method} {request.path}")
            response = json_response(404, missing.body(), request_id)
        except Exception:
            log("error", request_id=request_id, traceback=traceback.format_exc())
            internal = ApiError(500, "api_error", "internal error in the simulator")
            response = json_response(500, internal.body(), request_id)
        log(
            "request",
            method=request.method,
            path=request.path if not request.path.startswith("/v1/tokens/") else "/v1/tokens/…",
            endpoint=endpoint,
            status=response.status_code,
            request_id=request_id,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response(environ, start_response)

    def dispatch(
        self, endpoint: str, params: Mapping[str, Any], request: Request
    ) -> tuple[int, Any, float]:
        store, behaviour = self.store, self.behaviour
        key = request.headers.get("Idempotency-Key")
        if endpoint == "charge":
            return provider.charge(store, behaviour, _body(request), key)
        if endpoint == "refund":
            return provider.refund(store, behaviour, _body(request), key)
        answers = {
            "create_token": lambda: provider.create_token(store, _body(request)),
            "get_token": lambda: provider.get_token(store, params["token"]),
            "save_card": lambda: provider.save_card(store, _body(request), key),
            "get_card": lambda: provider.get_card(store, params["card_id"]),
            "delete_card": lambda: provider.delete_card(store, params["card_id"]),
            "find_charges": lambda: provider.find_charges(
                store, request.args.get("idempotency_key")
            ),
            "get_charge": lambda: provider.get_charge(store, params["charge_id"]),
            "find_refunds": lambda: provider.find_refunds(
                store, request.args.get("idempotency_key")
            ),
            "health": lambda: (200, {"status": "ok"}),
            "add_fault": lambda: (201, _add_fault(store, _body(request))),
            "faults": lambda: (200, {"faults": store.delays()}),
            "clear_faults": lambda: (_clear(store), None),
            "ledger": lambda: (200, provider.everything(store)),
        }
        status, body = answers[endpoint]()
        return status, body, 0.0


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ApiError(400, "parameter_invalid", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "parameter_invalid", "the body must be a JSON object")
    return body


def _add_fault(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """``{delay_seconds, count}``: the next ``count`` answers of charges, refunds and
    their lookups (every one while ``count`` is null) wait ``delay_seconds`` more."""
    delay, count = body.get("delay_seconds"), body.get("count")
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 < delay <= 600:
        raise ApiError(
            400, "parameter_invalid", "delay_seconds must be 0 < x <= 600", "delay_seconds"
        )
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ApiError(
            400, "parameter_invalid", "count must be a positive integer or null", "count"
        )
    return store.add_delay(float(delay), count)


def _clear(store: Store) -> int:
    store.clear_delays()
    return 204
