"""Whether the gateway can serve: what ``/readyz`` reports.

Ready means the container's own checks pass (its database answers, its consumers are
attached: ``Observability.readiness()``) and iam-agency, which every authenticated
request needs, answers ``ping`` within ``IAM_PING_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import time
from typing import Any

from nameko.extensions import DependencyProvider

from mercato.errors import ServiceUnavailable
from mercato.ops import READINESS_CACHE_SECONDS

IAM_PING_TIMEOUT_SECONDS = 2.0
READY, NOT_READY = "ready", "not ready"


class LastReport(DependencyProvider):
    """The replica's last readiness answer: ``/readyz`` is public on the API port, so
    a replica pings iam-agency at most every ``READINESS_CACHE_SECONDS``."""

    def setup(self) -> None:
        self.report: tuple[float, dict[str, Any]] | None = None

    def get_dependency(self, worker_ctx):
        return self


def readiness(observability, iam_probe, last: LastReport) -> dict[str, Any]:
    """``{"status": "ready" | "not ready", "problems": {dependency: what is wrong}}``."""
    if last.report is not None and time.monotonic() - last.report[0] < READINESS_CACHE_SECONDS:
        return last.report[1]
    report = observability.readiness()
    problems: dict[str, str] = dict(report.get("problems") or {})
    try:
        iam_probe.ping()
    except ServiceUnavailable as exc:
        problems["iam_agency"] = str(exc)
    except Exception as exc:
        problems["iam_agency"] = f"ping failed: {type(exc).__name__}"
    answer = {"status": NOT_READY if problems else READY, "problems": problems}
    last.report = (time.monotonic(), answer)
    return answer
