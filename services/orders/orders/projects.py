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

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from nameko.extensions import DependencyProvider

CACHE_SECONDS_KEY = "ORDER_PROJECT_CACHE_SECONDS"
DEFAULT_CACHE_SECONDS = 60.0
MAX_KNOWN_PROJECTS = 10_000


class KnownProjects:
    """Enterprise projects iam-agency confirmed lately; bounded in time and size."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_KNOWN_PROJECTS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = max(0.0, ttl_seconds)
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, account_id: str, project_id: str) -> dict[str, Any] | None:
        key = (account_id, project_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        valid_until, project = entry
        if self._monotonic() >= valid_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return project

    def put(self, account_id: str, project_id: str, project: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        key = (account_id, project_id)
        self._entries[key] = (self._monotonic() + self.ttl, project)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def asking(self, iam, account_id: str) -> ProjectLookup:
        """What ``usecases.place_order`` asks instead of ``iam`` itself."""
        return ProjectLookup(self, iam, account_id)


class ProjectLookup:
    """``get_enterprise_project`` of the caller's account, through ``KnownProjects``.

    ``account_id`` must be the account the RPC to iam-agency runs as (the worker's
    caller): iam-agency answers for that account, so the answer is kept under it."""

    def __init__(self, known: KnownProjects, iam, account_id: str) -> None:
        self._known = known
        self._iam = iam
        self._account_id = account_id

    def get_enterprise_project(self, project_id: str) -> dict[str, Any]:
        project = self._known.get(self._account_id, project_id)
        if project is None:
            project = self._iam.get_enterprise_project(project_id)  # NotFound is not kept
            self._known.put(self._account_id, project_id, project)
        return project


class EnterpriseProjects(DependencyProvider):
    """Holds the process's ``KnownProjects``; injects it into every worker."""

    def setup(self):
        ttl = float(self.container.config.get(CACHE_SECONDS_KEY, DEFAULT_CACHE_SECONDS))
        self.known = KnownProjects(ttl)

    def get_dependency(self, worker_ctx):
        return self.known
