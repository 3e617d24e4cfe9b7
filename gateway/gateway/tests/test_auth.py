"""Bearer tokens: parsed strictly, validated by iam-agency, cached briefly and safely."""

import datetime as dt
from types import SimpleNamespace

import marshmallow
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.auth import Authenticator, bearer_token, identity_from, token_key
from mercato.cache import TimedCache
from mercato.clock import ManualClock
from mercato.errors import Forbidden, Unauthenticated
from mercato.identity import CallerContext, Identity

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ALICE = Identity(account_id="acc_a", user_id="usr_a", account_type="buyer", roles=("buyer",))
BOB = Identity(account_id="acc_b", user_id="usr_b", account_type="seller", roles=("seller",))


def request_with(headers) -> Request:
    return Request(EnvironBuilder(headers=headers).get_environ())


@pytest.fixture
def clock():
    return ManualClock(NOW)


def token_cache(clock, ttl_seconds: float = 5, **kwargs) -> TimedCache:
    """The gateway's token cache, on the test's clock."""
    return TimedCache(ttl_seconds, timer=lambda: clock.now().timestamp(), **kwargs)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a b"},
        {"Authorization": "Token mkt_x"},
    ],
    ids=["missing", "basic", "empty", "two-words", "other-scheme"],
)
def test_request_without_a_proper_bearer_token_is_unauthenticated(headers):
    with pytest.raises(Unauthenticated):
        bearer_token(request_with(headers))


def test_bearer_scheme_is_case_insensitive():
    assert bearer_token(request_with({"Authorization": "bearer mkt_x"})) == "mkt_x"


class FakeIam:
    """iam-agency's authenticate and revoke_token, counting calls."""

    def __init__(self, identity: Identity, expires_at: dt.datetime) -> None:
        self.identity, self.expires_at = identity, expires_at
        self.authenticate_calls = 0
        self.revoked: list[str] = []

    def authenticate(self, token):
        self.authenticate_calls += 1
        if token in self.revoked:
            raise Unauthenticated("token expired or revoked")
        return {
            "account_id": self.identity.account_id,
            "account_type": self.identity.account_type,
            "account_name": "Acme",
            "user_id": self.identity.user_id,
            "email": "a@acme.test",
            "roles": list(self.identity.roles),
            "expires_at": self.expires_at.isoformat(),
        }

    def revoke_token(self, token):
        self.revoked.append(token)


def authenticator(cache, clock) -> tuple[Authenticator, dict]:
    worker = SimpleNamespace(data={"correlation_id": "rid"}, args=())
    return Authenticator(cache, CallerContext(worker), clock), worker.data


def present(cache, clock, iam, token: str = "mkt_a") -> None:
    """One request bearing ``token``, through a fresh worker's authenticator."""
    auth, _context = authenticator(cache, clock)
    auth.authenticate(request_with({"Authorization": f"Bearer {token}"}), iam)


def test_cached_token_is_not_asked_again_until_the_cache_period_ends(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock)
    present(cache, clock, iam)
    clock.advance(seconds=4.9)
    present(cache, clock, iam)
    assert iam.authenticate_calls == 1
    clock.advance(seconds=0.1)
    present(cache, clock, iam)
    assert iam.authenticate_calls == 2


def test_cache_never_outlives_the_tokens_own_expiry(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(seconds=2))
    cache = token_cache(clock)
    present(cache, clock, iam)
    clock.advance(seconds=2)
    present(cache, clock, iam)
    assert iam.authenticate_calls == 2


def test_an_already_expired_token_is_not_cached(clock):
    iam = FakeIam(ALICE, NOW - dt.timedelta(seconds=1))
    cache = token_cache(clock)
    present(cache, clock, iam)
    assert len(cache) == 0


def test_cache_period_zero_turns_the_cache_off(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock, ttl_seconds=0)
    present(cache, clock, iam)
    present(cache, clock, iam)
    assert iam.authenticate_calls == 2


def test_cache_keeps_digests_not_tokens(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock)
    present(cache, clock, iam, "mkt_secret_token_value")
    assert "mkt_secret_token_value" not in repr(cache._entries)
    assert cache.get(token_key("mkt_secret_token_value")) == ALICE


def test_cache_is_bounded_and_drops_the_least_recently_used(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock, max_entries=2)
    for token in ("mkt_1", "mkt_2", "mkt_1", "mkt_3"):
        present(cache, clock, iam, token)
    assert len(cache) == 2 and iam.authenticate_calls == 3
    present(cache, clock, iam, "mkt_1")
    assert iam.authenticate_calls == 3
    present(cache, clock, iam, "mkt_2")
    assert iam.authenticate_calls == 4


def test_authenticated_caller_is_carried_in_context_data(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    auth, context = authenticator(token_cache(clock), clock)
    assert auth.authenticate(request_with({"Authorization": "Bearer mkt_a"}), iam) == "mkt_a"
    assert Identity.from_context(context) == ALICE
    assert context["correlation_id"] == "rid"


def test_second_request_within_the_cache_period_does_not_ask_iam(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock)
    for _ in range(3):
        present(cache, clock, iam)
    assert iam.authenticate_calls == 1


def test_sign_out_forgets_the_token_at_once(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    cache = token_cache(clock)
    auth, _context = authenticator(cache, clock)
    token = auth.authenticate(request_with({"Authorization": "Bearer mkt_a"}), iam)
    auth.sign_out(token, iam)
    with pytest.raises(Unauthenticated):
        present(cache, clock, iam)


def test_caller_without_the_required_role_is_forbidden(clock):
    iam = FakeIam(BOB, NOW + dt.timedelta(hours=1))
    auth, _context = authenticator(token_cache(clock), clock)
    with pytest.raises(Forbidden):
        auth.authenticate(request_with({"Authorization": "Bearer mkt_b"}), iam, "reseller")


def test_iam_answer_becomes_the_identity_and_the_tokens_expiry():
    expires_at = NOW + dt.timedelta(hours=12)
    answer = FakeIam(ALICE, expires_at).authenticate("mkt_a")

    identity, expiry = identity_from(answer)

    assert identity == ALICE
    assert expiry == expires_at


def test_iam_answer_without_an_account_is_a_server_error_not_the_clients():
    # marshmallow's own error: unmapped, so the gateway answers 500, not a 4xx
    with pytest.raises(marshmallow.ValidationError):
        identity_from({"account_type": "buyer", "roles": []})


def test_anonymous_caller_of_an_open_route_is_not_asked_about(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    auth, context = authenticator(token_cache(clock), clock)
    assert auth.authenticate_if_present(request_with({}), iam) is None
    assert Identity.from_context(context) is None
    assert iam.authenticate_calls == 0


def test_a_token_sent_to_an_open_route_makes_the_caller_known(clock):
    iam = FakeIam(ALICE, NOW + dt.timedelta(hours=1))
    auth, context = authenticator(token_cache(clock), clock)
    request = request_with({"Authorization": "Bearer mkt_a"})
    assert auth.authenticate_if_present(request, iam) == "mkt_a"
    assert Identity.from_context(context) == ALICE


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", ""])
def test_a_bad_authorization_header_on_an_open_route_is_still_refused(clock, header):
    auth, _context = authenticator(token_cache(clock), clock)
    with pytest.raises(Unauthenticated):
        auth.authenticate_if_present(request_with({"Authorization": header}), FakeIam(ALICE, NOW))
