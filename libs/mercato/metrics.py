"""Prometheus metrics every service exposes, and the dependency that records them.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` in base units);
labels are bounded: service, entrypoint, kind, outcome, event type, never an id.
One process runs one service, so the default registry serves ``/metrics``; the
``service`` label keeps series apart when tests run several services in one process.
"""

from __future__ import annotations

import logging
import time

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from mercato import config, logs
from mercato.errors import MercatoError, ServiceUnavailable
from mercato.identity import CORRELATION_ID, ensure_correlation_id
from mercato.ops import CachedReadiness, OpsServer

ENTRYPOINT_CALLS = Counter(
    "mercato_entrypoint_calls_total",
    "Entrypoint calls by outcome: success, rejected (the caller's fault) or error",
    ["service", "entrypoint", "kind", "outcome"],
)
ENTRYPOINT_ERRORS = Counter(
    "mercato_entrypoint_errors_total",
    "Entrypoint calls that failed, by error class",
    ["service", "entrypoint", "kind", "error"],
)
ENTRYPOINT_DURATION = Histogram(
    "mercato_entrypoint_duration_seconds",
    "Time from worker start to result, by entrypoint",
    ["service", "entrypoint", "kind", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ENTRYPOINT_IN_FLIGHT = Gauge(
    "mercato_entrypoint_in_flight", "Workers running now", ["service", "kind"]
)
RPC_EXPIRED = Counter(
    "mercato_rpc_expired_total",
    "RPC requests dropped unrun because their caller had stopped waiting (past the request's deadline)",
    ["service", "method"],
)
EVENTS_PUBLISHED = Counter(
    "mercato_events_published_total",
    "Events the outbox relay published with a broker confirm",
    ["service", "event_type"],
)
EVENT_PUBLISH_FAILURES = Counter(
    "mercato_event_publish_failures_total",
    "Outbox relay attempts that the broker did not confirm (retried on the next sweep)",
    ["service"],
)
EVENTS_UNROUTABLE = Counter(
    "mercato_events_unroutable_total",
    "Events the broker returned to the outbox relay because no queue took them",
    ["service", "event_type"],
)
EVENTS_CONSUMED = Counter(
    "mercato_events_consumed_total",
    "Events a handler finished with: processed, duplicate (seen before, or its effect already applied) or dead_lettered",
    ["service", "handler", "event_type", "outcome"],
)
EVENT_RETRIES = Counter(
    "mercato_event_retries_total",
    "Handler attempts that failed with a transient error and were retried",
    ["service", "handler", "event_type"],
)
OUTBOX_BACKLOG = Gauge(
    "mercato_outbox_backlog", "Events committed but not yet published", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "mercato_outbox_oldest_age_seconds",
    "Age of the oldest unpublished event (0 when the outbox is empty)",
    ["service"],
)

_log = logging.getLogger("mercato.calls")

HTTP_ERROR_STATUS = 500
HTTP_CLIENT_ERROR_STATUS = 400


def entrypoint_kind(entrypoint) -> str:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, EventHandler):
        return "event"
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    if isinstance(entrypoint, Timer):
        return "timer"
    return type(entrypoint).__name__.lower()


def _http_status(result) -> int | None:
    status = getattr(result, "status_code", None)
    if status is None and isinstance(result, tuple) and result and isinstance(result[0], int):
        status = result[0]
    return status


def outcome_of(worker_ctx, result, exc_info) -> tuple[str, str | None]:
    """(outcome, error class) of one worker."""
    if exc_info is not None:
        exc = exc_info[1]
        expected = getattr(worker_ctx.entrypoint, "expected_exceptions", ()) or ()
        if isinstance(exc, ServiceUnavailable):
            return "error", type(exc).__name__  # an outage, never the caller's fault
        if isinstance(exc, MercatoError) or (expected and isinstance(exc, expected)):
            return "rejected", type(exc).__name__
        return "error", type(exc).__name__
    status = _http_status(result) if entrypoint_kind(worker_ctx.entrypoint) == "http" else None
    if status is not None and status >= HTTP_ERROR_STATUS:
        return "error", f"http_{status}"
    if status is not None and status >= HTTP_CLIENT_ERROR_STATUS:
        return "rejected", None
    return "success", None


class Observability(DependencyProvider):
    """Times and counts every entrypoint, and binds the log context of each worker.

    Declare it once per service (``observability = Observability()``). Where the config names an ``OPS_ADDRESS`` it
    also serves ``/metrics``, ``/healthz`` and ``/readyz`` there (see ``mercato.ops``).
    """

    def setup(self):
        self.service_name = self.container.service_name
        logs.set_process_service(self.service_name)
        self._started: dict[int, tuple[float, object]] = {}
        address = self.container.config.get(config.OPS_ADDRESS)
        # one cache for the ops server and the entrypoints that serve /readyz themselves
        self.cached_readiness = CachedReadiness(self.container)
        self.ops_server = (
            OpsServer(self.container, str(address), self.cached_readiness) if address else None
        )

    def start(self):
        if self.ops_server is not None:
            self.ops_server.start()

    def stop(self):
        if self.ops_server is not None:
            self.ops_server.stop()

    kill = stop

    def worker_setup(self, worker_ctx):
        ensure_correlation_id(worker_ctx)
        token = logs.bind(
            service=self.service_name,
            entrypoint=worker_ctx.entrypoint.method_name,
            correlation_id=worker_ctx.data[CORRELATION_ID],
        )
        kind = entrypoint_kind(worker_ctx.entrypoint)
        ENTRYPOINT_IN_FLIGHT.labels(self.service_name, kind).inc()
        self._started[id(worker_ctx)] = (time.perf_counter(), token)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started, _token = self._started.get(id(worker_ctx), (time.perf_counter(), None))
        kind = entrypoint_kind(worker_ctx.entrypoint)
        name = worker_ctx.entrypoint.method_name
        outcome, error = outcome_of(worker_ctx, result, exc_info)
        elapsed = time.perf_counter() - started
        ENTRYPOINT_CALLS.labels(self.service_name, name, kind, outcome).inc()
        ENTRYPOINT_DURATION.labels(self.service_name, name, kind, outcome).observe(elapsed)
        # one line a call, carrying the correlation id, so a request can be followed
        # through every service's log; a timer's routine pass is only worth a debug line
        _log.log(
            logging.DEBUG if kind == "timer" and error is None else logging.INFO,
            "%s %s: %s in %.1f ms",
            kind,
            name,
            outcome if error is None else f"{outcome} ({error})",
            elapsed * 1000,
            extra={"kind": kind, "outcome": outcome, "duration_ms": round(elapsed * 1000, 2)},
        )
        if error is not None:
            ENTRYPOINT_ERRORS.labels(self.service_name, name, kind, error).inc()

    def worker_teardown(self, worker_ctx):
        _started, token = self._started.pop(id(worker_ctx), (0.0, None))
        ENTRYPOINT_IN_FLIGHT.labels(self.service_name, entrypoint_kind(worker_ctx.entrypoint)).dec()
        if token is not None:
            logs.unbind(token)  # type: ignore[arg-type]

    def get_dependency(self, worker_ctx):
        return OpsView(self.cached_readiness)


class OpsView:
    """What a service's own HTTP entrypoints need to serve the operations endpoints
    (the gateway serves them on its API port too)."""

    def __init__(self, cached_readiness: CachedReadiness) -> None:
        self._cached_readiness = cached_readiness

    def readiness(self) -> dict:
        return self._cached_readiness()

    def render_metrics(self) -> tuple[bytes, str]:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
