"""Idempotency-Key through the gateway: replayed, refused for another body, one piece
of work under concurrency, released after a refusal, kept after a failure that may
have done the work; secrets never stored."""

from typing import ClassVar

import eventlet
import pytest
import requests
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook

from gateway.tests.marketplace import PASSWORD, bearer, new_account
from iam_agency.service import IamAgencyService
from mercato.errors import EXPECTED
from mercato.transport import rpc
from mercato_testing.interface import count_rows

pytestmark = pytest.mark.interface


def test_same_idempotency_key_and_body_replays_the_first_response(stack):
    account = new_account()
    headers = {"Idempotency-Key": "signup-1"}

    first = stack.post("/v1/accounts", json=account, headers=headers)
    again = stack.post("/v1/accounts", json=dict(reversed(list(account.items()))), headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert stack.iam_rows("accounts") == 1
    assert stack.gateway_rows() == 1


def test_same_idempotency_key_with_other_body_is_rejected(stack):
    headers = {"Idempotency-Key": "signup-2"}
    stack.post("/v1/accounts", json=new_account(), headers=headers)

    response = stack.post("/v1/accounts", json=new_account(), headers=headers)

    assert response.status_code == 422
    assert response.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    assert stack.iam_rows("accounts") == 1


def test_concurrent_requests_with_one_key_create_one_account(stack):
    account = new_account()

    def sign_up(_):
        return requests.post(
            stack.url("/v1/accounts"),
            json=account,
            headers={"Idempotency-Key": "race-1"},
            timeout=60,
        )

    responses = list(eventlet.GreenPool(6).imap(sign_up, range(6)))

    statuses = sorted(r.status_code for r in responses)
    created = [r.json() for r in responses if r.status_code == 201]
    assert set(statuses) <= {201, 409}
    assert created and all(body == created[0] for body in created)
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["error"] == "CONFLICT"
        assert conflict.headers["Retry-After"]
    assert stack.iam_rows("accounts") == 1


def test_sign_in_replayed_after_sign_out_never_answers_the_revoked_token(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)
    credentials = {"email": account["email"], "password": PASSWORD}
    headers = {"Idempotency-Key": "signin-1"}
    first = stack.post("/v1/auth/tokens", json=credentials, headers=headers)
    assert first.status_code == 201
    revoked = first.json()["token"]
    assert stack.delete("/v1/auth/tokens/current", headers=bearer(revoked)).status_code == 204

    again = stack.post("/v1/auth/tokens", json=credentials, headers=headers)

    # a sign-in is safe to repeat: it is signed in again, never handed the revoked token
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    token = again.json()["token"]
    assert token != revoked
    assert stack.get("/v1/me", headers=bearer(token)).status_code == 200
    assert stack.get("/v1/me", headers=bearer(revoked)).status_code == 401


def test_sign_in_answer_is_never_stored(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)
    credentials = {"email": account["email"], "password": PASSWORD}

    first = stack.post("/v1/auth/tokens", json=credentials, headers={"Idempotency-Key": "s-1"})

    assert first.status_code == 201
    engine = sa.create_engine(stack.gateway_config["DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        (row,) = connection.execute(sa.text("SELECT * FROM idempotency_records")).all()
    engine.dispose()
    assert row.state == "unkept" and row.response is None
    stored = repr(tuple(row)).encode()
    for secret in (first.json()["token"].encode(), PASSWORD.encode(), account["email"].encode()):
        assert secret not in stored


def test_other_password_with_the_same_key_cannot_read_the_stored_token(stack):
    account = new_account()
    stack.post("/v1/accounts", json=account)
    headers = {"Idempotency-Key": "signin-2"}
    stack.post(
        "/v1/auth/tokens", json={"email": account["email"], "password": PASSWORD}, headers=headers
    )

    guess = stack.post(
        "/v1/auth/tokens",
        json={"email": account["email"], "password": "a wrong guess"},
        headers=headers,
    )

    assert guess.status_code == 422
    assert "token" not in guess.text


def test_request_that_failed_with_503_keeps_its_key_and_its_retry_runs_again(
    start_stack, container_factory, make_service_config
):
    stack = start_stack(with_iam=False)
    account = new_account()
    headers = {"Idempotency-Key": "retry-1"}

    down = stack.post("/v1/accounts", json=account, headers=headers)
    assert down.status_code == 503
    # the work may have been done downstream: the key stays with its request
    assert stack.gateway_rows() == 1
    assert stack.post("/v1/accounts", json=new_account(), headers=headers).status_code == 422

    iam_config = make_service_config("iam_agency")
    container_factory(IamAgencyService, iam_config).start()
    retried = stack.post("/v1/accounts", json=account, headers=headers)

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    again = stack.post("/v1/accounts", json=account, headers=headers)
    assert again.json() == retried.json() and again.headers["Idempotent-Replayed"] == "true"


class AnswerLostIam(IamAgencyService):
    """iam-agency whose first sign-up is done (committed) and then answered too late for
    the gateway: the answer is lost, as when a reply dies with a broker or a process."""

    late: ClassVar[list[float]] = []

    @rpc(expected_exceptions=EXPECTED)
    def sign_up(self, payload: dict) -> dict:
        answer = super().sign_up(payload)
        if self.late:
            eventlet.sleep(self.late.pop())
        return answer


def test_retry_of_a_request_whose_answer_was_lost_answers_its_first_result(
    start_stack, container_factory, make_service_config
):
    stack = start_stack(with_iam=False, RPC_TIMEOUT_SECONDS=1)
    iam_config = make_service_config("iam_agency")
    container_factory(AnswerLostIam, iam_config).start()
    AnswerLostIam.late[:] = [2.0]
    account = new_account()
    headers = {"Idempotency-Key": "lost-1"}

    lost = stack.post("/v1/accounts", json=account, headers=headers)
    assert lost.status_code == 503
    assert count_rows(iam_config, "accounts") == 1  # the work was done

    retried = stack.post("/v1/accounts", json=account, headers=headers)

    # the same account, not EMAIL_TAKEN, and no second one
    assert retried.status_code == 201, retried.text
    assert retried.json()["email"] == account["email"]
    assert count_rows(iam_config, "accounts") == 1


def test_refused_request_releases_its_key_for_a_retry(stack):
    taken = new_account()
    stack.post("/v1/accounts", json=taken)
    account = new_account(email=taken["email"])
    headers = {"Idempotency-Key": "refused-1"}

    refused = stack.post("/v1/accounts", json=account, headers=headers)

    assert refused.status_code == 409
    assert stack.gateway_rows() == 0
    retried = stack.post("/v1/accounts", json=new_account(), headers=headers)
    assert retried.status_code == 201


def test_malformed_idempotency_key_is_400(stack):
    response = stack.post(
        "/v1/accounts", json=new_account(), headers={"Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]
    assert stack.gateway_rows() == 0


def test_purge_timer_keeps_records_within_their_ttl(stack):
    stack.post("/v1/accounts", json=new_account(), headers={"Idempotency-Key": "keep-1"})

    with entrypoint_hook(stack.gateway, "purge_idempotency_records") as purge:
        purge()

    assert stack.gateway_rows() == 1
