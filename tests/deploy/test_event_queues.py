"""The chart's hook Job that declares every service's event handler queues before any
service starts (``mercato-declare-event-queues``), and the dead-letter alert."""

from __future__ import annotations

from tests.deploy import chart


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def weight(obj) -> int:
    return int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])


def test_event_queues_are_declared_after_the_migrations_and_before_the_services(objects):
    jobs = chart.of_kind(objects, "Job")
    (declare,) = [
        job
        for job in jobs.values()
        if containers_of(job)[0]["args"] == ["mercato-declare-event-queues"]
    ]
    migrations = [
        job for job in jobs.values() if containers_of(job)[0]["args"][0] == "mercato-migrate"
    ]
    assert migrations
    assert chart.hook_of(declare) == {"pre-install", "pre-upgrade"}
    assert weight(declare) > max(weight(job) for job in migrations)
    subscribers = [
        job
        for job in jobs.values()
        if containers_of(job)[0]["args"] == ["mercato-declare-subscriber-queues"]
    ]
    assert all(weight(declare) < weight(job) for job in subscribers)
    env = {entry["name"]: entry for entry in containers_of(declare)[0]["env"]}
    ref = env["AMQP_URI"]["valueFrom"]["secretKeyRef"]
    secrets = chart.of_kind(objects, "Secret")
    if ref["name"] in secrets:  # else an existing Secret the operator named
        assert chart.hook_of(secrets[ref["name"]]) == {"pre-install", "pre-upgrade"}
        assert "AMQP_URI" in secrets[ref["name"]]["data"]


def test_the_dead_letter_alert_names_the_queue(production_objects):
    (rule,) = [
        rule
        for rule in chart.alert_rules(production_objects)
        if rule["alert"] == "MercatoDeadLetters"
    ]
    assert "max by (namespace, service, queue) (mercato_dead_letters" in rule["expr"]
    assert "$labels.queue" in rule["annotations"]["summary"]
