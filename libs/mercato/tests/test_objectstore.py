"""The object stores: local files, and S3 through boto3 against moto's S3 server, run as
a process of its own (``python -m moto.server``) so that it is a real HTTP endpoint
and this process's memory is the client's alone."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tracemalloc
import uuid

import pytest

from mercato import objectstore
from mercato.objectstore import LocalObjectStore, ObjectInfo, ObjectMissing, S3ObjectStore
from mercato_testing import free_port
from mercato_testing.interface import wait_for

CONTENT = b"%PDF-1.7\n" + os.urandom(200_000)
INFO = ObjectInfo(len(CONTENT), hashlib.sha256(CONTENT).hexdigest(), "application/pdf")


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import requests

        def answers() -> bool:
            try:
                return requests.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500
            except requests.ConnectionError:
                return False

        wait_for(answers, "moto's S3 server")
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def s3_store(s3_endpoint) -> S3ObjectStore:
    client = objectstore.s3_client(
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test-secret",
        addressing_style="path",
    )
    bucket = f"mercato-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3ObjectStore(client, bucket)


@pytest.fixture
def local_store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "attachments")


@pytest.fixture(params=["local", "s3"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")


def read_all(stored) -> bytes:
    return b"".join(stored.chunks(10_000))


def test_an_object_is_read_back_in_chunks_with_what_it_was_stored_with(store):
    key = objectstore.new_key()
    store.put(key, io.BytesIO(CONTENT), info=INFO)

    stored = store.open(key)
    chunks = list(stored.chunks(64 * 1024))

    assert b"".join(chunks) == CONTENT
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024
    assert stored.info == INFO


def test_put_stores_from_where_the_source_stands(store):
    key = objectstore.new_key()
    source = io.BytesIO(b"ignored" + CONTENT)
    source.seek(len(b"ignored"))

    store.put(key, source, info=INFO)

    assert read_all(store.open(key)) == CONTENT


def test_a_deleted_object_is_missing_and_deleting_again_is_harmless(store):
    key = objectstore.new_key()
    store.put(key, io.BytesIO(CONTENT), info=INFO)

    store.delete(key)
    store.delete(key)

    with pytest.raises(ObjectMissing):
        store.open(key)


def test_a_key_never_stored_is_missing(store):
    with pytest.raises(ObjectMissing):
        store.open(objectstore.new_key())


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a//b", "A/B", "a/b/", "", "a b"])
def test_a_key_that_could_leave_the_store_is_refused(local_store, key):
    with pytest.raises(ValueError):
        local_store.put(key, io.BytesIO(b"x"), info=INFO)
    with pytest.raises(ValueError):
        local_store.open(key)


def test_keys_are_random_and_safe():
    keys = {objectstore.new_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(
        key.startswith("attachments/") and len(key) == len("attachments/ab/") + 32 for key in keys
    )


def test_the_local_store_leaves_no_partial_file_behind(local_store):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError("disk gone")

    key = objectstore.new_key()
    with pytest.raises(OSError):
        local_store.put(key, Broken(), info=INFO)

    leftovers = [path for path in local_store.root.rglob("*") if path.is_file()]
    assert leftovers == []
    with pytest.raises(ObjectMissing):
        local_store.open(key)


def test_the_s3_object_keeps_its_sha256_and_type_as_metadata(s3_store):
    key = objectstore.new_key()
    s3_store.put(key, io.BytesIO(CONTENT), info=INFO)

    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=key)

    assert head["Metadata"] == {"sha256": INFO.sha256}
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == len(CONTENT)


def test_a_large_object_goes_to_s3_and_back_without_being_held_in_memory(s3_store, tmp_path):
    size = 20 * 1024 * 1024
    path = tmp_path / "large.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    info = ObjectInfo(size, digest.hexdigest(), "application/zip")
    key = objectstore.new_key()

    tracemalloc.start()
    try:
        with path.open("rb") as source:
            s3_store.put(key, source, info=info)
        read_back = hashlib.sha256()
        for chunk in s3_store.open(key).chunks():
            read_back.update(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert read_back.hexdigest() == info.sha256
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte object"


def test_from_settings_builds_the_store_the_configuration_names(tmp_path, s3_endpoint):
    local = objectstore.from_settings({"OBJECT_STORE_PATH": str(tmp_path)})
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path

    s3 = objectstore.from_settings(
        {
            "OBJECT_STORE": "s3",
            "OBJECT_STORE_BUCKET": "mercato-attachments",
            "OBJECT_STORE_ENDPOINT_URL": s3_endpoint,
            "OBJECT_STORE_REGION": "eu-west-1",
            "OBJECT_STORE_ACCESS_KEY_ID": "id",
            "OBJECT_STORE_SECRET_ACCESS_KEY": "secret",
        }
    )
    assert isinstance(s3, S3ObjectStore) and s3.bucket == "mercato-attachments"
    assert "mercato-attachments" in s3.describe() and "secret" not in s3.describe()

    with pytest.raises(ValueError, match="OBJECT_STORE_BUCKET"):
        objectstore.from_settings({"OBJECT_STORE": "s3"})
    with pytest.raises(ValueError, match="local, s3"):
        objectstore.from_settings({"OBJECT_STORE": "ftp"})
