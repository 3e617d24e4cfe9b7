"""An uploaded file, read from the request as it arrives and spooled to a file on disk.

``receive_file`` parses a ``multipart/form-data`` body with werkzeug's incremental
decoder, a chunk of ``CHUNK_BYTES`` at a time: the file part's bytes go to a temporary
file in the spool folder while their SHA-256 and count are taken, so no more than a
few chunks of the upload are ever in memory, whatever its size. The limits are kept
while reading, whatever ``Content-Length`` says and with chunked bodies too: more than
``max_file_bytes`` in the file, or more than ``max_body_bytes`` in the whole body, is a
PayloadTooLarge at the first byte over.

The body must hold exactly one part, named ``field`` (any other part is a
ValidationError naming it, before its content is read).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wrappers import Request

from gateway.errors import PayloadTooLarge
from mercato.errors import ValidationError

CHUNK_BYTES = 64 * 1024
# what the decoder may hold between two chunks: a part's headers, a boundary's start
MAX_DECODER_BUFFER = 4 * CHUNK_BYTES
BODY_FIELD = "_body"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Upload:
    """The file part of an upload, spooled at ``path`` (the caller removes it with
    ``discard``)."""

    path: Path
    filename: str | None
    size: int
    sha256: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def receive_file(
    request: Request,
    *,
    field: str,
    max_file_bytes: int,
    max_body_bytes: int,
    spool_dir: str | None = None,
) -> Upload:
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != MULTIPART or not boundary:
        raise ValidationError(
            f"the body must be {MULTIPART} with a `{field}` part",
            {BODY_FIELD: [f"Must be {MULTIPART} with a boundary."]},
        )
    handle, name = tempfile.mkstemp(dir=spool_dir, prefix="upload-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as spool:
            filename, size, sha256 = _spool(
                request, boundary.encode("latin-1"), field, spool, max_file_bytes, max_body_bytes
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return Upload(path, filename, size, sha256)


def _spool(
    request: Request,
    boundary: bytes,
    field: str,
    spool: BinaryIO,
    max_file_bytes: int,
    max_body_bytes: int,
) -> tuple[str | None, int, str]:
    stream = request.environ["wsgi.input"]
    # without a length or chunks there is no body at all (eventlet would wait for one)
    has_body = request.content_length is not None or (
        request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    )
    decoder = MultipartDecoder(boundary, max_form_memory_size=MAX_DECODER_BUFFER)
    digest = hashlib.sha256()
    received = size = 0
    in_file = seen_file = False
    filename: str | None = None
    try:
        while True:
            chunk = stream.read(CHUNK_BYTES) if has_body else b""
            received += len(chunk)
            if received > max_body_bytes:
                raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes")
            decoder.receive_data(chunk or None)
            while not isinstance(event := decoder.next_event(), NeedData):
                if isinstance(event, Field | File):
                    if event.name != field:
                        raise ValidationError(
                            f"invalid request: check {event.name or '(a part without a name)'}",
                            {event.name or BODY_FIELD: ["Unknown field."]},
                        )
                    if seen_file:
                        raise ValidationError(
                            f"invalid request: check {field}", {field: ["Give one file."]}
                        )
                    seen_file = in_file = True
                    filename = event.filename if isinstance(event, File) else None
                elif isinstance(event, Data) and in_file:
                    size += len(event.data)
                    if size > max_file_bytes:
                        raise PayloadTooLarge(f"the file is larger than {max_file_bytes} bytes")
                    digest.update(event.data)
                    spool.write(event.data)
                    in_file = event.more_data
                elif isinstance(event, Epilogue):
                    if not seen_file:
                        raise ValidationError(
                            f"invalid request: check {field}",
                            {field: ["Missing data for required field."]},
                        )
                    return filename, size, digest.hexdigest()
    except (ValueError, RequestEntityTooLarge) as exc:
        # a body the decoder cannot follow: no closing boundary, a part without its
        # headers, headers that never end
        raise ValidationError(
            f"the body is not valid {MULTIPART}",
            {BODY_FIELD: [f"Not valid {MULTIPART}: {str(exc)[:200] or type(exc).__name__}"]},
        ) from None
