"""Broker channels kept open for a container's RPC messages (``BrokerChannels``).

nameko 2.14 sends every RPC request and answer through kombu's producer pool: for each
message it builds a ``kombu.Connection`` only to find the pool, takes a producer from
it, wraps the send in kombu's retry machinery and gives the producer back, which costs
more than the send itself (docs/performance.md, "The container's own channels"). Here a
container keeps its own channels: a message takes one from a free list, is written to
it, and the channel goes back.

Two kinds, never mixed, because a channel in confirm mode must have every confirm it
is owed read before its next message is written:

- ``confirming``: requests. The broker confirms each one; published ``mandatory``, a
  request no queue takes comes back (``basic.return``) before its confirm, which is
  how a caller learns at once that nobody serves the method (``Unroutable``).
- ``plain``: answers, which need no confirm (see ``mercato.transport.Rpc``).

A kept channel may have been closed meanwhile (a broker restart, an operator's forced
close). py-amqp reads what waits on the connection before it publishes, so the
broker's close raises there; the channel is closed and the message sent once more on
a fresh one. A connection cut without a word (a proxy's idle timeout) shows later: a
request's confirm never comes, and it too is sent again; an answer, sent without a
confirm, is lost, and its caller times out as it would had the callee died. A message
that fails twice raises; the sender sees the broker as away.
"""

from __future__ import annotations

import logging
from typing import Any

import amqp
import kombu
import kombu.exceptions
from eventlet.queue import Empty, LightQueue
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.extensions import SharedExtension

_log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0


# what a send raises when the broker is away or refuses the message
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out
    amqp.exceptions.AMQPError,  # e.g. the broker closed the connection
    amqp.exceptions.MessageNacked,
    kombu.exceptions.KombuError,
)


class Unroutable(Exception):
    """No queue took a ``mandatory`` message: nobody consumes its routing key."""


class BrokerChannel:
    """One connection with one channel on it, used by one green thread at a time
    (here, and by the outbox relay's ``ConfirmedPublisher``)."""

    def __init__(
        self, amqp_uri: str, *, confirms: bool, ssl: Any = None, login_method: str | None = None
    ):
        self.connection = kombu.Connection(amqp_uri, ssl=ssl, login_method=login_method)
        self.connection.connect()
        self.channel = self.connection.channel()
        self._declared: set[str] = set()
        self.returned = False
        if confirms:
            self.channel.events["basic_return"].add(self._on_return)
            self.channel.confirm_select()

    def declare(self, exchange: kombu.Exchange) -> None:
        """Declare ``exchange`` on this channel's first message to it."""
        if exchange.name not in self._declared:
            exchange.declare(channel=self.channel)
            self._declared.add(exchange.name)

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        # the broker sends a mandatory message's return before its confirm, and a
        # channel carries one message at a time: the return is the message in flight
        self.returned = True

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # already broken: nothing to release
            _log.debug("closing a broker channel failed", exc_info=True)


class _ChannelPool:
    def __init__(self, amqp_uri: str, *, confirms: bool, ssl: Any, login_method: str | None):
        self._amqp_uri = amqp_uri
        self._confirms = confirms
        self._ssl = ssl
        self._login_method = login_method
        self._free: LightQueue = LightQueue()
        self._closed = False

    def publish(self, message: amqp.Message, *, exchange: kombu.Exchange, routing_key: str) -> None:
        try:
            channel, kept = self._free.get_nowait(), True
        except Empty:
            channel, kept = self._open(), False
        try:
            self._send_on(channel, message, exchange, routing_key)
        except Unroutable:
            raise
        except Exception:
            if not kept:
                raise
            _log.info("a kept broker channel was broken; sending on a new one")
            self._send_on(self._open(), message, exchange, routing_key)

    def _send_on(self, channel: BrokerChannel, message, exchange: kombu.Exchange, routing_key: str):
        """Send on ``channel``, then free it for the next message; a channel that
        failed (or whose green thread was killed mid-send) is closed instead."""
        try:
            self._send(channel, message, exchange, routing_key)
        except Unroutable:
            self._release(channel)  # the broker answered: the channel is sound
            raise
        except BaseException:
            channel.close()
            raise
        self._release(channel)

    def _open(self) -> BrokerChannel:
        return BrokerChannel(
            self._amqp_uri, confirms=self._confirms, ssl=self._ssl, login_method=self._login_method
        )

    def _send(self, channel: BrokerChannel, message, exchange: kombu.Exchange, routing_key: str):
        channel.declare(exchange)
        if not self._confirms:
            channel.channel.basic_publish(message, exchange=exchange.name, routing_key=routing_key)
            return
        channel.returned = False
        channel.channel.basic_publish_confirm(
            message,
            exchange=exchange.name,
            routing_key=routing_key,
            mandatory=True,
            confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
        )
        if channel.returned:
            raise Unroutable(routing_key)

    def _release(self, channel: BrokerChannel) -> None:
        if self._closed:
            channel.close()
        else:
            self._free.put(channel)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._free.get_nowait().close()
            except Empty:
                return


class BrokerChannels(SharedExtension):
    """A container's broker channels for RPC requests (``confirming``) and answers
    (``plain``), opened as the load needs them and closed when the container stops."""

    def setup(self) -> None:
        config = self.container.config
        options = {
            "ssl": config.get(AMQP_SSL_CONFIG_KEY),
            "login_method": config.get(LOGIN_METHOD_CONFIG_KEY),
        }
        self.confirming = _ChannelPool(config[AMQP_URI_CONFIG_KEY], confirms=True, **options)
        self.plain = _ChannelPool(config[AMQP_URI_CONFIG_KEY], confirms=False, **options)

    def stop(self) -> None:
        self.confirming.close()
        self.plain.close()

    def kill(self) -> None:
        self.stop()
