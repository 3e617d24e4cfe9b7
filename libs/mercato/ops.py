"""The operations endpoints of a service: ``/healthz``, ``/readyz`` and ``/metrics``.

They are served by their own small eventlet WSGI server, apart from the worker pool,
so that a scrape or a probe answers even while every worker is busy.

- ``/healthz``: the process is alive and its container is running.
- ``/readyz``: every dependency that offers a ``readiness()`` check passes (the
  database answers ``SELECT 1``) and every queue this service consumes has its
  consumer attached (nameko's consumer reports ready and the broker counts a consumer).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import eventlet
import eventlet.wsgi
from kombu import Connection
from nameko.messaging import QueueConsumer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

_log = logging.getLogger(__name__)

QUEUE_CONSUMERS = Gauge(
    "mercato_queue_consumers",
    "Consumers the broker counts on each queue this service consumes (all replicas), "
    "read at each readiness probe",
    ["service", "queue"],
)
DEAD_LETTERS = Gauge(
    "mercato_dead_letters",
    "Events waiting in each event handler's dead-letter queue for an operator (all "
    "replicas), read at each readiness probe",
    ["service", "queue"],
)
QUEUE_MESSAGES = Gauge(
    "mercato_queue_messages",
    "Messages ready on each queue this service consumes, read at each readiness probe",
    ["service", "queue"],
)

READINESS_CACHE_SECONDS = 2.0
BROKER_CHECK_TIMEOUT = 3.0


def _queue_consumers(container) -> list[QueueConsumer]:
    return [ext for ext in container.subextensions if isinstance(ext, QueueConsumer)]


def _consumed_queues(container) -> list[str]:
    names = []
    for entrypoint in container.entrypoints:
        queue = getattr(entrypoint, "queue", None)
        # an exclusive queue (a broadcast handler's) belongs to its consumer's own
        # connection: the broker refuses to let another connection even look at it
        if queue is not None and not queue.exclusive:
            names.append(queue.name)
        rpc_consumer = getattr(entrypoint, "rpc_consumer", None)
        if rpc_consumer is not None and getattr(rpc_consumer, "queue", None) is not None:
            names.append(rpc_consumer.queue.name)
    return sorted(set(names))


def _dead_letter_queues(container) -> list[str]:
    """The dead-letter queues of the container's event handlers (``mercato.inbox``)."""
    return sorted(
        {
            entrypoint.dead_letter_queue
            for entrypoint in container.entrypoints
            if getattr(entrypoint, "dead_letter_queue", None)
        }
    )


def check_consumers(container) -> str | None:
    """None when every queue this container consumes has a consumer attached."""
    for consumer in _queue_consumers(container):
        if not consumer._consumers_ready.ready():
            return "consumers not attached yet"
        if consumer._gt is None or consumer._gt.dead:
            return "consumer thread stopped"
    queues = _consumed_queues(container)
    if not queues:
        return None
    amqp_uri = container.config["AMQP_URI"]
    problem = None
    try:
        with Connection(amqp_uri, connect_timeout=BROKER_CHECK_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            for name in queues:
                _name, messages, consumers = channel.queue_declare(queue=name, passive=True)
                # every replica reports the broker's count: alerts take the max
                QUEUE_CONSUMERS.labels(container.service_name, name).set(consumers)
                QUEUE_MESSAGES.labels(container.service_name, name).set(messages)
                if consumers < 1 and problem is None:
                    problem = f"queue {name} has no consumer"
            for name in _dead_letter_queues(container):
                _name, messages, _consumers = channel.queue_declare(queue=name, passive=True)
                DEAD_LETTERS.labels(container.service_name, name).set(messages)
    except Exception as exc:
        return f"broker unreachable: {type(exc).__name__}: {exc}"
    return problem


def check_dependencies(container) -> dict[str, str]:
    problems = {}
    for dependency in container.dependencies:
        readiness = getattr(dependency, "readiness", None)
        if callable(readiness):
            problem = readiness()
            if problem:
                problems[dependency.attr_name] = problem
    return problems


class CachedReadiness:
    """``readiness_report`` at most every ``READINESS_CACHE_SECONDS``: each report opens a
    broker connection and queries the database, and probes, scrapers or (through the
    gateway's public ``/readyz``) anyone may ask as often as they like."""

    def __init__(self, container, seconds: float = READINESS_CACHE_SECONDS) -> None:
        self.container = container
        self.seconds = seconds
        self._cached: tuple[float, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.seconds:
            return self._cached[1]
        report = readiness_report(self.container)
        self._cached = (time.monotonic(), report)
        return report


def readiness_report(container) -> dict[str, Any]:
    problems = check_dependencies(container)
    consumer_problem = check_consumers(container)
    if consumer_problem:
        problems["consumers"] = consumer_problem
    return {"status": "ready" if not problems else "not ready", "problems": problems}


class OpsServer:
    """Serves the operations endpoints of one container at ``address`` (host:port)."""

    def __init__(
        self, container, address: str, cached_readiness: CachedReadiness | None = None
    ) -> None:
        self.container = container
        host, _, port = address.rpartition(":")
        self.host, self.port = host or "0.0.0.0", int(port)  # noqa: S104 (probes come from outside)
        self._gt = None
        self._socket = None
        self.cached_readiness = cached_readiness or CachedReadiness(container)

    def start(self) -> None:
        sock = eventlet.listen((self.host, self.port))
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._gt = eventlet.spawn(eventlet.wsgi.server, sock, self.app, log_output=False, log=_log)

    def stop(self) -> None:
        if self._gt is not None:
            self._gt.kill()
        if self._socket is not None:
            self._socket.close()

    def readiness(self) -> dict[str, Any]:
        return self.cached_readiness()

    def app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(REGISTRY)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if path == "/readyz":
            report = self.readiness()
            return _json(start_response, 200 if report["status"] == "ready" else 503, report)
        return _json(start_response, 404, {"error": "NOT_FOUND", "message": "no such path"})


def _json(start_response, status: int, body: dict[str, Any]):
    reasons = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    start_response(f"{status} {reasons[status]}", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
