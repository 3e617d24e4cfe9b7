"""SellerClient against sellers that fail: each failure is a typed, retryable error
whose reason never carries the secret or a password."""

import socket
import time

import pytest

from seller_interface import (
    SellerBadAnswer,
    SellerBadSignature,
    SellerCallError,
    SellerClient,
    SellerUnreachable,
)


def assert_safe(error: SellerCallError, secret: str) -> None:
    assert error.retryable
    assert error.reason
    assert secret not in str(error) and secret not in error.reason
    assert "stub-password-do-not-leak" not in str(error)


def test_bad_signature_fault_raises_seller_bad_signature(start_seller):
    seller = start_seller(fault="bad-signature")

    with seller.client() as client, pytest.raises(SellerBadSignature) as caught:
        client.call("queryInstance", {"instanceId": "x"})

    assert "does not verify" in caught.value.reason
    assert caught.value.activity == "queryInstance"
    assert_safe(caught.value, seller.secret)


def test_hang_then_error_then_recovery_at_run_time(start_seller):
    seller = start_seller()
    with seller.client(timeout=0.5) as client:
        assert client.call("queryInstance", {"instanceId": "x"}).result_code == "000003"

        seller.set_fault("hang")
        started = time.monotonic()
        with pytest.raises(SellerUnreachable) as caught:
            client.call("queryInstance", {"instanceId": "x"})
        assert 0.4 < time.monotonic() - started < 2.5
        assert "within 0.5 s" in caught.value.reason
        assert_safe(caught.value, seller.secret)

        seller.set_fault("error")
        assert client.call("queryInstance", {"instanceId": "x"}).result_code == "000005"

        seller.set_fault("none")
        assert client.call("queryInstance", {"instanceId": "x"}).result_code == "000003"


def test_fault_endpoint_refuses_unknown_faults(start_seller):
    import requests

    seller = start_seller()
    response = requests.post(f"{seller.base_url}/_faults", json={"fault": "explode"}, timeout=5)

    assert response.status_code == 400
    assert requests.get(f"{seller.base_url}/_faults", timeout=5).json() == {"fault": "none"}


def test_nothing_listening_raises_seller_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "s" * 43

    with SellerClient(f"http://127.0.0.1:{port}/saas", "ak_x", secret) as client:
        with pytest.raises(SellerUnreachable) as caught:
            client.call("queryInstance", {"instanceId": "x"})

    assert caught.value.reason == f"cannot reach 127.0.0.1:{port}: connection refused"
    assert "signature=" not in caught.value.reason
    assert_safe(caught.value, secret)


def test_wrong_path_is_a_non_200_status(start_seller):
    seller = start_seller()
    with SellerClient(
        f"{seller.base_url}/not-the-endpoint", seller.access_key, seller.secret
    ) as client:
        with pytest.raises(SellerUnreachable, match="HTTP 404"):
            client.call("queryInstance", {"instanceId": "x"})


@pytest.mark.parametrize(
    ("mode", "error_type", "reason"),
    [
        ("not-json", SellerBadAnswer, "not UTF-8 JSON"),
        ("no-result-code", SellerBadAnswer, "no resultCode"),
        ("http-500", SellerUnreachable, "HTTP 500"),
        ("unsigned", SellerBadSignature, "no Body-Sign"),
    ],
)
def test_broken_answers_raise_typed_errors(start_lax_seller, mode, error_type, reason):
    stub = start_lax_seller(mode=mode)

    with stub.client() as client, pytest.raises(error_type, match=reason) as caught:
        client.call("queryInstance", {"instanceId": "x"})

    assert_safe(caught.value, stub.secret)


def test_an_answer_trickling_past_the_timeout_is_unreachable(start_lax_seller):
    stub = start_lax_seller(mode="trickle")  # one byte every 0.2 s, ~40 bytes
    started = time.monotonic()

    with stub.client(timeout=1.0) as client, pytest.raises(SellerUnreachable, match="not complete"):
        client.call("releaseInstance", {"instanceId": "x"})

    assert time.monotonic() - started < 2.0
