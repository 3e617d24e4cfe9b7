"""A subscriber that counts: every delivery of its queue appended to a file, then acked.

Run by the fault suite as a process of its own (``python tests/faults/subscriber.py
--amqp-uri … --queue … --out …``), on a queue declared ahead of time with the order
events bound to it. It never deduplicates: one JSON line per delivery (``id``, ``type``,
``subject``, ``order_id``, ``redelivered``), written and flushed before the ack, so the
checker sees both a lost event (a fact nobody announced) and a duplicate (one fact
announced under two event ids). It reconnects after a broker restart for as long as it
runs (kombu's ``ConsumerMixin``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin


class Counter(ConsumerMixin):
    def __init__(self, connection: Connection, queue: str, out) -> None:
        self.connection = connection
        # declared ahead by the suite (quorum, with its bindings): only consumed here
        self.queue = Queue(queue, no_declare=True)
        self.out = out

    def get_consumers(self, consumer_class, channel):
        return [
            consumer_class(
                queues=[self.queue], callbacks=[self.on_message], accept=["json"], prefetch_count=20
            )
        ]

    def on_message(self, body, message) -> None:
        envelope = body if isinstance(body, dict) else json.loads(body)
        data = envelope.get("data") or {}
        line = {
            "id": envelope.get("id"),
            "type": envelope.get("type") or message.delivery_info.get("routing_key"),
            "subject": envelope.get("subject"),
            "order_id": data.get("order_id"),
            "redelivered": bool(message.delivery_info.get("redelivered")),
        }
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        os.fsync(self.out.fileno())
        message.ack()

    def on_connection_error(self, exc, interval) -> None:
        print(f"broker unreachable ({exc!r}); again in {interval}s", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-uri", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "a", encoding="utf-8") as out, Connection(args.amqp_uri) as connection:
        counter = Counter(connection, args.queue, out)

        def stop(*_args) -> None:
            counter.should_stop = True

        signal.signal(signal.SIGTERM, stop)
        print("consuming", file=sys.stderr, flush=True)
        counter.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
