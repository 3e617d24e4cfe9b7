"""Subscriber queues declared ahead of time, and the subscribers' guide that describes
them (docs/events.md).

The configuration tests need no broker. The declaration tests run against the real
RabbitMQ, each on a throw-away vhost (nameko's ``rabbit_config``), and look at what the
broker holds afterwards through its management API. The guide's event reference is
generated from the contracts registry and checked against it, as tests/contract does for
docs/asyncapi.yaml; running this file rewrites it::

    .venv/bin/python libs/mercato_subscribers/tests/test_subscribers.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
import yaml
from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.constants import PERSISTENT
from nameko.standalone.events import get_event_exchange

import mercato_subscribers as subscribers
from mercato.config import ROOT
from mercato.contracts import EVENT_CONTRACTS, asyncapi
from mercato_subscribers import (
    ENV,
    Binding,
    InvalidSubscriberQueues,
    QueueConflict,
    SubscriberQueue,
    declare_queues,
    parse_queues,
)

EVENTS_DOC = ROOT / "docs" / "events.md"
ORDER_KEYS = ("orders.order.*", "orders.subscription.*")


def _config(queue="reports.orders", keys=ORDER_KEYS, **extra) -> dict:
    return {
        "queue": queue,
        "bindings": [{"exchange": "orders.events", "routing_key": key} for key in keys],
        **extra,
    }


def _binding(**overrides) -> dict:
    return {"exchange": "orders.events", "routing_key": "orders.order.*", **overrides}


# -- the configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "path", "rule"),
    [
        ([{"bindings": [_binding()]}], "[0].queue", "Missing data for required field."),
        ([{"queue": "q"}], "[0].bindings", "Missing data for required field."),
        ([{"queue": "q", "bindings": []}], "[0].bindings", "must hold at least one binding."),
        (
            [{"queue": "q", "bindings": [_binding(exchange="orders")]}],
            "[0].bindings[0].exchange",
            "must be a Mercato event exchange, `<source>.events`",
        ),
        (
            [{"queue": "q", "bindings": [_binding(), _binding(routing_key="orders.order*")]}],
            "[0].bindings[1].routing_key",
            "`*` (one word) or `#` (zero or more words)",
        ),
        (
            [{"queue": "q", "bindings": [_binding(), {"exchange": "orders.events"}]}],
            "[0].bindings[1].routing_key",
            "Missing data for required field.",
        ),
        ([_config(quorum="yes")], "[0].quorum", "must be true or false."),
        ([_config(quorum=1)], "[0].quorum", "must be true or false."),
        ([_config(queue="rpc-orders")], "[0].queue", "must not start with amq., rpc-, evt-"),
        ([_config(queue="amq.reports")], "[0].queue", "must not start with amq., rpc-, evt-"),
        ([_config(queue="reports orders")], "[0].queue", "must start with a letter or digit"),
        ([_config(durable=False)], "[0].durable", "Unknown field."),
        ([_config(), _config()], "[1].queue", "reports.orders is already configured at [0]"),
        (["reports.orders"], "[0]", "must be an object with queue, bindings and quorum."),
        (_config(), "", "must be a JSON list of queues"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_configuration_names_the_field_and_the_rule(configured, path, rule):
    with pytest.raises(InvalidSubscriberQueues) as caught:
        parse_queues(json.dumps(configured))

    assert rule in " ".join(caught.value.fields[path]), caught.value.fields
    assert f"{ENV}{path}: " in str(caught.value)


def test_every_bad_field_is_named_at_once():
    configured = [_config(quorum="no"), {"queue": "q2", "bindings": [_binding(exchange="x")]}]

    with pytest.raises(InvalidSubscriberQueues) as caught:
        parse_queues(json.dumps(configured))

    assert set(caught.value.fields) == {"[0].quorum", "[1].bindings[0].exchange"}


def test_configuration_that_is_not_json_says_where_it_breaks():
    with pytest.raises(InvalidSubscriberQueues, match=r"is not valid JSON: .*line 1 column 3"):
        parse_queues('[{queue: "reports.orders"}]')


@pytest.mark.parametrize("raw", [None, "", "  \n", "[]"])
def test_no_configuration_is_no_queues(raw):
    assert parse_queues(raw) == []


def test_a_valid_configuration_loads_classic_by_default_and_each_binding_once():
    queues = parse_queues(
        json.dumps([_config(keys=["orders.order.*", "orders.order.*"]), _config("b", quorum=True)])
    )

    assert queues == [
        SubscriberQueue("reports.orders", (Binding("orders.events", "orders.order.*"),), False),
        SubscriberQueue("b", tuple(Binding("orders.events", key) for key in ORDER_KEYS), True),
    ]
    assert queues[0].arguments is None
    assert queues[1].arguments == {"x-queue-type": "quorum"}


@pytest.mark.parametrize(
    ("pattern", "routing_key", "routed"),
    [
        ("orders.order.*", "orders.order.paid", True),
        ("orders.order.*", "orders.subscription.created", False),
        ("orders.*", "orders.order.paid", False),
        ("orders.#", "orders.order.paid", True),
        ("#", "billing.payment.failed", True),
        ("*.order.paid", "orders.order.paid", True),
        ("orders.#.paid", "orders.paid", True),
        ("orders.order.paid", "orders.order.paid", True),
    ],
)
def test_topic_matching_is_rabbitmqs(pattern, routing_key, routed):
    assert subscribers.topic_matches(pattern, routing_key) is routed


def test_a_binding_that_matches_no_published_event_is_warned_about(caplog):
    queues = parse_queues(json.dumps([_config(keys=["orders.orders.*", "orders.order.*"])]))

    subscribers._check_routing_keys(queues)

    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1
    assert "orders.orders.*" in warned[0]
    assert "reports.orders" in warned[0]


def test_check_validates_without_a_broker(capsys):
    unreachable = "amqp://guest:guest@127.0.0.1:1/"
    valid = json.dumps([_config()])

    assert subscribers.main(["--check", "--queues", valid, "--amqp-uri", unreachable]) == 0
    assert subscribers.main(["--check", "--queues", "[{}]", "--amqp-uri", unreachable]) == 2
    assert f"{ENV}[0].queue: Missing data" in capsys.readouterr().err


def test_main_without_configuration_succeeds_without_touching_the_broker(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@127.0.0.1:1/")

    assert subscribers.main([]) == 0


def test_main_says_which_field_is_wrong_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv(ENV, json.dumps([_config(quorum="sometimes")]))

    assert subscribers.main([]) == 2
    assert f"{ENV}[0].quorum: must be true or false." in capsys.readouterr().err


# -- declaring on the broker -------------------------------------------------------------


def _queue(rabbit_manager, rabbit_config, name: str) -> dict:
    return rabbit_manager.get_queue(rabbit_config["vhost"], name)


def _bindings(rabbit_manager, rabbit_config, name: str) -> set[tuple[str, str]]:
    return {
        (binding["source"], binding["routing_key"])
        for binding in rabbit_manager.get_queue_bindings(rabbit_config["vhost"], name)
        if binding["source"]  # not the default exchange's binding every queue has
    }


def _publish(amqp_uri: str, event_type: str, payload: dict) -> None:
    """Publish as the outbox relay does: nameko's exchange, declared with the message (a
    declaration of ours that differed would make this fail)."""
    source = event_type.split(".", 1)[0]
    exchange = get_event_exchange(source, {})
    Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=PERSISTENT).publish(
        payload, exchange=exchange, routing_key=event_type, declare=[exchange], retry=False
    )


def _depth(amqp_uri: str, name: str) -> int:
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue=name, passive=True).message_count


@pytest.mark.interface
def test_declares_a_durable_classic_queue_bound_as_configured_on_nameko_exchanges(
    rabbit_config, rabbit_manager
):
    amqp_uri = rabbit_config["AMQP_URI"]

    declare_queues(amqp_uri, parse_queues(json.dumps([_config()])))

    queue = _queue(rabbit_manager, rabbit_config, "reports.orders")
    assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (True, False, False)
    assert queue.get("type", "classic") == "classic"
    assert "x-queue-type" not in queue["arguments"]
    assert _bindings(rabbit_manager, rabbit_config, "reports.orders") == {
        ("orders.events", "orders.order.*"),
        ("orders.events", "orders.subscription.*"),
    }
    (exchange,) = [
        e
        for e in rabbit_manager.get_exchanges(rabbit_config["vhost"])
        if e["name"] == "orders.events"
    ]
    assert (exchange["type"], exchange["durable"], exchange["auto_delete"]) == (
        "topic",
        True,
        False,
    )

    # a nameko service publishing afterwards declares the same exchange without conflict,
    # and what it publishes is routed by the bindings
    _publish(amqp_uri, "orders.order.paid", {"id": "evt-1"})
    _publish(amqp_uri, "orders.subscription.created", {"id": "evt-2"})
    _publish(amqp_uri, "orders.refund.completed", {"id": "evt-3"})  # matches no binding
    assert _depth(amqp_uri, "reports.orders") == 2


@pytest.mark.interface
def test_a_queue_declared_after_nameko_declared_the_exchange_does_not_conflict(
    rabbit_config, rabbit_manager
):
    _publish(rabbit_config["AMQP_URI"], "orders.order.paid", {"id": "before"})

    declare_queues(rabbit_config["AMQP_URI"], parse_queues(json.dumps([_config()])))

    assert _bindings(rabbit_manager, rabbit_config, "reports.orders")


@pytest.mark.interface
def test_events_published_after_the_declaration_wait_for_a_subscriber_that_never_ran(
    rabbit_config,
):
    amqp_uri = rabbit_config["AMQP_URI"]
    _publish(amqp_uri, "orders.order.created", {"id": "lost"})  # no queue yet: dropped

    declare_queues(amqp_uri, parse_queues(json.dumps([_config()])))
    _publish(amqp_uri, "orders.order.created", {"id": "kept-1"})
    _publish(amqp_uri, "orders.order.paid", {"id": "kept-2"})

    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        bodies = []
        while (message := channel.basic_get("reports.orders", no_ack=True)) is not None:
            bodies.append(json.loads(message.body)["id"])
    assert bodies == ["kept-1", "kept-2"]


@pytest.mark.interface
def test_declaring_again_changes_nothing_and_keeps_the_waiting_messages(
    rabbit_config, rabbit_manager
):
    amqp_uri = rabbit_config["AMQP_URI"]
    queues = parse_queues(json.dumps([_config(), _config("audit.all", keys=["#"], quorum=True)]))
    declare_queues(amqp_uri, queues)
    _publish(amqp_uri, "orders.order.paid", {"id": "waiting"})

    declare_queues(amqp_uri, queues)
    declare_queues(amqp_uri, queues)

    assert _depth(amqp_uri, "reports.orders") == 1
    assert _depth(amqp_uri, "audit.all") == 1
    assert _bindings(rabbit_manager, rabbit_config, "audit.all") == {("orders.events", "#")}


@pytest.mark.interface
def test_concurrent_runs_of_the_command_all_succeed(rabbit_config, rabbit_manager):
    configured = json.dumps([_config(), _config("audit.all", keys=["#"], quorum=True)])
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mercato_subscribers", "--queues", configured],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "AMQP_URI": rabbit_config["AMQP_URI"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(run.wait(timeout=120), run.stdout.read()) for run in runs]

    assert [code for code, _output in results] == [0, 0, 0], results
    assert "2 subscriber queue(s) declared" in results[0][1]
    assert _queue(rabbit_manager, rabbit_config, "audit.all")["type"] == "quorum"


@pytest.mark.interface
def test_quorum_flag_declares_a_quorum_queue(rabbit_config, rabbit_manager):
    declare_queues(rabbit_config["AMQP_URI"], parse_queues(json.dumps([_config(quorum=True)])))

    queue = _queue(rabbit_manager, rabbit_config, "reports.orders")
    assert queue["type"] == "quorum"
    assert queue["arguments"]["x-queue-type"] == "quorum"
    assert queue["durable"] is True


@pytest.mark.interface
def test_a_queue_that_exists_as_another_type_is_a_conflict_naming_the_queue(
    rabbit_config, monkeypatch, capsys
):
    amqp_uri = rabbit_config["AMQP_URI"]
    declare_queues(amqp_uri, parse_queues(json.dumps([_config()])))

    with pytest.raises(QueueConflict, match=r"queue reports\.orders exists .*durable quorum"):
        declare_queues(amqp_uri, parse_queues(json.dumps([_config(quorum=True)])))

    monkeypatch.setenv(ENV, json.dumps([_config(quorum=True)]))
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    assert subscribers.main([]) == 1
    assert "queue reports.orders exists with other settings" in capsys.readouterr().err


@pytest.mark.interface
def test_main_declares_what_the_environment_configures(rabbit_config, rabbit_manager, monkeypatch):
    monkeypatch.setenv(ENV, json.dumps([_config(f"reports.{uuid.uuid4().hex[:6]}")]))
    monkeypatch.setenv("AMQP_URI", rabbit_config["AMQP_URI"])

    assert subscribers.main([]) == 0

    names = {q["name"] for q in rabbit_manager.get_queues(rabbit_config["vhost"])}
    assert any(name.startswith("reports.") for name in names)


# -- docs/events.md is in step with the contracts ------------------------------------------


def _type_name(schema: dict) -> str:
    types = schema.get("type", "any")
    types = types if isinstance(types, list) else [types]
    nullable = "null" in types
    (base,) = [t for t in types if t != "null"] or ["null"]
    if base == "array":
        item = schema.get("items", {})
        base = "list of objects" if item.get("type") == "object" else f"list of {item['type']}"
    if "enum" in schema:
        base += ": " + ", ".join(f"`{value}`" for value in schema["enum"])
    elif schema.get("format") == "date-time":
        base += " (date-time, UTC)"
    elif "pattern" in schema:
        base += f" matching `{schema['pattern']}`"
    elif "minimum" in schema:
        base += f" ≥ {schema['minimum']}"
    return f"{base} or null" if nullable else base


def field_rows(schema: dict, prefix: str = "") -> list[str]:
    """The Markdown rows (field, type, required) of an object schema, nested fields as
    ``parent.child`` and list items as ``parent[].child``."""
    rows = []
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        rows.append(f"| `{path}` | {_type_name(field)} | {'yes' if name in required else 'no'} |")
        if field.get("properties"):
            rows.extend(field_rows(field, f"{path}."))
        items = field.get("items", {})
        if items.get("properties"):
            rows.extend(field_rows(items, f"{path}[]."))
    return rows


def _heading(contract) -> str:
    return f"### `{contract.type}` v{contract.version}"


def _anchor(contract) -> str:
    # GitHub's: lower case, punctuation other than - and _ dropped, spaces to -
    return re.sub(r"[^a-z0-9 _-]", "", f"{contract.type} v{contract.version}").replace(" ", "-")


def render_section(contract) -> str:
    """One event type at one version: what it means, where it goes, its ``data``."""
    rows = field_rows(asyncapi.payload_schema(contract)["properties"]["data"])
    return "\n".join(
        [
            _heading(contract),
            "",
            contract.summary,
            "",
            f"Subject: {contract.subject}. Published with routing key `{contract.type}` on "
            f"`{contract.exchange}`; schema: `components.messages."
            f"{asyncapi.message_name(contract)}` in docs/asyncapi.yaml.",
            "",
            "| field of `data` | type | required |",
            "|---|---|---|",
            *rows,
        ]
    )


def render_event_reference() -> str:
    """The generated part of docs/events.md: an index, then a section per contract."""
    index = [
        "| event type | version | exchange | routing key | subject |",
        "|---|---|---|---|---|",
        *(
            f"| [`{c.type}`](#{_anchor(c)}) | {c.version} | `{c.exchange}` | `{c.type}` "
            f"| {c.subject} |"
            for c in CONTRACTS
        ),
    ]
    return "\n\n".join(["\n".join(index), *(render_section(c) for c in CONTRACTS)])


REFERENCE_BEGIN = (
    "<!-- BEGIN event reference: generated from the contracts by "
    "`python libs/mercato_subscribers/tests/test_subscribers.py`; do not edit -->"
)
REFERENCE_END = "<!-- END event reference -->"
REGENERATE = ".venv/bin/python libs/mercato_subscribers/tests/test_subscribers.py"


def _reference_in(text: str) -> str:
    assert REFERENCE_BEGIN in text and REFERENCE_END in text, (
        f"docs/events.md lost its markers {REFERENCE_BEGIN!r} … {REFERENCE_END!r}"
    )
    return text[text.index(REFERENCE_BEGIN) + len(REFERENCE_BEGIN) : text.index(REFERENCE_END)]


def write_event_reference() -> None:
    text = EVENTS_DOC.read_text()
    current = _reference_in(text)
    EVENTS_DOC.write_text(
        text.replace(
            REFERENCE_BEGIN + current + REFERENCE_END,
            f"{REFERENCE_BEGIN}\n{render_event_reference()}\n{REFERENCE_END}",
        )
    )


CONTRACTS = sorted(EVENT_CONTRACTS.values(), key=lambda c: (c.type, c.version))


def _id(contract) -> str:
    return f"{contract.type}.v{contract.version}"


@pytest.fixture(scope="module")
def events_doc() -> str:
    return EVENTS_DOC.read_text()


def test_the_guides_event_reference_is_made_from_the_contracts(events_doc):
    assert _reference_in(events_doc).strip() == render_event_reference(), (
        f"docs/events.md's event reference is stale: run `{REGENERATE}`"
    )


@pytest.mark.parametrize("contract", CONTRACTS, ids=_id)
def test_the_guide_describes_each_event_as_its_contract_does(events_doc, contract):
    reference = _reference_in(events_doc)

    assert render_section(contract) in reference, (
        f"docs/events.md does not describe {_id(contract)} as its contract does: run `{REGENERATE}`"
    )
    assert f"#{_anchor(contract)})" in reference  # indexed


def test_the_guide_states_what_the_code_does(events_doc):
    from mercato import outbox

    text = " ".join(events_doc.split())
    assert f"for **{outbox.RETENTION.days} days**" in text  # how long published events are kept
    assert "there is **no replay**" in text
    assert ENV in text
    assert subscribers.COMMAND in text
    assert "examples/order-events-subscriber" in text
    for field in asyncapi.EnvelopeSchema().fields:
        assert f"| `{field}` |" in events_doc, f"the envelope table lacks {field}"


@pytest.mark.parametrize("contract", CONTRACTS, ids=_id)
def test_asyncapi_gives_each_channel_its_routing_key_and_delivery_rules(contract):
    document = yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text())
    channel = document["channels"][asyncapi.channel_name(contract)]

    assert channel["subscribe"]["bindings"]["amqp"]["cc"] == [contract.type]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == contract.exchange
    assert asyncapi.VERSIONING in channel["description"]
    assert asyncapi.DELIVERY_GUARANTEE in channel["description"]
    assert "not even between the events of one subject" in channel["subscribe"]["description"]


if __name__ == "__main__":
    write_event_reference()
    print(f"rewrote the event reference of {EVENTS_DOC}")
