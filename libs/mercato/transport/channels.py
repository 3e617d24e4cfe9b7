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

A message is never sent twice. A send has two steps: writing the message, then (on a
confirming channel) reading the broker's confirm. A failure in the first step means the
broker did not take the message (py-amqp reads what waits on the connection before it
writes, so a close the broker sent meanwhile, a broker restart or an operator's forced
close, raises there; a write that fails leaves at most an incomplete frame, which the
broker discards). Only then, and only on a channel kept from an earlier message, is the
message written once more on a fresh channel. A failure in the second step (no confirm
within the timeout, the connection lost while waiting) leaves it unknown whether the
broker routed the message: ``Unconfirmed`` is raised and nothing is sent again, so a
callee never runs one request twice. A connection cut without a word (a proxy's idle
timeout) shows only there. An answer, sent without a confirm, may then be lost, and its
caller times out as it would had the callee died.
"""

from __future__ import annotations

import logging
from typing import Any

import amqp
import kombu
import kombu.exceptions
from amqp import spec as amqp_spec
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


class Unconfirmed(Exception):
    """The message was written but the broker's confirm never came (timeout, connection
    lost while waiting): it may or may not have been routed, so it is not sent again."""


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
        """Declare ``exchange`` on this channel's first message to it (the default
        exchange, named "", is the broker's and never declared)."""
        if exchange.name and exchange.name not in self._declared:
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

    def abandon(self) -> None:
        """Drop a connection that failed, without the closing handshake: a broker that
        stopped answering would keep ``close()`` waiting for its close-ok."""
        try:
            self.connection.collect()
        except Exception:
            _log.debug("dropping a broker channel failed", exc_info=True)


def _refused(method, *args) -> None:
    if method == amqp_spec.Basic.Nack:
        raise amqp.exceptions.MessageNacked()


class _ChannelPool:
    def __init__(self, amqp_uri: str, *, confirms: bool, ssl: Any, login_method: str | None):
        self._amqp_uri = amqp_uri
        self._confirms = confirms
        self._ssl = ssl
        self._login_method = login_method
        self._free: LightQueue = LightQueue()
        self._closed = False

    def publish(
        self,
        message: amqp.Message,
        *,
        exchange: kombu.Exchange,
        routing_key: str,
        confirm_timeout: float | None = None,
    ) -> None:
        """Send ``message`` once. Raises ``Unroutable`` (no queue took it: sent, not
        delivered), ``Unconfirmed`` (written, fate unknown), a refusal
        (``MessageNacked``) or the error that kept it from being written."""
        try:
            channel, kept = self._free.get_nowait(), True
        except Empty:
            channel, kept = self._open(), False
        try:
            self._write(channel, message, exchange, routing_key)
        except BaseException as exc:
            channel.abandon()
            if not kept or not isinstance(exc, BROKER_ERRORS):
                raise
            # not written: the broker never saw it, so a fresh channel may send it
            _log.info("a kept broker channel was broken (%r); sending on a new one", exc)
            channel = self._open()
            try:
                self._write(channel, message, exchange, routing_key)
            except BaseException:
                channel.abandon()
                raise
        if self._confirms:
            self._await_confirm(channel, routing_key, confirm_timeout)
        self._release(channel)

    def _open(self) -> BrokerChannel:
        return BrokerChannel(
            self._amqp_uri, confirms=self._confirms, ssl=self._ssl, login_method=self._login_method
        )

    def _write(self, channel: BrokerChannel, message, exchange: kombu.Exchange, routing_key: str):
        channel.declare(exchange)
        channel.returned = False
        # amqp's own ``_basic_publish`` writes only: on a confirming channel its
        # ``basic_publish`` would also wait for the confirm, which is the second step
        channel.channel._basic_publish(
            message, exchange=exchange.name, routing_key=routing_key, mandatory=self._confirms
        )

    def _await_confirm(self, channel: BrokerChannel, routing_key: str, timeout: float | None):
        """The second step: the confirm (after a return, when no queue took it)."""
        timeout = min(timeout or CONFIRM_TIMEOUT_SECONDS, CONFIRM_TIMEOUT_SECONDS)
        try:
            channel.channel.wait(
                [amqp_spec.Basic.Ack, amqp_spec.Basic.Nack], callback=_refused, timeout=timeout
            )
        except amqp.exceptions.MessageNacked:
            self._release(channel)  # the broker answered: the channel is sound
            raise
        except BaseException as exc:
            # a green thread killed here (its caller gave up) leaves the channel owed a
            # confirm: it cannot carry another message
            channel.abandon()
            if isinstance(exc, BROKER_ERRORS):  # a timeout is an OSError
                raise Unconfirmed(f"{routing_key}: no confirm from the broker ({exc!r})") from exc
            raise
        if channel.returned:
            self._release(channel)
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
