"""Attachments over HTTP: the gateway with iam-agency and supervision, each on its own
PostgreSQL database, the bytes in a local object store in the test's folder.

Uploads are sent the way clients send them: multipart bodies streamed from a file (with
a Content-Length) or from a generator (chunked), never built whole in memory here
either, so that tracemalloc sees what the gateway holds."""

from __future__ import annotations

import hashlib
import http.client
import json
import tracemalloc
from collections.abc import Iterator

import pytest

from gateway.tests.marketplace import assert_error, bearer, sign_up
from mercato.contracts.supervision import MAX_ATTACHMENT_BYTES
from mercato_testing.interface import count_rows
from supervision.service import SupervisionService

pytestmark = pytest.mark.interface

BOUNDARY = "mercato-test-7d1c0b"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
    b"\x00\x00\x00\nIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\r\n-\xb4\x00\x00\x00\x00IEND\xaeB`\x82"
)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120
ZEROS = b"\x00" * (64 * 1024)


@pytest.fixture
def system(start_stack, container_factory, make_service_config, tmp_path):
    store = tmp_path / "store"
    spool = tmp_path / "spool"
    spool.mkdir()
    supervision_config = make_service_config("supervision")
    container_factory(SupervisionService, supervision_config).start()
    stack = start_stack(OBJECT_STORE_PATH=str(store), UPLOAD_SPOOL_DIR=str(spool))
    stack.supervision_config = supervision_config
    stack.store = store
    stack.spool = spool
    return stack


def stored_objects(system) -> list:
    return [path for path in system.store.rglob("*") if path.is_file()]


def part_head(
    field: str = "file",
    filename: str | None = "upload.bin",
    declared: str = "application/octet-stream",
) -> bytes:
    disposition = f'form-data; name="{field}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {declared}\r\n\r\n"
    ).encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()


def body(content: bytes, **head) -> bytes:
    return part_head(**head) + content + CLOSING


def pdf_like(size: int) -> Iterator[bytes]:
    """``size`` bytes that sniff as a PDF, a 64 KiB chunk at a time (one object reused)."""
    first = b"%PDF-1.7\n"
    yield first
    left = size - len(first)
    while left > 0:
        step = min(left, len(ZEROS))
        yield ZEROS if step == len(ZEROS) else ZEROS[:step]
        left -= step


def chunked(size: int, filename: str = "big.pdf") -> Iterator[bytes]:
    yield part_head(filename=filename, declared="application/pdf")
    yield from pdf_like(size)
    yield CLOSING


def upload(client, content: bytes, **head):
    return client.post("/v1/attachments", body=None, data=body(content, **head), headers=MULTIPART)


# -- upload ---------------------------------------------------------------------------------


def test_an_upload_answers_what_was_recognised_and_the_uploader_downloads_it(system):
    buyer = sign_up(system, "buyer")

    answer = buyer.ok(upload(buyer, PNG, filename="diagram", declared="application/pdf"), 201)

    assert answer == {
        "id": answer["id"],
        "filename": "diagram.png",
        "content_type": "image/png",
        "size": len(PNG),
        "sha256": hashlib.sha256(PNG).hexdigest(),
    }
    assert count_rows(system.supervision_config, "attachments") == 1
    assert len(stored_objects(system)) == 2  # the object and its metadata
    assert list(system.spool.iterdir()) == []  # the spooled upload is gone

    download = buyer.get(f"/v1/attachments/{answer['id']}")
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Length"] == str(len(PNG))
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"diagram.png\"; filename*=UTF-8''diagram.png"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "no-store"


def test_a_name_in_any_script_is_kept_and_sent_back_encoded(system):
    seller = sign_up(system, "seller")
    answer = seller.ok(upload(seller, PNG, filename="方案 v2.png"), 201)

    download = seller.get(f"/v1/attachments/{answer['id']}")

    assert answer["filename"] == "方案 v2.png"
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"__ v2.png\"; filename*=UTF-8''%E6%96%B9%E6%A1%88%20v2.png"
    )


@pytest.mark.parametrize(
    "content, filename",
    [
        (ELF, "photo.png"),
        (b"<html><script>alert(1)</script></html>", "page.pdf"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.png"),
    ],
    ids=["elf", "html", "svg"],
)
def test_content_of_another_type_is_415_whatever_its_name_and_nothing_is_kept(
    system, content, filename
):
    buyer = sign_up(system, "buyer")

    response = upload(buyer, content, filename=filename, declared="image/png")

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert stored_objects(system) == []
    assert list(system.spool.iterdir()) == []
    assert count_rows(system.supervision_config, "attachments") == 0


@pytest.mark.parametrize(
    "data, headers, field",
    [
        (f"--{BOUNDARY}--\r\n".encode(), MULTIPART, "file"),
        (body(PNG, field="document"), MULTIPART, "document"),
        (
            f"--{BOUNDARY}\r\nContent-Type: image/png\r\n\r\n".encode() + PNG + CLOSING,
            MULTIPART,
            "_body",
        ),
        (
            part_head() + PNG + b"\r\n" + part_head(filename="b.png") + PNG + CLOSING,
            MULTIPART,
            "file",
        ),
        (b'{"file": "x"}', {"Content-Type": "application/json"}, "_body"),
        (body(PNG), {"Content-Type": "multipart/form-data"}, "_body"),
        (part_head() + PNG, MULTIPART, "_body"),  # never closed
    ],
    ids=["no-part", "another-part", "garbled", "two-files", "json", "no-boundary", "unclosed"],
)
def test_a_body_without_one_file_part_is_400_naming_what_is_wrong(system, data, headers, field):
    buyer = sign_up(system, "buyer")

    response = buyer.post("/v1/attachments", data=data, headers=headers)

    assert field in assert_error(response, 400, "VALIDATION_ERROR")["fields"]
    assert stored_objects(system) == []


def test_anonymous_is_401_and_a_reseller_403(system):
    assert_error(
        system.post("/v1/attachments", data=body(PNG), headers=MULTIPART), 401, "UNAUTHENTICATED"
    )
    reseller = sign_up(system, "reseller")
    assert_error(upload(reseller, PNG), 403, "FORBIDDEN")
    assert stored_objects(system) == []


def test_50_mb_streams_through_in_bounded_memory_and_one_byte_more_is_413(system, tmp_path):
    buyer = sign_up(system, "buyer")
    headers = {**MULTIPART, **bearer(buyer.token)}

    tracemalloc.start()
    try:
        response = system.post(
            "/v1/attachments", data=chunked(MAX_ATTACHMENT_BYTES), headers=headers
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    answer = buyer.ok(response, 201)
    assert answer["size"] == MAX_ATTACHMENT_BYTES
    assert answer["content_type"] == "application/pdf"
    assert peak < MAX_ATTACHMENT_BYTES / 10, f"peak {peak} bytes while 50 MB streamed"

    too_large = system.post(
        "/v1/attachments", data=chunked(MAX_ATTACHMENT_BYTES + 1), headers=headers
    )
    assert_error(too_large, 413, "PAYLOAD_TOO_LARGE")

    # the same with a Content-Length, the body streamed from a file
    path = tmp_path / "body"
    with path.open("wb") as out:
        for chunk in chunked(MAX_ATTACHMENT_BYTES + 1):
            out.write(chunk)
    with path.open("rb") as data:
        with_length = system.post("/v1/attachments", data=data, headers=headers)
    assert_error(with_length, 413, "PAYLOAD_TOO_LARGE")

    assert count_rows(system.supervision_config, "attachments") == 1
    assert len(stored_objects(system)) == 2
    assert list(system.spool.iterdir()) == []


def test_a_declared_length_over_the_limit_is_413_before_anything_is_read(system):
    buyer = sign_up(system, "buyer")
    host, port = system.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        # a client that says 60 MB are coming and has sent only the first part of them
        connection.putrequest("POST", "/v1/attachments")
        for name, value in {**MULTIPART, **bearer(buyer.token)}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(60 * 1024 * 1024))
        connection.endheaders(part_head() + PNG)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert answer["error"] == "PAYLOAD_TOO_LARGE"


def test_other_routes_keep_the_gateways_own_body_limit(system):
    big = b'{"name": "' + b"x" * 70_000 + b'"}'
    response = system.post("/v1/accounts", data=big, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# -- download ---------------------------------------------------------------------------------


def test_only_the_uploader_may_download_an_unattached_file(system):
    buyer, other = sign_up(system, "buyer"), sign_up(system, "buyer")
    attachment_id = buyer.ok(upload(buyer, PNG), 201)["id"]

    assert_error(other.get(f"/v1/attachments/{attachment_id}"), 404, "NOT_FOUND")
    assert_error(system.get(f"/v1/attachments/{attachment_id}"), 401, "UNAUTHENTICATED")
    assert_error(buyer.get("/v1/attachments/att_does_not_exist"), 404, "NOT_FOUND")
    assert_error(buyer.get("/v1/attachments/not%20an%20id"), 404, "NOT_FOUND")
    assert buyer.get(f"/v1/attachments/{attachment_id}").content == PNG


def test_a_large_download_streams_back_whole(system):
    seller = sign_up(system, "seller")
    size = 3 * 1024 * 1024 + 17
    content = b"".join(pdf_like(size))
    attachment_id = seller.ok(upload(seller, content, filename="manual.pdf"), 201)["id"]

    response = seller.get(f"/v1/attachments/{attachment_id}", stream=True)
    received = hashlib.sha256()
    chunks = 0
    for chunk in response.iter_content(64 * 1024):
        received.update(chunk)
        chunks += 1

    assert response.headers["Content-Type"] == "application/pdf"
    assert received.hexdigest() == hashlib.sha256(content).hexdigest()
    assert chunks > 1
