"""Re-encode an image so that it fits an upload limit, keeping its pixel size; read an image's header.

Pure and synchronous: the bot runs ``fit_image`` in a worker process (``worker.py``), never on its
event loop. The order of preference: lossless WebP, then WebP at quality 95 and 90, then JPEG from
95 down to ``QUALITY_FLOOR``; an image with real transparency stays WebP all the way down (JPEG has
no alpha). Each candidate's size is first estimated on a small mosaic of tiles from the image, so
only candidates that look like they fit are encoded whole (usually one).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from bot.media.errors import CannotFit, ImageTooLarge, NotAnImage, OutOfMemory

# Pillow's name -> (label, content type, file extension). Only these are opened: fewer decoders for
# a hostile file to reach, and none that runs a program (Pillow's EPS plugin calls Ghostscript).
FORMATS = {
    "PNG": ("PNG", "image/png", "png"),
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    "WEBP": ("WebP", "image/webp", "webp"),
    "GIF": ("GIF", "image/gif", "gif"),
}
WEBP_MAX_SIDE = 16383  # the format's own limit: a larger image can only become JPEG
QUALITY_FLOOR = 70  # below this artefacts show: better to link the original than to post that
# 4096² (Midjourney's largest upscale) with room to spare. Re-encoding 4096² took 271 MiB of address
# space; with lossless WebP (about 21 bytes a pixel more) this size still fits a 1 GiB worker.
DEFAULT_MAX_PIXELS = 5000 * 5000
# A decoding error of any of the formats above, from a corrupt, truncated or foreign file.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, TypeError)

Quality = int | Literal["lossless", "original"]


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "PNG", "JPEG", "WebP", "GIF"
    width: int
    height: int
    content_type: str


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    content_type: str
    format: str  # "WebP", "JPEG"; or the original's format when it already fitted
    quality: Quality  # 70-95, "lossless", or "original" (``data`` is the input, untouched)
    width: int
    height: int
    original_size: int  # bytes of the input

    @property
    def reencoded(self) -> bool:
        return self.quality != "original"

    @property
    def extension(self) -> str:
        """For the attachment's file name: "webp", "jpg", "png", "gif"."""
        return next(ext for label, _, ext in FORMATS.values() if label == self.format)


@dataclass(frozen=True)
class Encoding:
    """One candidate: a Pillow format, a quality (or lossless) and the encoder's options."""

    format: str  # Pillow's name: "WEBP" or "JPEG"
    quality: int | Literal["lossless"]
    options: tuple[tuple[str, object], ...] = ()

    def encode(self, image: Image.Image, icc_profile: bytes | None) -> bytes:
        settings: dict[str, object] = {"lossless": True} if self.quality == "lossless" else {"quality": self.quality}
        settings.update(self.options)
        if icc_profile:
            settings["icc_profile"] = icc_profile  # keeps colours right for an image with a profile
        out = io.BytesIO()
        try:
            image.save(out, self.format, **settings)
        except (OSError, ValueError) as exc:
            if out_of_memory(exc):
                raise MemoryError(str(exc)) from None
            raise
        return out.getvalue()


def out_of_memory(error: Exception) -> bool:
    """Whether a codec ran out of memory: libwebp says so with an error code (1 and 2), Pillow's
    own codecs with an OSError, not as MemoryError, and libjpeg (its optimised tables allocate a
    lot) through Pillow's "broken data stream" (seen under a 160 MiB cap on a 4096x2304 photo)."""
    message = str(error)
    return (
        message in ("encoding error 1", "encoding error 2")
        or message.startswith("out of memory")
        or message.startswith("broken data stream")
    )


# Measured on 4096²: method 0 takes 0.4-0.9 s; method 2 takes 3-6 s and 250 MiB more, to be 10-27 %
# smaller on flat art and no smaller at all on grainy photos. So the fast one first, and the slow
# one only when its gain could make the difference.
LOSSLESS_FAST = Encoding("WEBP", "lossless", (("method", 0), ("quality", 0)))
LOSSLESS_SMALL = Encoding("WEBP", "lossless", (("method", 2), ("quality", 25)))
LOSSLESS_SMALL_GAIN = 0.7


def webp(quality: int) -> Encoding:
    # Method 2 made a 4096² photo as small as the default 4 did (7.50 against 7.81 MiB) in less
    # than half the time and memory (1.2 s against 2.8 s; +106 against +263 MiB).
    return Encoding("WEBP", quality, (("method", 2),))


def jpeg(quality: int) -> Encoding:
    # Full-resolution colour (4:4:4) while quality is high: 4:2:0 blurs the sharp colour edges of
    # Midjourney's art; below 90 the bytes are better spent on brightness.
    return Encoding("JPEG", quality, (("optimize", True), ("subsampling", 0 if quality >= 90 else 2)))


def lossy_ladder(*, alpha: bool, webp_possible: bool) -> list[Encoding]:
    """Lossy candidates, most faithful first, down to ``QUALITY_FLOOR``: the best that fits wins.
    Lossy WebP always halves the colour resolution (4:2:0), so on grainy detail even WebP 100 stays
    near 38 dB PSNR, where full-colour JPEG 98 reaches 43 dB (a 4096x2304 photo: 8.2 MB against
    WebP 95's 2.2 MB); when the limit allows, the JPEG is kept."""
    steps = range(95, QUALITY_FLOOR - 1, -5)
    if not webp_possible:
        return [jpeg(98), *(jpeg(q) for q in steps)]
    if alpha:
        return [webp(q) for q in steps]
    return [jpeg(98), jpeg(95), webp(95), webp(90)] + [jpeg(q) for q in steps if q < 95]


def probe_image(data: bytes, *, max_pixels: int | None = None) -> ImageInfo:
    """Format and size, read without decoding a pixel: is this upload really an image? Raises
    ``NotAnImage``, and ``ImageTooLarge`` over ``max_pixels`` (or Pillow's decompression-bomb
    limit). A PNG or JPEG with a good header and a truncated body passes; ``fit_image`` would
    refuse it."""
    image = _open(data, max_pixels)
    label, content_type, _ = FORMATS[image.format or ""]
    return ImageInfo(label, image.width, image.height, content_type)


def fit_image(data: bytes, limit: int, *, max_pixels: int) -> FittedImage:
    """``data`` re-encoded to at most ``limit`` bytes with the same width and height, or ``data``
    itself if it already fits. Raises ``NotAnImage``, ``ImageTooLarge`` (over ``max_pixels``; its
    subclass ``OutOfMemory``: out of memory), ``CannotFit`` (not even quality ``QUALITY_FLOOR``
    fits; animated)."""
    image = _open(data, max_pixels)
    label, content_type, _ = FORMATS[image.format or ""]
    width, height = image.size
    if len(data) <= limit:
        return FittedImage(data, content_type, label, "original", width, height, len(data))
    if getattr(image, "is_animated", False):
        raise CannotFit(f"animated {label} of {len(data)} bytes over the limit of {limit}", limit=limit, smallest=0)
    try:
        icc_profile = image.info.get("icc_profile")
        encoding, encoded = _encode_to_fit(_normalised(_decoded(image)), limit, icc_profile)
    except MemoryError:
        pass  # raised below, outside this clause: a MemoryError kept as its context would keep
        # the failed attempt's frames, and its images, alive in the worker after the call
    else:
        label, content_type, _ = FORMATS[encoding.format]
        return FittedImage(encoded, content_type, label, encoding.quality, width, height, len(data))
    raise OutOfMemory(f"out of memory re-encoding a {width}x{height} {label}")


def _open(data: bytes, max_pixels: int | None) -> Image.Image:
    """The image with its header read and nothing decoded yet."""
    try:
        # Over Pillow's MAX_IMAGE_PIXELS it warns (twice that, it raises): ``max_pixels`` decides.
        with warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning):
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"decompression bomb: {exc}") from None
    except _UNREADABLE as exc:
        raise NotAnImage(f"not a PNG, JPEG, WebP or GIF ({len(data)} bytes): {exc}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise NotAnImage(f"{image.format} declaring {width}x{height} pixels")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"{image.format} of {width}x{height} pixels, over the cap of {max_pixels}")
    return image


def _decoded(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except _UNREADABLE as exc:
        if out_of_memory(exc):
            raise MemoryError(str(exc)) from None
        raise NotAnImage(f"{image.format} {image.width}x{image.height} does not decode: {exc}") from None
    return image


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel really is transparent (an opaque alpha channel is dropped: it
    would cost bytes and rule out JPEG)."""
    if image.mode.startswith("I"):
        # 16-bit grey: scaled to 8 bits, where convert() would clip everything above 255 to white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        lowest_alpha, _ = rgba.getchannel("A").getextrema()
        return rgba if lowest_alpha < 255 else rgba.convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _on_white(image: Image.Image) -> Image.Image:
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    return flat


def _encode_to_fit(image: Image.Image, limit: int, icc_profile: bytes | None) -> tuple[Encoding, bytes]:
    webp_possible = max(image.size) <= WEBP_MAX_SIDE
    if image.mode == "RGBA" and not webp_possible:
        image = _on_white(image)  # JPEG is all that is left, and it has no alpha
    lossless = [LOSSLESS_FAST, LOSSLESS_SMALL] if webp_possible else []
    ladder = lossless + lossy_ladder(alpha=image.mode == "RGBA", webp_possible=webp_possible)
    trials = Trials(image, limit, icc_profile)
    for encoding in ladder:
        if encoding is LOSSLESS_SMALL and trials.last_size * LOSSLESS_SMALL_GAIN > limit:
            continue  # its gain over the fast one cannot make the difference: not worth its time
        try:
            # The floor is encoded whole when its estimate is near: an estimate is only an estimate.
            found = trials.attempt(encoding, slack=1.25 if encoding is ladder[-1] else 1.0)
        except MemoryError:
            if encoding in lossless:
                continue  # lossless WebP takes 20-35 bytes a pixel, lossy WebP 2: it may still fit
            raise
        if found is not None:
            return encoding, found
    raise CannotFit(
        f"{image.width}x{image.height}: even quality {QUALITY_FLOOR} needs about {trials.last_size:.0f} bytes,"
        f" limit {limit}",
        limit=limit,
        smallest=round(trials.last_size),
    )


class Trials:
    """Encodings tried on one image: each is estimated on a sample of it first, and encoded whole
    only when the estimate fits."""

    def __init__(self, image: Image.Image, limit: int, icc_profile: bytes | None) -> None:
        self.image = image
        self.limit = limit
        self.icc_profile = icc_profile
        self.sample, self.scale = _sample(image)
        self.bias = 1.0  # how much the sample has underestimated so far
        self.last_size = 0.0  # of the last encoding tried: its real size, or else its estimate

    def attempt(self, encoding: Encoding, *, slack: float = 1.0) -> bytes | None:
        """The image encoded so, if that fits the limit."""
        on_sample = encoding.encode(self.sample, self.icc_profile)
        if self.sample is self.image:  # a small image is its own sample: this is the real thing
            self.last_size = len(on_sample)
            return on_sample if len(on_sample) <= self.limit else None
        estimate = len(on_sample) * self.scale
        self.last_size = estimate * self.bias
        if self.last_size > self.limit * slack:
            return None
        whole = encoding.encode(self.image, self.icc_profile)
        self.last_size = len(whole)
        if len(whole) <= self.limit:
            return whole
        self.bias = max(self.bias, len(whole) / estimate)
        return None


# Up to 16 x 16 tiles of 64², 1 Mpx, spread evenly over the image. Many small tiles: 4 x 4 of 256²
# missed or over-weighted the detailed parts of fractal art (estimates off by 0.6-2x); these were
# within 0.94-1.07 of the real size on photos and art alike.
SAMPLE_TILE = 64
SAMPLE_GRID = 16


def _sample(image: Image.Image) -> tuple[Image.Image, float]:
    """A mosaic of tiles from all over the image, and how many times more pixels the image has.
    Encoding it costs a fraction of encoding the whole and predicts its size to some 10 %."""
    width, height = image.size
    tile_w, tile_h = min(SAMPLE_TILE, width), min(SAMPLE_TILE, height)
    columns, rows = min(SAMPLE_GRID, width // tile_w), min(SAMPLE_GRID, height // tile_h)
    if width * height <= 2 * columns * rows * tile_w * tile_h:
        return image, 1.0  # small enough to encode whole
    mosaic = Image.new(image.mode, (columns * tile_w, rows * tile_h))
    for i in range(columns):
        for j in range(rows):
            # Disjoint tiles (a repeated one would flatter lossless WebP), on JPEG's 16-pixel grid.
            x = (width - tile_w) * i // max(1, columns - 1) // 16 * 16
            y = (height - tile_h) * j // max(1, rows - 1) // 16 * 16
            mosaic.paste(image.crop((x, y, x + tile_w, y + tile_h)), (i * tile_w, j * tile_h))
    return mosaic, width * height / (mosaic.width * mosaic.height)
