"""Re-encoding images to fit Discord's upload limit, in real worker processes, with real Pillow."""

from __future__ import annotations

import asyncio
import io
import math
import os
import pickle
import signal
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from bot.core import errors
from bot.media import (
    CannotFit,
    ImageTooLarge,
    MediaTimeout,
    MediaWorker,
    MediaWorkerClosed,
    MediaWorkerCrashed,
    NotAnImage,
    OutOfMemory,
    fit_image,
    probe_image,
)
from bot.media.fit import DEFAULT_MAX_PIXELS, WEBP_MAX_SIDE, webp

MIB = 2**20
DISCORD_LIMIT = 10 * MIB  # a server without boosts


def photo_like(width: int, height: int) -> Image.Image:
    """Smooth colour fields with fractal detail and film grain: to the codecs, like a photo or a
    Midjourney render (PNG: about 2.3 bytes a pixel; WebP at quality 95 keeps it above 40 dB)."""
    small = (max(1, width // 8), max(1, height // 8))
    fields = [
        Image.linear_gradient("L").resize(small),
        Image.radial_gradient("L").resize(small),
        Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(small),
    ]
    fractal = Image.effect_mandelbrot(small, (-2.0, -1.2, 1.0, 1.2), 60)
    base = Image.merge("RGB", [Image.blend(field, fractal, 0.35) for field in fields])
    base = base.resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.effect_noise((width, height), 12)  # brightness grain, centred on 128
    colour_noise = Image.effect_noise((width, height), 1)
    bands = [
        ImageChops.add(ImageChops.add(band, grain, 1.0, -128), ImageChops.offset(colour_noise, 7 * i, 3 * i), 1.0, -128)
        for i, band in enumerate(base.split())
    ]
    return Image.merge("RGB", bands)


def png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def encoded(image: Image.Image, format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def psnr(original: Image.Image, other: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB over the RGB channels."""
    squares = ImageStat.Stat(ImageChops.difference(original, other)).sum2
    mse = sum(squares) / (3 * original.width * original.height)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def png_bomb(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A 1-bit PNG of ``width`` x ``height`` black pixels, small as a file and gigantic decoded.
    Valid and complete unless ``rows`` cuts its data short (the header is what is refused)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)  # filter byte "none", then the row's bits
    idat = zlib.compress(row * (height if rows is None else rows), 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def bytes_read(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # dead, not yet (or being) reaped


async def wait_until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)  # polling a condition, bounded by the timeout


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return photo_like(4096, 3072)  # Midjourney's 4:3 at 4x upscale


@pytest.fixture(scope="module")
def photo_png(photo) -> bytes:
    return png(photo)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    return png(photo_like(512, 512))


@pytest.fixture
async def worker():
    media = MediaWorker(processes=2)
    yield media
    await media.close()


# --- through the worker --------------------------------------------------------------------------


async def test_a_30_mb_photo_fits_10_mib_as_full_colour_jpeg_with_its_size_and_detail_kept(worker, photo, photo_png):
    assert len(photo_png) >= 25_000_000  # what Midjourney's largest upscales weigh
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def tick() -> None:  # how late a 10 ms timer fires while the worker works
        while True:
            started = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - started - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        fitted = await worker.fit(photo_png, DISCORD_LIMIT)
    finally:
        ticker.cancel()

    assert len(fitted.data) <= DISCORD_LIMIT
    # The most faithful encoding that fits: JPEG 98 keeps full colour, lossy WebP halves it.
    assert (fitted.format, fitted.quality, fitted.content_type) == ("JPEG", 98, "image/jpeg")
    assert (fitted.width, fitted.height, fitted.original_size) == (4096, 3072, len(photo_png))
    assert fitted.reencoded and fitted.extension == "jpg"
    back = Image.open(io.BytesIO(fitted.data))
    assert (back.format, back.size) == ("JPEG", (4096, 3072))
    assert psnr(photo, back.convert("RGB")) > 40
    # The event loop went on meanwhile; on the loop itself this re-encode blocks it for over a second.
    assert len(lags) > 20 and max(lags) < 0.25


async def test_an_image_that_already_fits_comes_back_unchanged(worker, small_png):
    fitted = await worker.fit(small_png, DISCORD_LIMIT)
    assert fitted.data == small_png
    assert (fitted.format, fitted.quality, fitted.content_type) == ("PNG", "original", "image/png")
    assert (fitted.width, fitted.height, fitted.reencoded, fitted.extension) == (512, 512, False, "png")
    # In the process, not even a copy:
    assert fit_image(small_png, len(small_png), max_pixels=DEFAULT_MAX_PIXELS).data is small_png


async def test_transparency_stays_webp_and_an_opaque_image_may_become_jpeg(worker):
    opaque = photo_like(1024, 1024)
    transparent = opaque.convert("RGBA")
    transparent.putalpha(Image.radial_gradient("L").resize(opaque.size))
    # Tighter than WebP at 90 for the opaque image: the lossless and WebP rungs cannot fit.
    limit = len(webp(90).encode(opaque, None)) - 1

    as_jpeg = await worker.fit(png(opaque.convert("RGBA")), limit)  # an alpha channel, all opaque
    with_alpha = await worker.fit(png(transparent), limit)

    assert as_jpeg.format == "JPEG" and 70 <= as_jpeg.quality <= 90 and len(as_jpeg.data) <= limit
    assert with_alpha.format == "WebP" and 70 <= with_alpha.quality < 90 and len(with_alpha.data) <= limit
    back = Image.open(io.BytesIO(with_alpha.data))
    assert back.mode == "RGBA"
    lowest, highest = back.getchannel("A").getextrema()
    assert lowest < 10 and highest > 245


async def test_garbage_and_truncated_files_are_not_images(worker, photo_png):
    with pytest.raises(NotAnImage) as caught:
        await worker.fit(b"<html>502 Bad Gateway</html>" * 1000, 1000)
    assert isinstance(caught.value, errors.NotAnImage)  # the member's message for an upload
    with pytest.raises(NotAnImage, match="does not decode"):
        await worker.fit(photo_png[: len(photo_png) // 3], 1000)  # the header is fine


async def test_decompression_bombs_are_refused_by_their_header(worker):
    over_max_pixels = png_bomb(10_000, 10_000)  # 100 million pixels: 400 MB as RGB
    over_pillows_limit = png_bomb(50_000, 50_000, rows=1000)  # 2.5 billion
    assert len(over_max_pixels) < 100_000

    with pytest.raises(ImageTooLarge, match="10000x10000 pixels, over the cap of 25000000") as caught:
        await worker.fit(over_max_pixels, 1000)
    assert not isinstance(caught.value, OutOfMemory)  # refused before decoding: not the memory cap
    with pytest.raises(ImageTooLarge, match="decompression bomb"):
        await worker.fit(over_pillows_limit, 1000)
    (pid,) = worker.worker_pids()  # the same worker goes on, having decoded nothing
    assert peak_memory_mb(pid) < 200

    with pytest.raises(ImageTooLarge):
        probe_image(over_max_pixels, max_pixels=DEFAULT_MAX_PIXELS)
    assert probe_image(over_max_pixels).width == 10_000  # only Pillow's own limit applies
    with pytest.raises(ImageTooLarge):
        probe_image(over_pillows_limit)


async def test_the_memory_cap_fails_a_large_image_clearly_and_the_worker_recovers(photo_png, small_png):
    # Under 160 MiB the worker receives the 29 MB file, then cannot decode and encode it.
    media = MediaWorker(processes=1, memory_mb=160)
    try:
        with pytest.raises(OutOfMemory, match="out of memory") as caught:
            await media.fit(photo_png, DISCORD_LIMIT)
        assert isinstance(caught.value, ImageTooLarge)
        fitted = await media.fit(small_png, len(small_png) // 2)
        assert fitted.reencoded and (fitted.width, fitted.height) == (512, 512)
    finally:
        await media.close()


async def test_a_worker_killed_mid_job_fails_that_call_and_the_next_one_works(photo_png, small_png):
    media = MediaWorker(processes=1)
    try:
        await media.fit(small_png, DISCORD_LIMIT)  # starts the worker
        (pid,) = media.worker_pids()
        read_before = bytes_read(pid)
        call = asyncio.create_task(media.fit(photo_png, DISCORD_LIMIT))
        await wait_until(lambda: bytes_read(pid) - read_before >= len(photo_png))  # it has the job
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(MediaWorkerCrashed):
            await call
        fitted = await media.fit(small_png, len(small_png) // 2)
        assert fitted.reencoded
        assert media.worker_pids() != [pid]
    finally:
        await media.close()


async def test_a_re_encode_over_the_timeout_is_killed_and_the_next_call_works(photo_png):
    media = MediaWorker(processes=1, timeout_s=0.5)
    tiny = png(photo_like(256, 256))
    try:
        await media.fit(tiny, DISCORD_LIMIT)
        (pid,) = media.worker_pids()
        with pytest.raises(MediaTimeout):
            await media.fit(photo_png, DISCORD_LIMIT)  # takes over a second
        await wait_until(lambda: gone(pid))
        assert (await media.fit(tiny, len(tiny) // 2)).reencoded  # a few tens of ms
    finally:
        await media.close()


async def test_more_calls_than_processes_wait_their_turn_on_the_same_workers(small_png):
    media = MediaWorker(processes=2)
    try:
        results = await asyncio.gather(*(media.fit(small_png, len(small_png) // 2) for _ in range(5)))
        assert all(fitted.reencoded for fitted in results)
        assert len(set(media.worker_pids())) == 2
    finally:
        await media.close()
    assert media.worker_pids() == []
    with pytest.raises(MediaWorkerClosed):
        await media.fit(small_png, DISCORD_LIMIT)


async def test_what_cannot_fit_says_so_with_its_numbers_across_the_process_boundary(worker, small_png):
    with pytest.raises(CannotFit) as caught:
        await worker.fit(small_png, 5000)
    assert caught.value.params["limit"] == 5000
    assert caught.value.params["smallest"] > 5000
    again = pickle.loads(pickle.dumps(caught.value))
    assert (type(again), again.params, str(again)) == (CannotFit, caught.value.params, str(caught.value))


# --- fit_image itself (in this process: no worker needed) ----------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda im: png(im.quantize(256, method=Image.Quantize.FASTOCTREE)), id="palette"),
        pytest.param(lambda im: png(im.convert("L")), id="grey"),
        pytest.param(lambda im: png(im.convert("LA")), id="grey+alpha"),
        pytest.param(lambda im: png(im.convert("I").point(lambda v: v * 256).convert("I;16")), id="16-bit grey"),
        pytest.param(lambda im: encoded(im.convert("CMYK"), "JPEG", quality=100), id="CMYK JPEG"),
        pytest.param(lambda im: encoded(im, "WEBP", lossless=True), id="WebP"),
    ],
)
def test_any_mode_is_re_encoded_to_a_displayable_image(make):
    data = make(photo_like(512, 384))
    fitted = fit_image(data, len(data) // 2, max_pixels=DEFAULT_MAX_PIXELS)
    assert len(fitted.data) <= len(data) // 2
    back = Image.open(io.BytesIO(fitted.data))
    assert back.size == (512, 384) and back.mode in ("RGB", "RGBA")
    assert back.getextrema()[0][1] > 100  # not all black: 16-bit grey was scaled, not clipped


def test_wider_than_webp_allows_goes_to_jpeg_on_white():
    strip = photo_like(WEBP_MAX_SIDE + 100, 64).convert("RGBA")
    strip.putalpha(128)
    data = png(strip)
    fitted = fit_image(data, len(data) // 2, max_pixels=DEFAULT_MAX_PIXELS)
    assert (fitted.format, fitted.width, fitted.height) == ("JPEG", WEBP_MAX_SIDE + 100, 64)
    assert Image.open(io.BytesIO(fitted.data)).getextrema()[0][0] > 100  # half-transparent on white


def test_an_animated_image_is_not_flattened_to_one_frame():
    frames = [photo_like(256, 256).quantize(64, method=Image.Quantize.FASTOCTREE) for _ in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(CannotFit, match="animated"):
        fit_image(out.getvalue(), 1000, max_pixels=DEFAULT_MAX_PIXELS)


def test_pixels_over_max_pixels_are_refused():
    with pytest.raises(ImageTooLarge, match="over the cap"):
        fit_image(png(Image.new("RGB", (1000, 1001))), 10, max_pixels=1_000_000)


# --- probe_image ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "options", "label", "content_type"),
    [
        ("PNG", {}, "PNG", "image/png"),
        ("JPEG", {"quality": 90}, "JPEG", "image/jpeg"),
        ("WEBP", {"quality": 80}, "WebP", "image/webp"),
        ("GIF", {}, "GIF", "image/gif"),
    ],
)
def test_probe_reads_format_and_size_from_the_header(format, options, label, content_type):
    data = encoded(Image.new("RGB", (640, 360), "teal"), format, **options)
    info = probe_image(data)
    assert (info.format, info.width, info.height, info.content_type) == (label, 640, 360, content_type)
    if format in ("PNG", "JPEG"):  # the header is enough (Pillow's WebP and GIF readers look further)
        assert probe_image(data[: len(data) // 2]).width == 640


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"GIF89a", id="just a signature"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + os.urandom(200), id="PNG signature, garbage after"),
        pytest.param(os.urandom(4096), id="random bytes"),
        pytest.param(encoded(Image.new("RGB", (8, 8)), "BMP"), id="BMP: not a format we accept"),
        pytest.param(encoded(Image.new("RGB", (8, 8)), "TIFF"), id="TIFF: not a format we accept"),
    ],
)
def test_probe_refuses_what_is_not_an_image(data):
    with pytest.raises(NotAnImage):
        probe_image(data)
