"""Enterprise projects (guide section 2.3) on PostgreSQL: iam-agency's use cases on its
real unit of work and outbox, its RPCs' input checks, and the migration that gave the
accounts' ``default`` projects their type, description, time and revision."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies
from prometheus_client import REGISTRY

from iam_agency import usecases
from iam_agency.models import metadata
from iam_agency.repository import REPOSITORIES
from iam_agency.service import IamAgencyService
from mercato.clock import ManualClock
from mercato.contracts import EVENT_CONTRACTS
from mercato.contracts import iam_agency as contract
from mercato.db import create_engine
from mercato.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationError
from mercato.migrations import upgrade
from mercato.standalone import standalone_unit_of_work
from mercato.tables import OUTBOX
from mercato.topology import BY_NAME
from mercato.validation import load
from mercato_testing import signed_context

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
CREATED = "iam_agency.enterprise_project.created"
DISABLED = "iam_agency.enterprise_project.disabled"
ENABLED = "iam_agency.enterprise_project.enabled"


class Projects:
    """iam-agency's project use cases on one database, with a clock the test moves."""

    def __init__(self, uow, clock: ManualClock) -> None:
        self.uow = uow
        self.clock = clock

    def open_account(self, email: str = "ann@example.com") -> str:
        return usecases.open_account(
            self.uow, self.clock, name="Ann", email=email, password="long password", type="buyer"
        )["id"]

    def create(self, account_id: str, name: str, type: str = "test", **more) -> dict:
        data = load(contract.EnterpriseProjectRequest, {"name": name, "type": type, **more})
        return usecases.create_enterprise_project(
            self.uow, self.clock, account_id=account_id, **data
        )

    def list(self, account_id: str, **query) -> dict:
        data = load(contract.EnterpriseProjectsQuery, query)
        return usecases.list_enterprise_projects(self.uow, account_id=account_id, **data)

    def disable(self, account_id: str, project_id: str) -> dict:
        return usecases.disable_enterprise_project(
            self.uow, self.clock, account_id=account_id, project_id=project_id
        )

    def enable(self, account_id: str, project_id: str) -> dict:
        return usecases.enable_enterprise_project(
            self.uow, self.clock, account_id=account_id, project_id=project_id
        )

    def events(self, event_type: str, project_id: str | None = None) -> list[dict]:
        """The envelopes of ``event_type`` in the outbox (committed), oldest first."""
        outbox = self.uow.table(OUTBOX)
        query = sa.select(outbox.c.payload).where(outbox.c.event_type == event_type)
        envelopes = list(self.uow.session.scalars(query.order_by(outbox.c.id)))
        self.uow.rollback()
        return [
            e
            for e in envelopes
            if project_id is None or e["data"]["enterprise_project_id"] == project_id
        ]


@pytest.fixture
def projects(databases):
    with standalone_unit_of_work(
        databases.fresh("iam_agency"),
        metadata,
        service_name="iam_agency",
        command="test",
        repositories=REPOSITORIES,
    ) as uow:
        yield Projects(uow, ManualClock(START))


def counted(change: str) -> float:
    return REGISTRY.get_sample_value("mercato_enterprise_projects_total", {"change": change}) or 0


def test_an_opened_account_announces_its_default_project_with_the_account(projects):
    created_before = counted("created")
    account_id = projects.open_account()

    (account,) = projects.events("iam_agency.account.created")
    (default,) = projects.events(CREATED)
    assert default["subject"] == account_id and default["account_id"] == account_id
    assert default["data"] == {
        "account_id": account_id,
        "enterprise_project_id": "default",
        "name": "default",
        "description": "",
        "type": "commercial",
        "status": "enabled",
        "revision": 1,
        "updated_at": START.isoformat(),
    }
    # one transaction: the two events share its correlation
    assert default["correlation_id"] == account["correlation_id"]
    assert counted("created") == created_before + 1
    assert usecases.enterprise_project(
        projects.uow, account_id=account_id, project_id="default"
    ) == {
        "id": "default",
        "name": "default",
        "description": "",
        "type": "commercial",
        "status": "enabled",
        "revision": 1,
        "created_at": START,
        "updated_at": START,
    }


def test_a_created_project_has_its_type_and_is_announced_once(projects):
    account_id = projects.open_account()
    created_before = counted("created")
    projects.clock.advance(dt.timedelta(minutes=5))

    project = projects.create(account_id, "Lab", description="Load tests")

    now = START + dt.timedelta(minutes=5)
    assert project["id"].startswith("eps_") and len(project["id"]) <= 40
    assert {k: v for k, v in project.items() if k != "id"} == {
        "name": "Lab",
        "description": "Load tests",
        "type": "test",
        "status": "enabled",
        "revision": 1,
        "created_at": now,
        "updated_at": now,
    }
    (event,) = projects.events(CREATED, project["id"])
    assert event["data"] == {
        "account_id": account_id,
        "enterprise_project_id": project["id"],
        "name": "Lab",
        "description": "Load tests",
        "type": "test",
        "status": "enabled",
        "revision": 1,
        "updated_at": now.isoformat(),
    }
    EVENT_CONTRACTS[(CREATED, 1)].instance.load(event["data"])
    assert counted("created") == created_before + 1
    # commercial unless said otherwise, without a description
    plain = projects.create(account_id, "Shop", type="commercial")
    assert (plain["type"], plain["description"]) == ("commercial", "")
    assert load(contract.EnterpriseProjectRequest, {"name": "X"}) == {
        "name": "X",
        "description": "",
        "type": "commercial",
    }


def test_a_name_taken_in_the_account_in_any_case_is_a_conflict_naming_name(projects):
    account_id = projects.open_account()
    other_id = projects.open_account("bob@example.com")
    projects.create(account_id, "Marketing")

    for name in ("MARKETING", "marketing", "Default"):
        with pytest.raises(Conflict) as raised:
            projects.create(account_id, name)
        assert raised.value.code == "CONFLICT"
        assert list(raised.value.fields) == ["name"]
    assert projects.create(other_id, "Marketing")["name"] == "Marketing"  # another account's
    assert len(projects.events(CREATED)) == 2 + 2  # two defaults, two Marketings
    assert projects.list(account_id)["total"] == 2


def test_a_name_is_kept_without_the_whitespace_around_it(projects):
    account_id = projects.open_account()
    marketing = projects.create(account_id, "  Marketing\t")
    assert marketing["name"] == "Marketing"
    for name in ("Marketing ", " marketing"):
        with pytest.raises(Conflict) as raised:
            projects.create(account_id, name)
        assert list(raised.value.fields) == ["name"]
    # the use case trims too, whoever calls it; the rules count the trimmed name
    direct = usecases.create_enterprise_project(
        projects.uow,
        projects.clock,
        account_id=account_id,
        name=" Ops ",
        description="",
        type="test",
    )
    assert direct["name"] == "Ops"
    assert load(contract.EnterpriseProjectRequest, {"name": f" {'n' * 64} "})["name"] == "n" * 64
    names = {project["name"] for project in projects.list(account_id)["items"]}
    assert names == {"default", "Marketing", "Ops"}


def test_a_name_the_index_refuses_at_the_same_moment_is_a_conflict_too(projects):
    """Two creations at once both find the name free; the unique index stops the second."""
    account_id = projects.open_account()
    projects.create(account_id, "Ops")
    projects.uow.accounts.project_name_taken = lambda account_id, name: False
    with pytest.raises(Conflict) as raised:
        projects.create(account_id, "OPS")
    assert list(raised.value.fields) == ["name"]
    assert len(projects.events(CREATED)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Lab", "type": "staging"}, "type"),
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Lab", "description": "d" * 501}, "description"),
        ({"type": "test"}, "name"),
        ({"name": "Lab", "status": "enabled"}, "status"),
    ],
)
def test_a_bad_project_is_refused_naming_the_field(body, field):
    with pytest.raises(ValidationError) as raised:
        load(contract.EnterpriseProjectRequest, body)
    assert list(raised.value.fields) == [field]


def test_the_longest_name_and_description_are_taken(projects):
    account_id = projects.open_account()
    project = projects.create(account_id, "n" * 64, description="d" * 500)
    assert (len(project["name"]), len(project["description"])) == (64, 500)


def test_the_list_shows_default_first_then_the_oldest_with_their_status(projects):
    account_id = projects.open_account()
    projects.open_account("bob@example.com")
    made = []
    for name in ("Zeta", "Alpha", "Mid"):
        projects.clock.advance(dt.timedelta(seconds=1))
        made.append(projects.create(account_id, name)["id"])
    projects.disable(account_id, made[1])

    listed = projects.list(account_id)
    assert [p["id"] for p in listed["items"]] == ["default", *made]
    assert [p["status"] for p in listed["items"]] == ["enabled", "enabled", "disabled", "enabled"]
    assert (listed["total"], listed["page"], listed["page_size"]) == (4, 1, 20)

    enabled = projects.list(account_id, status="enabled")
    assert [p["id"] for p in enabled["items"]] == ["default", made[0], made[2]]
    disabled = projects.list(account_id, status="disabled")
    assert ([p["id"] for p in disabled["items"]], disabled["total"]) == ([made[1]], 1)

    second = projects.list(account_id, page="2", page_size="2")
    assert ([p["id"] for p in second["items"]], second["total"]) == (made[1:], 4)
    with pytest.raises(ValidationError) as raised:
        projects.list(account_id, status="archived")
    assert list(raised.value.fields) == ["status"]


def test_disable_and_enable_are_idempotent_and_announced_once_each(projects):
    account_id = projects.open_account()
    project_id = projects.create(account_id, "Lab")["id"]
    disabled_before, enabled_before = counted("disabled"), counted("enabled")

    projects.clock.advance(dt.timedelta(hours=1))
    disabled = projects.disable(account_id, project_id)
    projects.clock.advance(dt.timedelta(hours=1))
    again = projects.disable(account_id, project_id)

    assert (disabled["status"], disabled["revision"]) == ("disabled", 2)
    assert disabled["updated_at"] == START + dt.timedelta(hours=1)
    assert again == disabled  # unchanged, not even its time
    (event,) = projects.events(DISABLED, project_id)
    assert event["data"]["status"] == "disabled" and event["data"]["revision"] == 2
    assert event["data"]["updated_at"] == (START + dt.timedelta(hours=1)).isoformat()
    EVENT_CONTRACTS[(DISABLED, 1)].instance.load(event["data"])

    projects.clock.advance(dt.timedelta(hours=1))
    enabled = projects.enable(account_id, project_id)
    again = projects.enable(account_id, project_id)
    assert (enabled["status"], enabled["revision"]) == ("enabled", 3)
    assert again == enabled
    (event,) = projects.events(ENABLED, project_id)
    assert (event["data"]["status"], event["data"]["revision"]) == ("enabled", 3)
    assert event["data"]["updated_at"] == (START + dt.timedelta(hours=3)).isoformat()

    assert counted("disabled") == disabled_before + 1
    assert counted("enabled") == enabled_before + 1
    shown = usecases.enterprise_project(projects.uow, account_id=account_id, project_id=project_id)
    assert (shown["status"], shown["revision"]) == ("enabled", 3)


def test_the_default_project_cannot_be_disabled(projects):
    account_id = projects.open_account()
    with pytest.raises(BusinessRuleViolation) as raised:
        projects.disable(account_id, "default")
    assert raised.value.code == "DEFAULT_PROJECT_REQUIRED"
    assert projects.events(DISABLED) == []
    # enabling it is no change
    assert projects.enable(account_id, "default")["revision"] == 1
    assert projects.events(ENABLED) == []


def test_another_accounts_project_is_not_found(projects):
    account_id = projects.open_account()
    other_id = projects.open_account("bob@example.com")
    project_id = projects.create(other_id, "Theirs")["id"]

    for act in (projects.disable, projects.enable):
        with pytest.raises(NotFound):
            act(account_id, project_id)
        with pytest.raises(NotFound):
            act(account_id, "eps_unknown")
    with pytest.raises(NotFound):
        usecases.enterprise_project(projects.uow, account_id=account_id, project_id=project_id)
    assert [p["id"] for p in projects.list(account_id)["items"]] == ["default"]
    assert projects.events(DISABLED) == []
    assert usecases.enterprise_project(projects.uow, account_id=other_id, project_id=project_id)[
        "status"
    ] == ("enabled")


def test_a_creation_retried_with_its_key_answers_the_first_project(projects):
    account_id = projects.open_account()

    def create():
        return usecases.create_enterprise_project(
            projects.uow,
            projects.clock,
            account_id=account_id,
            name="Lab",
            description="",
            type="test",
            request_key="a" * 64,
        )

    first = create()
    assert create() == first
    assert len(projects.events(CREATED, first["id"])) == 1


def test_the_migration_gives_existing_default_projects_their_details(databases):
    process = BY_NAME["iam_agency"]
    url = databases.empty("iam_agency_projects_0006")
    upgrade(process, url, "0006")
    engine = create_engine(url, pool_size=1)
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO accounts (id, name, type, created_at, time_zone) "
                    "VALUES ('acc_1', 'Ann', 'buyer', :at, 'UTC')"
                ),
                {"at": created},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO enterprise_projects (account_id, id, name, status, created_at) "
                    "VALUES ('acc_1', 'default', 'default', 'enabled', :at)"
                ),
                {"at": created},
            )
        upgrade(process, url)
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT type, description, updated_at, revision, created_at "
                    "FROM enterprise_projects"
                )
            ).one()
        assert (row.type, row.description, row.revision) == ("commercial", "", 1)
        assert row.updated_at == row.created_at
    finally:
        engine.dispose()


def test_the_rpcs_serve_buyers_only_and_answer_the_public_shape(
    container_factory, make_service_config
):
    config = make_service_config("iam_agency")
    container = container_factory(IamAgencyService, config)
    replace_dependencies(container, clock=ManualClock(START))
    container.start()

    def rpc(**context):
        return ServiceRpcProxy(
            "iam_agency", config, timeout=15, context_data=signed_context(context or None)
        )

    with rpc() as iam:
        buyer = iam.sign_up(
            {
                "name": "Ann",
                "email": "ann@example.com",
                "password": "long password",
                "type": "buyer",
            }
        )
        seller = iam.sign_up(
            {
                "name": "Sam",
                "email": "sam@example.com",
                "password": "long password",
                "type": "seller",
            }
        )
    with rpc(account_id=buyer["id"], user_id="usr_1", account_type="buyer", roles=["buyer"]) as iam:
        created = iam.create_enterprise_project({"name": "Lab", "type": "test"})
        with pytest.raises(ValidationError) as raised:
            iam.create_enterprise_project({"name": "Lab2", "type": "staging"})
        assert list(raised.value.fields) == ["type"]
        disabled = iam.disable_enterprise_project(created["id"])
        listed = iam.list_enterprise_projects({"status": "disabled"})
        with pytest.raises(BusinessRuleViolation):
            iam.disable_enterprise_project("default")
        default = iam.get_enterprise_project("default")
    assert created == {
        "id": created["id"],
        "name": "Lab",
        "description": "",
        "type": "test",
        "status": "enabled",
        "revision": 1,
        "created_at": START.isoformat(),
        "updated_at": START.isoformat(),
    }
    assert (disabled["status"], disabled["revision"]) == ("disabled", 2)
    assert listed == {"items": [disabled], "total": 1, "page": 1, "page_size": 20}
    assert (default["type"], default["status"], default["revision"]) == ("commercial", "enabled", 1)
    with rpc(
        account_id=seller["id"], user_id="usr_2", account_type="seller", roles=["seller"]
    ) as iam:
        with pytest.raises(Forbidden):
            iam.list_enterprise_projects({})
