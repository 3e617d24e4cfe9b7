"""The cloud image products are deployed into (docs/images.md): its settings reach
iam-agency and provisioning only, Mercato's own keys iam-agency only, only those two
pods reach the cloud's API, and its alerts and dashboard row read metrics that exist."""

import base64
import re

import helm_python as helm
import pytest

from mercato.topology import PROCESSES
from tests.deploy import chart
from tests.deploy.test_chart import (
    DEPLOYMENT_NAME,
    INTERNAL_ADDRESSES,
    PUBLIC_ADDRESSES,
    assert_valid,
    containers_of,
    pod_labels,
    reaches,
    secret_keys,
)

CLOUD = {
    "endpoint": "https://cloud-api.example.com",
    "region": "cn-north-4",
    "mercatoAccount": {
        "domainId": "0123456789abcdef0123456789abcdef",
        "domainName": "mercato-marketplace",
        "accessKey": {"value": "MERCATOAKEXAMPLE"},
        "secretKey": {"value": "mercato-secret-key-example"},
    },
}
SETTINGS = {
    "iam_agency": {
        "CLOUD_ENDPOINT": "https://cloud-api.example.com",
        "CLOUD_REGION": "cn-north-4",
        "MERCATO_CLOUD_DOMAIN_ID": "0123456789abcdef0123456789abcdef",
        "MERCATO_CLOUD_DOMAIN_NAME": "mercato-marketplace",
    },
    "provisioning": {
        "CLOUD_ENDPOINT": "https://cloud-api.example.com",
        "CLOUD_REGION": "cn-north-4",
    },
}
KEYS = {"MERCATO_CLOUD_ACCESS_KEY", "MERCATO_CLOUD_SECRET_KEY"}
CLOUD_VARIABLES = {*SETTINGS["iam_agency"], *KEYS}
BY_NAME = {p.name: p for p in PROCESSES}


def with_cloud(cloud=CLOUD, **more):
    return chart.merged(chart.REQUIRED_VALUES, {"cloud": cloud}, more)


@pytest.fixture(scope="module")
def cloud_objects():
    return chart.manifests(with_cloud())


def env_of(objects, process_name):
    (container,) = containers_of(
        chart.of_kind(objects, "Deployment")[DEPLOYMENT_NAME[process_name]]
    )
    return {entry["name"]: entry for entry in container.get("env", [])}


def secret_ref(entry):
    return entry["valueFrom"]["secretKeyRef"]


# --- settings and keys ----------------------------------------------------------------


def test_the_settings_go_to_iam_agency_and_provisioning_and_the_keys_to_iam_agency_only(
    cloud_objects,
):
    assert_valid(cloud_objects)
    for process in PROCESSES:
        env = env_of(cloud_objects, process.name)
        expected = SETTINGS.get(process.name, {})
        given = {name: env[name].get("value") for name in env if name in CLOUD_VARIABLES - KEYS}
        assert given == expected, process.name
        keys = {name for name in env if name in KEYS}
        assert keys == (KEYS if process.name == "iam_agency" else set()), process.name
    # provisioning gets temporary credentials from iam-agency, never Mercato's keys
    provisioning = env_of(cloud_objects, "provisioning")
    assert not [name for name in provisioning if name.startswith("MERCATO_CLOUD_")]
    # the ConfigMap every process reads holds none of them
    data = chart.of_kind(cloud_objects, "ConfigMap")[chart.RELEASE]["data"]
    assert not set(data) & CLOUD_VARIABLES


def test_the_keys_are_kept_in_the_chart_s_secret_and_never_in_the_hooks(cloud_objects):
    env = env_of(cloud_objects, "iam_agency")
    secrets = chart.of_kind(cloud_objects, "Secret")
    for name, value in (
        ("MERCATO_CLOUD_ACCESS_KEY", "MERCATOAKEXAMPLE"),
        ("MERCATO_CLOUD_SECRET_KEY", "mercato-secret-key-example"),
    ):
        ref = secret_ref(env[name])
        assert ref == {"name": chart.RELEASE, "key": name}
        assert base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode() == value
    hooks = [s for s in secrets.values() if chart.hook_of(s)]
    assert hooks and all(not set(s["data"]) & KEYS for s in hooks)
    for job in chart.of_kind(cloud_objects, "Job").values():
        for container in containers_of(job):
            assert not {e["name"] for e in container.get("env", [])} & CLOUD_VARIABLES


@pytest.mark.parametrize("process_name", ["iam_agency", "provisioning"])
def test_every_cloud_variable_the_chart_sets_is_one_the_process_reads(cloud_objects, process_name):
    process = BY_NAME[process_name]
    read = set(re.findall(r"\$\{([A-Z0-9_]+):", process.config_path.read_text()))
    set_here = {name for name in env_of(cloud_objects, process_name) if name in CLOUD_VARIABLES}
    assert set_here and set_here <= read, set_here - read


def test_empty_settings_leave_each_process_its_own_default(default_objects):
    """Nothing is set when nothing is given: an empty CLOUD_ENDPOINT would not be the
    process's default."""
    for process in PROCESSES:
        assert not set(env_of(default_objects, process.name)) & CLOUD_VARIABLES, process.name
    assert all(not keys & KEYS for keys in secret_keys(default_objects).values())
    data = chart.of_kind(default_objects, "ConfigMap")[chart.RELEASE]["data"]
    assert not set(data) & CLOUD_VARIABLES


def test_an_existing_secret_replaces_the_inline_keys():
    values = with_cloud(
        chart.merged(
            CLOUD,
            {
                "mercatoAccount": {
                    "accessKey": {"value": "", "existingSecret": "cloud-account"},
                    "secretKey": {
                        "value": "",
                        "existingSecret": "cloud-account",
                        "existingSecretKey": "sk",
                    },
                }
            },
        )
    )
    objects = chart.manifests(values)
    env = env_of(objects, "iam_agency")
    assert secret_ref(env["MERCATO_CLOUD_ACCESS_KEY"]) == {
        "name": "cloud-account",
        "key": "MERCATO_CLOUD_ACCESS_KEY",
    }
    assert secret_ref(env["MERCATO_CLOUD_SECRET_KEY"]) == {"name": "cloud-account", "key": "sk"}
    assert all(not keys & KEYS for keys in secret_keys(objects).values())


def test_production_reads_the_keys_from_a_secret_made_beforehand(production_objects):
    env = env_of(production_objects, "iam_agency")
    production = chart.production_values()["cloud"]
    for name, item in (
        ("MERCATO_CLOUD_ACCESS_KEY", "accessKey"),
        ("MERCATO_CLOUD_SECRET_KEY", "secretKey"),
    ):
        assert secret_ref(env[name]) == {
            "name": production["mercatoAccount"][item]["existingSecret"],
            "key": name,
        }
    assert env["CLOUD_ENDPOINT"]["value"] == production["endpoint"]
    assert not set(env_of(production_objects, "provisioning")) & KEYS


def test_a_process_s_own_env_wins_over_the_cloud_settings_without_a_duplicate():
    values = with_cloud(processes={"provisioning": {"env": {"CLOUD_ENDPOINT": "https://other"}}})
    (container,) = containers_of(
        chart.of_kind(chart.manifests(values), "Deployment")[DEPLOYMENT_NAME["provisioning"]]
    )
    endpoints = [e for e in container["env"] if e["name"] == "CLOUD_ENDPOINT"]
    assert endpoints == [{"name": "CLOUD_ENDPOINT", "value": "https://other"}]


@pytest.mark.parametrize(
    ("account", "message"),
    [
        (
            {"accessKey": {"value": "AK"}, "secretKey": {"value": ""}},
            "cloud.mercatoAccount: set both accessKey and secretKey, or neither",
        ),
        (
            {"secretKey": {"existingSecret": "cloud-account"}},
            "cloud.mercatoAccount: set both accessKey and secretKey, or neither",
        ),
        (
            {"accessKey": {"value": "AK"}, "secretKey": {"value": "SK"}},
            "cloud.mercatoAccount: with its keys, set domainId and domainName too",
        ),
    ],
)
def test_half_an_account_fails_rendering_with_a_clear_message(account, message):
    with pytest.raises(helm.HelmRenderError) as failure:
        chart.render(with_cloud({"mercatoAccount": account}))
    assert message in str(failure.value)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"cloud": {"endpoints": "https://x"}}, "additional properties 'endpoints'"),
        ({"cloud": {"mercatoAccount": {"accessKeyId": {}}}}, "additional properties 'accessKeyId'"),
        (
            {"cloud": {"mercatoAccount": {"accessKey": {"secret": "x"}}}},
            "additional properties 'secret'",
        ),
        ({"cloud": {"endpoint": "cloud-api.example.com"}}, "/cloud/endpoint"),
        ({"networkPolicy": {"cloud": {"from": []}}}, "additional properties 'from'"),
        ({"networkPolicy": {"cloud": {"ports": []}}}, "/networkPolicy/cloud/ports"),
        ({"processes": {"provisioning": {"cloud": {}}}}, "additional properties 'cloud'"),
    ],
)
def test_the_schema_rejects_unknown_keys_and_bad_values_under_cloud(change, where):
    values = chart.merged(chart.REQUIRED_VALUES, change)
    with pytest.raises(helm.HelmValuesError) as failure:
        chart.render(values)
    assert where in str(failure.value)


# --- egress to the cloud's API --------------------------------------------------------


def test_only_iam_agency_and_provisioning_reach_the_cloud_and_never_inside_the_cluster(objects):
    policies = list(chart.of_kind(objects, "NetworkPolicy").values())
    cloud = chart.of_kind(objects, "NetworkPolicy")[f"{chart.RELEASE}-cloud"]
    assert cloud["spec"]["policyTypes"] == ["Egress"]
    pods = pod_labels(objects)
    # the gateway reaches its object store on 443 (tests/deploy/test_chart.py), billing
    # the card provider (tests/deploy/test_card_provider.py)
    pods.pop(DEPLOYMENT_NAME["gateway"])
    pods.pop(DEPLOYMENT_NAME["billing"])
    for name in ("iam_agency", "provisioning"):
        labels = pods.pop(DEPLOYMENT_NAME[name])
        only_cloud = [p for p in policies if p is cloud or "Egress" not in p["spec"]["policyTypes"]]
        for address in PUBLIC_ADDRESSES:
            assert reaches(only_cloud, labels, address, 443), (name, address)
            assert not reaches(policies, labels, address, 80), (name, address)
        for address in INTERNAL_ADDRESSES:
            assert not reaches(policies, labels, address, 443), (name, address)
    assert pods, "the other Deployments and the hook Jobs"
    for name, labels in pods.items():
        assert not reaches([cloud], labels, PUBLIC_ADDRESSES[0], 443), name
        for address in PUBLIC_ADDRESSES:
            assert not reaches(policies, labels, address, 443), (name, address)


def test_the_cloud_egress_can_be_narrowed_to_a_private_endpoint_on_its_own_port():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "cloud": {"endpoint": "http://cloud-sim.cloud.svc:8400"},
            "networkPolicy": {
                "cloud": {"ports": [8400], "to": [{"ipBlock": {"cidr": "10.20.30.0/24"}}]}
            },
            "processes": {"provisioning": {"sellerEgress": {"enabled": False}}},
        },
    )
    objects = chart.manifests(values)
    assert_valid(objects)
    policies = list(chart.of_kind(objects, "NetworkPolicy").values())
    pods = pod_labels(objects)
    for name in ("iam_agency", "provisioning"):
        labels = pods.pop(DEPLOYMENT_NAME[name])
        assert reaches(policies, labels, "10.20.30.4", 8400), name
        assert not reaches(policies, labels, "10.20.31.4", 8400), name
        assert not reaches(policies, labels, PUBLIC_ADDRESSES[0], 443), name
    for name, labels in pods.items():
        assert not reaches(policies, labels, "10.20.30.4", 8400), name


def test_without_seller_egress_provisioning_still_reaches_the_cloud():
    values = chart.merged(
        chart.REQUIRED_VALUES, {"processes": {"provisioning": {"sellerEgress": {"enabled": False}}}}
    )
    objects = chart.manifests(values)
    policies = list(chart.of_kind(objects, "NetworkPolicy").values())
    labels = pod_labels(objects)[DEPLOYMENT_NAME["provisioning"]]
    assert f"{DEPLOYMENT_NAME['provisioning']}-sellers" not in chart.of_kind(
        objects, "NetworkPolicy"
    )
    assert reaches(policies, labels, PUBLIC_ADDRESSES[0], 443)
    assert not reaches(policies, labels, "10.0.0.1", 443)


# --- alerts and dashboard -------------------------------------------------------------

DEPLOYMENT_METRICS = {
    "mercato_provisioning_deployments_total": "provisioning",
    "mercato_provisioning_deployment_step_seconds": "provisioning",
    "mercato_provisioning_deployment_compensations_total": "provisioning",
    "mercato_iam_agency_checks_total": "iam_agency",
    "mercato_iam_agency_credentials_total": "iam_agency",
}
ALERTS = {
    "MercatoImageDeploymentsFailing": (
        "mercato_provisioning_deployments_total",
        'status="failed"',
    ),
    "MercatoImageDeploymentsCompensating": (
        "mercato_provisioning_deployment_compensations_total",
        "sum by (namespace, service, reason)",
    ),
    "MercatoAgencyChecksFailing": ("mercato_iam_agency_checks_total", 'result="error"'),
    "MercatoAgenciesBroken": ("mercato_iam_agency_checks_total", 'result="broken"'),
}


@pytest.mark.parametrize(("metric", "process_name"), DEPLOYMENT_METRICS.items())
def test_the_deployment_and_agency_metrics_exist_and_are_documented(metric, process_name):
    process = BY_NAME[process_name]
    source = (process.directory / process.package / "metrics.py").read_text()
    assert f'"{metric}"' in source
    metrics_doc = chart.repo_path("docs", "metrics.md").read_text()
    assert f"| `{metric}` |" in metrics_doc


def test_the_alerts_watch_failing_and_compensating_deployments_and_the_agencies(
    production_objects,
):
    rules = {rule["alert"]: rule for rule in chart.alert_rules(production_objects)}
    for alert, (metric, fragment) in ALERTS.items():
        expr = rules[alert]["expr"]
        assert chart.metric_names(expr) == {metric}, alert
        assert fragment in expr, alert
        assert f'namespace="{chart.NAMESPACE}"' in expr, alert
        assert rules[alert]["labels"]["severity"] == "warning", alert
    assert "rate(" in rules["MercatoAgencyChecksFailing"]["expr"]
    # a buyer cancelling an agency is not an operator's incident
    assert 'reason!="agency"' in rules["MercatoImageDeploymentsCompensating"]["expr"]


def test_the_alert_thresholds_are_values():
    values = chart.merged(
        chart.REQUIRED_VALUES,
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "deploymentFailuresPerHour": 7,
                    "agencyCheckErrorRatio": 0.5,
                }
            }
        },
    )
    rules = {rule["alert"]: rule for rule in chart.alert_rules(chart.manifests(values))}
    assert rules["MercatoImageDeploymentsFailing"]["expr"].rstrip().endswith(">= 7")
    assert rules["MercatoAgencyChecksFailing"]["expr"].rstrip().endswith("> 0.5")


def test_the_dashboard_has_a_row_of_deployments_and_agencies(production_objects):
    (dashboard,) = chart.dashboards(production_objects)
    panels = dashboard["panels"]
    (row_index,) = [
        i
        for i, p in enumerate(panels)
        if p["type"] == "row" and p["title"] == "Images and agencies"
    ]
    row = []
    for panel in panels[row_index + 1 :]:
        if panel["type"] == "row":
            break
        row.append(panel)
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in row}
    used = set().union(*(chart.metric_names(e) for e in exprs.values()))
    assert used == set(DEPLOYMENT_METRICS)
    by_metric = {
        "mercato_provisioning_deployments_total": "sum by (status)",
        "mercato_provisioning_deployment_compensations_total": "sum by (reason)",
        "mercato_iam_agency_checks_total": "sum by (result)",
        "mercato_iam_agency_credentials_total": "sum by (source)",
    }
    for metric, grouping in by_metric.items():
        assert any(metric in e and grouping in e for e in exprs.values()), metric
    assert any(
        "histogram_quantile(0.95, sum by (step, le)" in e
        and "mercato_provisioning_deployment_step_seconds_bucket" in e
        for e in exprs.values()
    )
    # panels do not overlap: the rows below moved down
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
