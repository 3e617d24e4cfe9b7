"""The sign-in and sign-up limits' counters on PostgreSQL and SQLite, and whom an
attempt counts as (the client's address, through trusted proxies only)."""

import datetime as dt

import eventlet
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.models import RateLimitWindow
from gateway.ratelimits import Bucket, RateLimitStore, client_address
from gateway.settings import Limit, Settings, trusted_networks
from mercato.clock import ManualClock
from mercato.db import create_engine
from mercato.migrations import upgrade
from mercato.topology import BY_NAME

START = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
EMAIL = Bucket("sign_in:email:abc", "email", Limit(3, 60))
ADDRESS = Bucket("sign_in:address:192.0.2.1", "address", Limit(5, 60))


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("databases").fresh("gateway")
    else:
        url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        upgrade(BY_NAME["gateway"], url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def store(engine, clock):
    return RateLimitStore(sessionmaker(bind=engine, expire_on_commit=False), clock=clock)


def test_attempts_past_the_limit_are_over_until_the_window_ends(store, clock):
    clock.advance(seconds=15)
    assert [store.hit([EMAIL, ADDRESS]) for _ in range(3)] == [[], [], []]

    over = store.hit([EMAIL, ADDRESS])

    assert over == [(EMAIL, 45.0)]  # the window is the clock's minute: 45 s of it left
    clock.advance(seconds=45)
    assert store.hit([EMAIL, ADDRESS]) == []


def test_each_bucket_counts_on_its_own(store):
    other = Bucket("sign_in:email:def", "email", Limit(3, 60))
    for _ in range(3):
        store.hit([EMAIL])

    assert store.hit([other]) == []
    assert [bucket for bucket, _ in store.hit([EMAIL, other])] == [EMAIL]


def test_concurrent_attempts_are_all_counted(store):
    # every replica's attempt is one upsert: none is lost to a race
    pool = eventlet.GreenPool(10)
    results = list(pool.imap(lambda _: store.hit([ADDRESS]), range(10)))

    assert sum(1 for over in results if over) == 5


def test_purge_deletes_the_windows_that_ended(store, engine, clock):
    store.hit([EMAIL])
    clock.advance(seconds=61)
    store.hit([EMAIL])

    assert store.purge() == 1
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(RateLimitWindow)).scalar()
            == 1
        )


def request_from(peer: str, forwarded: str | None = None) -> Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    builder = EnvironBuilder(path="/v1/auth/tokens", headers=headers)
    environ = builder.get_environ()
    environ["REMOTE_ADDR"] = peer
    return Request(environ)


PROXIES = trusted_networks("10.0.0.0/8, 192.168.1.7")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # no trusted proxy: X-Forwarded-For is anyone's to write, and is ignored
        ("203.0.113.9", "198.51.100.1", (), "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", PROXIES, "203.0.113.9"),
        # through a trusted proxy: the address it was given the request by
        ("10.1.2.3", "198.51.100.1", PROXIES, "198.51.100.1"),
        # a client's own X-Forwarded-For is left of the proxy's: the right-most untrusted wins
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.168.1.7", PROXIES, "198.51.100.1"),
        # only proxies: the farthest one
        ("10.1.2.3", "10.9.9.9", PROXIES, "10.9.9.9"),
        # garbage stops the walk at the last proxy that spoke sanely
        ("10.1.2.3", "198.51.100.1, not-an-address", PROXIES, "10.1.2.3"),
        ("10.1.2.3", None, PROXIES, "10.1.2.3"),
        # an IPv6 host counts by its /64
        ("2001:db8:1:2:3:4:5:6", None, (), "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", None, (), "203.0.113.9"),
    ],
)
def test_the_client_address_trusts_x_forwarded_for_from_trusted_proxies_only(
    peer, forwarded, trusted, client
):
    assert client_address(request_from(peer, forwarded), trusted) == client


def test_limits_are_read_from_the_config():
    settings = Settings.from_config(
        {
            "SIGN_IN_LIMIT_PER_EMAIL": "3/60",
            "SIGN_UP_LIMIT_PER_ADDRESS": "off",
            "TRUSTED_PROXIES": "10.0.0.0/8",
        }
    )

    assert settings.sign_in_per_email == Limit(3, 60)
    assert settings.sign_in_per_address == Settings().sign_in_per_address
    assert settings.sign_up_per_address is None
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8"]


@pytest.mark.parametrize("value", ["ten/60", "10", "0/60", "10/0", "-1/60"])
def test_a_malformed_limit_is_refused_naming_its_key(value):
    with pytest.raises(ValueError, match="SIGN_IN_LIMIT_PER_EMAIL"):
        Settings.from_config({"SIGN_IN_LIMIT_PER_EMAIL": value})
