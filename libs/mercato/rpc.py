"""nameko RPC as Mercato uses it: a proxy with a timeout, and an entrypoint that
answers without waiting for broker confirms (``rpc``, see ``Rpc``).

nameko 2's service-side ``RpcProxy`` waits for a reply forever; if the callee is down,
the caller's worker hangs and its pool drains. ``TimedRpcProxy`` waits at most
``RPC_TIMEOUT_SECONDS`` (config, default 10) and raises ``ServiceUnavailable``. A
callee with no queue at all (never started in this vhost) makes nameko raise
``UnknownService`` at once; that is the same outage to the caller, so it is
``ServiceUnavailable`` too.
"""

from __future__ import annotations

import sys

import eventlet
import kombu.serialization
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.exceptions import UnknownService, UnserializableValueError, serialize
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcProxy, get_rpc_exchange

from mercato import config
from mercato.errors import ServiceUnavailable

DEFAULT_TIMEOUT_SECONDS = 10.0


class _TimedServiceProxy:
    def __init__(self, service_proxy, reply_listener, service_name: str, timeout: float) -> None:
        self._proxy = service_proxy
        self._reply_listener = reply_listener
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name: str):
        method = getattr(self._proxy, method_name)

        def call(*args, **kwargs):
            try:
                reply = method.call_async(*args, **kwargs)
            except UnknownService:
                raise ServiceUnavailable(f"{self._service_name} is not running") from None
            try:
                with eventlet.Timeout(self._timeout):
                    return reply.result()
            except eventlet.Timeout:
                self._forget(reply)
                raise ServiceUnavailable(
                    f"{self._service_name} did not answer {method_name} within {self._timeout:g}s"
                ) from None

        call.__name__ = method_name
        return call

    def _forget(self, reply) -> None:
        # the reply may never come: do not keep waiting for it
        events = self._reply_listener._reply_events
        for key, value in list(events.items()):
            if value is reply.reply_event:
                events.pop(key, None)


class TimedRpcProxy(RpcProxy):
    def __init__(self, target_service: str, timeout: float | None = None, **options) -> None:
        super().__init__(target_service, **options)
        self._timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self._timeout or float(
            self.container.config.get(config.RPC_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS)
        )
        return _TimedServiceProxy(
            super().get_dependency(worker_ctx),
            self.rpc_reply_listener,
            self.target_service,
            timeout,
        )


class Rpc(NamekoRpc):
    """nameko's ``@rpc`` entrypoint, answering through a publisher made once (not one
    per answer), without publisher confirms, serializing each answer once.

    nameko 2.14 builds a ``Responder`` for every answer, serializes the answer twice
    (once to check that it can, once to send it) and waits for the broker to confirm
    it. A confirm guards nothing here: the answer is transient, goes to a reply queue
    that exists only while its caller does, and a caller that never receives it times
    out (``TimedRpcProxy``) exactly as it would if the broker had lost it after
    confirming. Requests keep their confirms: they are how a caller learns at once
    that no service is listening (``UnknownService``).

    It shares nameko's ``RpcConsumer``, so it may sit beside ``nameko.rpc.rpc``.
    """

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self._reply_exchange = get_rpc_exchange(config)
        self._reply_publisher = Publisher(
            config[AMQP_URI_CONFIG_KEY],
            use_confirms=False,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )

    def handle_result(self, message, worker_ctx, result, exc_info):
        result, exc_info = self._reply(message, result, exc_info)
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
        self._reply_publisher.publish(
            body,
            content_type=content_type,
            content_encoding=encoding,
            exchange=self._reply_exchange,
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
        )
        return result, exc_info


rpc = Rpc.decorator
