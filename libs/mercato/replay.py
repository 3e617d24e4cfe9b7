"""``mercato-replay-dead-letters``: send dead letters back to their handlers' queues.

An event handler that gave up (``mercato.inbox``) left the event in its dead-letter
queue, ``<handler queue>.dead-letters``, with the original body and headers (the
caller's context, the correlation id) and Mercato's own: the handler queue it came
from (``x-mercato-queue``), the attempts, the error. Once the cause is fixed, this
command publishes each one back to its handler queue through the default exchange,
with the broker's confirm, and only then removes it from the dead-letter queue; the
handler runs it as a first attempt again (and retries it as any other). The inbox
makes a replay of an event that was applied meanwhile harmless.

::

    AMQP_URI=amqp://… mercato-replay-dead-letters                    # every handler's
    AMQP_URI=amqp://… mercato-replay-dead-letters --service orders   # one service's
    AMQP_URI=amqp://… mercato-replay-dead-letters --queue evt-…--orders.on_flow_closed.dead-letters
    AMQP_URI=amqp://… mercato-replay-dead-letters --list             # count only

It replays at most the messages a queue holds when it starts, so an event that fails
again (and comes back to the queue) is not replayed in a loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import amqp
import kombu

from mercato import config
from mercato.inbox import (
    ATTEMPT_HEADER,
    DEAD_LETTER_SUFFIX,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
    HANDLER_HEADER,
    QUEUE_HEADER,
    dead_letter_queue_name,
)
from mercato.topology import BY_NAME, EVENT_HANDLERS
from mercato.transport.channels import _ChannelPool

_log = logging.getLogger("mercato.replay")

REPLAYS_HEADER = "x-mercato-replays"  # how many times an operator sent it back
_DROPPED_HEADERS = (ATTEMPT_HEADER, ERROR_HEADER, HANDLER_HEADER, DEAD_LETTERED_AT_HEADER)
_KEPT_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "message_id",
    "timestamp",
    "type",
    "app_id",
)


def dead_letter_queues(services: list[str] | None = None) -> list[str]:
    return [
        dead_letter_queue_name(handler.queue)
        for handler in EVENT_HANDLERS
        if not services or handler.service in services
    ]


def count(amqp_uri: str, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue (a queue that does not exist holds none)."""
    counts = {}
    with kombu.Connection(amqp_uri) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                counts[queue] = channel.queue_declare(queue, passive=True)[1]
            except amqp.exceptions.NotFound:
                counts[queue] = 0
    return counts


def replay(amqp_uri: str, queue: str, limit: int | None = None) -> int:
    """Send the dead letters of ``queue`` back to their handler queue; return how many."""
    waiting = count(amqp_uri, [queue])[queue]
    todo = waiting if limit is None else min(waiting, limit)
    publisher = _ChannelPool(amqp_uri, confirms=True, ssl=None, login_method=None)
    replayed = 0
    try:
        with kombu.Connection(amqp_uri) as connection:
            channel = connection.channel()
            while replayed < todo:
                message = channel.basic_get(queue, no_ack=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                target = headers.get(QUEUE_HEADER) or queue.removesuffix(DEAD_LETTER_SUFFIX)
                for name in _DROPPED_HEADERS:
                    headers.pop(name, None)
                replays = headers.get(REPLAYS_HEADER, 0)
                headers[REPLAYS_HEADER] = (replays if isinstance(replays, int) else 0) + 1
                properties = {
                    key: message.properties[key]
                    for key in _KEPT_PROPERTIES
                    if key in message.properties
                }
                copy = amqp.Message(
                    message.body, application_headers=headers, delivery_mode=2, **properties
                )
                try:
                    publisher.publish(copy, exchange=kombu.Exchange(""), routing_key=target)
                except BaseException:
                    channel.basic_reject(message.delivery_tag, requeue=True)
                    raise
                channel.basic_ack(message.delivery_tag)
                replayed += 1
    finally:
        publisher.close()
    return replayed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Send event handlers' dead letters back to their queues (AMQP_URI)."
    )
    parser.add_argument("--service", action="append", default=[], help="this service's only")
    parser.add_argument("--queue", action="append", default=[], help="this dead-letter queue")
    parser.add_argument("--limit", type=int, default=None, help="at most this many per queue")
    parser.add_argument("--list", action="store_true", help="count them, replay nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [name for name in args.service if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")
    bad = [queue for queue in args.queue if not queue.endswith(DEAD_LETTER_SUFFIX)]
    if bad:
        parser.error(f"not a dead-letter queue (…{DEAD_LETTER_SUFFIX}): {', '.join(bad)}")
    amqp_uri = os.environ.get(config.AMQP_URI)
    if not amqp_uri:
        parser.error("AMQP_URI is not set")
    queues = args.queue or dead_letter_queues(args.service or None)
    counts = count(amqp_uri, queues)
    total = 0
    for queue in queues:
        if args.list:
            print(f"{counts[queue]:>6}  {queue}")
            continue
        if not counts[queue]:
            continue
        replayed = replay(amqp_uri, queue, args.limit)
        total += replayed
        print(f"replayed {replayed} of {counts[queue]} from {queue}")
    if not args.list:
        print(f"replayed {total} dead letter(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
