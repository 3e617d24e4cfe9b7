"""iam-agency in a real container, on PostgreSQL and RabbitMQ."""

import datetime as dt
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from iam_agency.service import IamAgencyService
from mercato.clock import ManualClock
from mercato.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationError
from mercato.identity import Identity
from mercato_testing import signed_context
from mercato_testing.interface import EventQueue

pytestmark = pytest.mark.interface

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
PASSWORD = "ann's long password"


@pytest.fixture
def iam(container_factory, make_service_config):
    """A running iam-agency whose clock the test moves; yields (config, clock)."""
    config = make_service_config("iam_agency", TOKEN_TTL_SECONDS=3600)
    container = container_factory(IamAgencyService, config)
    clock = ManualClock(START)
    replace_dependencies(container, clock=clock)
    container.start()
    return config, clock


def rpc(config, **context):
    return ServiceRpcProxy(
        "iam_agency", config, timeout=15, context_data=signed_context(context or None)
    )


def sign_up(config, email="ann@example.com", type="buyer"):
    with rpc(config) as iam:
        return iam.sign_up({"name": "Ann", "email": email, "password": PASSWORD, "type": type})


def issue_token(service, email="ann@example.com", password=PASSWORD) -> str:
    return service.issue_token({"email": email, "password": password})["token"]


def signed_in(config, email="ann@example.com", password=PASSWORD) -> tuple[str, dict]:
    """A token of the account's user, and the identity it authenticates as."""
    with rpc(config) as service:
        token = issue_token(service, email, password)
        return token, service.authenticate(token)


def as_caller(config, identity: dict):
    return rpc(
        config,
        account_id=identity["account_id"],
        user_id=identity["user_id"],
        account_type=identity["account_type"],
        roles=identity["roles"],
    )


def test_sign_up_sign_in_and_describe_the_caller(iam):
    config, _clock = iam
    account = sign_up(config, email="Ann@Example.com")
    assert account["email"] == "ann@example.com" and account["type"] == "buyer"

    _token, identity = signed_in(config)
    assert identity["account_id"] == account["id"]
    assert identity["roles"] == ["buyer"]
    assert Identity.from_context(identity) is not None

    with as_caller(config, identity) as service:
        me = service.me()
        project = service.get_enterprise_project("default")
    assert me == {
        "account": {"id": account["id"], "name": "Ann", "type": "buyer", "time_zone": "UTC"},
        "user": {"id": identity["user_id"], "email": "ann@example.com"},
        "roles": ["buyer"],
    }
    assert project["id"] == "default"


def test_sign_up_announces_the_new_account(iam):
    config, _clock = iam
    queue = EventQueue(config["AMQP_URI"], "iam_agency", "iam_agency.account.created")
    try:
        account = sign_up(config)
        envelope = queue.next(timeout=15)
    finally:
        queue.close()
    assert envelope["type"] == "iam_agency.account.created"
    assert envelope["subject"] == account["id"]
    assert envelope["data"] == {
        "account_id": account["id"],
        "name": "Ann",
        "type": "buyer",
        "reseller_account_id": None,
    }


def test_second_sign_up_with_the_same_email_in_any_case_is_refused(iam):
    config, _clock = iam
    sign_up(config, email="bob@example.com")
    with pytest.raises(Conflict) as raised:
        sign_up(config, email="BOB@example.com")
    assert raised.value.code == "EMAIL_TAKEN"


def test_concurrent_sign_ups_with_one_email_open_one_account(iam):
    config, _clock = iam

    def attempt(_):
        try:
            return sign_up(config, email="race@example.com")["id"]
        except Conflict:
            return None

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(attempt, range(5)))
    assert len([r for r in results if r]) == 1


def test_wrong_password_and_unknown_email_are_refused_alike(iam):
    config, _clock = iam
    sign_up(config)
    with rpc(config) as service:
        for email, password in [
            ("ann@example.com", "wrong password!"),
            ("nobody@example.com", "x"),
        ]:
            with pytest.raises(Unauthenticated) as raised:
                service.issue_token({"email": email, "password": password})
            assert raised.value.message == "wrong email or password"


def test_token_expires_after_its_lifetime(iam):
    config, clock = iam
    sign_up(config)
    with rpc(config) as service:
        token = issue_token(service)
        service.authenticate(token)
        clock.advance(seconds=3600)
        with pytest.raises(Unauthenticated):
            service.authenticate(token)


def test_revoked_token_no_longer_authenticates(iam):
    config, _clock = iam
    sign_up(config)
    token, identity = signed_in(config)
    with as_caller(config, identity) as service:
        service.revoke_token(token)
    with rpc(config) as service, pytest.raises(Unauthenticated):
        service.authenticate(token)


@pytest.mark.parametrize("token", ["", "garbage", "mkt_" + "x" * 43, None, 12])
def test_unknown_or_malformed_tokens_do_not_authenticate(iam, token):
    config, _clock = iam
    with rpc(config) as service, pytest.raises(Unauthenticated):
        service.authenticate(token)


def test_me_needs_a_caller_and_projects_belong_to_their_account(iam):
    config, _clock = iam
    sign_up(config)
    with rpc(config) as service, pytest.raises(Unauthenticated):
        service.me()
    _token, identity = signed_in(config)
    with as_caller(config, identity) as service, pytest.raises(NotFound):
        service.get_enterprise_project("someone-elses")


def test_database_keeps_no_token_or_password_in_plain_text(iam):
    config, _clock = iam
    sign_up(config)
    token, _identity = signed_in(config)
    engine = sa.create_engine(config["DATABASE_URL"])
    with engine.connect() as connection:
        dump = "\n".join(
            str(row)
            for table in ("accounts", "users", "api_tokens", "outbox_messages")
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        )
    engine.dispose()
    assert token not in dump
    assert PASSWORD not in dump
    assert "$argon2id$" in dump


def test_create_operator_command_opens_an_operator_account_once(iam):
    config, _clock = iam
    env = {
        "IAM_AGENCY_DATABASE_URL": config["DATABASE_URL"],
        "MERCATO_OPERATOR_PASSWORD": "operator long pass",
    }
    command = [
        sys.executable,
        "-m",
        "iam_agency.cli",
        "--name",
        "Ops",
        "--email",
        "ops@example.com",
    ]
    import os

    first = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    assert again.returncode == 1 and "EMAIL_TAKEN" in again.stderr
    _token, identity = signed_in(config, "ops@example.com", "operator long pass")
    assert identity["roles"] == ["operator"]


def test_reseller_opens_a_customer_account_it_pays_for(iam):
    config, _clock = iam
    reseller = sign_up(config, email="reseller@example.com", type="reseller")
    _token, reseller_identity = signed_in(config, "reseller@example.com")
    with as_caller(config, reseller_identity) as service:
        customer = service.create_reseller_customer(
            {"name": "Cust", "email": "cust@example.com", "password": "customer long pw"}
        )
    assert customer["type"] == "buyer"
    assert customer["reseller_account_id"] == reseller["id"]
    _token, identity = signed_in(config, "cust@example.com", "customer long pw")
    assert identity["reseller_account_id"] == reseller["id"]
    assert Identity.from_context(identity).reseller_account_id == reseller["id"]


def test_only_a_reseller_opens_customer_accounts(iam):
    config, _clock = iam
    sign_up(config, email="buyer@example.com", type="buyer")
    _token, identity = signed_in(config, "buyer@example.com")
    from mercato.errors import Forbidden

    with as_caller(config, identity) as service, pytest.raises(Forbidden):
        service.create_reseller_customer(
            {"name": "Cust", "email": "cust2@example.com", "password": "customer long pw"}
        )


def test_account_cards_answer_names_and_the_shared_emails_to_sellers_only(iam):
    config, _clock = iam
    buyer = sign_up(config, email="ann@example.com")
    other = sign_up(config, email="Bob@Example.com")
    sign_up(config, email="seller@example.com", type="seller")
    _token, seller = signed_in(config, email="seller@example.com")
    _token, ann = signed_in(config, email="ann@example.com")
    request = {"account_ids": [buyer["id"], other["id"]], "contact_account_ids": [other["id"]]}

    with as_caller(config, seller) as service:
        cards = service.account_cards(request)
        with pytest.raises(ValidationError) as raised:
            service.account_cards({"account_ids": [buyer["id"]], "contact_account_ids": ["x"]})
    assert cards == {
        "items": [
            {"account_id": buyer["id"], "name": "Ann"},
            {"account_id": other["id"], "name": "Ann", "email": "bob@example.com"},
        ]
    }
    assert list(raised.value.fields) == ["contact_account_ids"]
    with as_caller(config, ann) as service, pytest.raises(Forbidden):
        service.account_cards(request)
    with rpc(config) as anonymous, pytest.raises(Unauthenticated):
        anonymous.account_cards(request)


# -- the account's time zone ----------------------------------------------------


def test_an_account_changes_its_time_zone_once_and_announces_it(iam):
    config, clock = iam
    account = sign_up(config)
    assert account["time_zone"] == "UTC"
    _token, identity = signed_in(config)
    queue = EventQueue(config["AMQP_URI"], "iam_agency", "iam_agency.account.time_zone_changed")
    try:
        with as_caller(config, identity) as service:
            changed = service.change_time_zone({"time_zone": "Asia/Shanghai"})
            again = service.change_time_zone({"time_zone": "Asia/Shanghai"})
            me = service.me()
            clock.advance(seconds=60)
            service.change_time_zone({"time_zone": "Europe/Paris"})
        envelope = queue.next(timeout=15)
        # the same zone again announced nothing: the next event is the next change
        following = queue.next(timeout=15)
    finally:
        queue.close()
    expected = {"id": account["id"], "name": "Ann", "type": "buyer", "time_zone": "Asia/Shanghai"}
    assert changed == again == me["account"] == expected
    assert envelope["subject"] == account["id"]
    assert envelope["data"] == {
        "account_id": account["id"],
        "time_zone": "Asia/Shanghai",
        "changed_at": START.isoformat(),
    }
    assert following["data"]["time_zone"] == "Europe/Paris"
    assert following["data"]["changed_at"] == (START + dt.timedelta(seconds=60)).isoformat()


def test_a_time_zone_change_names_the_field_of_an_unknown_zone_and_needs_an_account(iam):
    config, _clock = iam
    sign_up(config)
    sign_up(config, email="ops@example.com")
    _token, identity = signed_in(config)
    with as_caller(config, identity) as service:
        for wrong in ("Mars/Olympus_Mons", "../etc/passwd", "", "Asia/Shanghai/x" * 10, 8):
            with pytest.raises(ValidationError) as raised:
                service.change_time_zone({"time_zone": wrong})
            assert list(raised.value.fields) == ["time_zone"]
            rule = "an IANA time zone such as Asia/Shanghai" if wrong != 8 else "valid string"
            assert rule in raised.value.fields["time_zone"][0]
        assert service.me()["account"]["time_zone"] == "UTC"
    with rpc(config) as anonymous, pytest.raises(Unauthenticated):
        anonymous.change_time_zone({"time_zone": "UTC"})
    operator = {**identity, "account_type": "operator", "roles": ["operator"]}
    with as_caller(config, operator) as service, pytest.raises(Forbidden):
        service.change_time_zone({"time_zone": "UTC"})
