"""The signed caller context in real containers on the real RabbitMQ: an RPC whose
identity does not verify runs nothing, a signed one reaches every service it calls, a
timer works as its own service (each test on a throw-away vhost, ``rabbit_config``)."""

from __future__ import annotations

import collections
import os
import time

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.timer import timer

from mercato import config
from mercato.errors import Unauthenticated
from mercato.identity import (
    CALLER_SIGNATURE,
    Caller,
    ContextKeyMissing,
    ContextSigner,
    Identity,
    context_keys_from,
)
from mercato.transport import TimedRpcProxy, rpc
from mercato_testing import signed_context
from mercato_testing.interface import sample, wait_for

pytestmark = pytest.mark.interface

OPERATOR = Identity("acc_ops", "usr_ops", "operator", ("operator",))
BUYER = Identity("acc_buyer", "usr_buyer", "buyer", ("buyer",))

# what each service's method saw, by method: (account_id, roles) or None (anonymous)
SEEN: collections.defaultdict[str, list] = collections.defaultdict(list)


def _seen(identity: Identity | None):
    return None if identity is None else (identity.account_id, identity.roles)


class Ledger:
    """Stands for a service that changes something for whoever calls it."""

    name = "trust_ledger"
    caller = Caller()

    @rpc(expected_exceptions=Unauthenticated)
    def write(self, note: str) -> str:
        SEEN["write"].append((_seen(self.caller.identity), note))
        return note


class Front:
    """Calls the ledger for its own caller, as orders calls billing for a buyer."""

    name = "trust_front"
    caller = Caller()
    ledger = TimedRpcProxy("trust_ledger", timeout=5)

    @rpc(expected_exceptions=Unauthenticated)
    def forward(self, note: str) -> str:
        SEEN["forward"].append((_seen(self.caller.identity), note))
        return self.ledger.write(note)


class Sweeper:
    """A timer that calls the ledger, as provisioning's sweeps call iam-agency."""

    name = "trust_sweeper"
    caller = Caller()
    ledger = TimedRpcProxy("trust_ledger", timeout=5)

    @timer(interval=0.05)
    def sweep(self) -> None:
        if not SEEN["swept"]:
            SEEN["swept"].append(_seen(self.caller.identity))
            self.ledger.write("from the sweep")


@pytest.fixture(autouse=True)
def _clear():
    SEEN.clear()


@pytest.fixture
def services(container_factory, rabbit_config):
    for cls in (Ledger, Front):
        container_factory(cls, rabbit_config).start()
    return rabbit_config


def _call(rabbit_config, context, service="trust_ledger", method="write", note="n"):
    with ServiceRpcProxy(service, rabbit_config, context_data=context, timeout=10) as proxy:
        return getattr(proxy, method)(note)


def _refused() -> float:
    reasons = ("CONTEXT_UNSIGNED", "CONTEXT_ALTERED", "CONTEXT_MALFORMED", "CONTEXT_EXPIRED")
    return sum(
        sample("mercato_caller_context_refused_total", service="trust_ledger", reason=reason)
        for reason in reasons
    )


def _forged(**change):
    return {**signed_context(OPERATOR), **change}


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(OPERATOR.to_context(), id="unsigned"),
        pytest.param(_forged(roles=["operator", "seller"]), id="roles-added"),
        pytest.param(_forged(account_id="acc_buyer"), id="account-swapped"),
        pytest.param(_forged(**{CALLER_SIGNATURE: "0" * 64}), id="bad-signature"),
        pytest.param(
            ContextSigner([b"not-mercato's-key-" * 2]).sign(OPERATOR), id="someone-elses-key"
        ),
        pytest.param(
            ContextSigner(context_keys_from({}), now=lambda: time.time() - 3600).sign(OPERATOR),
            id="expired",
        ),
    ],
)
def test_an_rpc_whose_caller_does_not_verify_is_refused_and_runs_nothing(services, context):
    refused_before = _refused()

    with pytest.raises(Unauthenticated, match="could not be verified"):
        _call(services, context)

    assert SEEN["write"] == []
    assert _refused() == refused_before + 1


def test_a_signed_caller_reaches_the_method_and_every_service_it_calls(services):
    assert _call(services, signed_context(BUYER), "trust_front", "forward", "paid") == "paid"

    assert SEEN["forward"] == [(("acc_buyer", ("buyer",)), "paid")]
    assert SEEN["write"] == [(("acc_buyer", ("buyer",)), "paid")]


def test_an_rpc_naming_no_one_runs_as_an_anonymous_caller(services):
    assert _call(services, {"correlation_id": "c-anon"}) == "n"

    assert SEEN["write"] == [(None, "n")]


def test_a_timer_calls_other_services_as_its_own_service_signed(
    services, container_factory, rabbit_config
):
    container_factory(Sweeper, rabbit_config).start()

    wait_for(lambda: SEEN["write"], "the sweep's call")
    assert SEEN["swept"] == [("svc_trust_sweeper", ("service",))]
    assert SEEN["write"] == [(("svc_trust_sweeper", ("service",)), "from the sweep")]


def test_a_process_without_the_context_key_does_not_start(
    container_factory, rabbit_config, monkeypatch
):
    monkeypatch.delenv(config.MERCATO_CONTEXT_KEY, raising=False)
    container = container_factory(Ledger, {**rabbit_config, config.MERCATO_CONTEXT_KEY: ""})

    with pytest.raises(ContextKeyMissing, match="MERCATO_CONTEXT_KEY is not set"):
        container.start()
    assert os.environ.get(config.MERCATO_CONTEXT_KEY) is None
