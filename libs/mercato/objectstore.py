"""Where files' bytes are kept: an object store behind one small interface.

Two stores answer it: ``LocalObjectStore``, files under a folder (``var/attachments``
for ``make run``), and ``S3ObjectStore``, any S3-compatible bucket through boto3
(production). ``from_settings`` builds the one a process's configuration names.

A store never holds a whole object in memory: ``put`` reads its source file as it
sends it, ``open`` answers an object whose ``chunks()`` come from the store as they
are read. Each object keeps the SHA-256 and content type it was stored with.

Keys are made by ``new_key``: random, so that a key says nothing about the file and
cannot be guessed, and limited to ``[a-z0-9/]`` so that no key can climb out of the
local store's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

CHUNK_BYTES = 64 * 1024

LOCAL = "local"
S3 = "s3"
KINDS = (LOCAL, S3)

_KEY = re.compile(r"^[a-z0-9]+(/[a-z0-9]+)*$")
_META_SUFFIX = ".meta.json"


class ObjectMissing(LookupError):
    """No object is stored under the key."""


def new_key(prefix: str = "attachments") -> str:
    """A random key under ``prefix``: ``attachments/3f/3f0c…`` (128 random bits)."""
    token = uuid.uuid4().hex
    return f"{prefix}/{token[:2]}/{token}"


def _checked(key: str) -> str:
    if len(key) > 200 or not _KEY.match(key):
        raise ValueError(f"not an object key: {key!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    sha256: str
    content_type: str


class StoredObject(Protocol):
    info: ObjectInfo

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object's bytes, ``size`` at most at a time; closes the object at the end."""
        ...

    def close(self) -> None: ...


class ObjectStore(Protocol):
    def put(self, key: str, source: BinaryIO, *, info: ObjectInfo) -> None:
        """Store ``source``'s bytes (read from where it stands to its end) under ``key``."""
        ...

    def open(self, key: str) -> StoredObject:
        """The object under ``key``; ObjectMissing if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Forget the object under ``key`` (nothing happens if there is none)."""
        ...

    def describe(self) -> str:
        """Where the store keeps its objects, for a log line (never a credential)."""
        ...


# -- local files ----------------------------------------------------------------------


class _LocalObject:
    def __init__(self, handle: BinaryIO, info: ObjectInfo) -> None:
        self._handle = handle
        self.info = info

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        try:
            while chunk := self._handle.read(size):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._handle.close()


class LocalObjectStore:
    """Objects as files under ``root`` (``<root>/<key>``), each beside a small JSON file
    with its size, SHA-256 and content type. A file is written to a temporary name and
    renamed into place, so a reader never sees half of one. For one machine: replicas
    on several machines need a store they share (S3)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, source: BinaryIO, *, info: ObjectInfo) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"size": info.size, "sha256": info.sha256, "content_type": info.content_type}
        for target, write in (
            (path, lambda out: shutil.copyfileobj(source, out, CHUNK_BYTES)),
            (_meta_path(path), lambda out: out.write(json.dumps(meta).encode())),
        ):
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(handle, "wb") as out:
                    write(out)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise

    def open(self, key: str) -> _LocalObject:
        path = self._path(key)
        try:
            meta = json.loads(_meta_path(path).read_text())
            handle = path.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        return _LocalObject(handle, ObjectInfo(meta["size"], meta["sha256"], meta["content_type"]))

    def delete(self, key: str) -> None:
        path = self._path(key)
        for target in (path, _meta_path(path)):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

    def describe(self) -> str:
        return f"local files under {self.root.resolve()}"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + _META_SUFFIX)


# -- S3 -------------------------------------------------------------------------------


class _S3Object:
    def __init__(self, body: Any, info: ObjectInfo) -> None:
        self._body = body
        self.info = info

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        try:
            yield from self._body.iter_chunks(size)
        finally:
            self.close()

    def close(self) -> None:
        self._body.close()


class S3ObjectStore:
    """Objects in one bucket of an S3-compatible store. The SHA-256 is kept as the
    object's user metadata (``x-amz-meta-sha256``), which every S3-compatible store
    keeps. Objects are sent with one PUT from the spooled file (an attachment is at most
    50 MB, well under S3's 5 GB for one PUT): boto3's managed transfer would read parts
    of 8 MB into memory, several at once."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, source: BinaryIO, *, info: ObjectInfo) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=_checked(key),
            Body=source,
            ContentLength=info.size,
            ContentType=info.content_type,
            Metadata={"sha256": info.sha256},
        )

    def open(self, key: str) -> _S3Object:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=_checked(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissing(key) from None
            raise
        info = ObjectInfo(
            size=int(answer["ContentLength"]),
            sha256=answer.get("Metadata", {}).get("sha256", ""),
            content_type=answer.get("ContentType", "application/octet-stream"),
        )
        return _S3Object(answer["Body"], info)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_checked(key))

    def describe(self) -> str:
        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", None)
        return f"bucket {self.bucket} at {endpoint or 'AWS S3'}"


def s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    addressing_style: str = "auto",
) -> Any:
    """A boto3 S3 client. Without an access key, boto3 finds credentials itself (its
    environment variables, a web identity, an instance profile). Checksums are sent
    only where S3 requires them: stores that speak S3 but not its newer checksum
    headers refuse them."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=Config(
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


# -- from a process's configuration ------------------------------------------------------

# config keys (names, not values)
OBJECT_STORE = "OBJECT_STORE"
OBJECT_STORE_PATH = "OBJECT_STORE_PATH"
OBJECT_STORE_ENDPOINT_URL = "OBJECT_STORE_ENDPOINT_URL"
OBJECT_STORE_BUCKET = "OBJECT_STORE_BUCKET"
OBJECT_STORE_REGION = "OBJECT_STORE_REGION"
OBJECT_STORE_ADDRESSING_STYLE = "OBJECT_STORE_ADDRESSING_STYLE"
OBJECT_STORE_ACCESS_KEY_ID = "OBJECT_STORE_ACCESS_KEY_ID"
OBJECT_STORE_SECRET_ACCESS_KEY = "OBJECT_STORE_SECRET_ACCESS_KEY"  # noqa: S105

DEFAULT_LOCAL_PATH = "var/attachments"


def from_settings(config: Mapping[str, Any]) -> ObjectStore:
    """The store ``config`` names: ``OBJECT_STORE`` ``local`` (the default, files under
    ``OBJECT_STORE_PATH``) or ``s3`` (``OBJECT_STORE_BUCKET`` at
    ``OBJECT_STORE_ENDPOINT_URL``, AWS itself when empty)."""

    def value(key: str, default: str = "") -> str:
        given = config.get(key)
        return default if given in (None, "") else str(given)

    kind = value(OBJECT_STORE, LOCAL).lower()
    if kind == LOCAL:
        return LocalObjectStore(value(OBJECT_STORE_PATH, DEFAULT_LOCAL_PATH))
    if kind == S3:
        bucket = value(OBJECT_STORE_BUCKET)
        if not bucket:
            raise ValueError(f"{OBJECT_STORE}=s3 needs {OBJECT_STORE_BUCKET}")
        client = s3_client(
            endpoint_url=value(OBJECT_STORE_ENDPOINT_URL),
            region=value(OBJECT_STORE_REGION),
            access_key_id=value(OBJECT_STORE_ACCESS_KEY_ID),
            secret_access_key=value(OBJECT_STORE_SECRET_ACCESS_KEY),
            addressing_style=value(OBJECT_STORE_ADDRESSING_STYLE, "auto"),
        )
        return S3ObjectStore(client, bucket)
    raise ValueError(f"{OBJECT_STORE} must be one of {', '.join(KINDS)}, not {kind!r}")
