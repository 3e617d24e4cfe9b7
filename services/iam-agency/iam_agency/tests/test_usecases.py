"""iam-agency's use cases against an in-memory repository: accounts, tokens and
projects, in milliseconds (``test_service.py`` runs them on PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from iam_agency import usecases
from iam_agency.tests.fakes import FakeAccountRepository
from mercato.clock import ManualClock
from mercato.contracts import iam_agency as contract
from mercato.errors import Conflict, NotFound, Unauthenticated
from mercato_testing.fakes import FakeUnitOfWork

TTL = dt.timedelta(hours=12)
PASSWORD = "correct horse battery"


@pytest.fixture
def uow():
    return FakeUnitOfWork(accounts=FakeAccountRepository())


@pytest.fixture
def clock():
    return ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


def sign_up(uow, clock, email="ada@acme.test", type="buyer"):
    return usecases.open_account(uow, clock, name="Acme", email=email, password=PASSWORD, type=type)


def test_an_account_opens_with_its_user_and_default_project_and_is_announced(uow, clock):
    account = sign_up(uow, clock, email="Ada@Acme.TEST")
    assert account["email"] == "ada@acme.test"
    assert usecases.enterprise_project(uow, account_id=account["id"], project_id="default")
    (created,) = uow.committed_events("iam_agency.account.created")
    assert created.data["account_id"] == account["id"]


def test_a_second_account_with_the_same_email_is_refused_and_announces_nothing(uow, clock):
    sign_up(uow, clock)
    with pytest.raises(Conflict, match="already has an account"):
        sign_up(uow, clock, email="ADA@acme.test")
    assert len(uow.committed_events("iam_agency.account.created")) == 1


def test_a_token_names_its_caller_until_it_expires(uow, clock):
    account = sign_up(uow, clock)
    issued = usecases.issue_token(uow, clock, email="ada@acme.test", password=PASSWORD, ttl=TTL)
    caller = usecases.authenticate(uow, clock, issued["token"])
    assert (caller["account_id"], caller["roles"]) == (account["id"], ["buyer"])
    clock.advance(TTL)
    with pytest.raises(Unauthenticated, match="expired"):
        usecases.authenticate(uow, clock, issued["token"])


def test_a_wrong_password_or_an_unknown_email_gets_no_token(uow, clock):
    sign_up(uow, clock)
    for email, password in (("ada@acme.test", "wrong password!"), ("bob@acme.test", PASSWORD)):
        with pytest.raises(Unauthenticated):
            usecases.issue_token(uow, clock, email=email, password=password, ttl=TTL)


def test_a_revoked_token_no_longer_authenticates_and_only_its_user_revokes_it(uow, clock):
    sign_up(uow, clock)
    issued = usecases.issue_token(uow, clock, email="ada@acme.test", password=PASSWORD, ttl=TTL)
    user_id = usecases.authenticate(uow, clock, issued["token"])["user_id"]
    with pytest.raises(NotFound):
        usecases.revoke_token(uow, clock, issued["token"], user_id="usr_someone_else")
    usecases.revoke_token(uow, clock, issued["token"], user_id=user_id)
    with pytest.raises(Unauthenticated):
        usecases.authenticate(uow, clock, issued["token"])


def test_a_reseller_customer_belongs_to_its_reseller(uow, clock):
    reseller = sign_up(uow, clock, email="res@acme.test", type="reseller")
    buyer = sign_up(uow, clock, email="buyer@acme.test")
    customer = usecases.open_reseller_customer(
        uow,
        clock,
        reseller_account_id=reseller["id"],
        name="C",
        email="c@acme.test",
        password=PASSWORD,
    )
    assert customer["reseller_account_id"] == reseller["id"]
    with pytest.raises(NotFound):  # a buyer is no reseller
        usecases.open_reseller_customer(
            uow,
            clock,
            reseller_account_id=buyer["id"],
            name="D",
            email="d@acme.test",
            password=PASSWORD,
        )


def test_account_cards_name_accounts_and_show_only_the_emails_asked_for(uow, clock):
    ann = usecases.open_account(
        uow, clock, name="Ann Ltd", email="ann@acme.test", password=PASSWORD, type="buyer"
    )
    bob = usecases.open_account(
        uow, clock, name="Bob Ltd", email="bob@acme.test", password=PASSWORD, type="buyer"
    )
    cards = usecases.account_cards(
        uow,
        account_ids=[bob["id"], "acc_unknown", ann["id"], bob["id"]],
        contact_account_ids=[ann["id"], "acc_unknown"],
    )
    assert cards == {
        "items": [
            {"account_id": bob["id"], "name": "Bob Ltd"},
            {"account_id": ann["id"], "name": "Ann Ltd", "email": "ann@acme.test"},
        ]
    }


# -- the account's time zone ----------------------------------------------------


def test_an_account_is_in_utc_until_it_chooses_another_zone_which_is_announced_once(uow, clock):
    account = sign_up(uow, clock)
    assert account["time_zone"] == "UTC"
    clock.advance(dt.timedelta(minutes=5))

    changed = usecases.change_time_zone(
        uow, clock, account_id=account["id"], time_zone="Asia/Shanghai"
    )
    again = usecases.change_time_zone(
        uow, clock, account_id=account["id"], time_zone="Asia/Shanghai"
    )

    assert (
        changed
        == again
        == {
            "id": account["id"],
            "name": "Acme",
            "type": "buyer",
            "time_zone": "Asia/Shanghai",
        }
    )
    (event,) = uow.committed_events("iam_agency.account.time_zone_changed")
    assert event.subject == account["id"]
    assert event.data["time_zone"] == "Asia/Shanghai"
    assert event.data["changed_at"] == "2026-12-01T00:05:00+00:00"
    user = next(iter(uow.repositories["accounts"].table("users").values()))
    described = usecases.describe_caller(uow, account_id=account["id"], user_id=user.id)
    assert described["account"]["time_zone"] == "Asia/Shanghai"


def test_back_to_utc_is_a_change_and_an_unknown_account_is_not_found(uow, clock):
    account = sign_up(uow, clock)
    usecases.change_time_zone(uow, clock, account_id=account["id"], time_zone="Europe/Paris")
    usecases.change_time_zone(uow, clock, account_id=account["id"], time_zone="UTC")
    zones = [e.data["time_zone"] for e in uow.committed_events(TIME_ZONE_CHANGED)]
    assert zones == ["Europe/Paris", "UTC"]
    with pytest.raises(NotFound):
        usecases.change_time_zone(uow, clock, account_id="acc_nobody", time_zone="UTC")


TIME_ZONE_CHANGED = "iam_agency.account.time_zone_changed"


@pytest.mark.parametrize(
    "name, valid",
    [
        ("UTC", True),
        ("Asia/Shanghai", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Etc/GMT+8", True),
        ("Mars/Olympus_Mons", False),
        ("../etc/passwd", False),
        ("/usr/share/zoneinfo/UTC", False),
        ("", False),
        (None, False),
        ("Asia/Shanghai\n", False),
    ],
)
def test_an_iana_time_zone_is_one_zoneinfo_knows_and_no_path(name, valid):
    assert contract.is_time_zone(name) is valid
