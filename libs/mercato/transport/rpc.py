"""nameko RPC as Mercato uses it: a proxy with a timeout, and an entrypoint that
answers without waiting for broker confirms (``rpc``, see ``Rpc``); both send through
the container's own broker channels (``mercato.transport.channels``) as transient messages.

nameko 2's service-side ``RpcProxy`` waits for a reply forever; if the callee is down,
the caller's worker hangs and its pool drains. ``TimedRpcProxy`` waits at most
``RPC_TIMEOUT_SECONDS`` (config, default 10) and raises ``ServiceUnavailable``. A
callee with no queue at all (never started in this vhost) is known at once, as nameko
knows it (the request comes back unroutable); that is the same outage to the caller,
so it is ``ServiceUnavailable`` too.

The messages are nameko's own (body, ``nameko.*`` context headers, ``reply_to`` and
``correlation_id``), so a Mercato service and a plain nameko one call each other.

A request is sent once (``mercato.transport.channels``): a request the broker may have
taken but did not confirm fails the call (``ServiceUnavailable``) and is not sent
again, so a callee never runs one call twice. A request carries its caller's deadline
twice: as the AMQP ``expiration`` (the broker drops it once it has waited in the queue
longer than the caller waits) and as the ``x-mercato-deadline`` header (seconds since
the epoch), which ``Rpc`` checks before it starts a worker: a request whose caller has
given up is never run late. A plain nameko callee ignores the header.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid

import amqp
import eventlet
import kombu.serialization
from nameko.constants import DEFAULT_SERIALIZER, NON_PERSISTENT, SERIALIZER_CONFIG_KEY
from nameko.exceptions import UnserializableValueError, serialize
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from nameko.rpc import ReplyListener, RpcReply, get_rpc_exchange
from nameko.rpc import Rpc as NamekoRpc

from mercato import config, metrics
from mercato.errors import ServiceUnavailable
from mercato.transport.channels import BROKER_ERRORS, BrokerChannels, Unconfirmed, Unroutable

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
# when the caller stops waiting, in seconds since the epoch (wall clock: it crosses
# processes and machines, whose clocks NTP keeps within far less than a timeout)
DEADLINE_HEADER = "x-mercato-deadline"


def _message(body, content_type: str, encoding: str, **properties) -> amqp.Message:
    return amqp.Message(
        body,
        content_type=content_type,
        content_encoding=encoding,
        delivery_mode=NON_PERSISTENT,
        **properties,
    )


class _TimedServiceProxy:
    """``self.<dependency>.<method>(...)``: one call, its answer awaited at most
    ``timeout`` seconds."""

    def __init__(self, provider: TimedRpcProxy, worker_ctx, timeout: float) -> None:
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._timeout = timeout

    def __getattr__(self, method_name: str):
        service_name = self._provider.target_service

        def call(*args, **kwargs):
            reply_listener = self._provider.rpc_reply_listener
            correlation_id = str(uuid.uuid4())
            reply = RpcReply(reply_listener.get_reply_event(correlation_id))
            try:
                try:
                    self._provider.send(
                        self._worker_ctx,
                        f"{service_name}.{method_name}",
                        args,
                        kwargs,
                        timeout=self._timeout,
                        reply_to=reply_listener.routing_key,
                        correlation_id=correlation_id,
                    )
                except Unroutable:
                    raise ServiceUnavailable(f"{service_name} is not running") from None
                with eventlet.Timeout(self._timeout, False):  # False: leave the block quietly
                    return reply.result()
                raise ServiceUnavailable(
                    f"{service_name} did not answer {method_name} within {self._timeout:g}s"
                )
            finally:
                # an answer that came was taken off already; one that never came (not
                # sent, unserved, late) is not waited for any longer
                reply_listener._reply_events.pop(correlation_id, None)

        call.__name__ = method_name
        return call


class TimedRpcProxy(DependencyProvider, HeaderEncoder):
    """nameko's ``RpcProxy`` with a timeout, sending its requests as transient messages
    on the container's own channels.

    nameko sends requests persistent, so the broker writes each to disk before it
    confirms it. A request outlives nothing that would need it: its caller waits at
    most the timeout, and after a broker restart the caller's reply queue is gone.
    The confirm stays (it is how an unserved method is detected); for a transient
    message the broker sends it as soon as the request is routed.
    """

    rpc_reply_listener = ReplyListener()
    channels = BrokerChannels()

    def __init__(
        self, target_service: str, timeout: float | None = None, setting: str | None = None
    ) -> None:
        """``timeout``: this proxy's own budget (else ``RPC_TIMEOUT_SECONDS``);
        ``setting``: the config key that overrides it, for a call whose budget must
        nest around the callee's own (docs/operations.md, "Timeouts")."""
        self.target_service = target_service
        self._timeout = timeout
        self._setting = setting

    def setup(self) -> None:
        self._exchange = get_rpc_exchange(self.container.config)
        self._serializer = self.container.config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)

    def get_dependency(self, worker_ctx):
        settings = self.container.config
        timeout = self._timeout or float(
            settings.get(config.RPC_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS)
        )
        if self._setting and settings.get(self._setting):
            timeout = float(settings[self._setting])
        return _TimedServiceProxy(self, worker_ctx, timeout)

    def send(
        self, worker_ctx, routing_key: str, args, kwargs, *, timeout: float, **properties
    ) -> None:
        """Publish one request, once, that expires when its caller stops waiting
        (``timeout`` seconds from now): ``Unroutable`` when no service takes it,
        ``ServiceUnavailable`` when the broker does not take it or may have taken it
        without confirming (then the callee may run it: it is not sent again)."""
        content_type, encoding, body = kombu.serialization.dumps(
            {"args": args, "kwargs": kwargs}, self._serializer
        )
        headers = self.get_message_headers(worker_ctx)
        headers[DEADLINE_HEADER] = time.time() + timeout
        message = _message(
            body,
            content_type,
            encoding,
            application_headers=headers,
            # whole milliseconds, at least 1 (0 would mean: deliver now or never)
            expiration=str(max(1, int(timeout * 1000))),
            **properties,
        )
        try:
            self.channels.confirming.publish(
                message, exchange=self._exchange, routing_key=routing_key, confirm_timeout=timeout
            )
        except Unconfirmed as exc:
            raise ServiceUnavailable(
                f"the message broker did not confirm the call {routing_key}; it was not sent again"
            ) from exc
        except BROKER_ERRORS as exc:
            raise ServiceUnavailable(
                f"the message broker did not take the call {routing_key}: {exc!r}"
            ) from exc


class Rpc(NamekoRpc):
    """nameko's ``@rpc`` entrypoint, answering on the container's own channels
    (``mercato.transport.channels``), as a transient message without publisher confirms,
    serializing each answer once.

    nameko 2.14 builds a ``Responder`` for every answer, serializes the answer twice
    (once to check that it can, once to send it), sends it persistent and waits for
    the broker to confirm it. Neither guards anything here: the answer goes to a
    reply queue that exists only while its caller does, and a caller that never
    receives it times out (``TimedRpcProxy``) exactly as it would if the broker had
    lost it after writing it to disk and confirming. Requests keep their confirms:
    they are how a caller learns at once that no service is listening.

    A request past its caller's deadline (``DEADLINE_HEADER``) is acknowledged and
    dropped before a worker starts: nobody waits for its answer, and running it late
    (an order placed minutes after the buyer saw a 503) is what the deadline prevents.

    An answer the broker does not take (it is away) is logged and dropped, never
    raised: raised from here it would kill the container, and so the process, over
    one lost answer whose caller times out anyway. The container's consumers
    reconnect by themselves once the broker is back.

    It shares nameko's ``RpcConsumer``, so it may sit beside ``nameko.rpc.rpc``.
    """

    channels = BrokerChannels()

    def setup(self) -> None:
        super().setup()
        self._reply_exchange = get_rpc_exchange(self.container.config)

    def handle_message(self, body, message):
        deadline = (message.headers or {}).get(DEADLINE_HEADER)
        if isinstance(deadline, (int, float)) and time.time() > deadline:
            _log.warning(
                "dropped a call to %s whose caller stopped waiting %.1fs ago",
                self.method_name,
                time.time() - deadline,
            )
            metrics.RPC_EXPIRED.labels(self.container.service_name, self.method_name).inc()
            self.rpc_consumer.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            result, exc_info = self._reply(message, result, exc_info)
        except BROKER_ERRORS as exc:
            _log.warning(
                "the answer to %s was lost: the message broker did not take it (%r)",
                self.method_name,
                exc,
            )
        self.rpc_consumer.queue_consumer.ack_message(message)
        return result, exc_info

    def _reply(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        # answer in the encoding of the request, as nameko's Responder does
        serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
        try:
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer
            )
        except Exception:
            # what nameko does with an answer it cannot serialize: the caller gets an
            # error that always serializes, and the worker's result says why
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": error}, serializer
            )
        self.channels.plain.publish(
            _message(
                body,
                content_type,
                encoding,
                correlation_id=message.properties.get("correlation_id"),
            ),
            exchange=self._reply_exchange,
            routing_key=message.properties["reply_to"],
        )
        return result, exc_info


rpc = Rpc.decorator
