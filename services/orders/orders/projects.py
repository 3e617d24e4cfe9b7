"""orders' copy of the accounts' enterprise projects (table ``enterprise_projects``).

iam-agency announces every change of a project (``iam_agency.enterprise_project.created``,
``.disabled``, ``.enabled``, each with the project's ``revision``); orders keeps the
highest revision it has seen (``keep``), so an event that arrives late or twice changes
nothing. Placing an order (and moving resources) reads the project from this copy: a
project disabled at iam-agency is refused on every replica as soon as its event is in.
A project the copy has not heard of yet (its event still on its way, or created before
the copy existed) is asked of iam-agency (``get_enterprise_project``, as the caller) and
the answer stored, so it is asked once.

The names the copy has are shown on orders and purchased apps (``name``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mercato.clock import Clock
from orders.project_repository import project_row

DEFAULT_PROJECT = "default"
# an enterprise project's statuses and types (iam-agency's)
ENABLED, DISABLED = "enabled", "disabled"
COMMERCIAL, TEST = "commercial", "test"


class ProjectLookup:
    """``get_enterprise_project`` of the caller's account: from the copy, else from
    iam-agency (the answer stored). ``account_id`` must be the account the RPC to
    iam-agency runs as (the worker's caller): iam-agency answers for that account, so
    the answer is kept under it. Answers ``{id, name, type, status, revision}``;
    iam-agency's NotFound (no such project in the account) is raised, nothing kept."""

    def __init__(self, uow, iam, account_id: str, clock: Clock) -> None:
        self._uow = uow
        self._iam = iam
        self._account_id = account_id
        self._clock = clock

    def get_enterprise_project(self, project_id: str) -> dict[str, Any]:
        project = self._uow.projects.get(self._account_id, project_id)
        if project is not None:
            return project
        answer = self._iam.get_enterprise_project(project_id)
        row = project_row(self._account_id, {**answer, "id": project_id}, self._clock.now())
        self._uow.projects.keep(row)
        self._uow.commit()  # a fact of iam-agency's, kept whatever the request's outcome
        return self._uow.projects.get(self._account_id, project_id) or {
            "id": project_id,
            **{key: row[key] for key in ("name", "type", "status", "revision")},
        }


def keep(uow, data: dict[str, Any]) -> bool:
    """An ``EnterpriseProjectV1`` iam-agency announced: kept when its revision is newer
    than the copy's (an older or repeated one changes nothing). The caller commits."""
    return uow.projects.keep(project_row(data["account_id"], data, data["updated_at"]))


def name(uow, views: Sequence[dict[str, Any]], account_of: Callable[[dict[str, Any]], str]) -> None:
    """Add ``enterprise_project_name`` to each view (an order, a seller's order, a
    purchased app) from the copy, with one SELECT; null for a project the copy does not
    have (``default`` is named ``default`` then, as iam-agency names it)."""
    keys = [(account_of(view), view["enterprise_project_id"]) for view in views]
    names = uow.projects.names(keys)
    for view, key in zip(views, keys, strict=True):
        fallback = DEFAULT_PROJECT if key[1] == DEFAULT_PROJECT else None
        view["enterprise_project_name"] = names.get(key, fallback)
