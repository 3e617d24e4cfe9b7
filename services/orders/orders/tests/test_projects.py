"""The orders service's short memory of enterprise projects iam-agency confirmed."""

import pytest

from mercato.cache import TimedCache
from mercato.errors import NotFound
from orders.projects import ProjectLookup


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingIam:
    def __init__(self, projects: dict[str, set[str]], account_id: str) -> None:
        self.projects = projects
        self.account_id = account_id  # the caller the RPC would run as
        self.calls = 0

    def get_enterprise_project(self, project_id):
        self.calls += 1
        if project_id not in self.projects.get(self.account_id, set()):
            raise NotFound("no such project")
        return {"id": project_id, "name": project_id, "status": "enabled"}


def test_a_confirmed_project_is_not_asked_again_within_the_ttl():
    ticker = Ticker()
    known = TimedCache(60, timer=ticker)
    iam = CountingIam({"acc_a": {"default"}}, "acc_a")
    lookup = ProjectLookup(known, iam, "acc_a")
    assert lookup.get_enterprise_project("default")["id"] == "default"
    ticker.now += 59
    assert lookup.get_enterprise_project("default")["id"] == "default"
    assert iam.calls == 1
    ticker.now += 1  # the entry has run out: ask again
    lookup.get_enterprise_project("default")
    assert iam.calls == 2


def test_an_unknown_project_is_asked_every_time_and_never_kept():
    known = TimedCache(60, timer=Ticker())
    iam = CountingIam({"acc_a": {"default"}}, "acc_a")
    lookup = ProjectLookup(known, iam, "acc_a")
    for _ in range(2):
        with pytest.raises(NotFound):
            lookup.get_enterprise_project("proj_other")
    assert iam.calls == 2
    assert len(known) == 0


def test_one_accounts_entry_never_answers_for_another_account():
    known = TimedCache(60, timer=Ticker())
    ProjectLookup(
        known, CountingIam({"acc_a": {"proj_a"}}, "acc_a"), "acc_a"
    ).get_enterprise_project("proj_a")
    iam_b = CountingIam({"acc_a": {"proj_a"}}, "acc_b")
    with pytest.raises(NotFound):
        ProjectLookup(known, iam_b, "acc_b").get_enterprise_project("proj_a")
    assert iam_b.calls == 1
