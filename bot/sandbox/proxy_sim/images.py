"""Generated media: small PNG images (pure Python), MP4 stand-ins, and the file names the sim
serves them under (photo-sized finals and WebP thumbnails are in photo.py)."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterable

from .timeline import IMAGE_SIDE


def mp4_bytes(seed: str, size: int = 320) -> bytes:
    """A few hundred bytes that start like an MP4 (an ``ftyp`` box, then ``mdat``): not playable,
    but what a client sniffing the type of a video link sees first."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isommp41"
    payload = b""
    counter = 0
    while len(payload) < max(0, size - len(ftyp) - 8):
        payload += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    payload = payload[: max(0, size - len(ftyp) - 8)]
    return ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rows: Iterable[bytes], pad_to: int | None = None) -> bytes:
    """Encode RGB rows (``width * 3`` bytes each) as a PNG.

    With ``pad_to``, a tEXt chunk is added so the file is (at least) that many bytes:
    decoders skip it, so the image stays valid while being as big as a test needs.
    """
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
    end = _png_chunk(b"IEND", b"")
    size = len(PNG_SIGNATURE) + len(body) + len(end)
    if pad_to is not None and pad_to > size:
        keyword = b"Comment\x00"
        filler = max(0, pad_to - size - 12 - len(keyword))  # 12: chunk length + type + CRC
        body += _png_chunk(b"tEXt", keyword + b" " * filler)
    return PNG_SIGNATURE + body + end


def pad_png(data: bytes, pad_to: int | None) -> bytes:
    """Add a tEXt chunk before IEND so the PNG is (at least) ``pad_to`` bytes; still valid."""
    if pad_to is None or len(data) >= pad_to:
        return data
    keyword = b"Comment\x00"
    filler = max(0, pad_to - len(data) - 12 - len(keyword))  # 12: chunk length + type + CRC
    end = len(data) - 12  # IEND is the last chunk, 12 bytes
    return data[:end] + _png_chunk(b"tEXt", keyword + b" " * filler) + data[end:]


def _colour(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:3]


def grid_colour(task_id: str, quadrant: int) -> bytes:
    """The colour of one quadrant of a grid (0 top left, 1 top right, 2 bottom left, 3 bottom right)."""
    return _colour(f"{task_id}:grid:{quadrant}")


def _render(task_id: str, kind: str, n: int = 0, pad_to: int | None = None) -> bytes:
    """The picture for one task: a 2x2 grid, one of its images alone (``single``, image ``n``: the
    grid's quadrant, same size and colour), a solid upscale or a gradient preview."""
    side = IMAGE_SIDE
    half = side // 2
    if kind == "single":
        return png_bytes(half, half, [grid_colour(task_id, n) * half] * half, pad_to)
    if kind == "grid":
        quads = [grid_colour(task_id, q) for q in range(4)]
        top = quads[0] * half + quads[1] * half
        bottom = quads[2] * half + quads[3] * half
        rows = [top] * half + [bottom] * half
    elif kind == "upscale":
        rows = [_colour(f"{task_id}:upscale") * side] * side
    elif kind == "preview":
        colour = _colour(f"{task_id}:preview:{n}")
        rows = [bytes(c * y // (side - 1) for c in colour) * side for y in range(side)]
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return png_bytes(side, side, rows, pad_to)


_IMAGE_NAME = re.compile(r"(\d+)(?:-preview-(\d+))?\.png")
_THUMBNAIL_NAME = re.compile(r"(\d+)_([0-3])\.png")
_VIDEO_NAME = re.compile(r"(\d+)(?:_([0-3]))?\.mp4")
# trueai's imageUrls of a grid (cdn.midjourney.com/<job>/0_<i>.png and its 0_<i>_640_N.webp).
_GRID_IMAGE_NAME = re.compile(r"(\d+)-grid-([0-3])\.png")
_GRID_THUMBNAIL_NAME = re.compile(r"(\d+)-grid-([0-3])-thumb\.webp")
