"""Every metric the Helm chart's alerts and Grafana dashboard read is one the running
processes expose: a renamed metric must not leave an alert that can never fire or a
panel that stays empty."""

import pytest
import requests

from mercato.topology import PROCESSES
from tests.deploy import chart

pytestmark = pytest.mark.e2e


def test_every_metric_the_chart_reads_is_exposed_by_a_process(system):
    values = chart.merged(
        chart.production_values(),
        {"metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}},
    )
    used = chart.chart_metric_names(chart.manifests(values))
    assert len(used) > 20  # the alerts and the dashboard were found and read

    exposed: dict[str, set[str]] = {}
    for process in PROCESSES:
        response = requests.get(system.metrics_url(process.name), timeout=10)
        assert response.status_code == 200, process.name
        for family in chart.exposed_families(response.text):
            exposed.setdefault(family, set()).add(process.name)

    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exposed and name not in chart.EXTERNAL_METRICS
    }
    assert not missing, f"read by the chart, exposed by no process: {missing}"
