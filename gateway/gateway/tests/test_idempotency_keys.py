"""Request fingerprints and sealed responses: deterministic where they must be, and
unreadable without the secret and the very same request."""

import pytest
from cryptography.exceptions import InvalidTag
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.idempotency import (
    ANONYMOUS_SCOPE,
    Keyring,
    canonical_request,
    downstream_key,
    scope_of,
)

SECRET = "unit-test-secret"
BODY = {"email": "a@acme.test", "password": "correct horse battery"}


def material(body=BODY, method="POST", path="/v1/auth/tokens") -> bytes:
    return canonical_request(method, path, body)


def test_same_request_has_the_same_fingerprint_whatever_its_key_order():
    reordered = dict(reversed(list(BODY.items())))
    assert Keyring(SECRET).fingerprint(material()) == Keyring(SECRET).fingerprint(
        material(reordered)
    )


@pytest.mark.parametrize(
    "other",
    [
        material({**BODY, "password": "another password"}),
        material(path="/v1/accounts"),
        material(method="PUT"),
    ],
    ids=["body", "path", "method"],
)
def test_another_request_has_another_fingerprint(other):
    assert Keyring(SECRET).fingerprint(material()) != Keyring(SECRET).fingerprint(other)


def test_fingerprint_depends_on_the_secret():
    assert Keyring(SECRET).fingerprint(material()) != Keyring("other").fingerprint(material())


def test_fingerprint_reveals_nothing_of_the_body():
    fingerprint = Keyring(SECRET).fingerprint(material())
    assert len(fingerprint) == 64
    assert "correct horse" not in fingerprint


def test_sealed_response_opens_with_the_same_request():
    keyring = Keyring(SECRET)
    sealed = keyring.seal(material(), b'{"token": "mkt_secret"}', b"ctx")
    assert b"mkt_secret" not in sealed
    assert keyring.unseal(material(), sealed, b"ctx") == b'{"token": "mkt_secret"}'


def test_sealing_twice_gives_different_ciphertexts():
    keyring = Keyring(SECRET)
    assert keyring.seal(material(), b"x", b"ctx") != keyring.seal(material(), b"x", b"ctx")


@pytest.mark.parametrize(
    "secret, other_material, context",
    [
        (SECRET, material({**BODY, "password": "guess guess guess"}), b"ctx"),
        (SECRET, material(), b"another row"),
        ("other secret", material(), b"ctx"),
    ],
    ids=["other-body", "other-row", "other-secret"],
)
def test_sealed_response_does_not_open_for_anyone_else(secret, other_material, context):
    sealed = Keyring(SECRET).seal(material(), b"secret answer", b"ctx")
    with pytest.raises(InvalidTag):
        Keyring(secret).unseal(other_material, sealed, context)


def test_tampered_response_does_not_open():
    keyring = Keyring(SECRET)
    sealed = bytearray(keyring.seal(material(), b"secret answer", b"ctx"))
    sealed[-1] ^= 1
    with pytest.raises(InvalidTag):
        keyring.unseal(material(), bytes(sealed), b"ctx")


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        Keyring("")


def test_keys_are_scoped_to_the_callers_account_or_to_anonymous_callers():
    caller = {"account_id": "acc_1", "user_id": "usr_1", "account_type": "buyer", "roles": []}
    assert scope_of(caller) == "account:acc_1"
    assert scope_of({"correlation_id": "rid"}) == ANONYMOUS_SCOPE


def post_with(headers) -> Request:
    return Request(EnvironBuilder(method="POST", headers=headers).get_environ())


def test_the_key_a_service_keeps_is_a_fixed_length_digest_of_the_clients():
    short = downstream_key(post_with({"Idempotency-Key": "k1"}))
    long = downstream_key(post_with({"Idempotency-Key": "k" * 255}))
    assert short == downstream_key(post_with({"Idempotency-Key": "k1"}))
    assert short != long
    assert len(short) == len(long) == 64
    assert "k1" not in short


def test_no_key_none_passed_on():
    assert downstream_key(post_with({})) is None


def test_a_lone_surrogate_or_nul_in_the_request_has_a_fingerprint_not_an_error():
    strange = {"name": "\ud800 half a pair", "note": "nul\x00inside"}
    fingerprint = Keyring(SECRET).fingerprint(material(strange, path="/v1/\udcff"))
    assert fingerprint == Keyring(SECRET).fingerprint(material(strange, path="/v1/\udcff"))
    assert fingerprint != Keyring(SECRET).fingerprint(material({"name": "\ud801 half a pair"}))


def test_the_canonical_form_of_ordinary_text_is_plain_utf8():
    # records made before the surrogate rule still match their retries
    assert material({"name": "Zoë"}) == b'POST\x00/v1/auth/tokens\x00{"name":"Zo\xc3\xab"}'
