"""The keyring and license keys, without nameko."""

import base64
import datetime as dt

import pytest

from provisioning import licenses
from provisioning.keyring import Keyring, KeyringError, Sealed, generate_key_spec


def test_a_sealed_value_opens_only_where_it_belongs():
    keyring = Keyring.from_spec(generate_key_spec("k1"))
    sealed = keyring.seal("s3cret-pass", bound_to="password|acc_a|sub_1")
    assert b"s3cret-pass" not in sealed.ciphertext
    assert keyring.open(sealed, bound_to="password|acc_a|sub_1") == "s3cret-pass"
    # moved to another subscription's row, or tampered with: refused
    with pytest.raises(KeyringError, match="authentication"):
        keyring.open(sealed, bound_to="password|acc_b|sub_1")
    tampered = Sealed(sealed.key_id, sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1]))
    with pytest.raises(KeyringError):
        keyring.open(tampered, bound_to="password|acc_a|sub_1")


def test_rotation_keeps_old_rows_readable_and_seals_new_ones_with_the_new_key():
    old = generate_key_spec("2026-01")
    sealed_before = Keyring.from_spec(old).seal("before", bound_to="x")
    rotated = Keyring.from_spec(f"{generate_key_spec('2026-06')},{old}")
    assert rotated.open(sealed_before, bound_to="x") == "before"
    assert rotated.seal("after", bound_to="x").key_id == "2026-06"
    # dropping the old key too early is a clear error, not garbage
    with pytest.raises(KeyringError, match="2026-01"):
        Keyring.from_spec(generate_key_spec("2027-01")).open(sealed_before, bound_to="x")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no credential encryption key"),
        ("nokey", "expected 'key_id:base64'"),
        ("k:not base64!", "not valid base64"),
        (f"k:{base64.b64encode(b'short').decode()}", "32 bytes"),
        (f"{generate_key_spec('k')},{generate_key_spec('k')}", "listed twice"),
    ],
)
def test_bad_key_configuration_is_refused_with_the_rule(spec, message):
    with pytest.raises(KeyringError, match=message):
        Keyring.from_spec(spec)


def test_a_license_key_verifies_with_the_published_key_and_not_with_another():
    private, public = licenses.new_signing_key()
    claims = {
        "product_id": "prd_1",
        "quantity": 25,
        "expires_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC).isoformat(),
    }
    token = licenses.issue(private, claims)
    assert token.startswith("MLK1.")
    assert licenses.verify(token, public) == claims
    _, other_public = licenses.new_signing_key()
    with pytest.raises(licenses.InvalidLicense):
        licenses.verify(token, other_public)
    prefix, _payload, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(b'{"quantity":1000}').rstrip(b"=").decode()
    with pytest.raises(licenses.InvalidLicense):
        licenses.verify(f"{prefix}.{forged_payload}.{signature}", public)


def test_the_published_document_carries_a_key_any_ed25519_library_reads():
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    private, public = licenses.new_signing_key()
    document = licenses.public_key_document("acc_seller", "lk_1", public)
    assert document["algorithm"] == "Ed25519"
    token = licenses.issue(private, {"a": 1})
    _, payload, signature = token.split(".")
    pem_key = load_pem_public_key(document["public_key_pem"].encode())
    pem_key.verify(  # raises if it does not verify
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"MLK1.{payload}".encode(),
    )


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:8300/saas", True),
        ("http://localhost/saas", True),
        ("https://10.1.2.3/saas", True),
        ("https://169.254.169.254/latest/meta-data", True),
        ("https://[::1]/saas", True),
        ("https://[fd00::1]/saas", True),
        ("https://no-such-host.invalid/saas", True),  # cannot be checked: refused
        ("https://8.8.8.8/saas", False),
        ("https://[2001:4860:4860::8888]/saas", False),
    ],
)
def test_endpoints_on_our_own_networks_are_told_apart(url, private):
    from provisioning.endpoints import is_private

    assert is_private(url) is private
