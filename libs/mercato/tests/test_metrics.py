"""Which outcome a worker is counted under: the error-rate alert reads ``error`` only.

A buyer's bad input (``rejected``) must not page anyone; a crash or an HTTP 5xx must.
"""

from types import SimpleNamespace

import pytest
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from mercato.errors import Conflict, NotFound, ValidationError
from mercato.metrics import outcome_of


class PaymentDeclined(Exception):
    """A service's own error type, declared in ``@rpc(expected_exceptions=...)``."""


def _worker_ctx(expected_exceptions=()):
    return SimpleNamespace(entrypoint=SimpleNamespace(expected_exceptions=expected_exceptions))


def _http_worker_ctx():
    return SimpleNamespace(entrypoint=HttpRequestHandler("GET", "/anything"))


def _exc_info(exc):
    try:
        raise exc
    except Exception as caught:
        return (type(caught), caught, caught.__traceback__)


@pytest.mark.parametrize("exc", [ValidationError("bad"), NotFound("no"), Conflict("again")])
def test_a_mercato_error_is_the_callers_fault(exc):
    assert outcome_of(_worker_ctx(), None, _exc_info(exc)) == ("rejected", type(exc).__name__)


def test_a_declared_expected_exception_is_the_callers_fault():
    outcome = outcome_of(_worker_ctx((PaymentDeclined,)), None, _exc_info(PaymentDeclined()))

    assert outcome == ("rejected", "PaymentDeclined")


def test_a_single_expected_exception_class_counts_too():
    """nameko accepts ``expected_exceptions=SomeError`` as well as a tuple."""
    outcome = outcome_of(_worker_ctx(PaymentDeclined), None, _exc_info(PaymentDeclined()))

    assert outcome == ("rejected", "PaymentDeclined")


def test_an_undeclared_exception_is_an_error():
    assert outcome_of(_worker_ctx(), None, _exc_info(KeyError("x"))) == ("error", "KeyError")


def test_an_exception_not_among_those_declared_is_an_error():
    outcome = outcome_of(_worker_ctx((PaymentDeclined,)), None, _exc_info(ZeroDivisionError()))

    assert outcome == ("error", "ZeroDivisionError")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (Response("boom", status=503), ("error", "http_503")),
        ((500, "boom"), ("error", "http_500")),
        (Response("no", status=404), ("rejected", None)),
        ((422, {"error": "VALIDATION_ERROR"}), ("rejected", None)),
        (Response("ok", status=200), ("success", None)),
        ((201, "created"), ("success", None)),
        ({"order_id": "ord_1"}, ("success", None)),
        (None, ("success", None)),
    ],
    ids=[
        "response-503",
        "tuple-500",
        "response-404",
        "tuple-422",
        "response-200",
        "tuple-201",
        "rpc-dict",
        "none",
    ],
)
def test_a_returned_result_is_classified_by_its_http_status(result, expected):
    assert outcome_of(_http_worker_ctx(), result, None) == expected


def test_an_rpc_answer_that_looks_like_a_status_is_still_a_success():
    """Only an HTTP entrypoint's answer carries a status; an RPC may return any tuple."""
    assert outcome_of(_worker_ctx(), (500, "a pair of values"), None) == ("success", None)
