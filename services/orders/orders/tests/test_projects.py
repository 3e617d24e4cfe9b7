"""The orders service's copy of enterprise projects, read before iam-agency is asked
(``orders.projects.ProjectLookup``), without a database: the copy is a dict here."""

import datetime as dt

import pytest

from mercato.clock import ManualClock
from mercato.errors import NotFound
from orders import projects

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


class FakeCopy:
    """``uow.projects``: the copy, kept by revision as the table's upsert keeps it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}

    def get(self, account_id, project_id):
        row = self.rows.get((account_id, project_id))
        if row is None:
            return None
        return {
            "id": project_id,
            **{key: row[key] for key in ("name", "type", "status", "revision")},
        }

    def keep(self, row):
        key = (row["account_id"], row["project_id"])
        if key in self.rows and self.rows[key]["revision"] >= row["revision"]:
            return False
        self.rows[key] = row
        return True

    def names(self, keys):
        return {key: self.rows[key]["name"] for key in keys if key in self.rows}


class FakeUow:
    def __init__(self) -> None:
        self.projects = FakeCopy()
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1


class CountingIam:
    def __init__(self, projects_of: dict[str, dict[str, dict]], account_id: str) -> None:
        self.projects_of = projects_of
        self.account_id = account_id  # the caller the RPC would run as
        self.calls = 0

    def get_enterprise_project(self, project_id):
        self.calls += 1
        project = self.projects_of.get(self.account_id, {}).get(project_id)
        if project is None:
            raise NotFound("no such project")
        return project


def _answer(project_id, status="enabled", revision=1):
    return {
        "id": project_id,
        "name": project_id.title(),
        "description": "",
        "type": "commercial",
        "status": status,
        "revision": revision,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


def test_a_project_is_asked_once_then_read_from_the_copy():
    uow = FakeUow()
    iam = CountingIam({"acc_a": {"default": _answer("default")}}, "acc_a")
    lookup = projects.ProjectLookup(uow, iam, "acc_a", ManualClock(NOW))
    for _ in range(3):
        assert lookup.get_enterprise_project("default") == {
            "id": "default",
            "name": "Default",
            "type": "commercial",
            "status": "enabled",
            "revision": 1,
        }
    assert iam.calls == 1
    assert uow.commits == 1  # the answer is kept whatever becomes of the request
    assert uow.projects.rows[("acc_a", "default")]["updated_at"] == NOW


def test_an_unknown_project_is_asked_every_time_and_never_kept():
    uow = FakeUow()
    iam = CountingIam({"acc_a": {"default": _answer("default")}}, "acc_a")
    lookup = projects.ProjectLookup(uow, iam, "acc_a", ManualClock(NOW))
    for _ in range(2):
        with pytest.raises(NotFound):
            lookup.get_enterprise_project("eps_other")
    assert iam.calls == 2
    assert uow.projects.rows == {}


def test_one_accounts_project_never_answers_for_another_account():
    uow = FakeUow()
    iam_projects = {"acc_a": {"eps_a": _answer("eps_a")}}
    projects.ProjectLookup(
        uow, CountingIam(iam_projects, "acc_a"), "acc_a", ManualClock(NOW)
    ).get_enterprise_project("eps_a")
    iam_b = CountingIam(iam_projects, "acc_b")
    with pytest.raises(NotFound):
        projects.ProjectLookup(uow, iam_b, "acc_b", ManualClock(NOW)).get_enterprise_project(
            "eps_a"
        )
    assert iam_b.calls == 1


def test_an_answer_without_a_revision_loses_to_any_event():
    uow = FakeUow()
    old_answer = {"id": "eps_a", "name": "A", "status": "enabled"}
    lookup = projects.ProjectLookup(
        uow, CountingIam({"acc_a": {"eps_a": old_answer}}, "acc_a"), "acc_a", ManualClock(NOW)
    )
    assert lookup.get_enterprise_project("eps_a")["revision"] == 0
    event = {
        "account_id": "acc_a",
        "enterprise_project_id": "eps_a",
        "name": "A",
        "description": "",
        "type": "commercial",
        "status": "disabled",
        "revision": 1,
        "updated_at": NOW,
    }
    assert projects.keep(uow, event) is True
    assert projects.keep(uow, event) is False  # a repeat changes nothing
    assert lookup.get_enterprise_project("eps_a")["status"] == "disabled"


def test_views_are_named_from_the_copy_and_default_by_its_id():
    uow = FakeUow()
    uow.projects.keep(
        {
            "account_id": "acc_a",
            "project_id": "eps_a",
            "name": "Marketing",
            "revision": 1,
        }
    )
    views = [
        {"account_id": "acc_a", "enterprise_project_id": "eps_a"},
        {"account_id": "acc_b", "enterprise_project_id": "eps_a"},  # not acc_b's
        {"account_id": "acc_a", "enterprise_project_id": "default"},
    ]
    projects.name(uow, views, lambda view: view["account_id"])
    assert [view["enterprise_project_name"] for view in views] == ["Marketing", None, "default"]
