"""Rendering the Helm chart offline (helm-python-sdk: Helm's Go SDK through ctypes) and
reading what it renders: manifests, alert expressions, dashboard queries, metric names.

Shared by tests/deploy and tests/e2e/test_chart_metrics_exist.py.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from mercato.config import ROOT

CHART_DIR = ROOT / "deploy" / "helm" / "mercato"
PRODUCTION_VALUES = CHART_DIR / "values-production.yaml"
RELEASE = "mercato"
NAMESPACE = "shop"

# What values.yaml leaves empty and every install must give: the broker, a database per
# process and the two keys (base64 of 32 zero bytes is a well-formed, useless key).
REQUIRED_VALUES: dict[str, Any] = {
    "amqp": {"uri": "amqp://mercato:secret@rabbitmq.data:5672/mercato"},
    "contextKey": {"value": "a-context-key-of-32-characters-or-more"},
    "processes": {
        **{
            name: {"database": {"url": f"postgresql://{name}:secret@pg.data:5432/{name}"}}
            for name in (
                "catalog",
                "orders",
                "supervision",
                "billing",
                "provisioning",
                "iam_agency",
                "gateway",
            )
        },
    },
}
REQUIRED_VALUES["processes"]["provisioning"]["credentialKeys"] = {
    "value": "k2026:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
}
REQUIRED_VALUES["processes"]["gateway"]["idempotencySecret"] = {
    "value": "0123456789abcdef0123456789abcdef-test"
}
REQUIRED_VALUES["processes"]["gateway"]["objectStore"] = {"bucket": "mercato-attachments"}

# Kinds of custom resources: no schema in kubernetes-validate, checked by hand instead.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}

# Metric names a chart expression may use that no Mercato process exposes.
EXTERNAL_METRICS = {
    "up": "synthesised by Prometheus for every scrape target",
    "rabbitmq_queue_consumers": "RabbitMQ's Prometheus plugin (per-object metrics)",
}


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge value layers (later wins), as several ``-f`` files would."""
    result: dict[str, Any] = {}
    for layer in layers:
        _merge_into(result, copy.deepcopy(layer))
    return result


def _merge_into(target: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text (raises helm_python errors on bad values)."""
    with helm.Chart.load(CHART_DIR) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders, hooks included (NOTES.txt left out)."""
    objects = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return objects


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def hook_of(obj: dict[str, Any]) -> set[str]:
    annotations = obj["metadata"].get("annotations") or {}
    return set(filter(None, str(annotations.get("helm.sh/hook", "")).split(",")))


# --- metric names in PromQL -------------------------------------------------------

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
}
_SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    """The metric families a PromQL expression reads.

    Histogram series (``x_bucket``, ``x_sum``, ``x_count``) are named by their family
    (``x``), as ``# TYPE x histogram`` names them; counters keep ``_total``, as the
    text exposition does.

    >>> sorted(metric_names('histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{k="v"}[5m]))) / b_total'))
    ['a_seconds', 'b_total']
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for name in _IDENTIFIER.findall(text):
        if name.lower() in _KEYWORDS:
            continue
        for suffix in _SERIES_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def alert_rules(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for rule_object in of_kind(objects, "PrometheusRule").values()
        for group in rule_object["spec"]["groups"]
        for rule in group["rules"]
    ]


def dashboards(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(text)
        for config_map in of_kind(objects, "ConfigMap").values()
        for key, text in (config_map.get("data") or {}).items()
        if key.endswith(".json")
    ]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = []

    def walk(panels):
        for panel in panels:
            exprs.extend(target["expr"] for target in panel.get("targets", []) if "expr" in target)
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return exprs


def dashboard_variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    names = set()
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        names.update(_LABEL_VALUES.findall(text))
    return names


def chart_metric_names(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Metric name -> where the chart uses it ("alert X", "dashboard panel Y")."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules(objects):
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule.get('alert') or rule.get('record')}")
    for dashboard in dashboards(objects):
        for expr in dashboard_exprs(dashboard):
            for name in metric_names(expr):
                used.setdefault(name, set()).add(f"dashboard {dashboard['title']}")
        for name in dashboard_variable_metrics(dashboard):
            used.setdefault(name, set()).add(f"dashboard {dashboard['title']} variable")
    return used


def exposed_families(exposition: str) -> dict[str, str]:
    """``# TYPE name type`` lines of a Prometheus text exposition: name -> type."""
    families = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(maxsplit=3)
            families[name] = kind
    return families


def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
