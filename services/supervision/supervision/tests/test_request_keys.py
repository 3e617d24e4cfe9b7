"""A retried step (the same downstream key, as the gateway passes it when it runs a
request again after a failure that may have done the work) answers the flow or the
appeal as the first request left it: no second submission, no second appeal, and no
409 for a step already taken. In real containers on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from mercato.clock import ManualClock
from mercato.db import create_engine
from mercato.errors import BusinessRuleViolation, Conflict
from mercato.identity import REQUEST_KEY
from mercato_testing import signed_context
from supervision.tests import test_service
from supervision.tests.test_service import BUYER, OPERATOR, SELLER, flow_of, paid

pytestmark = pytest.mark.interface


@pytest.fixture
def supervision(container_factory, make_service_config):
    """supervision running as in test_service."""
    config = make_service_config(
        "supervision", SUPERVISION_SWEEP_SECONDS=0.1, SUPERVISION_HOLIDAYS_COUNTRY="US"
    )
    clock = ManualClock(test_service.START)
    test_service._start(container_factory, config, clock)
    engine = create_engine(config["DATABASE_URL"], pool_size=2)
    yield test_service.Supervision(config, clock, engine)
    engine.dispose()


def keyed(supervision, who: dict, key: str) -> ServiceRpcProxy:
    context = signed_context({**who, REQUEST_KEY: key})
    return ServiceRpcProxy("supervision", supervision.config, timeout=30, context_data=context)


def new_key() -> str:
    return uuid.uuid4().hex * 2


def twice(supervision, who: dict, call):
    """``call(service)`` twice with one key: both answers."""
    key = new_key()
    with keyed(supervision, who, key) as service:
        return call(service), call(service)


def test_each_step_retried_with_its_key_is_taken_once_and_answers_the_flow(supervision):
    flow = flow_of(supervision, paid(supervision, "professional_service"))
    flow_id = flow["id"]

    submitted, again = twice(
        supervision, BUYER, lambda s: s.submit_request(flow_id, {"description": "Ten seats."})
    )
    assert submitted["step"] == again["step"] == "awaiting_confirmation"
    assert len(again["requests"]) == 1

    confirmed, again = twice(supervision, SELLER, lambda s: s.answer_request(flow_id, {}))
    assert confirmed["step"] == again["step"] == "in_service"

    provided, again = twice(
        supervision, SELLER, lambda s: s.provide_service(flow_id, {"description": "Done."})
    )
    assert provided["step"] == again["step"] == "awaiting_acceptance"
    assert len(again["provisions"]) == 1

    accepted, again = twice(supervision, BUYER, lambda s: s.accept(flow_id))
    assert accepted["step"] == again["step"] == "completed"
    # another request (another key) is refused as before: the step is taken
    with keyed(supervision, BUYER, new_key()) as service, pytest.raises(Conflict):
        service.accept(flow_id)
    assert (
        supervision.scalar(
            "SELECT count(*) FROM flow_records WHERE flow_id = :f AND action = 'accepted'",
            f=flow_id,
        )
        == 1
    )


def test_an_appeal_retried_with_its_key_is_opened_once_and_decided_once(supervision):
    flow_id = flow_of(supervision, paid(supervision, "professional_service"))["id"]
    appeal = {"reason": "no answer", "description": "The seller does not answer."}

    opened, again = twice(supervision, BUYER, lambda s: s.open_appeal(flow_id, appeal))
    assert again["id"] == opened["id"]
    assert supervision.scalar("SELECT count(*) FROM appeals WHERE flow_id = :f", f=flow_id) == 1

    decision = {"decision": "continue", "message": "Please answer the buyer."}
    decided, again = twice(
        supervision, OPERATOR, lambda s: s.resolve_appeal(opened["id"], decision)
    )
    assert decided["status"] == again["status"] == "resolved"


def test_the_same_key_for_another_step_body_is_refused(supervision):
    flow_id = flow_of(supervision, paid(supervision, "professional_service"))["id"]
    key = new_key()
    with keyed(supervision, BUYER, key) as service:
        service.submit_request(flow_id, {"description": "Ten seats."})
        with pytest.raises(BusinessRuleViolation) as refused:
            service.submit_request(flow_id, {"description": "Twenty seats."})
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
