"""Attachments through the gateway: the bytes go between the client and the object
store here; supervision keeps what they are and says who may read them.

Upload (``POST /v1/attachments``): the ``file`` part is spooled to disk as it arrives
(``uploads.receive_file``: at most ``MAX_ATTACHMENT_BYTES``, counted while reading),
its type is recognised from its content (``filetypes.sniff``; none of the allowed
types: 415), it is stored under a new random key with its SHA-256, and supervision
registers it (``register_attachment``), which answers the attachment. If supervision
refuses, the stored object is deleted. If it does not answer in time, the object is
kept: the registration may still be made from the queue, and a registered attachment
whose bytes were deleted would be worse than an object nobody names.

Download (``GET /v1/attachments/{id}``): supervision answers where the bytes are only
to those who may read them (NotFound otherwise); they are streamed from the store in
chunks, as an attachment the browser saves and never renders.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from gateway import filetypes, uploads
from gateway.errors import UnsupportedMediaType
from gateway.settings import Settings
from mercato import objectstore
from mercato.contracts.supervision import MAX_ATTACHMENT_BYTES
from mercato.errors import ServiceUnavailable

_log = logging.getLogger(__name__)

FILE_FIELD = "file"
# room for the multipart framing around the file: boundaries and the part's headers
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_UPLOAD_BODY_BYTES = MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD_BYTES
ACCEPTED = ", ".join(kind.name for kind in filetypes.TYPES)

UPLOAD_BODY = {
    "type": "object",
    "required": [FILE_FIELD],
    "properties": {
        FILE_FIELD: {
            "type": "string",
            "format": "binary",
            "description": f"The file: at most {MAX_ATTACHMENT_BYTES} bytes (50 MB), one "
            f"of {ACCEPTED}, recognised by its content.",
        }
    },
}
DOWNLOAD_BODY = {"type": "string", "format": "binary", "description": "The file's bytes."}


class ObjectStoreProvider(DependencyProvider):
    """The process's object store (``mercato.objectstore.from_settings``)."""

    def setup(self):
        self.store = objectstore.from_settings(self.container.config)
        _log.info("attachments are kept in %s", self.store.describe())

    def get_dependency(self, worker_ctx):
        return self.store


def upload(gateway: Any, request: Request) -> dict[str, Any]:
    settings: Settings = gateway.settings
    received = uploads.receive_file(
        request,
        field=FILE_FIELD,
        max_file_bytes=MAX_ATTACHMENT_BYTES,
        max_body_bytes=MAX_UPLOAD_BODY_BYTES,
        spool_dir=settings.upload_spool_dir,
    )
    try:
        kind = filetypes.sniff(received.path)
        if kind is None:
            raise UnsupportedMediaType(f"the file is none of the types accepted: {ACCEPTED}")
        key = objectstore.new_key()
        info = objectstore.ObjectInfo(received.size, received.sha256, kind.content_type)
        with open(received.path, "rb") as source:
            gateway.object_store.put(key, source, info=info)
    finally:
        received.discard()
    registration = {
        "filename": filetypes.filename_for(received.filename, kind),
        "content_type": kind.content_type,
        "size": received.size,
        "sha256": received.sha256,
        "storage_key": key,
    }
    try:
        return gateway.supervision.register_attachment(registration)
    except ServiceUnavailable:
        _log.warning("supervision did not answer; the object %s is kept in case it registers", key)
        raise
    except BaseException:
        _forget(gateway.object_store, key)
        raise


def _forget(store: objectstore.ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception:
        # the request's own failure is the one to answer; this one is for the operator
        _log.exception("could not delete the unregistered object %s", key)


def download(gateway: Any, request: Request, attachment_id: str) -> Response:
    found = gateway.supervision.download_attachment(attachment_id)
    stored = gateway.object_store.open(found["storage_key"])
    response = Response(
        _Chunks(stored), status=200, content_type=found["content_type"], direct_passthrough=True
    )
    response.headers["Content-Length"] = str(stored.info.size)
    response.headers["Content-Disposition"] = content_disposition(found["filename"])
    # never rendered as anything but what it is, never run, never cached
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response


class _Chunks:
    """The stored object's chunks, closed by the server when the answer is sent (or
    the client went away before it was), even if no chunk was ever asked for."""

    def __init__(self, stored: objectstore.StoredObject) -> None:
        self._stored = stored

    def __iter__(self) -> Iterator[bytes]:
        return self._stored.chunks()

    def close(self) -> None:
        self._stored.close()


def content_disposition(filename: str) -> str:
    """``attachment`` with the name twice: in ASCII for old clients, and exactly, in
    UTF-8 (RFC 6266, RFC 5987)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
