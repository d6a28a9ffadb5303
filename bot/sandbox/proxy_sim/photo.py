"""Images made with Pillow: photo-sized finals and WebP thumbnails.

``photo_png`` stands in for a real Midjourney upscale when a test needs one of a real size: smooth
gradients (one per channel, in different directions) under mild per-pixel noise (±6), so it looks
like a photo to an encoder. It is written without deflate compression (PNG's zlib level 0), three
bytes a pixel plus a byte a row: 4096x2048 is ~25 MB, as big as a photo's PNG of that size, while
a high-quality JPEG or WebP of it is a megabyte or two. Deterministic per seed; about half a
second for 4096x2048.
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageChops

NOISE = 6  # each channel moves by up to ±NOISE from its gradient


def photo_png(seed: str, size: tuple[int, int]) -> bytes:
    """A photo-like RGB PNG of ``size`` (width, height) pixels."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"an image needs at least one pixel, not {size}")
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    bases = (
        ramp.rotate(90 + rng.randrange(-20, 20)),
        ramp.rotate(rng.randrange(-30, 30)),
        Image.radial_gradient("L"),
    )
    lut = [128 - NOISE + v * (2 * NOISE + 1) // 256 for v in range(256)]  # uniform bytes -> 128±NOISE
    channels = []
    for base in bases:
        smooth = base.resize((width, height), Image.Resampling.BILINEAR)
        noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).point(lut)
        channels.append(ImageChops.add(smooth, noise, 1.0, -128))
    out = io.BytesIO()
    Image.merge("RGB", channels).save(out, "PNG", compress_level=0)
    return out.getvalue()


def webp_bytes(colour: bytes, side: int = 16) -> bytes:
    """A small solid WebP (a CDN thumbnail such as ``0_1_640_N.webp``)."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), tuple(colour[:3])).save(out, "WEBP", quality=80)
    return out.getvalue()
