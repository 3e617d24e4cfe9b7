"""ServiceMonitors, alerts and the Grafana dashboard: custom resources with no schema in
kubernetes-validate, so their structure is checked here."""

import re

import pytest

from mercato.topology import PROCESSES, SERVICES
from tests.deploy import chart

OPERATIONS = chart.repo_path("docs", "operations.md")
DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")

# What the alerts must watch (Mercato's own metrics; the consumer gauge is the one
# proposed for the readiness check, the last three are image deployments and agencies).
ALERTED = {
    "mercato_entrypoint_calls_total",
    "mercato_entrypoint_duration_seconds",
    "mercato_outbox_oldest_age_seconds",
    "mercato_dead_letters",
    "mercato_queue_consumers",
    "mercato_provisioning_deployments_total",
    "mercato_provisioning_deployment_compensations_total",
    "mercato_iam_agency_checks_total",
}
CHARTED = {
    "mercato_entrypoint_calls_total",
    "mercato_entrypoint_duration_seconds",
    "mercato_events_published_total",
    "mercato_events_consumed_total",
    "mercato_event_retries_total",
    "mercato_dead_letters",
    "mercato_outbox_backlog",
    "mercato_outbox_oldest_age_seconds",
    "mercato_orders_total",
    "mercato_payments_total",
    "mercato_refunds_total",
    "mercato_deliveries_total",
    "mercato_seller_calls_total",
    "mercato_provisioning_deployments_total",
    "mercato_provisioning_deployment_step_seconds",
    "mercato_provisioning_deployment_compensations_total",
    "mercato_iam_agency_checks_total",
    "mercato_iam_agency_credentials_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    found = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).lower())
            found.add(text.replace(" ", "-"))
    return found


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_each_service_monitor_scrapes_its_process_and_keeps_the_metric_service_label(
    production_objects, process
):
    name = f"{chart.RELEASE}-{process.name.replace('_', '-')}"
    monitor = chart.of_kind(production_objects, "ServiceMonitor")[name]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        s
        for s in chart.of_kind(production_objects, "Service").values()
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in services] == [name]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [chart.NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    # the ops port, served apart from the worker pool (<PREFIX>_OPS_ADDRESS), never the
    # gateway's public API
    assert endpoint["port"] == "ops"
    (service_port,) = [p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    deployment = chart.of_kind(production_objects, "Deployment")[name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (container_port,) = [p for p in container["ports"] if p["name"] == service_port["targetPort"]]
    data = chart.of_kind(production_objects, "ConfigMap")[chart.RELEASE]["data"]
    ops_address = data[f"{process.env_prefix}_OPS_ADDRESS"]
    assert ops_address == f"0.0.0.0:{container_port['containerPort']}"
    assert endpoint["path"] == "/metrics"
    assert DURATION.match(endpoint["interval"]) and DURATION.match(endpoint["scrapeTimeout"])
    # mercato_* series carry service=<nameko service name>; the target label must agree
    assert endpoint["honorLabels"] is True
    assert {"action": "replace", "targetLabel": "service", "replacement": process.name} in endpoint[
        "relabelings"
    ]


def test_every_alert_is_well_formed_scoped_to_the_release_and_has_a_runbook(production_objects):
    (rule_object,) = chart.of_kind(production_objects, "PrometheusRule").values()
    assert rule_object["apiVersion"] == "monitoring.coreos.com/v1"
    rules = chart.alert_rules(production_objects)
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    documented = anchors(OPERATIONS.read_text())
    for rule in rules:
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule[
            "alert"
        ]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in documented, f"docs/operations.md has no heading {rule['alert']}"
        mercato_metrics = {n for n in chart.metric_names(expr) if not n.startswith("rabbitmq_")}
        if mercato_metrics:
            assert f'namespace="{chart.NAMESPACE}"' in expr, rule["alert"]


def test_the_alerts_watch_errors_latency_outbox_dead_letters_and_consumers(production_objects):
    rules = {rule["alert"]: rule for rule in chart.alert_rules(production_objects)}
    used = set().union(*(chart.metric_names(rule["expr"]) for rule in rules.values()))
    assert used >= ALERTED
    assert 'outcome="error"' in rules["MercatoHighErrorRatio"]["expr"]
    assert "histogram_quantile(0.99" in rules["MercatoHighLatencyP99"]["expr"]
    broker_rules = [r for r in rules.values() if "rabbitmq_queue_consumers" in r["expr"]]
    assert broker_rules and all(
        r["labels"]["requires"] == "rabbitmq-prometheus-plugin" for r in broker_rules
    )
    for service in SERVICES:
        assert service.name in broker_rules[0]["expr"]


def test_process_down_also_fires_when_a_process_has_no_scrape_target(production_objects):
    """sum(up) == 0 is empty, not 0, with no pod (or no target) at all."""
    (rule,) = [
        r for r in chart.alert_rules(production_objects) if r["alert"] == "MercatoProcessDown"
    ]
    for process in PROCESSES:
        matchers = f'namespace="{chart.NAMESPACE}", service="{process.name}"'
        assert f"or absent(up{{{matchers}}})" in rule["expr"], process.name
    assert chart.metric_names(rule["expr"]) == {"up"}


def test_production_labels_the_monitoring_objects_for_kube_prometheus_stack(production_objects):
    """A stock kube-prometheus-stack selects ServiceMonitors and rules by release label."""
    for kind in ("ServiceMonitor", "PrometheusRule"):
        objects = chart.of_kind(production_objects, kind)
        assert objects, kind
        for name, obj in objects.items():
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", (kind, name)


def test_the_rabbitmq_plugin_alert_is_left_out_unless_asked_for():
    values = chart.merged(chart.REQUIRED_VALUES, {"metrics": {"prometheusRule": {"enabled": True}}})
    rules = chart.alert_rules(chart.manifests(values))
    assert rules and not [r for r in rules if "rabbitmq_" in r["expr"]]


def test_the_dashboard_is_loaded_by_the_grafana_sidecar_and_charts_what_sres_need(
    production_objects,
):
    (config_map,) = [
        c
        for c in chart.of_kind(production_objects, "ConfigMap").values()
        if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (dashboard,) = chart.dashboards(production_objects)
    exprs = chart.dashboard_exprs(dashboard)
    used = set().union(*(chart.metric_names(e) for e in exprs))
    assert used >= CHARTED, CHARTED - used
    assert any("histogram_quantile(0.5," in e for e in exprs)
    assert any("histogram_quantile(0.99," in e for e in exprs)
    assert any('outcome="dead_lettered"' in e for e in exprs)
    # $__interval may be shorter than the scrape interval: rate() and increase() over it
    # return nothing when zoomed in
    for expr in exprs:
        for window in re.findall(r"\b(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", expr

    ids = []

    def walk(panels):
        for panel in panels:
            ids.append(panel["id"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
                assert target["expr"].count("(") == target["expr"].count(")"), panel["title"]
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "service"}
