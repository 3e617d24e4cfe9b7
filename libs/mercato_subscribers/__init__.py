"""Subscriber queues declared ahead of time, from configuration.

The outbox relay publishes without the ``mandatory`` flag (as nameko does), so the broker
drops an event no queue is bound for. A subscriber that binds its queue when its program
first starts misses everything published before that. Declaring the subscriber's queue
and its bindings *before* the services start closes the gap: from then on every matching
event waits in the queue, whether the subscriber's program has started yet, is down or
restarting.

The queues come from ``EVENT_SUBSCRIBER_QUEUES``, a JSON list::

    [{"queue": "reports.orders",
      "bindings": [{"exchange": "orders.events", "routing_key": "orders.order.*"},
                   {"exchange": "orders.events", "routing_key": "orders.subscription.*"}],
      "quorum": true}]

``mercato-declare-subscriber-queues`` (``main``) declares them; ``make run`` and the Helm
hook Job run it before the services start. Declaring is idempotent and safe to run
concurrently: it only ever adds (the exchanges, durable queues and bindings), never
deletes a queue, a binding or a message. See docs/events.md, "Late subscribers".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import AMQPError
from kombu import Connection
from kombu.exceptions import OperationalError as KombuOperationalError
from marshmallow import RAISE, Schema, fields, post_load, validate
from marshmallow import ValidationError as SchemaError

from mercato import config

_log = logging.getLogger(__name__)

ENV = "EVENT_SUBSCRIBER_QUEUES"
COMMAND = "mercato-declare-subscriber-queues"
QUORUM = {"x-queue-type": "quorum"}
CONNECT_TIMEOUT_SECONDS = 5.0
BROKER_WAIT_SECONDS = 60.0

# nameko's event exchanges are ``<service name>.events`` (nameko.standalone.events)
EXCHANGE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.events$")
# a topic binding key: dot-separated words, a word being `*` (exactly one word), `#`
# (zero or more words) or a literal. `orders.order*` would match only itself, literally.
ROUTING_KEY_PATTERN = re.compile(r"^(\*|#|[A-Za-z0-9_-]+)(\.(\*|#|[A-Za-z0-9_-]+))*$")
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# amq.* is the broker's own; rpc-* and evt-* are nameko's (RPC and @event_handler queues):
# a subscriber queue there would take messages meant for the services
RESERVED_QUEUE_PREFIXES = ("amq.", "rpc-", "evt-")


class InvalidSubscriberQueues(ValueError):
    """``EVENT_SUBSCRIBER_QUEUES`` is not a valid list of queues.

    ``fields`` maps the path of each bad field (``[0].bindings[1].routing_key``) to the
    rules it broke; ``str()`` lists them all, one per line.
    """

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self.fields = dict(fields)
        lines = [f"  {ENV}{path}: {' '.join(rules)}" for path, rules in self.fields.items()]
        super().__init__(f"{ENV} is invalid:\n" + "\n".join(lines))


class QueueConflict(RuntimeError):
    """A queue or exchange exists with other settings than the configuration asks for
    (a classic queue configured as quorum, say). The broker cannot change a queue's
    settings in place; an operator decides whether its messages may be dropped."""


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str

    @property
    def source(self) -> str:
        return self.exchange.removesuffix(".events")


@dataclass(frozen=True)
class SubscriberQueue:
    queue: str
    bindings: tuple[Binding, ...]
    quorum: bool = False

    @property
    def arguments(self) -> dict[str, Any] | None:
        # a classic queue is declared with no x-queue-type at all: that is equivalent
        # both to a queue declared the same way and to one declared "classic", so a
        # subscriber program's own (plain) declaration never conflicts with ours
        return dict(QUORUM) if self.quorum else None


def _not_reserved(name: str) -> None:
    if name.startswith(RESERVED_QUEUE_PREFIXES):
        raise SchemaError(
            f"must not start with {', '.join(RESERVED_QUEUE_PREFIXES)} "
            "(the broker's and nameko's own queues)."
        )


class _JsonBoolean(fields.Boolean):
    """true or false, nothing else (marshmallow's Boolean also takes "yes", 1, "on")."""

    default_error_messages = {"invalid": "must be true or false."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class BindingSchema(Schema):
    class Meta:
        unknown = RAISE

    exchange = fields.String(
        required=True,
        validate=validate.Regexp(
            EXCHANGE_PATTERN,
            error="must be a Mercato event exchange, `<source>.events` (e.g. orders.events).",
        ),
    )
    routing_key = fields.String(
        required=True,
        validate=[
            validate.Length(max=255),
            validate.Regexp(
                ROUTING_KEY_PATTERN,
                error="must be dot-separated words, each a name, `*` (one word) or `#` "
                "(zero or more words), e.g. orders.order.* or orders.#.",
            ),
        ],
    )

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Binding:
        return Binding(**data)


class SubscriberQueueSchema(Schema):
    class Meta:
        unknown = RAISE

    queue = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(
                QUEUE_PATTERN,
                error="must start with a letter or digit and hold only letters, digits "
                "and `_ . : -` (e.g. reports.orders).",
            ),
            _not_reserved,
        ],
    )
    bindings = fields.List(
        fields.Nested(BindingSchema),
        required=True,
        validate=validate.Length(min=1, error="must hold at least one binding."),
    )
    quorum = _JsonBoolean(load_default=False)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> SubscriberQueue:
        # the same binding twice is the same binding: declare it once
        bindings = tuple(dict.fromkeys(data["bindings"]))
        return SubscriberQueue(data["queue"], bindings, data["quorum"])


def _path(keys: Sequence[Any]) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in keys)


def _flatten(errors: Any, keys: tuple[Any, ...] = ()) -> dict[str, list[str]]:
    if isinstance(errors, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            inner = keys if key == "_schema" else (*keys, key)
            flat.update(_flatten(value, inner))
        return flat
    return {_path(keys): [str(message) for message in errors]}


def parse_queues(raw: str | None) -> list[SubscriberQueue]:
    """The queues ``raw`` (the JSON of ``EVENT_SUBSCRIBER_QUEUES``) configures; none when
    it is unset or blank. ``InvalidSubscriberQueues`` names every bad field."""
    if raw is None or not raw.strip():
        return []
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidSubscriberQueues({"": [f"is not valid JSON: {exc}."]}) from None
    if not isinstance(loaded, list):
        raise InvalidSubscriberQueues(
            {"": ['must be a JSON list of queues, e.g. [{"queue": "reports.orders", …}].']}
        )
    errors: dict[str, list[str]] = {}
    queues: list[SubscriberQueue] = []
    schema = SubscriberQueueSchema()
    seen: dict[str, int] = {}
    for index, item in enumerate(loaded):
        if not isinstance(item, Mapping):
            errors[f"[{index}]"] = ["must be an object with queue, bindings and quorum."]
            continue
        try:
            queue = schema.load(item)
        except SchemaError as exc:
            errors.update(_flatten(exc.messages, (index,)))
            continue
        if queue.queue in seen:
            errors[f"[{index}].queue"] = [
                f"{queue.queue} is already configured at [{seen[queue.queue]}]; "
                "list each queue once, with all its bindings."
            ]
            continue
        seen[queue.queue] = index
        queues.append(queue)
    if errors:
        raise InvalidSubscriberQueues(errors)
    return queues


def _check_routing_keys(queues: Sequence[SubscriberQueue]) -> None:
    """Warn about a binding that matches no event type known today: probably a typo
    (a binding for a type announced later is allowed, so it is not an error)."""
    from mercato.contracts import EVENT_CONTRACTS

    known = {(contract.exchange, contract.type) for contract in EVENT_CONTRACTS.values()}
    for queue in queues:
        for binding in queue.bindings:
            if not any(
                exchange == binding.exchange and topic_matches(binding.routing_key, type_)
                for exchange, type_ in known
            ):
                _log.warning(
                    "queue %s: binding %s %s matches no event type published today "
                    "(see docs/events.md); check it for a typo",
                    queue.queue,
                    binding.exchange,
                    binding.routing_key,
                )


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic exchange routes ``routing_key`` to a binding of ``pattern``."""
    words = routing_key.split(".")

    def match(p: int, w: int, parts: list[str]) -> bool:
        if p == len(parts):
            return w == len(words)
        if parts[p] == "#":
            return any(match(p + 1, rest, parts) for rest in range(w, len(words) + 1))
        if w == len(words):
            return False
        return (parts[p] in ("*", words[w])) and match(p + 1, w + 1, parts)

    return match(0, 0, pattern.split("."))


def declare_queues(
    amqp_uri: str,
    queues: Sequence[SubscriberQueue],
    *,
    broker_wait_seconds: float = BROKER_WAIT_SECONDS,
) -> None:
    """Declare the event exchanges, the durable queues and their bindings.

    Idempotent: declaring what exists with the same settings changes nothing, and two
    runs at once both succeed. The exchanges are declared exactly as nameko declares
    them (``nameko.standalone.events.get_event_exchange``), so neither side's
    declaration conflicts with the other's, whichever runs first. Waits up to
    ``broker_wait_seconds`` for the broker (a Helm hook may start before it answers).
    ``QueueConflict`` when a queue exists with other settings.
    """
    from amqp.exceptions import PreconditionFailed
    from nameko.standalone.events import get_event_exchange  # imports eventlet: only here

    if not queues:
        return
    _check_routing_keys(queues)
    with Connection(amqp_uri, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(
            max_retries=max(1, int(broker_wait_seconds)),
            interval_start=0,
            interval_step=1,
            interval_max=1,
            timeout=broker_wait_seconds,
        )
        channel = connection.channel()
        sources = sorted({b.source for queue in queues for b in queue.bindings})
        for source in sources:
            exchange = get_event_exchange(source, {})
            try:
                exchange(channel).declare()
            except PreconditionFailed as exc:
                raise QueueConflict(
                    f"exchange {source}.events exists with other settings than nameko's "
                    f"(a durable topic exchange): {exc}"
                ) from None
        for queue in queues:
            try:
                channel.queue_declare(
                    queue=queue.queue,
                    durable=True,
                    exclusive=False,
                    auto_delete=False,
                    arguments=queue.arguments,
                )
            except PreconditionFailed as exc:
                kind = "quorum" if queue.quorum else "classic"
                raise QueueConflict(
                    f"queue {queue.queue} exists with other settings than {ENV} asks for "
                    f"(a durable {kind} queue): {exc}. The broker cannot change a queue in "
                    "place: delete it (dropping its messages) or change the configuration."
                ) from None
            for binding in queue.bindings:
                channel.queue_bind(
                    queue=queue.queue, exchange=binding.exchange, routing_key=binding.routing_key
                )
            _log.info(
                "declared %s queue %s bound to %s",
                "quorum" if queue.quorum else "classic",
                queue.queue,
                ", ".join(f"{b.exchange} {b.routing_key}" for b in queue.bindings),
            )


def declare_from_environment(
    amqp_uri: str | None = None, environ: Mapping[str, str] | None = None
) -> list[SubscriberQueue]:
    """Declare the queues ``EVENT_SUBSCRIBER_QUEUES`` configures (none when unset) on
    ``amqp_uri`` (default: ``AMQP_URI``); answers them."""
    environ = os.environ if environ is None else environ
    queues = parse_queues(environ.get(ENV))
    uri = amqp_uri or environ.get(config.AMQP_URI) or config.DEFAULT_AMQP_URI
    declare_queues(uri, queues)
    return queues


def _safe(uri: str) -> str:
    return Connection(uri).as_uri()  # the password masked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description=f"Declare the subscriber queues {ENV} configures, with their bindings "
        "to the event exchanges, before the services start (docs/events.md).",
    )
    parser.add_argument(
        "--queues",
        default=None,
        help=f"the queues, as JSON (default: ${ENV}; nothing to do when unset)",
    )
    parser.add_argument(
        "--amqp-uri",
        default=None,
        help=f"the broker (default: $AMQP_URI, else {config.DEFAULT_AMQP_URI})",
    )
    parser.add_argument(
        "--check", action="store_true", help="only validate the configuration; no broker"
    )
    parser.add_argument(
        "--broker-wait",
        type=float,
        default=BROKER_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for the broker to answer (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # nameko imports eventlet, which warns on import; a one-shot command has no use for it
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    raw = args.queues if args.queues is not None else os.environ.get(ENV)
    try:
        queues = parse_queues(raw)
    except InvalidSubscriberQueues as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 2
    if not queues:
        _log.info("%s: no subscriber queues configured (%s is unset)", COMMAND, ENV)
        return 0
    if args.check:
        _log.info("%s: %d subscriber queue(s) configured, all valid", COMMAND, len(queues))
        return 0
    amqp_uri = args.amqp_uri or os.environ.get(config.AMQP_URI) or config.DEFAULT_AMQP_URI
    try:
        declare_queues(amqp_uri, queues, broker_wait_seconds=args.broker_wait)
    except QueueConflict as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 1
    except (OSError, AMQPError, KombuOperationalError) as exc:
        print(
            f"{COMMAND}: could not declare on {_safe(amqp_uri)}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    _log.info("%s: %d subscriber queue(s) declared on %s", COMMAND, len(queues), _safe(amqp_uri))
    return 0
