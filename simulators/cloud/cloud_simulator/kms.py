"""KMS: customer master keys and data keys (envelope encryption).

A CMK's key material never leaves the simulator. A data key is 32 random bytes;
CreateDatakey answers it in hex (``plain_text``) and sealed under the CMK
(``cipher_text``: hex of nonce || AES-256-GCM ciphertext, the key id as associated
data), which DecryptDatakey opens again.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import bad_request, conflict, not_found
from .iam import iso
from .routing import Answer, Call, Route, require
from .store import Store

STYLE = "kms"


def _key(store: Store, domain_id: str, key_id: str):
    row = store.one("SELECT * FROM kms_keys WHERE id = ? AND domain_id = ?", key_id, domain_id)
    if row is None:
        raise not_found(STYLE, f"Key {key_id}", code="KMS.0205")
    return row


def create_key(call: Call) -> Answer:
    alias = call.field("key_alias")
    spec = call.field("key_spec", required=False, default="AES_256")
    require(
        spec == "AES_256", bad_request(STYLE, "Only AES_256 keys are simulated.", code="KMS.0202")
    )
    key_id = str(uuid.uuid4())
    with call.store.transaction() as db:
        if db.execute(
            "SELECT 1 FROM kms_keys WHERE domain_id = ? AND alias = ?",
            (call.caller.domain_id, alias),
        ).fetchone():
            raise conflict(STYLE, f"Key alias {alias} exists.", code="KMS.0209")
        db.execute(
            "INSERT INTO kms_keys (id, domain_id, alias, description, master_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, call.caller.domain_id, alias, call.field("key_description", required=False, default=""),
             AESGCM.generate_key(bit_length=256), call.store.now()),
        )  # fmt: skip
    return 200, {
        "key_info": {
            "key_id": key_id,
            "domain_id": call.caller.domain_id,
            "region_id": call.settings.region,
        }
    }


def describe_key(call: Call) -> Answer:
    row = _key(call.store, call.caller.domain_id, call.field("key_id"))
    return 200, {
        "key_info": {
            "key_id": row["id"],
            "domain_id": row["domain_id"],
            "key_alias": row["alias"],
            "realm": call.settings.region,
            "key_spec": "AES_256",
            "key_usage": "ENCRYPT_DECRYPT",
            "key_description": row["description"],
            "creation_date": str(int(row["created_at"] * 1000)),
            "scheduled_deletion_date": "",
            "key_state": "2",  # enabled
            "default_key_flag": "0",
            "key_type": "1",
            "expiration_time": "",
            "origin": "kms",
            "key_rotation_enabled": "false",
            "sys_enterprise_project_id": "0",
            "keystore_id": "0",
            "created_at": iso(row["created_at"]),
        }
    }


def seal_data_key(master_key: bytes, key_id: str, data_key: bytes) -> str:
    nonce = os.urandom(12)
    return (nonce + AESGCM(master_key).encrypt(nonce, data_key, key_id.encode())).hex()


def open_data_key(store: Store, domain_id: str, key_id: str, cipher_text: str) -> bytes:
    """The data key sealed in ``cipher_text`` (also used by the stack service)."""
    row = _key(store, domain_id, key_id)
    try:
        sealed = bytes.fromhex(cipher_text)
        return AESGCM(row["master_key"]).decrypt(sealed[:12], sealed[12:], key_id.encode())
    except (ValueError, InvalidTag):
        raise bad_request(
            STYLE, "The cipher text is not a data key of this key.", code="KMS.0206"
        ) from None


def create_datakey(call: Call) -> Answer:
    key_id = call.field("key_id")
    row = _key(call.store, call.caller.domain_id, key_id)
    length = int(call.field("datakey_length", required=False, default="256"))
    require(
        length in (128, 256, 512), bad_request(STYLE, "datakey_length must be 128, 256 or 512.")
    )
    data_key = os.urandom(length // 8)
    return 200, {
        "key_id": key_id,
        "plain_text": data_key.hex(),
        "cipher_text": seal_data_key(row["master_key"], key_id, data_key),
    }


def decrypt_datakey(call: Call) -> Answer:
    data_key = open_data_key(
        call.store, call.caller.domain_id, call.field("key_id"), call.field("cipher_text")
    )
    return 200, {
        "data_key": data_key.hex(),
        "datakey_length": str(len(data_key) * 8),
        "datakey_dgst": hashlib.sha256(data_key).hexdigest(),
    }


ROUTES = [
    Route("POST", "/v1.0/<project_id>/kms/create-key", "CreateKey", "kms:cmk:create", STYLE, create_key),
    Route("POST", "/v1.0/<project_id>/kms/describe-key", "ListKeyDetail (describe-key)", "kms:cmk:get", STYLE, describe_key),
    Route("POST", "/v1.0/<project_id>/kms/create-datakey", "CreateDatakey", "kms:dek:create", STYLE, create_datakey),
    Route("POST", "/v1.0/<project_id>/kms/decrypt-datakey", "DecryptDatakey", "kms:dek:decrypt", STYLE, decrypt_datakey),
]  # fmt: skip
