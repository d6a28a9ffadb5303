"""``python -m bench.media [--side 4096]``: re-encoding a Midjourney-sized PNG to fit Discord's
10 MiB, the bot's way (``MediaWorker``: worker processes) against the naive way (``fit_image``
called on the event loop) and a thread (``asyncio.to_thread``), side by side.

Measured: one re-encode's wall time and peak memory (VmHWM from /proc, reset before each run by
writing 5 to ``clear_refs``); then 4 re-encodes at once, with a probe on the event loop that sleeps
10 ms over and over and records how late it wakes (max and p99). First, each encoder setting the
ladder can use, timed alone on the same image, to show why ``fit.py`` chose its methods.
The image comes from the tests' ``photo_like``: gradients, fractal detail and film grain.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import io
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench.report import machine_lines, nearest_rank
from bot.media import FittedImage, MediaWorker, fit_image
from bot.media.fit import DEFAULT_MAX_PIXELS, LOSSLESS_FAST, LOSSLESS_SMALL, Encoding, jpeg, webp

LIMIT = 10 * 2**20  # Discord, no boosts
AT_ONCE = 4
TICK_S = 0.010
MIB = 2**20


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS (resident now), VmHWM (resident at most), VmPeak (address space at most), in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "VmPeak"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def reset_peak(pid: int | str = "self") -> None:
    """Start VmHWM again from the current RSS (Linux 4.0+)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def settle() -> None:
    """Frees what can be freed and hands it back to the system, so that a peak measured next
    starts from what is really in use (glibc keeps freed memory otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def make_png(side: int) -> bytes:
    from tests.test_media import photo_like, png  # here, not above: each worker imports this module

    return png(photo_like(side, side))


async def lag_while(work: Callable[[], Awaitable[object]]) -> tuple[float, list[float]]:
    """Wall time of ``work()`` and how late each 10 ms timer of a probe on the loop fired meanwhile."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def probe() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(TICK_S)
            lags.append(max(0.0, loop.time() - started - TICK_S))

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0)  # the probe's first timer is set before the work starts
    started = time.perf_counter()
    await work()
    wall = time.perf_counter() - started
    await asyncio.sleep(2 * TICK_S)  # the timer that came due while the loop was blocked fires now
    prober.cancel()
    return wall, lags


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def table(header: Sequence[str], rows: list[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"

    def render(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    return "\n".join([line, render(header), line.replace("-", "="), *map(render, rows), line])


def encoders(data: bytes) -> str:
    """Each setting alone on the whole image: time, size, and the process's peak memory over it."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    candidates: list[tuple[str, Encoding]] = [
        ("WebP lossless, method 0 (fit.py's fast one)", LOSSLESS_FAST),
        ("WebP lossless, method 2, quality 25 (fit.py's small one)", LOSSLESS_SMALL),
        ("WebP lossless, Pillow's default (method 4, quality 80)", Encoding("WEBP", "lossless", (("quality", 80),))),
        ("WebP 95, method 2 (fit.py)", webp(95)),
        ("WebP 95, Pillow's default method 4", Encoding("WEBP", 95, (("method", 4),))),
        ("JPEG 95, 4:4:4 (fit.py)", jpeg(95)),
        ("JPEG 85, 4:2:0 (fit.py)", jpeg(85)),
    ]
    rows = []
    for label, encoding in candidates:
        settle()
        before = memory_mb()["VmRSS"]
        reset_peak()
        started = time.perf_counter()
        out = encoding.encode(image, None)
        took = time.perf_counter() - started
        rows.append((label, ms(took), f"{len(out) / MIB:.2f} MiB", f"+{memory_mb()['VmHWM'] - before:.0f} MiB"))
    return table(("encoder on the whole image", "time", "size", "peak memory over the decoded image"), rows)


async def single(data: bytes) -> tuple[list[tuple[str, str, str]], FittedImage]:
    """One re-encode: the worker (a fresh one: first call, then a warm one) and the naive way."""
    media = MediaWorker(processes=1)
    try:
        started = time.perf_counter()
        await media.fit(data, LIMIT)
        cold = time.perf_counter() - started
        (pid,) = media.worker_pids()
        settle()
        reset_peak(pid)
        reset_peak()
        before_worker = memory_mb()["VmRSS"]
        started = time.perf_counter()
        fitted = await media.fit(data, LIMIT)
        warm = time.perf_counter() - started
        worker, bot_with_worker = memory_mb(pid), memory_mb()
    finally:
        await media.close()
    settle()
    reset_peak()
    before_naive = memory_mb()["VmRSS"]
    started = time.perf_counter()
    fit_image(data, LIMIT, max_pixels=DEFAULT_MAX_PIXELS)  # on the loop: this coroutine blocks it
    naive = time.perf_counter() - started
    bot_naive = memory_mb()
    rows = [
        ("wall time", f"{ms(warm)} (first call, starting the worker: {ms(cold)})", ms(naive)),
        (
            "peak RSS of the bot's process (over its RSS before)",
            f"{bot_with_worker['VmHWM']:.0f} MiB (+{bot_with_worker['VmHWM'] - before_worker:.0f})",
            f"{bot_naive['VmHWM']:.0f} MiB (+{bot_naive['VmHWM'] - before_naive:.0f})",
        ),
        (
            "peak RSS / address space of the worker process",
            f"{worker['VmHWM']:.0f} / {worker['VmPeak']:.0f} MiB (cap: {media.memory_mb:,})",
            "—",
        ),
    ]
    return rows, fitted


async def concurrent(data: bytes) -> list[tuple[str, str, str, str]]:
    """``AT_ONCE`` re-encodes started together, three ways, with the loop probed meanwhile."""
    from PIL import Image

    tiny = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiny, "PNG")
    media = MediaWorker(processes=2)
    await asyncio.gather(*(media.fit(tiny.getvalue(), LIMIT) for _ in range(2)))  # both workers up
    results = {}
    try:

        async def on_loop() -> None:
            async def one() -> None:
                fit_image(data, LIMIT, max_pixels=DEFAULT_MAX_PIXELS)

            await asyncio.gather(*(one() for _ in range(AT_ONCE)))

        ways: dict[str, Callable[[], Awaitable[object]]] = {
            "worker": lambda: asyncio.gather(*(media.fit(data, LIMIT) for _ in range(AT_ONCE))),
            "loop": on_loop,
            "thread": lambda: asyncio.gather(
                *(asyncio.to_thread(fit_image, data, LIMIT, max_pixels=DEFAULT_MAX_PIXELS) for _ in range(AT_ONCE))
            ),
        }
        for name, work in ways.items():
            settle()
            reset_peak()
            for pid in media.worker_pids():
                reset_peak(pid)
            wall, lags = await lag_while(work)
            workers = sum(memory_mb(pid)["VmHWM"] for pid in media.worker_pids()) if name == "worker" else 0
            results[name] = (wall, lags, memory_mb()["VmHWM"], workers)
    finally:
        await media.close()
    idle_wall, idle_lags = await lag_while(lambda: asyncio.sleep(1.0))
    names = ("worker", "loop", "thread")

    def row(metric: str, cell: Callable[[str], str]) -> tuple[str, str, str, str]:
        return (metric, *(cell(name) for name in names))

    return [
        row(f"wall time, {AT_ONCE} re-encodes", lambda n: ms(results[n][0])),
        row(
            f"event-loop lag, max (idle: {ms(max(idle_lags))})",
            lambda n: ms(max(results[n][1])),
        ),
        row("event-loop lag, p99", lambda n: ms(nearest_rank(results[n][1], 0.99))),
        row("10 ms timers that fired", lambda n: f"{len(results[n][1]):,}"),
        row(
            "peak RSS: bot's process (+ workers)",
            lambda n: f"{results[n][2]:.0f} MiB" + (f" (+ {results[n][3]:.0f})" if n == "worker" else ""),
        ),
    ]


async def run(side: int) -> str:
    started = time.monotonic()
    data = make_png(side)
    out = [f"Re-encoding a {side}x{side} photo-like PNG of {len(data) / MIB:.1f} MiB to fit {LIMIT // MIB} MiB", ""]
    single_rows, fitted = await single(data)  # first: the encoders' table leaves a larger heap behind
    out.append(
        f"One re-encode (result: {fitted.format} {fitted.quality}, {len(fitted.data) / MIB:.2f} MiB, "
        f"{fitted.width}x{fitted.height}):"
    )
    out += [table(("metric", "worker (MediaWorker)", "naive (fit_image on the loop)"), single_rows), ""]
    out += [encoders(data), ""]
    out.append(f"{AT_ONCE} re-encodes at once (worker: processes=2, so 2 run and 2 wait):")
    concurrent_rows = await concurrent(data)
    out.append(table(("metric", "worker", "naive: on the loop", "asyncio.to_thread"), concurrent_rows))
    out += ["", *machine_lines(time.monotonic() - started, "python -m bench.media")]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=4096, help="the square image's side in pixels")
    args = parser.parse_args(argv)
    try:
        import uvloop  # the bot's own event loop
    except ImportError:
        print(asyncio.run(run(args.side)))
    else:
        print(uvloop.run(run(args.side)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
