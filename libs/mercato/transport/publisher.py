"""Publishing events to RabbitMQ as nameko does, with the broker's confirms for a
whole batch awaited together (``ConfirmedPublisher``).

``event_message`` builds the AMQP message nameko's event dispatcher would send for an
event (a JSON body, the worker's context in ``nameko.*`` headers, persistent), so a
nameko ``@event_handler`` and a plain AMQP subscriber both read it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import amqp
import kombu
from kombu.utils.json import dumps as json_dumps
from nameko.constants import PERSISTENT

from mercato.transport.channels import BrokerChannel

_log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0
HEADER_PREFIX = "nameko"


class OutgoingMessage:
    __slots__ = ("exchange", "message", "routing_key")

    def __init__(self, *, exchange: kombu.Exchange, routing_key: str, message: amqp.Message):
        self.exchange = exchange
        self.routing_key = routing_key
        self.message = message


def event_message(
    exchange: kombu.Exchange, event_type: str, payload: dict[str, Any], headers: dict[str, Any]
) -> OutgoingMessage:
    """The message nameko's event dispatcher sends for an event: routed by its type, the
    envelope as the JSON body, the context (caller, correlation, cause) in ``nameko.*``
    headers, persistent."""
    return OutgoingMessage(
        exchange=exchange,
        routing_key=event_type,
        message=amqp.Message(
            json_dumps(payload).encode(),
            content_type="application/json",
            content_encoding="utf-8",
            application_headers={f"{HEADER_PREFIX}.{key}": value for key, value in headers.items()},
            delivery_mode=PERSISTENT,
            message_id=payload["id"],
            timestamp=int(time.time()),
            type=event_type,
        ),
    )


class ConfirmedPublisher:
    """The relay's own broker channel, in confirm mode: a batch is published at once,
    then the broker's confirms for all of it are awaited together.

    nameko's ``Publisher`` waits for each message's confirm before sending the next,
    a round trip per event, and goes through kombu's producer pool and retry wrapper
    on every message. The relay is one green thread per process, so a connection it
    alone uses needs neither. A failure drops the connection; when a fresh one does
    not cure it (``publish_confirmed``), the rows stay unpublished and a later pass
    publishes them again.
    """

    def __init__(self, amqp_uri: str, *, ssl: Any = None, login_method: str | None = None):
        self._amqp_uri = amqp_uri
        self._ssl = ssl
        self._login_method = login_method
        self._channel: BrokerChannel | None = None
        self._next_tag = 1  # the broker numbers a confirm-mode channel's messages from 1
        self._unconfirmed: set[int] = set()
        self._refused: list[int] = []
        self._returned: set[str] = set()

    def publish_confirmed(self, messages: list[OutgoingMessage]) -> set[str]:
        """Return once the broker has confirmed every message; raise otherwise.

        Messages are published ``mandatory``: the answer is the ``message_id`` of each
        one no queue took (the broker returns it before confirming it), for the caller
        to decide whether that is a loss.

        A connection kept since the last batch may have been cut meanwhile (a broker
        restart, a proxy's idle timeout) without a word; that shows only when it is
        used, so a batch that fails on a kept connection is sent once more on a fresh
        one rather than left for the next sweep. (Messages the broken connection did
        deliver go out twice: delivery is at least once.) A refusal is not retried.
        """
        if not messages:
            return set()
        kept = self._channel is not None
        try:
            return self._publish_all(messages)
        except amqp.exceptions.MessageNacked:
            raise
        except Exception:
            if not kept:
                raise
            _log.info("outbox relay's broker connection was broken; publishing on a new one")
            return self._publish_all(messages)

    def _publish_all(self, messages: list[OutgoingMessage]) -> set[str]:
        self._returned = set()
        try:
            broker = self._open_channel()
            for outgoing in messages:
                broker.declare(outgoing.exchange)
                self._unconfirmed.add(self._next_tag)
                self._next_tag += 1
                broker.channel.basic_publish(
                    outgoing.message,
                    exchange=outgoing.exchange.name,
                    routing_key=outgoing.routing_key,
                    mandatory=True,
                )
            while self._unconfirmed and not self._refused:
                broker.connection.drain_events(timeout=CONFIRM_TIMEOUT_SECONDS)
            if self._refused:
                raise amqp.exceptions.MessageNacked(
                    f"the broker refused {len(self._refused)} of {len(messages)} messages"
                )
            return set(self._returned)
        except BaseException:
            self.abandon()
            raise

    # The channel's confirm listeners see every ack and nack, including one that
    # arrives while the channel waits for something else (an exchange being declared).
    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed.difference_update(
                [tag for tag in self._unconfirmed if tag <= delivery_tag]
            )
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._refused.append(delivery_tag)

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        self._returned.add(str(message.properties.get("message_id")))

    def _open_channel(self) -> BrokerChannel:
        if self._channel is None:
            broker = BrokerChannel(
                self._amqp_uri, confirms=True, ssl=self._ssl, login_method=self._login_method
            )
            broker.channel.events["basic_ack"].add(self._on_ack)
            broker.channel.events["basic_nack"].add(self._on_nack)
            broker.channel.events["basic_return"].add(self._on_return)
            self._channel = broker
            self._unconfirmed.clear()
            self._refused.clear()
            self._next_tag = 1
        return self._channel

    def close(self) -> None:
        broker, self._channel = self._channel, None
        if broker is not None:
            broker.close()

    def abandon(self) -> None:
        """Drop a connection that failed (see ``BrokerChannel.abandon``)."""
        broker, self._channel = self._channel, None
        if broker is not None:
            broker.abandon()
