"""Reading metric names out of PromQL, as the chart's alerts and dashboard use them."""

import json

import pytest

from tests.deploy.chart import chart_metric_names, exposed_families, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (service, entrypoint, le) (rate(mercato_entrypoint_duration_seconds_bucket{namespace="shop", kind!="timer"}[5m]))) > 2.5',
            {"mercato_entrypoint_duration_seconds"},
        ),
        (
            'sum by (service) (rate(mercato_entrypoint_calls_total{outcome="error"}[5m])) / sum by (service) (rate(mercato_entrypoint_calls_total[5m]))',
            {"mercato_entrypoint_calls_total"},
        ),
        (
            "sum(rate(a_seconds_sum[$__rate_interval])) / sum(rate(a_seconds_count[$__rate_interval]))",
            {"a_seconds"},
        ),
        (
            'max by (service) (mercato_dead_letters{service=~"$service"}) > 0',
            {"mercato_dead_letters"},
        ),
        ("up == 0 and on (pod) other_gauge offset 5m", {"up", "other_gauge"}),
        (
            "a_total unless ignoring (x) b_total or c_total > bool 1",
            {"a_total", "b_total", "c_total"},
        ),
        ('label_replace(x_bytes, "dst", "$1", "src", "(.*)")', {"x_bytes"}),
        ("rate(process_cpu_seconds_total[1m:10s])", {"process_cpu_seconds_total"}),
        ("vector(1) + 1e3", set()),
    ],
)
def test_metric_names_are_the_series_families_an_expression_reads(expr, names):
    assert metric_names(expr) == names


def test_names_come_from_alerts_dashboard_panels_and_dashboard_variables():
    rule = {
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "x_total > 0"}]}]},
    }
    dashboard = {
        "title": "D",
        "panels": [
            {"type": "row", "panels": [{"targets": [{"expr": "rate(y_seconds_bucket[1m])"}]}]},
            {"targets": [{"expr": "z_bytes"}]},
        ],
        "templating": {"list": [{"query": {"query": 'label_values(v_total{a="b"}, service)'}}]},
    }
    config_map = {
        "kind": "ConfigMap",
        "metadata": {"name": "d"},
        "data": {"d.json": json.dumps(dashboard)},
    }
    used = chart_metric_names([rule, config_map])
    assert set(used) == {"x_total", "y_seconds", "z_bytes", "v_total"}
    assert used["x_total"] == {"alert A"}


def test_exposed_families_are_read_from_type_lines():
    text = (
        '# HELP a_total help\n# TYPE a_total counter\na_total{x="1"} 2.0\n'
        "# HELP b_seconds help\n# TYPE b_seconds histogram\n"
    )
    assert exposed_families(text) == {"a_total": "counter", "b_seconds": "histogram"}
