"""``/v1/admin/clock`` at the gateway: who may call it, what it refuses, a system that
does not run the test clock (404), and a move some services missed, sent again. What the
move makes happen (an unpaid order cancelled) is end to end (tests/e2e/test_test_clock.py)."""

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from billing.service import BillingService
from gateway.tests.marketplace import assert_error, bearer, sign_in, sign_up
from iam_agency.cli import create_operator
from supervision.service import SupervisionService

pytestmark = pytest.mark.interface

OPERATOR_EMAIL = "ops@mercato.test"
OPERATOR_PASSWORD = "ops password 1"
HOUR = 3600


def _operator(stack) -> dict[str, str]:
    create_operator(
        stack.iam_config["DATABASE_URL"],
        name="Ops",
        email=OPERATOR_EMAIL,
        password=OPERATOR_PASSWORD,
    )
    return bearer(sign_in(stack, OPERATOR_EMAIL, OPERATOR_PASSWORD))


def test_without_the_test_clock_the_routes_are_404_to_an_operator(stack):
    operator = _operator(stack)

    assert_error(stack.get("/v1/admin/clock", headers=operator), 404, "NOT_FOUND")
    moved = stack.post("/v1/admin/clock", json={"advance_seconds": 3600}, headers=operator)
    assert_error(moved, 404, "NOT_FOUND")


def test_only_an_operator_may_read_or_move_the_clock(stack):
    buyer = sign_up(stack, "buyer")

    assert_error(stack.get("/v1/admin/clock"), 401, "UNAUTHENTICATED")
    assert_error(
        stack.post("/v1/admin/clock", json={"advance_seconds": 60}), 401, "UNAUTHENTICATED"
    )
    assert_error(buyer.get("/v1/admin/clock"), 403, "FORBIDDEN")
    assert_error(buyer.post("/v1/admin/clock", {"advance_seconds": 60}), 403, "FORBIDDEN")


@pytest.mark.parametrize(
    "body", [{}, {"advance_seconds": 0}, {"advance_seconds": -60}, {"advance_seconds": "1h"}]
)
def test_a_move_forward_only_by_whole_seconds(start_stack, body):
    stack = start_stack(MERCATO_CLOCK="controllable")
    operator = _operator(stack)

    refused = stack.post("/v1/admin/clock", json=body, headers=operator)

    assert assert_error(refused, 400, "VALIDATION_ERROR")["fields"].keys() == {"advance_seconds"}


def test_a_service_that_does_not_answer_is_503_and_nothing_is_said_to_have_moved(start_stack):
    stack = start_stack(MERCATO_CLOCK="controllable")  # no catalog, orders, … running
    operator = _operator(stack)

    failed = stack.post("/v1/admin/clock", json={"advance_seconds": 3600}, headers=operator)

    assert_error(failed, 503, "SERVICE_UNAVAILABLE")
    assert_error(stack.get("/v1/admin/clock", headers=operator), 503, "SERVICE_UNAVAILABLE")


def _offsets(configs) -> dict[str, int]:
    """Each service's offset, asked directly on the bus."""
    offsets = {}
    for name, config in configs.items():
        with ServiceRpcProxy(name, config, timeout=10) as service:
            offsets[name] = service.clock_state()["offset_seconds"]
    return offsets


def test_a_move_some_services_missed_is_sent_again_and_all_end_on_the_time_it_meant(
    start_stack, container_factory, make_service_config, monkeypatch
):
    # every config.yaml reads MERCATO_CLOCK from the environment
    monkeypatch.setenv("MERCATO_CLOCK", "controllable")
    stack = start_stack(with_market=True)
    supervision = make_service_config("supervision")
    container_factory(SupervisionService, supervision).start()
    configs = {
        "iam_agency": stack.iam_config,
        "supervision": supervision,
        **{name: config for name, (config, _container) in stack.market.items()},
    }
    operator = _operator(stack)
    base = stack.get("/v1/admin/clock", headers=operator).json()["offset_seconds"]

    billing_config, billing = stack.market["billing"]
    billing.stop()  # catalog, orders and supervision move first; billing does not answer
    missed = stack.post("/v1/admin/clock", json={"advance_seconds": HOUR}, headers=operator)
    assert_error(missed, 503, "SERVICE_UNAVAILABLE")
    container_factory(BillingService, billing_config).start()
    assert stack.get("/v1/admin/clock", headers=operator).json()["offset_seconds"] == base

    again = stack.post("/v1/admin/clock", json={"advance_seconds": HOUR}, headers=operator)

    assert again.status_code == 200, again.text
    assert again.json()["offset_seconds"] == base + HOUR
    assert set(_offsets(configs).values()) == {base + HOUR}
    assert stack.get("/v1/admin/clock", headers=operator).json()["offset_seconds"] == base + HOUR
