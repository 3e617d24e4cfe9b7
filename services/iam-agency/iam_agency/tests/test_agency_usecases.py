"""The agency use cases against in-memory repositories and an in-memory IAM, in
milliseconds: what a check does when the cloud does not answer or the agencies change
under it, and when cached credentials are handed out (``test_agencies.py`` runs the
same against PostgreSQL and the simulated cloud)."""

from __future__ import annotations

import datetime as dt

import pytest

from iam_agency import policies, usecases
from iam_agency.cloud import CloudError, CloudSettings, Keys
from iam_agency.credentials import CredentialCache
from iam_agency.settings import Settings
from iam_agency.tests.fakes import FakeAccountRepository, FakeAgencyRepository, FakeIam
from mercato.clock import ManualClock
from mercato.errors import Conflict, ServiceUnavailable
from mercato_testing.fakes import FakeUnitOfWork

MKP, RFS = policies.MKP_AGENCY, policies.RFS_AGENCY
UNANSWERED = CloudError("the cloud did not answer", call="X")
REFUSED = CloudError("the cloud refused X (IAM.0003: not trusted)", call="X", status=403)


@pytest.fixture
def clock():
    return ManualClock(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))


@pytest.fixture
def iam():
    return FakeIam()


@pytest.fixture
def deps(iam):
    cloud = CloudSettings("http://cloud", "r1", "dom-mercato", "mercato", Keys("AK", "SK"))
    return usecases.AgencyDeps(Settings(cloud=cloud), iam, CredentialCache())  # type: ignore[arg-type]


@pytest.fixture
def uow():
    return FakeUnitOfWork(accounts=FakeAccountRepository(), agencies=FakeAgencyRepository())


@pytest.fixture
def account_id(uow, clock, deps):
    account = usecases.open_account(
        uow, clock, name="Ann", email="ann@example.com", password="long password", type="buyer"
    )
    usecases.link_cloud_account(
        uow,
        clock,
        deps,
        account_id=account["id"],
        request={"provider": "simulated", "region": "r1", "domain_id": "d1", "project_id": "p1"},
    )
    usecases.authorize_agencies(uow, clock, deps, account_id=account["id"], keys=Keys("A", "S"))
    return account["id"]


def statuses(uow, deps, account_id):
    listed = usecases.list_agencies(uow, deps, account_id=account_id)
    return {item["name"]: item["status"] for item in listed["items"]}


def test_a_cloud_that_does_not_answer_changes_nothing(uow, clock, deps, iam, account_id):
    iam.fail["ListAgencies"] = UNANSWERED
    clock.advance(hours=2)
    with pytest.raises(ServiceUnavailable):
        usecases.check_account(uow, clock, deps, account_id=account_id)
    assert statuses(uow, deps, account_id) == {MKP: "authorized", RFS: "authorized"}
    assert uow.committed_events("iam_agency.agency.broken") == []
    agencies = uow.agencies.agencies(account_id)
    assert agencies[MKP].checked_at == dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def test_a_refused_assume_breaks_mkp_alone(uow, clock, deps, iam, account_id):
    iam.fail["CreateTemporaryAccessKeyByAgency"] = REFUSED
    results = usecases.check_account(uow, clock, deps, account_id=account_id)
    assert results == {MKP: "broken"}
    assert statuses(uow, deps, account_id) == {MKP: "broken", RFS: "authorized"}
    (broken,) = uow.committed_events("iam_agency.agency.broken")
    assert broken.data["problems"][0]["code"] == "ASSUME_FAILED"
    assert "IAM.0003" in broken.data["problems"][0]["message"]


def test_a_check_overtaken_by_a_new_authorisation_is_not_applied(uow, clock, deps, iam, account_id):
    iam.agencies.pop(RFS)  # deleted in the cloud ...

    def authorised_again_meanwhile():
        iam.during_check = None
        usecases.authorize_agencies(uow, clock, deps, account_id=account_id, keys=Keys("A", "S"))

    iam.during_check = authorised_again_meanwhile
    results = usecases.check_account(uow, clock, deps, account_id=account_id)

    assert results == {}
    assert statuses(uow, deps, account_id) == {MKP: "authorized", RFS: "authorized"}
    assert uow.committed_events("iam_agency.agency.broken") == []


def test_credentials_are_not_handed_out_from_the_cache_after_another_replica_changed_them(
    uow, clock, deps, iam, account_id
):
    first = usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    again = usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    assert first["access_key"] == again["access_key"] and iam.assumed == 1

    # another replica authorised the agencies again: the revision moved in the database
    for agency in uow.agencies.agencies(account_id).values():
        agency.revision += 1
    uow.commit()

    renewed = usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    assert renewed["access_key"] != first["access_key"] and iam.assumed == 2


def test_credentials_refused_while_the_cloud_does_not_answer_are_an_outage(
    uow, clock, deps, iam, account_id
):
    iam.fail["CreateTemporaryAccessKeyByAgency"] = UNANSWERED
    with pytest.raises(ServiceUnavailable):
        usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    assert statuses(uow, deps, account_id) == {MKP: "authorized", RFS: "authorized"}
    iam.fail["CreateTemporaryAccessKeyByAgency"] = REFUSED
    with pytest.raises(Conflict) as refused:
        usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    assert refused.value.code == "AGENCY_BROKEN"


def test_a_deletion_the_cloud_cannot_carry_out_still_revokes_at_once(
    uow, clock, deps, iam, account_id
):
    usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    iam.fail["DeleteAgency"] = UNANSWERED
    usecases.delete_agency(uow, clock, deps, account_id=account_id, name=MKP)
    assert statuses(uow, deps, account_id) == {MKP: "not_authorized", RFS: "not_authorized"}
    assert len(deps.cache) == 0
    assert sorted(e.data["agency"] for e in uow.committed_events("iam_agency.agency.revoked")) == [
        MKP,
        RFS,
    ]
    with pytest.raises(Conflict) as refused:
        usecases.agency_credentials(uow, clock, deps, account_id=account_id, check=False)
    assert refused.value.code == "AGENCY_NOT_AUTHORIZED"


def test_scheduled_checks_claim_each_due_account_once(uow, clock, deps, iam, account_id):
    assert usecases.claim_due_checks(uow, clock, deps) == []
    clock.advance(seconds=deps.settings.check_seconds)
    assert usecases.claim_due_checks(uow, clock, deps) == [account_id]
    assert usecases.claim_due_checks(uow, clock, deps) == []  # held by the first
    clock.advance(seconds=deps.settings.check_lease_seconds)
    assert usecases.run_due_checks(uow, clock, deps) == 1  # its lease ran out
    assert usecases.claim_due_checks(uow, clock, deps) == []  # checked: due again later
