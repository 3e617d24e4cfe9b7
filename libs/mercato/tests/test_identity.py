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
    CORRELATION_ID,
    OPERATOR,
    CallerContext,
    Identity,
    ensure_correlation_id,
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
