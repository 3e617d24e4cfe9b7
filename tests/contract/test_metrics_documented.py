"""docs/metrics.md lists every Mercato metric the processes register, with its type and
labels, and nothing else."""

import importlib
import re

from prometheus_client import REGISTRY

from mercato.config import ROOT
from mercato.topology import PROCESSES

ROW = re.compile(r"^\| `(mercato_[a-z_]+)` \| (counter|gauge|histogram) \| ([^|]*) \|")


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            labels = tuple(re.findall(r"`([a-z_]+)`", match.group(3)))
            rows[match.group(1)] = (match.group(2), labels)
    return rows


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    # importing each process's service module registers every metric it defines
    for process in PROCESSES:
        importlib.import_module(f"{process.package}.service")
    metrics = {}
    for collector in set(REGISTRY._names_to_collectors.values()):
        name = getattr(collector, "_name", "")
        if not name.startswith("mercato_"):
            continue
        kind = collector._type
        exposed = f"{name}_total" if kind == "counter" else name
        metrics[exposed] = (kind, tuple(collector._labelnames))
    return metrics


def test_every_metric_is_documented_with_its_type_and_labels():
    assert documented() == registered()
