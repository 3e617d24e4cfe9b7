"""Signing, verification and endpoint validation of the SaaS seller interface (no I/O)."""

import datetime as dt
import importlib.util
import re

import pytest

from mercato.config import ROOT
from seller_interface import (
    ACTIVITIES,
    REQUIRED_FIELDS,
    RESULT_CODES,
    SellerAnswer,
    SellerBadAnswer,
    SellerBadSignature,
    SellerCallError,
    SellerClient,
    SellerUnreachable,
    body_digest,
    body_sign_header,
    canonical_string,
    encode_body,
    is_nonce,
    new_access_key,
    new_nonce,
    new_secret,
    parse_body_sign,
    redact,
    rfc3339,
    sign,
    signed_url,
    validate_endpoint_url,
    verify,
)

DOC = ROOT / "docs" / "seller-saas-interface.md"

# The worked example of docs/seller-saas-interface.md
ACCESS_KEY = "ak_0123456789abcdef0123456789abcdef"
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
NONCE = "5f0c3a9e8d7b6a5948372615f4e3d2c1b0a99887766554433221100ffeeddccb"
TIMESTAMP = 1767225600000
REQUEST = {
    "activity": "newInstance",
    "businessId": "5e0f7a52d1c14a0e9b6f3c2d8e1a4b70",
    "orderId": "CS2601010000ABCD",
    "orderLineId": "CS2601010000ABCD-000001",
    "productId": "OFFI000000000001",
    "specificationId": "SPEC000000000001",
    "specificationName": "Basic",
    "customerId": "acc_7f3e9c1d",
    "customerName": "Acme 中国",
    "chargingMode": "yearly_monthly",
    "periodUnit": "month",
    "periodCount": 1,
    "quantity": 1,
    "expireTime": "2026-02-01T00:00:00Z",
    "testFlag": "0",
}
REQUEST_SHA = "c816759081409a5306cbc27d4f7cb5ab6d0842e682945131b51eadc7428f09d1"
REQUEST_SIGNATURE = "c271499ff0fb8199b635f0da5c5e3a8584cad7ec2d53b1cddc010b236d4fc33c"
ANSWER = {
    "resultCode": "000000",
    "resultMsg": "success",
    "instanceId": "9b1d2c3e4f5a40718293a4b5c6d7e8f9",
}
ANSWER_SHA = "959cc49be79982aef36b995f6e1b1b5652a5937359edcc19416c2dee93d819fa"
ANSWER_SIGNATURE = "1ea81dc42bb81ef8c919dd5211bc63a074af8e981fee301765c410ad1894276b"


def test_worked_example_request_signature():
    body = encode_body(REQUEST)
    assert len(body) == 429
    assert body_digest(body) == REQUEST_SHA
    assert canonical_string(ACCESS_KEY, NONCE, TIMESTAMP, body) == (
        ACCESS_KEY + NONCE + str(TIMESTAMP) + REQUEST_SHA
    )
    assert sign(SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body) == REQUEST_SIGNATURE
    assert sign(SECRET, ACCESS_KEY, NONCE, str(TIMESTAMP), body) == REQUEST_SIGNATURE


def test_worked_example_answer_body_sign():
    body = encode_body(ANSWER)
    assert body_digest(body) == ANSWER_SHA
    assert body_sign_header(SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body) == (
        f'sign_type="HMAC-SHA256", signature="{ANSWER_SIGNATURE}"'
    )


def test_docs_show_the_worked_example_values():
    text = DOC.read_text()
    for value in (
        ACCESS_KEY,
        SECRET,
        NONCE,
        str(TIMESTAMP),
        encode_body(REQUEST).decode(),
        REQUEST_SHA,
        REQUEST_SIGNATURE,
        encode_body(ANSWER).decode(),
        ANSWER_SHA,
        ANSWER_SIGNATURE,
    ):
        assert value in text


def test_reference_app_signs_like_mercato():
    path = ROOT / "examples" / "seller-saas" / "seller_saas.py"
    spec = importlib.util.spec_from_file_location("seller_saas_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body = encode_body(ANSWER)
    assert module.sign(SECRET, ACCESS_KEY, NONCE, str(TIMESTAMP), encode_body(REQUEST)) == (
        REQUEST_SIGNATURE
    )
    assert module.body_sign_header(SECRET, ACCESS_KEY, NONCE, str(TIMESTAMP), body) == (
        body_sign_header(SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body)
    )
    assert not re.search(r"^\s*(import|from)\s+mercato\b", path.read_text(), re.MULTILINE)


def test_verify_accepts_the_signature_and_refuses_any_change():
    body = encode_body(REQUEST)
    assert verify(REQUEST_SIGNATURE, SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body)
    assert verify(REQUEST_SIGNATURE.upper(), SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body)
    assert not verify(REQUEST_SIGNATURE, SECRET + "x", ACCESS_KEY, NONCE, TIMESTAMP, body)
    assert not verify(REQUEST_SIGNATURE, SECRET, "ak_other", NONCE, TIMESTAMP, body)
    assert not verify(REQUEST_SIGNATURE, SECRET, ACCESS_KEY, new_nonce(), TIMESTAMP, body)
    assert not verify(REQUEST_SIGNATURE, SECRET, ACCESS_KEY, NONCE, TIMESTAMP + 1, body)
    assert not verify(REQUEST_SIGNATURE, SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body + b" ")
    assert not verify("", SECRET, ACCESS_KEY, NONCE, TIMESTAMP, body)


def test_body_sign_header_round_trips_and_malformed_ones_are_refused():
    header = body_sign_header(SECRET, ACCESS_KEY, NONCE, TIMESTAMP, b"{}")
    sign_type, signature = parse_body_sign(header)
    assert sign_type == "HMAC-SHA256"
    assert signature == sign(SECRET, ACCESS_KEY, NONCE, TIMESTAMP, b"{}")
    for bad in ("", "HMAC-SHA256 abc", 'signature="abc"', 'sign_type=HMAC, signature="x"'):
        with pytest.raises(ValueError):
            parse_body_sign(bad)


def test_keys_and_nonces_have_the_documented_form():
    nonce = new_nonce()
    assert is_nonce(nonce) and nonce != new_nonce()
    assert not is_nonce(nonce.upper()) and not is_nonce(nonce[:-1])
    assert re.fullmatch(r"ak_[0-9a-f]{32}", new_access_key())
    secret = new_secret()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)


def test_protocol_constants():
    assert ACTIVITIES == (
        "newInstance",
        "queryInstance",
        "refreshInstance",
        "updateInstanceStatus",
        "upgradeInstance",
        "releaseInstance",
    )
    assert RESULT_CODES == {"000000", "000001", "000002", "000003", "000004", "000005"}
    assert set(REQUIRED_FIELDS) == set(ACTIVITIES)
    assert rfc3339(dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))) == (
        "2026-01-01T00:00:00Z"
    )
    with pytest.raises(ValueError):
        rfc3339(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "url",
    [
        "https://seller.example.com/saas",
        "https://seller.example.com:8443/api/saas?product=42",
        "http://127.0.0.1:8300/saas",
        "http://localhost/saas",
        "http://[::1]:8300/saas",
        "HTTPS://Seller.Example.com/",
    ],
)
def test_validate_endpoint_url_accepts(url):
    validate_endpoint_url(url)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("", "empty"),
        ("http://seller.example.com/saas", "https"),
        ("http://10.0.0.5/saas", "loopback"),
        ("http://127.0.0.2/saas", "loopback"),
        ("ftp://seller.example.com/saas", "https"),
        ("seller.example.com/saas", "https"),
        ("https:///saas", "no host"),
        ("https://user:pw@seller.example.com/saas", "credentials"),
        ("https://seller.example.com/saas#x", "fragment"),
        ("https://seller.example.com/saas?nonce=1", "nonce"),
        ("https://seller.example.com/saas?a=1&signature=x", "signature"),
        ("https://seller.example.com:99999/saas", "malformed"),
        ("https://seller.example.com/sa as", "whitespace"),
        ("https://seller.example.com/" + "a" * 3000, "longer"),
    ],
)
def test_validate_endpoint_url_refuses_with_the_rule(url, rule):
    with pytest.raises(ValueError, match=rule):
        validate_endpoint_url(url)


def test_seller_client_refuses_an_invalid_endpoint():
    with pytest.raises(ValueError, match="https"):
        SellerClient("http://seller.example.com/saas", ACCESS_KEY, SECRET)


def test_signed_url_keeps_the_endpoints_query():
    assert signed_url("https://s.example.com/saas?product=42", "ab", 1, "cd") == (
        "https://s.example.com/saas?product=42&signature=ab&timestamp=1&nonce=cd"
    )
    assert signed_url("https://s.example.com", "ab", 1, "cd") == (
        "https://s.example.com/?signature=ab&timestamp=1&nonce=cd"
    )


def test_prepare_signs_the_exact_body_with_the_clock():
    client = SellerClient(
        "https://s.example.com/saas", ACCESS_KEY, SECRET, clock=lambda: 1767225600.5
    )
    request = client.prepare("queryInstance", {"instanceId": "i-1", "testFlag": "1"})
    assert request.timestamp == 1767225600500
    assert request.body == b'{"activity":"queryInstance","instanceId":"i-1","testFlag":"1"}'
    assert request.headers["X-Mercato-Access-Key"] == ACCESS_KEY
    assert request.headers["Content-Type"] == "application/json;charset=utf-8"
    signature = sign(SECRET, ACCESS_KEY, request.nonce, request.timestamp, request.body)
    assert f"signature={signature}&timestamp=1767225600500&nonce={request.nonce}" in request.url
    assert SECRET not in repr(request) and SECRET not in repr(client)


def test_answer_repr_and_redact_hide_passwords():
    answer = SellerAnswer(
        "000000",
        "success",
        {"instanceId": "i", "appInfo": {"userName": "u", "password": "hunter2"}},
        0.01,
    )
    assert answer.ok
    assert "hunter2" not in repr(answer) and "hunter2" not in str(answer)
    assert redact({"a": [{"password": "p"}]}) == {"a": [{"password": "***"}]}


def test_every_call_error_is_retryable_with_a_reason():
    for error_type in (SellerUnreachable, SellerBadSignature, SellerBadAnswer):
        error = error_type("it broke", activity="newInstance")
        assert isinstance(error, SellerCallError)
        assert error.retryable
        assert error.reason == "it broke"
        assert str(error) == "newInstance: it broke"
