"""Unit tests of iam-agency's rules and of its RPC boundary (no broker, no database)."""

import datetime as dt

import pytest
from nameko.testing.services import worker_factory

from iam_agency import domain
from iam_agency.service import IamAgencyService
from mercato.errors import RateLimited, ValidationError


def test_password_hash_is_argon2id_and_verifies_only_the_same_password():
    hashed = domain.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert domain.verify_password(hashed, "a long enough password")
    assert not domain.verify_password(hashed, "another password")


def test_unknown_user_never_verifies():
    assert not domain.verify_password(None, "whatever it is")


def test_a_hash_that_cannot_start_in_time_is_refused_with_retry_after(monkeypatch):
    slots = domain.HashingSlots(slots=1, wait_seconds=0.05)
    monkeypatch.setattr(domain, "PASSWORD_HASHING", slots)
    hashed = domain.hash_password("a long enough password")
    slots._semaphore.acquire()  # a flood holds every slot

    with pytest.raises(RateLimited) as refused:
        domain.verify_password(hashed, "a long enough password")
    with pytest.raises(RateLimited):
        domain.hash_password("another long password")

    assert refused.value.retry_after == 1
    slots._semaphore.release()
    assert domain.verify_password(hashed, "a long enough password")


def test_hashes_beyond_the_slots_wait_their_turn(monkeypatch):
    import eventlet

    slots = domain.HashingSlots(slots=2, wait_seconds=30)
    monkeypatch.setattr(domain, "PASSWORD_HASHING", slots)
    running, most = 0, 0
    real = domain._hasher

    class Counted:
        def hash(self, password):
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                return real.hash(password)
            finally:
                running -= 1

    monkeypatch.setattr(domain, "_hasher", Counted())
    pool = eventlet.GreenPool(6)
    hashes = list(pool.imap(domain.hash_password, [f"password number {n}" for n in range(6)]))

    assert len(hashes) == 6
    assert most <= 2


def test_tokens_are_random_and_only_their_digest_is_kept():
    token, digest = domain.new_token()
    other, _ = domain.new_token()
    assert token != other
    assert token.startswith(domain.TOKEN_PREFIX)
    assert digest == domain.token_digest(token)
    assert token not in digest


def test_token_lives_until_expiry_unless_revoked():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    expires = now + dt.timedelta(hours=1)
    assert domain.token_is_live(expires, None, now)
    assert not domain.token_is_live(expires, None, expires)
    assert not domain.token_is_live(expires, now, now)


def test_email_comparison_ignores_case_and_spaces():
    assert domain.normalise_email("  Ann@Example.COM ") == "ann@example.com"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "A", "email": "a@example.com", "password": "short", "type": "buyer"}, "password"),
        (
            {"name": "A", "email": "not-an-email", "password": "long enough pw", "type": "buyer"},
            "email",
        ),
        (
            {
                "name": "A",
                "email": "a@example.com",
                "password": "long enough pw",
                "type": "operator",
            },
            "type",
        ),
        (
            {
                "name": "A",
                "email": "a@example.com",
                "password": "long enough pw",
                "type": "buyer",
                "x": 1,
            },
            "x",
        ),
        ({"email": "a@example.com", "password": "long enough pw", "type": "buyer"}, "name"),
        (
            {"name": 7, "email": "a@example.com", "password": "long enough pw", "type": "buyer"},
            "name",
        ),
    ],
)
def test_sign_up_rejects_bad_input_naming_the_field_and_touches_nothing(payload, field):
    service = worker_factory(IamAgencyService)
    with pytest.raises(ValidationError) as raised:
        service.sign_up(payload)
    assert field in raised.value.fields
    assert not service.db.method_calls  # nothing written, nothing emitted
