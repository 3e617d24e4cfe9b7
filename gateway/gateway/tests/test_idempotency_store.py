"""The idempotency store on PostgreSQL and on SQLite (the embedded default): one key,
one piece of work, whatever the timing."""

import datetime as dt

import eventlet
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from gateway.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from gateway.idempotency import (
    UNKEPT,
    UNKNOWN,
    Claim,
    IdempotencyStore,
    Keyring,
    Replay,
    canonical_request,
)
from gateway.models import IdempotencyRecord
from mercato.clock import ManualClock
from mercato.db import create_engine
from mercato.migrations import upgrade
from mercato.topology import BY_NAME

TTL = dt.timedelta(hours=24)
LEASE = dt.timedelta(seconds=60)
SCOPE = "account:acc_1"
BODY = {"name": "Acme", "password": "correct horse battery"}
MATERIAL = canonical_request("POST", "/v1/accounts", BODY)
OTHER = canonical_request("POST", "/v1/accounts", {**BODY, "name": "Other"})
ANSWER = b'{"id": "acc_9", "secret": "s3cr3t"}'


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
    return ManualClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))


@pytest.fixture
def store(engine, clock):
    return IdempotencyStore(
        sessionmaker(bind=engine, expire_on_commit=False),
        Keyring("store-test-secret"),
        ttl=TTL,
        lease=LEASE,
        clock=clock,
    )


def rows(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(sa.select(IdempotencyRecord.__table__)).all()


def test_first_request_claims_the_key(store):
    assert isinstance(store.claim(SCOPE, "k1", MATERIAL), Claim)


def test_completed_request_is_replayed_with_its_status_and_body(store):
    claim = store.claim(SCOPE, "k1", MATERIAL)
    assert store.complete(claim, 201, "application/json", ANSWER)
    replay = store.claim(SCOPE, "k1", MATERIAL)
    assert replay == Replay(201, "application/json", ANSWER)


def test_same_key_with_another_body_is_rejected(store):
    store.complete(store.claim(SCOPE, "k1", MATERIAL), 201, "application/json", ANSWER)
    with pytest.raises(IdempotencyKeyReused):
        store.claim(SCOPE, "k1", OTHER)


def test_same_key_while_the_first_is_in_flight_is_a_conflict(store):
    store.claim(SCOPE, "k1", MATERIAL)
    with pytest.raises(IdempotencyKeyInFlight):
        store.claim(SCOPE, "k1", MATERIAL)


def test_released_key_can_be_claimed_again(store, engine):
    store.release(store.claim(SCOPE, "k1", MATERIAL))
    assert rows(engine) == []
    assert isinstance(store.claim(SCOPE, "k1", MATERIAL), Claim)


def test_keys_of_different_scopes_do_not_meet(store):
    store.claim(SCOPE, "k1", MATERIAL)
    assert isinstance(store.claim("anonymous", "k1", OTHER), Claim)


def test_abandoned_claim_is_taken_over_after_its_lease(store, clock):
    abandoned = store.claim(SCOPE, "k1", MATERIAL)
    clock.advance(LEASE)
    retry = store.claim(SCOPE, "k1", MATERIAL)
    assert isinstance(retry, Claim) and retry.lease != abandoned.lease
    assert store.complete(abandoned, 201, "application/json", b"late") is False
    assert store.complete(retry, 201, "application/json", ANSWER) is True
    assert store.claim(SCOPE, "k1", MATERIAL).body == ANSWER


def test_expired_record_is_forgotten_and_purged(store, clock, engine):
    store.complete(store.claim(SCOPE, "old", MATERIAL), 201, "application/json", ANSWER)
    clock.advance(hours=1)
    store.complete(store.claim(SCOPE, "new", MATERIAL), 201, "application/json", ANSWER)
    clock.advance(TTL - dt.timedelta(minutes=30))

    assert store.purge() == 1
    assert [row.key for row in rows(engine)] == ["new"]
    assert isinstance(store.claim(SCOPE, "new", MATERIAL), Replay)


def test_expired_key_is_claimed_afresh_before_any_purge(store, clock):
    store.complete(store.claim(SCOPE, "k1", MATERIAL), 201, "application/json", ANSWER)
    clock.advance(TTL)
    assert isinstance(store.claim(SCOPE, "k1", OTHER), Claim)


def test_no_secret_is_stored_in_the_clear(store, engine):
    store.complete(store.claim(SCOPE, "k1", MATERIAL), 201, "application/json", ANSWER)
    (row,) = rows(engine)
    stored = repr(tuple(row)).encode() + bytes(row.response)
    for secret in (b"s3cr3t", b"correct horse battery", b"acc_9"):
        assert secret not in stored


def test_concurrent_requests_with_one_key_claim_it_once(store):
    pool = eventlet.GreenPool(8)

    def attempt(_):
        try:
            return store.claim(SCOPE, "race", MATERIAL)
        except IdempotencyKeyInFlight as exc:
            return exc

    outcomes = list(pool.imap(attempt, range(8)))
    claims = [o for o in outcomes if isinstance(o, Claim)]
    assert len(claims) == 1
    assert all(isinstance(o, IdempotencyKeyInFlight) for o in outcomes if o is not claims[0])


def test_request_that_may_have_done_its_work_keeps_its_key_for_a_retry(store, engine):
    first = store.claim(SCOPE, "k1", MATERIAL)
    assert store.settle(first, UNKNOWN)
    (row,) = rows(engine)
    assert row.state == UNKNOWN and row.response is None

    retry = store.claim(SCOPE, "k1", MATERIAL)

    assert isinstance(retry, Claim) and retry.rerun and retry.lease != first.lease
    assert store.complete(retry, 201, "application/json", ANSWER)
    assert store.claim(SCOPE, "k1", MATERIAL) == Replay(201, "application/json", ANSWER)


def test_unknown_key_still_belongs_to_its_request(store):
    store.settle(store.claim(SCOPE, "k1", MATERIAL), UNKNOWN)
    with pytest.raises(IdempotencyKeyReused):
        store.claim(SCOPE, "k1", OTHER)


def test_retry_of_an_unknown_request_holds_the_key_while_it_runs(store):
    store.settle(store.claim(SCOPE, "k1", MATERIAL), UNKNOWN)
    store.claim(SCOPE, "k1", MATERIAL)
    with pytest.raises(IdempotencyKeyInFlight):
        store.claim(SCOPE, "k1", MATERIAL)


def test_response_not_to_be_stored_is_not_kept_and_its_retry_runs_again(store, engine):
    store.settle(store.claim(SCOPE, "k1", MATERIAL), UNKEPT)
    (row,) = rows(engine)
    assert row.state == UNKEPT and row.response is None and row.status_code is None
    retry = store.claim(SCOPE, "k1", MATERIAL)
    assert isinstance(retry, Claim) and retry.rerun


def test_settling_a_lost_claim_changes_nothing(store, clock):
    abandoned = store.claim(SCOPE, "k1", MATERIAL)
    clock.advance(LEASE)
    retry = store.claim(SCOPE, "k1", MATERIAL)
    assert store.settle(abandoned, UNKNOWN) is False
    with pytest.raises(IdempotencyKeyInFlight):
        store.claim(SCOPE, "k1", MATERIAL)
    assert store.complete(retry, 201, "application/json", ANSWER)
