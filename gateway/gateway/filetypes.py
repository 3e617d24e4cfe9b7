"""What an uploaded file is, told by its content, never by its name or declared type.

``sniff(path)`` recognises the types an attachment may be (docs/api.md,
``POST /v1/attachments``) by their magic numbers: BMP, JPEG, PNG, GIF, PDF and ZIP.
A ZIP is a DOCX, XLSX or PPTX when its ``[Content_Types].xml`` names the main part of
a Word document, an Excel workbook or a PowerPoint presentation and that part is in
the archive; any other ZIP (a macro-enabled document included) is a ZIP. The archive
is read with ``zipfile`` from the spooled file: its central directory and, at most,
``MAX_CONTENT_TYPES_BYTES`` of that one small member, however large the archive or
whatever its members claim to unpack to.

Anything else is None: an executable renamed ``.png``, HTML, SVG, text. The magic
must be at the very start: a self-extracting executable (a ZIP behind a program) is
not a ZIP here.

``filename_for`` makes the name an attachment is kept and downloaded under.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

MAX_CONTENT_TYPES_BYTES = 1024 * 1024
MAX_FILENAME_LENGTH = 255  # supervision's attachments.filename
DEFAULT_STEM = "attachment"


@dataclass(frozen=True)
class FileType:
    content_type: str
    extensions: tuple[str, ...]  # the first is the one a name without any gets

    @property
    def name(self) -> str:
        return self.extensions[0].upper()


BMP = FileType("image/bmp", ("bmp", "dib"))
JPEG = FileType("image/jpeg", ("jpg", "jpeg", "jpe", "jfif"))
PNG = FileType("image/png", ("png",))
GIF = FileType("image/gif", ("gif",))
PDF = FileType("application/pdf", ("pdf",))
ZIP = FileType("application/zip", ("zip",))
DOCX = FileType(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)
)
XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
PPTX = FileType(
    "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",)
)
TYPES = (BMP, JPEG, PNG, GIF, PDF, ZIP, DOCX, XLSX, PPTX)

# the content type [Content_Types].xml gives the main part of each Office Open XML kind
OFFICE_MAIN_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
}
CONTENT_TYPES_PART = "[Content_Types].xml"

# BMP's DIB header sizes: BITMAPCOREHEADER, INFOHEADER, V2, V3, OS/2 2.x, V4, V5
_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_HEAD_BYTES = 32


def sniff(path: str | os.PathLike[str]) -> FileType | None:
    """The type of the file at ``path``, or None when it is none of ``TYPES``."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"%PDF-"):
        return PDF
    if _is_bmp(head):
        return BMP
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a local file header; an empty archive
        return _zip_kind(path)
    return None


def _is_bmp(head: bytes) -> bool:
    """``BM``, then a DIB header of a size some BMP version has and pixels after it:
    two letters alone would take any text that starts with them."""
    if len(head) < 26 or not head.startswith(b"BM"):
        return False
    pixels_at = int.from_bytes(head[10:14], "little")
    header_size = int.from_bytes(head[14:18], "little")
    return header_size in _DIB_HEADER_SIZES and pixels_at >= 14 + header_size


def _zip_kind(path: str | os.PathLike[str]) -> FileType | None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None  # the magic of a ZIP, not one
    with archive:
        names = {name.lower() for name in archive.namelist()}
        try:
            with archive.open(CONTENT_TYPES_PART) as member:
                declared = member.read(MAX_CONTENT_TYPES_BYTES + 1)
        except KeyError:
            return ZIP
        except (
            zipfile.BadZipFile,
            RuntimeError,
            NotImplementedError,
            OSError,
            ValueError,
            EOFError,
            zlib.error,
        ):
            # encrypted, an unknown compression, damaged: a ZIP, not a readable document
            return ZIP
    if len(declared) > MAX_CONTENT_TYPES_BYTES:
        return ZIP
    kinds = {
        OFFICE_MAIN_PARTS[content_type]
        for part, content_type in _overrides(_text(declared))
        if content_type in OFFICE_MAIN_PARTS and part.lstrip("/").lower() in names
    }
    return kinds.pop() if len(kinds) == 1 else ZIP


_OVERRIDE = re.compile(r"<(?:[\w.-]+:)?Override\b([^>]*)>")
_ATTRIBUTE = re.compile(r"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _overrides(xml: str) -> list[tuple[str, str]]:
    """(PartName, ContentType) of each ``<Override>`` of ``[Content_Types].xml``. Read
    with two patterns rather than an XML parser: only these attributes matter, and
    nothing the archive holds (entities, DTDs) is ever expanded."""
    found = []
    for override in _OVERRIDE.finditer(xml):
        attributes = {
            name.split(":")[-1]: first or second
            for name, first, second in _ATTRIBUTE.findall(override.group(1))
        }
        if "PartName" in attributes and "ContentType" in attributes:
            found.append((attributes["PartName"], attributes["ContentType"].strip().lower()))
    return found


def _text(declared: bytes) -> str:
    # Office Open XML parts are UTF-8 or UTF-16 (with its byte order mark)
    if declared.startswith((b"\xff\xfe", b"\xfe\xff")):
        return declared.decode("utf-16", errors="replace")
    return declared.decode("utf-8", errors="replace")


def filename_for(given: str | None, kind: FileType) -> str:
    """The name to keep: the last part of ``given`` (a browser may send a whole path),
    without control or formatting characters (no bidi tricks such as ``gpj.exe``
    shown backwards), at most 255 characters, ending in an extension of ``kind``: one
    is added when it does not (``invoice`` and ``setup.exe`` holding a PDF become
    ``invoice.pdf`` and ``setup.exe.pdf``)."""
    name = (given or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = name.strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot or extension.lower() not in kind.extensions or not stem.strip(" ."):
        stem, extension = name or DEFAULT_STEM, kind.extensions[0]
    suffix = f".{extension}"
    return stem[: MAX_FILENAME_LENGTH - len(suffix)].rstrip(" .") + suffix
