"""A retried request (the same downstream key, as the gateway passes it when it runs a
request again after a failure that may have done the work) answers its first result:
an agency authorisation is not done in the cloud again, a reseller's customer is not
refused as EMAIL_TAKEN. On in-memory repositories and an in-memory IAM."""

from __future__ import annotations

import datetime as dt

import pytest

from iam_agency import usecases
from iam_agency.cloud import CloudSettings, Keys
from iam_agency.credentials import CredentialCache
from iam_agency.settings import Settings
from iam_agency.tests.fakes import FakeAccountRepository, FakeAgencyRepository, FakeIam
from mercato.clock import ManualClock
from mercato.errors import BusinessRuleViolation, Conflict
from mercato_testing.fakes import FakeUnitOfWork

KEY = "a" * 64
OTHER_KEY = "b" * 64


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


def open_account(uow, clock, type_: str, email: str) -> str:
    return usecases.open_account(
        uow, clock, name="Ann", email=email, password="long password", type=type_
    )["id"]


def test_an_authorisation_retried_with_its_key_is_not_done_again(uow, clock, deps, iam):
    account_id = open_account(uow, clock, "buyer", "ann@example.com")
    usecases.link_cloud_account(
        uow,
        clock,
        deps,
        account_id=account_id,
        request={"provider": "simulated", "region": "r1", "domain_id": "d1", "project_id": "p1"},
    )

    def authorize():
        return usecases.authorize_agencies(
            uow, clock, deps, account_id=account_id, keys=Keys("A", "S"), request_key=KEY
        )

    first = authorize()
    calls = len(iam.calls)
    events = len(uow.committed_events("iam_agency.agency.authorized"))
    again = authorize()

    assert again == first
    assert len(iam.calls) == calls  # the cloud was not asked again
    assert len(uow.committed_events("iam_agency.agency.authorized")) == events


def test_a_reseller_customer_retried_with_its_key_is_the_first_one(uow, clock):
    reseller = open_account(uow, clock, "reseller", "shop@example.com")

    def create(key: str, name: str = "Bob"):
        return usecases.open_reseller_customer(
            uow,
            clock,
            reseller_account_id=reseller,
            name=name,
            email="Bob@Example.com",
            password="long password",
            request_key=key,
        )

    first = create(KEY)
    again = create(KEY)

    assert again == first and first["reseller_account_id"] == reseller
    assert len(uow.committed_events("iam_agency.account.created")) == 2  # reseller, customer
    with pytest.raises(Conflict):  # another request for the same email
        create(OTHER_KEY)
    with pytest.raises(BusinessRuleViolation) as reused:  # the key for another customer
        create(KEY, name="Carol")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_a_sign_up_retried_with_its_key_answers_the_account_it_opened(uow, clock):
    def sign_up(key: str, name: str = "Ann"):
        return usecases.sign_up(
            uow,
            clock,
            name=name,
            email="Ann@Example.com",
            password="long password",
            type="buyer",
            request_key=key,
        )

    first = sign_up(KEY)
    again = sign_up(KEY)

    assert again == first
    assert len(uow.committed_events("iam_agency.account.created")) == 1
    with pytest.raises(Conflict) as taken:  # another sign-up for the same email
        sign_up(OTHER_KEY)
    assert taken.value.code == "EMAIL_TAKEN"
