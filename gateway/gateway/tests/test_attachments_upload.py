"""What the upload does when supervision does not register the stored file: a refusal
deletes the object; no answer keeps it (supervision may still register it). A real
local object store and a real werkzeug request; supervision is a stand-in that
answers as the RPC proxy would."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import attachments
from gateway.settings import Settings
from mercato.errors import Conflict, ServiceUnavailable
from mercato.objectstore import LocalObjectStore

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Supervision:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.registered: list[dict] = []

    def register_attachment(self, registration: dict) -> dict:
        if self.failure is not None:
            raise self.failure
        self.registered.append(registration)
        return {"id": "att_1", **registration}


def gateway(tmp_path, supervision: Supervision):
    return SimpleNamespace(
        settings=Settings(upload_spool_dir=str(tmp_path)),
        object_store=LocalObjectStore(tmp_path / "store"),
        supervision=supervision,
    )


def request(content: bytes, filename: str = "chart.png") -> Request:
    builder = EnvironBuilder(method="POST", data={"file": (io.BytesIO(content), filename)})
    return Request(builder.get_environ())


def objects(tmp_path) -> list:
    return [p for p in (tmp_path / "store").rglob("*") if p.is_file()]


def test_a_registered_upload_is_stored_under_the_key_it_was_registered_with(tmp_path):
    supervision = Supervision()

    answer = attachments.upload(gateway(tmp_path, supervision), request(PNG))

    (registration,) = supervision.registered
    assert answer["content_type"] == registration["content_type"] == "image/png"
    assert (tmp_path / "store" / registration["storage_key"]).read_bytes() == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # nothing left spooled


def test_a_refused_registration_deletes_the_stored_object(tmp_path):
    with pytest.raises(Conflict):
        attachments.upload(gateway(tmp_path, Supervision(Conflict("taken"))), request(PNG))

    assert objects(tmp_path) == []


def test_an_unanswered_registration_keeps_the_object_supervision_may_still_register(tmp_path):
    with pytest.raises(ServiceUnavailable):
        attachments.upload(gateway(tmp_path, Supervision(ServiceUnavailable("late"))), request(PNG))

    assert len(objects(tmp_path)) == 2  # the object and its metadata


def test_content_disposition_names_the_file_in_ascii_and_exactly():
    assert attachments.content_disposition('a "quoted"\\ name.pdf') == (
        'attachment; filename="a _quoted__ name.pdf"; '
        "filename*=UTF-8''a%20%22quoted%22%5C%20name.pdf"
    )
