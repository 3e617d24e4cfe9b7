"""Mercato on RabbitMQ: every message a service sends or answers goes through here.

- RPC (``rpc.py``): ``TimedRpcProxy`` calls another service and waits at most
  ``RPC_TIMEOUT_SECONDS``; ``rpc`` is nameko's ``@rpc`` answering on the container's own
  channels.
- Events (``publisher.py``): ``event_message`` builds the message nameko's event
  dispatcher would send, ``ConfirmedPublisher`` publishes a batch of them with the
  broker's confirms (the outbox relay's one publisher).
- Channels (``channels.py``): the connections and channels both keep open.

The messages are nameko 2.14's own (body, ``nameko.*`` context headers, ``reply_to``,
``correlation_id``, the event exchanges and routing keys), so a Mercato service and a
plain nameko one call each other and consume each other's events;
``tests/test_transport_compat.py`` checks it against nameko's own proxies and handlers.
"""

from mercato.transport.channels import (
    BROKER_ERRORS,
    BrokerChannel,
    BrokerChannels,
    Unconfirmed,
    Unroutable,
)
from mercato.transport.publisher import ConfirmedPublisher, OutgoingMessage, event_message
from mercato.transport.rpc import Rpc, TimedRpcProxy, rpc

__all__ = [
    "BROKER_ERRORS",
    "BrokerChannel",
    "BrokerChannels",
    "ConfirmedPublisher",
    "OutgoingMessage",
    "Rpc",
    "TimedRpcProxy",
    "Unconfirmed",
    "Unroutable",
    "event_message",
    "rpc",
]
