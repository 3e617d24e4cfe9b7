"""The chart's part in who may call whom: one caller-context key for every process, kept
in a Secret, and the subscribers' own broker users made by a hook before the services
start."""

import base64

import helm_python as helm
import pytest
from kubernetes_validate import utils as kubernetes_validate

from mercato.topology import PROCESSES
from tests.deploy import chart

KEY = chart.REQUIRED_VALUES["contextKey"]["value"]
USERS = [
    {"name": "reports", "password": {"value": "reports-password-of-some-length"}},
    {
        "name": "audit",
        "password": {"existingSecret": "audit-broker-user", "existingSecretKey": "password"},
    },
]


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def env_of(container):
    return {entry["name"]: entry for entry in container.get("env", [])}


def secret_data(objects, name):
    data = chart.of_kind(objects, "Secret")[name]["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def subscriber_user_jobs(objects):
    return {
        name: job
        for name, job in chart.of_kind(objects, "Job").items()
        if containers_of(job)[0]["args"][0] == "mercato-create-subscriber"
    }


def test_every_process_reads_the_one_context_key_from_the_chart_s_secret():
    objects = chart.manifests(chart.REQUIRED_VALUES)
    deployments = chart.of_kind(objects, "Deployment")

    refs = set()
    for process in PROCESSES:
        deployment = deployments[f"{chart.RELEASE}-{process.name.replace('_', '-')}"]
        ref = env_of(containers_of(deployment)[0])["MERCATO_CONTEXT_KEY"]["valueFrom"]
        refs.add((ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]))
    assert refs == {(chart.RELEASE, "MERCATO_CONTEXT_KEY")}
    assert secret_data(objects, chart.RELEASE)["MERCATO_CONTEXT_KEY"] == KEY


def test_an_existing_secret_holds_the_context_key_instead():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {"contextKey": {"value": "", "existingSecret": "mercato-context-key"}},
    )
    objects = chart.manifests(values)

    (deployment,) = [d for d in chart.of_kind(objects, "Deployment").values()][:1]
    ref = env_of(containers_of(deployment)[0])["MERCATO_CONTEXT_KEY"]["valueFrom"]
    assert ref["secretKeyRef"] == {"name": "mercato-context-key", "key": "MERCATO_CONTEXT_KEY"}
    assert "MERCATO_CONTEXT_KEY" not in secret_data(objects, chart.RELEASE)


def test_production_takes_the_context_key_from_an_existing_secret():
    values = chart.merged(chart.REQUIRED_VALUES, chart.production_values())
    assert values["contextKey"]["existingSecret"] == "mercato-context-key"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contextKey": {"value": ""}}, "contextKey: set value (32 random characters or more"),
        ({"contextKey": {"value": "short"}}, "contextKey.value: each comma-separated key"),
        (
            {"contextKey": {"value": f"{KEY},too-short"}},
            "contextKey.value: each comma-separated key",
        ),
        (
            {"eventSubscribers": {"users": [{"name": "reports", "password": {"value": ""}}]}},
            "eventSubscribers.users: reports needs a password",
        ),
        (
            {"eventSubscribers": {"users": [{"name": "reports", "password": {"value": "x" * 8}}]}},
            "eventSubscribers.users: reports's password needs at least 16 characters",
        ),
        (
            {"eventSubscribers": {"users": [USERS[0], USERS[0]]}},
            "eventSubscribers.users: reports is listed twice",
        ),
    ],
)
def test_a_missing_or_weak_key_or_password_fails_rendering_with_a_clear_message(change, message):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(chart.merged(chart.REQUIRED_VALUES, change))
    assert message in str(failure.value)


@pytest.mark.parametrize("name", ["rpc-orders", "Reports", "a", "reports.orders", "guest"])
def test_the_schema_refuses_a_subscriber_user_that_is_not_named_for_a_subscriber(name):
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {"eventSubscribers": {"users": [{"name": name, "password": USERS[0]["password"]}]}},
    )
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(values)
    assert "/eventSubscribers/users/0/name" in str(failure.value)


def test_each_subscriber_user_is_made_by_a_hook_after_the_migrations_before_the_services():
    objects = chart.manifests(
        chart.merged(
            chart.REQUIRED_VALUES,
            {
                "eventSubscribers": {
                    "users": USERS,
                    "managementUri": {"value": "http://admin:secret@rabbitmq.data:15672"},
                }
            },
        )
    )
    jobs = subscriber_user_jobs(objects)
    migrations = [j for j in chart.of_kind(objects, "Job").values() if j not in jobs.values()]
    hook_secret = next(s for s in chart.of_kind(objects, "Secret").values() if chart.hook_of(s))
    hook_data = secret_data(objects, hook_secret["metadata"]["name"])

    assert sorted(containers_of(j)[0]["args"] for j in jobs.values()) == [
        ["mercato-create-subscriber", "--name", "audit"],
        ["mercato-create-subscriber", "--name", "reports"],
    ]
    last_migration = max(
        int(j["metadata"]["annotations"]["helm.sh/hook-weight"]) for j in migrations
    )
    for job in jobs.values():
        assert chart.hook_of(job) == {"pre-install", "pre-upgrade"}
        assert int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) > last_migration
        env = env_of(containers_of(job)[0])
        for name in ("AMQP_URI", "MERCATO_SUBSCRIBER_PASSWORD", "RABBITMQ_MANAGEMENT_URI"):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            if ref["name"] == hook_secret["metadata"]["name"]:
                assert ref["key"] in hook_data, (name, ref)
    reports = env_of(containers_of(jobs["mercato-subscriber-user-reports"])[0])
    audit = env_of(containers_of(jobs["mercato-subscriber-user-audit"])[0])
    password_key = reports["MERCATO_SUBSCRIBER_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
    assert hook_data[password_key] == USERS[0]["password"]["value"]
    assert audit["MERCATO_SUBSCRIBER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "audit-broker-user",
        "key": "password",
    }
    assert hook_data["RABBITMQ_MANAGEMENT_URI"] == "http://admin:secret@rabbitmq.data:15672"
    # the processes' own Secret holds no subscriber's password
    assert USERS[0]["password"]["value"] not in secret_data(objects, chart.RELEASE).values()
    for job in jobs.values():
        kubernetes_validate.validate(job, "1.30.0", strict=True)


def test_no_subscriber_user_no_hook():
    assert subscriber_user_jobs(chart.manifests(chart.REQUIRED_VALUES)) == {}


def test_the_subscriber_user_hook_alone_reaches_the_management_api():
    values = chart.merged(chart.REQUIRED_VALUES, {"eventSubscribers": {"users": USERS[:1]}})
    objects = chart.manifests(values)
    policies = chart.of_kind(objects, "NetworkPolicy")

    policy = policies["mercato-subscriber-users"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "subscriber-users"
    )
    (job,) = subscriber_user_jobs(objects).values()
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    assert [p["port"] for p in policy["spec"]["egress"][0]["ports"]] == [15672, 15671]
    other_ports = {
        port["port"]
        for name, other in policies.items()
        if name != "mercato-subscriber-users"
        for rule in other["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }
    assert 15672 not in other_ports
