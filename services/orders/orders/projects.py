"""A short memory of the enterprise projects iam-agency confirmed, per (account, project).

Placing an order checks that the enterprise project it names is one of the buyer's
(``iam_agency.get_enterprise_project``). Asking on every order was a whole RPC round
trip (and most of iam-agency's work per purchase) for an answer that hardly ever
changes. So a positive answer is kept in this process for ``ORDER_PROJECT_CACHE_SECONDS``
(default 60), at most ``MAX_KNOWN_PROJECTS`` entries, least recently used going first.

Only "this account has this project" is kept, keyed by the account the caller's
identity names, so no buyer can use another's entry; an unknown project is asked of
iam-agency every time (a project created a moment ago is seen at once). The price: a
project removed at iam-agency could still be named by a new order for up to
``ORDER_PROJECT_CACHE_SECONDS`` (iam-agency removes none today, and it announces no
project change to listen for). ``ORDER_PROJECT_CACHE_SECONDS: 0`` turns the memory off.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from nameko.extensions import DependencyProvider

from mercato.cache import TimedCache

CACHE_SECONDS_KEY = "ORDER_PROJECT_CACHE_SECONDS"
DEFAULT_CACHE_SECONDS = 60.0
MAX_KNOWN_PROJECTS = 10_000

# (account id, project id) -> the project iam-agency answered
KnownProjects: TypeAlias = TimedCache[tuple[str, str], dict[str, Any]]


class ProjectLookup:
    """``get_enterprise_project`` of the caller's account, through the known projects.

    ``account_id`` must be the account the RPC to iam-agency runs as (the worker's
    caller): iam-agency answers for that account, so the answer is kept under it."""

    def __init__(self, known: KnownProjects, iam, account_id: str) -> None:
        self._known = known
        self._iam = iam
        self._account_id = account_id

    def get_enterprise_project(self, project_id: str) -> dict[str, Any]:
        key = (self._account_id, project_id)
        project = self._known.get(key)
        if project is None:
            project = self._iam.get_enterprise_project(project_id)  # NotFound is not kept
            self._known.put(key, project)
        return project


class EnterpriseProjects(DependencyProvider):
    """Holds the process's known projects; injects a lookup maker into every worker:
    ``self.projects.asking(self.iam, account_id)`` is what ``usecases.place_order``
    asks instead of ``iam`` itself."""

    def setup(self):
        ttl = float(self.container.config.get(CACHE_SECONDS_KEY, DEFAULT_CACHE_SECONDS))
        self.known: KnownProjects = TimedCache(ttl, max_entries=MAX_KNOWN_PROJECTS)

    def asking(self, iam, account_id: str) -> ProjectLookup:
        return ProjectLookup(self.known, iam, account_id)

    def get_dependency(self, worker_ctx):
        return self
