"""Whether the gateway can serve: what ``/readyz`` reports.

Ready means the container's own checks pass (its database answers, its consumers are
attached: ``Observability.readiness()``) and iam-agency, which every authenticated
request needs, answers ``ping`` within ``IAM_PING_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from mercato.errors import ServiceUnavailable

IAM_PING_TIMEOUT_SECONDS = 2.0
READY, NOT_READY = "ready", "not ready"


def readiness(observability, iam_probe) -> dict[str, Any]:
    """``{"status": "ready" | "not ready", "problems": {dependency: what is wrong}}``."""
    report = observability.readiness()
    problems: dict[str, str] = dict(report.get("problems") or {})
    try:
        iam_probe.ping()
    except ServiceUnavailable as exc:
        problems["iam_agency"] = str(exc)
    except Exception as exc:
        problems["iam_agency"] = f"ping failed: {type(exc).__name__}"
    return {"status": NOT_READY if problems else READY, "problems": problems}
