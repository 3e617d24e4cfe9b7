"""A rejection the contract expects is one INFO line without a traceback, in the gateway
and in the service that refused it; a traceback is for bugs."""

import logging

import pytest

from gateway.tests.marketplace import new_account

pytestmark = pytest.mark.interface


def test_rejections_are_one_info_line_each_without_a_traceback(stack, caplog):
    account = new_account()
    assert stack.post("/v1/accounts", json=account).status_code == 201
    caplog.clear()

    with caplog.at_level(logging.INFO):
        assert stack.get("/v1/me").status_code == 401  # the gateway refuses
        wrong = {"email": account["email"], "password": "not the password"}
        assert stack.post("/v1/auth/tokens", json=wrong).status_code == 401  # iam-agency refuses
        assert stack.post("/v1/accounts", json={"name": 5}).status_code == 400
        assert stack.post("/v1/accounts", json=account).status_code == 409

    containers = [r for r in caplog.records if r.name == "nameko.containers"]
    # what logs a request's end: nameko's container and the gateway's own modules
    about_requests = [r for r in caplog.records if r in containers or r.name.startswith("gateway")]
    assert [r for r in about_requests if r.exc_info or r.levelno >= logging.WARNING] == []
    rejected = [r.getMessage() for r in containers if r.getMessage().startswith("rejected ")]
    assert any(m.startswith("rejected gateway.me: Unauthenticated: ") for m in rejected)
    assert any(m.startswith("rejected iam_agency.issue_token: Unauthenticated:") for m in rejected)
    assert any(m.startswith("rejected gateway.sign_in: Unauthenticated:") for m in rejected)
    assert any(m.startswith("rejected gateway.sign_up: ValidationError:") for m in rejected)
    assert any(m.startswith("rejected iam_agency.sign_up: Conflict:") for m in rejected)
    assert all(r.levelno == logging.INFO for r in containers)


def test_a_bug_still_logs_its_traceback(caplog):
    from mercato import logs

    logs.quiet_rejections()
    logger = logging.getLogger(logs.CONTAINER_LOGGER)
    with caplog.at_level(logging.INFO):
        try:
            raise KeyError("a bug")
        except KeyError as exc:
            logger.exception("error handling worker %s: %s", object(), exc)

    (record,) = [r for r in caplog.records if r.name == logs.CONTAINER_LOGGER]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
