"""An RPC proxy with a timeout, for calls from one service to another.

nameko 2's service-side ``RpcProxy`` waits for a reply forever; if the callee is down,
the caller's worker hangs and its pool drains. ``TimedRpcProxy`` waits at most
``RPC_TIMEOUT_SECONDS`` (config, default 10) and raises ``ServiceUnavailable``. A
callee with no queue at all (never started in this vhost) makes nameko raise
``UnknownService`` at once; that is the same outage to the caller, so it is
``ServiceUnavailable`` too.
"""

from __future__ import annotations

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

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
