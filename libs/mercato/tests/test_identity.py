"""Who is asking travels in nameko context data, and services refuse what it may not do.

Context data is all a service downstream knows about the caller: an identity that
lost a role or its enterprise project on the way would let a buyer act as someone
else, or lock an operator out.
"""

from types import SimpleNamespace

import pytest
from nameko.containers import WorkerContext

from mercato.errors import Forbidden, NotFound, Unauthenticated
from mercato.identity import (
    BUYER as BUYER_ROLE,
)
from mercato.identity import (
    CALLER_EXPIRES,
    CONTEXT_TTL_SECONDS,
    CORRELATION_ID,
    OPERATOR,
    CallerContext,
    ContextKeyMissing,
    ContextSigner,
    Identity,
    ensure_correlation_id,
    parse_context_keys,
    service_identity,
)

BUYER = Identity(
    account_id="acc_buyer",
    user_id="usr_alice",
    account_type="buyer",
    roles=("buyer_admin", "purchaser"),
    enterprise_project_id="ep_finance",
)


def _worker_ctx(data=None, args=()):
    container = SimpleNamespace(config={}, service_name="orders")
    entrypoint = SimpleNamespace(method_name="list_orders")
    return WorkerContext(container, None, entrypoint, args=args, data=data)


def test_identity_round_trips_through_context_data():
    assert Identity.from_context(BUYER.to_context()) == BUYER


def test_identity_context_carries_roles_as_a_list_for_amqp_headers():
    context = BUYER.to_context()

    assert context["roles"] == ["buyer_admin", "purchaser"]
    assert context["enterprise_project_id"] == "ep_finance"


def test_identity_without_enterprise_project_leaves_the_key_out():
    identity = Identity("acc_1", "usr_1", "seller", ("seller_admin",))

    context = identity.to_context()

    assert "enterprise_project_id" not in context
    assert Identity.from_context(context) == identity


@pytest.mark.parametrize(
    "data",
    [{}, {"account_id": "acc_1"}, {"user_id": "usr_1"}, {"account_id": "", "user_id": "u"}],
    ids=["empty", "no-user", "no-account", "blank-account"],
)
def test_context_without_account_and_user_is_no_identity(data):
    assert Identity.from_context(data) is None


def test_require_role_returns_the_caller_holding_one_of_the_roles():
    caller = CallerContext(_worker_ctx(BUYER.to_context()))

    assert caller.require_role("operator", "purchaser") == BUYER


def test_require_role_refuses_a_caller_without_it():
    caller = CallerContext(_worker_ctx(BUYER.to_context()))

    with pytest.raises(Forbidden) as raised:
        caller.require_role("seller_admin")
    assert raised.value.code == "FORBIDDEN"


def test_require_account_lets_the_owner_through():
    caller = CallerContext(_worker_ctx(BUYER.to_context()))

    assert caller.require_account("acc_buyer", "order") == BUYER


def test_require_account_hides_another_buyers_resource_as_not_found():
    """NotFound, not Forbidden: a buyer must not learn that someone else's order exists."""
    caller = CallerContext(_worker_ctx(BUYER.to_context()))

    with pytest.raises(NotFound, match="order not found"):
        caller.require_account("acc_someone_else", "order")


def test_require_account_lets_an_operator_see_any_account():
    operator = Identity("acc_ops", "usr_ops", "operator", (OPERATOR,))
    caller = CallerContext(_worker_ctx(operator.to_context()))

    assert caller.require_account("acc_buyer") == operator


def test_anonymous_caller_is_unauthenticated_not_forbidden():
    caller = CallerContext(_worker_ctx({}))

    assert caller.identity is None
    with pytest.raises(Unauthenticated):
        caller.require_role("buyer_admin")
    with pytest.raises(Unauthenticated):
        caller.require_account("acc_buyer")


def test_act_as_replaces_every_identity_key_of_the_worker():
    worker_ctx = _worker_ctx(BUYER.to_context())
    seller = Identity("acc_seller", "usr_bob", "seller", ("seller_admin",))

    CallerContext(worker_ctx).act_as(seller)

    assert Identity.from_context(worker_ctx.data) == seller
    assert "enterprise_project_id" not in worker_ctx.data


def test_correlation_id_is_inherited_from_the_caller():
    worker_ctx = _worker_ctx({CORRELATION_ID: "req-42"})

    assert ensure_correlation_id(worker_ctx) == "req-42"


def test_correlation_id_comes_from_a_sane_x_request_id_header():
    request = SimpleNamespace(headers={"X-Request-ID": "abc-123.DEF:9"})
    worker_ctx = _worker_ctx({}, args=(request,))

    assert ensure_correlation_id(worker_ctx) == "abc-123.DEF:9"
    assert worker_ctx.data[CORRELATION_ID] == "abc-123.DEF:9"


@pytest.mark.parametrize("header", ["", "has space", "x" * 129, "inject\nheader"])
def test_correlation_id_ignores_an_unsafe_x_request_id(header):
    request = SimpleNamespace(headers={"X-Request-ID": header})
    worker_ctx = _worker_ctx({}, args=(request,))

    correlation_id = ensure_correlation_id(worker_ctx)

    assert correlation_id != header
    assert len(correlation_id) == 32
    assert ensure_correlation_id(worker_ctx) == correlation_id  # stable for the worker


# -- the signed caller context ------------------------------------------------------------

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
T0 = 1_800_000_000.0


class FixedTime:
    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _signer(keys=(KEY,), at=None):
    return ContextSigner(keys, now=at or FixedTime())


def test_a_signed_context_verifies_as_its_identity():
    signed = _signer().sign(BUYER)

    assert signed[CALLER_EXPIRES] == int(T0) + CONTEXT_TTL_SECONDS
    assert _signer().verify(signed) == BUYER


def test_a_context_naming_no_one_is_an_anonymous_caller():
    assert _signer().verify({CORRELATION_ID: "c-1"}) is None


def test_an_unsigned_identity_is_refused():
    with pytest.raises(Unauthenticated) as refused:
        _signer().verify(BUYER.to_context())
    assert refused.value.code == "CONTEXT_UNSIGNED"


@pytest.mark.parametrize(
    "change",
    [
        {"roles": ["buyer_admin", "purchaser", "operator"]},
        {"roles": ["operator"]},
        {"account_id": "acc_someone_else"},
        {"user_id": "usr_mallory"},
        {"account_type": "operator"},
        {"enterprise_project_id": "ep_other"},
        {"reseller_account_id": "acc_reseller"},
        {"caller_expires": int(T0) + 10 * CONTEXT_TTL_SECONDS},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_signed_context_altered_in_any_field_is_refused(change):
    signed = {**_signer().sign(BUYER), **change}

    with pytest.raises(Unauthenticated) as refused:
        _signer().verify(signed)
    assert refused.value.code == "CONTEXT_ALTERED"


def test_a_context_signed_with_another_key_is_refused():
    signed = _signer(keys=(OTHER_KEY,)).sign(BUYER)

    with pytest.raises(Unauthenticated, match="signature"):
        _signer().verify(signed)


def test_a_context_signed_with_a_second_key_verifies_during_a_rotation():
    signed = _signer(keys=(OTHER_KEY,)).sign(BUYER)

    assert _signer(keys=(KEY, OTHER_KEY)).verify(signed) == BUYER


def test_a_context_past_its_expiry_is_refused():
    clock = FixedTime()
    signed = _signer(at=clock).sign(BUYER)
    clock.at += CONTEXT_TTL_SECONDS

    with pytest.raises(Unauthenticated) as refused:
        _signer(at=clock).verify(signed)
    assert refused.value.code == "CONTEXT_EXPIRED"


@pytest.mark.parametrize(
    "change",
    [
        {"roles": "operator"},
        {"roles": [1]},
        {"account_id": 7},
        {"caller_expires": "1900000000"},
        {"caller_expires": True},
        {"enterprise_project_id": ["ep"]},
    ],
    ids=lambda change: f"{next(iter(change))}-{type(next(iter(change.values()))).__name__}",
)
def test_a_context_of_the_wrong_types_is_refused_not_a_crash(change):
    signed = {**_signer().sign(BUYER), **change}

    with pytest.raises(Unauthenticated):
        _signer().verify(signed)


@pytest.mark.parametrize(
    "raw", [None, "", " , ", "short"], ids=["unset", "empty", "commas", "too-short"]
)
def test_a_missing_or_short_context_key_stops_the_process(raw):
    with pytest.raises(ContextKeyMissing, match="MERCATO_CONTEXT_KEY"):
        parse_context_keys(raw)


def test_context_keys_are_comma_separated_the_first_signing():
    assert parse_context_keys(f" {'a' * 32} ,{'b' * 40}") == (b"a" * 32, b"b" * 40)


def test_act_as_carries_the_identity_signed():
    worker_ctx = _worker_ctx({CORRELATION_ID: "c-1"})

    CallerContext(worker_ctx, _signer()).act_as(BUYER)

    assert worker_ctx.data[CORRELATION_ID] == "c-1"
    assert _signer().verify(worker_ctx.data) == BUYER


def test_a_service_identity_passes_no_persons_role():
    worker = service_identity("provisioning")

    assert worker.is_service
    assert not worker.has_role(BUYER_ROLE, "seller", "reseller", OPERATOR)
    assert not BUYER.is_service
