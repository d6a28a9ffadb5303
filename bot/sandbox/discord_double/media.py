"""What Discord makes of an uploaded file: its content type and, for images and videos, its size in pixels.

Discord does not trust the part's Content-Type (discord.py always sends
``application/octet-stream``): it names the type after the file's extension,
else after its first bytes, and gives images and videos ``width`` and
``height`` when it can read them.  ``describe`` does the same for the formats
a bot posts (PNG, JPEG, GIF, WebP, MP4/MOV); anything else is
``application/octet-stream`` without dimensions, as for a file Discord cannot
read.  The common types come from a fixed table, not ``mimetypes`` (only asked
about other extensions), so they do not depend on the machine's ``/etc/mime.types``.
"""

from __future__ import annotations

import mimetypes
import posixpath
import struct
from typing import NamedTuple

OCTET_STREAM = "application/octet-stream"

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jfif": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
}


class Media(NamedTuple):
    content_type: str
    width: int | None = None
    height: int | None = None


def describe(filename: str, data: bytes, declared: str | None = None) -> Media:
    """The content type and pixel size Discord shows for ``data`` uploaded as ``filename``.

    ``declared`` (the multipart part's Content-Type, or a test's choice) wins unless it is
    empty or ``application/octet-stream``.
    """
    sniffed = _sniff(data)
    if declared and declared != OCTET_STREAM:
        content_type = declared
    else:
        extension = posixpath.splitext(filename)[1].lower()
        content_type = CONTENT_TYPES.get(extension) or sniffed or mimetypes.guess_type(filename)[0] or OCTET_STREAM
    if not content_type.startswith(("image/", "video/")):
        return Media(content_type)
    size = _dimensions(data)
    return Media(content_type, *size) if size else Media(content_type)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def _dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG, WebP or MP4/MOV (its first track with a size); None if unreadable."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return _positive(*struct.unpack(">II", data[16:24]))
        if data.startswith((b"GIF87a", b"GIF89a")):
            return _positive(*struct.unpack("<HH", data[6:10]))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data[4:8] == b"ftyp":
            return _mp4(data)
    except (struct.error, IndexError):
        return None
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _positive(width, height)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """Walk the segments to the first start-of-frame marker (SOF0-SOF15 but DHT, JPG and DAC)."""
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            index += 2
            continue
        length = struct.unpack(">H", data[index + 2 : index + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return _positive(width, height)
        index += 2 + length
    return None


# Boxes that hold other boxes on the way to a track header: moov > trak > tkhd.
_CONTAINERS = {b"moov", b"trak"}


def _mp4(data: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """The size of the first track header (``tkhd``) with one: a video track's, in 16.16 fixed point."""
    end = len(data) if end is None else end
    index = start
    while index + 8 <= end:
        size, kind = struct.unpack(">I4s", data[index : index + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[index + 8 : index + 16])[0]
            header = 16
        elif size == 0:
            size = end - index
        if size < header:
            return None
        box_end = min(index + size, end)
        if kind in _CONTAINERS:
            found = _mp4(data, index + header, box_end)
            if found:
                return found
        elif kind == b"tkhd" and box_end - index >= 92:
            # Width and height are the box's last 8 bytes, whatever its version.
            width, height = struct.unpack(">II", data[box_end - 8 : box_end])
            found = _positive(width >> 16, height >> 16)
            if found:
                return found
        index += size
    return None
