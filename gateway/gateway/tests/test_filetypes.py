"""The upload sniffer, on real minimal files of every accepted type built here, and on
what must be refused whatever it is called."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib

import pytest

from gateway import filetypes
from gateway.filetypes import BMP, DOCX, GIF, JPEG, PDF, PNG, PPTX, XLSX, ZIP, filename_for, sniff

# -- real minimal files -------------------------------------------------------------------


def bmp() -> bytes:
    """A 1x1 24-bit BMP: file header, BITMAPINFOHEADER, one padded row."""
    pixels = b"\x00\x00\xff\x00"  # one red pixel, the row padded to 4 bytes
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def png() -> bytes:
    """A 1x1 grey PNG, its chunks with their CRCs."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def gif() -> bytes:
    """A 1x1 GIF89a: screen descriptor, a two-colour table, one image, the trailer."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def jpeg() -> bytes:
    """A 1x1 greyscale baseline JPEG (JFIF)."""
    return base64.b64decode(
        "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP////////////////////////////////////////"
        "//////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAA"
        "AAAAAAAAAAAAAP/aAAgBAQABPxA="
    )


def pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return body


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name, content in members.items():
            out.writestr(name, content)
    return buffer.getvalue()


def content_types(main_part: str, main_type: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="{main_part}" ContentType="{main_type}"/>'
        "</Types>"
    ).encode()


RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="MAIN"/></Relationships>'
)
OFFICE = {
    "docx": ("/word/document.xml", "wordprocessingml.document.main+xml"),
    "xlsx": ("/xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
    "pptx": ("/ppt/presentation.xml", "presentationml.presentation.main+xml"),
}


def office(kind: str, *, main_type: str | None = None, with_main: bool = True) -> bytes:
    part, suffix = OFFICE[kind]
    main_type = main_type or f"application/vnd.openxmlformats-officedocument.{suffix}"
    members = {
        "[Content_Types].xml": content_types(part, main_type),
        "_rels/.rels": RELS.replace(b"MAIN", part.lstrip("/").encode()),
    }
    if with_main:
        members[part.lstrip("/")] = b'<?xml version="1.0"?><root/>'
    return archive(members)


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + b"\x80\x00\x00\x00" + b"PE\x00\x00"


def sniffed(tmp_path, content: bytes, name: str = "upload.bin"):
    path = tmp_path / name
    path.write_bytes(content)
    return sniff(path)


# -- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        (bmp(), BMP),
        (jpeg(), JPEG),
        (png(), PNG),
        (gif(), GIF),
        (gif().replace(b"GIF89a", b"GIF87a"), GIF),
        (pdf(), PDF),
        (archive({"notes.txt": b"hello"}), ZIP),
        (archive({}), ZIP),
        (office("docx"), DOCX),
        (office("xlsx"), XLSX),
        (office("pptx"), PPTX),
    ],
    ids=[
        "bmp",
        "jpeg",
        "png",
        "gif89a",
        "gif87a",
        "pdf",
        "zip",
        "empty-zip",
        "docx",
        "xlsx",
        "pptx",
    ],
)
def test_every_accepted_type_is_recognised_by_its_content(tmp_path, content, expected):
    assert sniffed(tmp_path, content, "no-extension") == expected


def test_the_name_does_not_count(tmp_path):
    assert sniffed(tmp_path, png(), "report.pdf") == PNG
    assert sniffed(tmp_path, office("docx"), "sheet.xlsx") == DOCX


def test_a_zip_whose_content_types_name_a_missing_main_part_is_a_plain_zip(tmp_path):
    assert sniffed(tmp_path, office("docx", with_main=False)) == ZIP


def test_a_macro_enabled_document_is_a_plain_zip_not_a_docx(tmp_path):
    docm = office("docx", main_type="application/vnd.ms-word.document.macroEnabled.main+xml")
    assert sniffed(tmp_path, docm) == ZIP


def test_oversized_content_types_are_not_read_and_the_archive_is_a_plain_zip(tmp_path):
    padding = b"<!--" + b"x" * (filetypes.MAX_CONTENT_TYPES_BYTES + 10) + b"-->"
    part, suffix = OFFICE["docx"]
    bloated = archive(
        {
            "[Content_Types].xml": padding
            + content_types(part, f"application/vnd.openxmlformats-officedocument.{suffix}"),
            "word/document.xml": b"<root/>",
        }
    )
    assert sniffed(tmp_path, bloated) == ZIP


def test_content_types_in_utf16_are_read(tmp_path):
    part, suffix = OFFICE["xlsx"]
    declared = content_types(part, f"application/vnd.openxmlformats-officedocument.{suffix}")
    utf16 = declared.decode().replace("UTF-8", "UTF-16").encode("utf-16")
    assert (
        sniffed(tmp_path, archive({"[Content_Types].xml": utf16, "xl/workbook.xml": b"<w/>"}))
        == XLSX
    )


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, name",
    [
        (ELF, "photo.png"),
        (PE, "invoice.pdf"),
        (PE + archive({"payload.txt": b"x"}), "setup.zip"),  # a self-extracting archive
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "page.gif"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "logo.png",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "logo.svg"),
        (b"BMW is a car maker, not a bitmap.", "car.bmp"),
        (b"PK\x03\x04 but not really an archive at all", "broken.zip"),
        (b"plain text", "notes.docx"),
        (b"", "empty.png"),
        (b"\xff\xd8", "cut.jpg"),
    ],
    ids=[
        "elf-as-png",
        "pe-as-pdf",
        "self-extracting",
        "html",
        "svg-with-xml-declaration",
        "svg",
        "text-starting-BM",
        "broken-zip",
        "text",
        "empty",
        "truncated-jpeg-magic",
    ],
)
def test_anything_else_is_refused_whatever_it_is_called(tmp_path, content, name):
    assert sniffed(tmp_path, content, name) is None


# -- the name kept ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, kind, kept",
    [
        ("invoice.pdf", PDF, "invoice.pdf"),
        ("Scan.JPEG", JPEG, "Scan.JPEG"),
        ("invoice", PDF, "invoice.pdf"),
        ("setup.exe", PDF, "setup.exe.pdf"),
        ("photo.png", JPEG, "photo.png.jpg"),
        ("C:\\Users\\me\\Desktop\\report.docx", DOCX, "report.docx"),
        ("../../etc/passwd", ZIP, "passwd.zip"),
        (None, PNG, "attachment.png"),
        ("", GIF, "attachment.gif"),
        ("...", BMP, "attachment.bmp"),
        ("报告.pdf", PDF, "报告.pdf"),
        ("evil\u202egpj.exe", PDF, "evilgpj.exe.pdf"),
        ("line\r\nbreak.png", PNG, "linebreak.png"),
        ("x" * 300 + ".pdf", PDF, "x" * 251 + ".pdf"),
    ],
)
def test_the_name_kept_is_its_last_part_clean_short_and_ending_in_its_type(given, kind, kept):
    assert filename_for(given, kind) == kept
    assert len(filename_for(given, kind)) <= 255
