"""``python -m bench.media_acks``: interaction acks while the bot re-encodes four large results.

The real bot process (``python -m bot run``) against the Discord double and the simulator's trueai,
whose upscales are 4096x4096 photo-like PNGs (about 50 MB, five times the 10 MiB an unboosted
server takes). Four upscales finish at once; while their images are re-encoded, ``/jobs`` arrives
every 50 ms and each ack is timed (the double's dispatch of INTERACTION_CREATE -> the bot's first
callback). Side by side: this bot (re-encoding in worker processes) and the naive way, the same bot
with ``fit_image`` called on its event loop (``bench/inline_media_bot.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row, Table, current_commit, machine_lines, nearest_rank, seconds, verdict
from bench.world import LocalLag
from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.harness import ROOT, START_TIMEOUT_S, BotProcess, custom_id, public_messages, write_config

SECRET = "bench-media-secret"
UPSCALES = 4
ACK_EVERY_S = 0.05
ACK_BOUND_S = 0.3
PIXELS = (4096, 4096)


class InlineBot(BotProcess):
    """The bot with re-encoding on its event loop: the naive way."""

    async def spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.inline_media_bot", "run", "--config", str(self.config_path),
                cwd=ROOT, stdout=log, stderr=log, env=env,
            )  # fmt: skip


@dataclass
class Result:
    acks: list[float]
    never: int
    reencode_s: float  # the four finals' state -> the last of the four images on Discord
    sizes: list[int]  # bytes of the attached images
    original: int  # bytes of one original
    bench_lag_s: float  # this process's own worst loop lag meanwhile (the double, the simulator)


async def measure(kind: str, workdir: Path, pixels: tuple[int, int] = PIXELS) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    async with (
        DiscordDouble() as dd,
        ProxySim(secret=SECRET, flavour="trueai", final_image_pixels=pixels, max_running=20) as sim,
    ):
        config = write_config(
            workdir / "config.toml", dd, sim, workdir / "mjbot.sqlite3", secret=SECRET, auth="authorization"
        )
        bot = (InlineBot if kind == "naive" else BotProcess)(config, workdir / "bot.log")
        await bot.start(dd)
        try:
            upscales = []
            for n in range(UPSCALES):
                await dd.slash("imagine", {"prompt": f"a harbour at dawn {n}"})
                await dd.wait_for(lambda n=n: len(public_messages(dd)) > len(upscales) * 2, what="the grid message")
                grid = public_messages(dd)[-1]
                sim.succeed(next(t.id for t in sim.tasks.values() if t.prompt == f"a harbour at dawn {n}"))
                await dd.wait_for(lambda grid=grid: grid.current.attachments, timeout=START_TIMEOUT_S, what="a grid")
                await dd.click(grid.id, custom_id(grid, "U1"))
                await dd.wait_for(lambda: len(public_messages(dd)) > len(upscales) * 2 + 1, what="the upscale")
                upscales.append(public_messages(dd)[-1])
            tasks = [t.id for t in sim.tasks.values() if t.action == "UPSCALE"]
            # Rendered (and cached) now: rendering blocks this process's loop, which runs the double.
            original = max(len(sim.image_bytes(task_id)) for task_id in tasks)

            def shown() -> bool:
                return all(m.current.attachments for m in upscales)

            sent = []
            async with LocalLag() as bench_lag:
                started = time.monotonic()
                for task_id in tasks:
                    sim.succeed(task_id)
                finished_at = None
                while finished_at is None or time.monotonic() < finished_at + 0.2:
                    sent.append(await dd.slash("jobs"))
                    await asyncio.sleep(ACK_EVERY_S)  # pacing: load, not a wait
                    if finished_at is None and shown():
                        finished_at = time.monotonic()
                    if time.monotonic() - started > 120:
                        break
            reencode_s = (finished_at or time.monotonic()) - started
            await dd.wait_for(lambda: all(i.acked_at is not None for i in sent), timeout=15, what="every ack")
            return Result(
                acks=[i.ack_s for i in sent if i.ack_s is not None],
                never=sum(1 for i in sent if i.ack_s is None),
                reencode_s=reencode_s,
                sizes=[m.current.attachments[0].size for m in upscales if m.current.attachments],
                original=original,
                bench_lag_s=bench_lag.worst_s,
            )
        finally:
            await bot.stop()


def table(results: dict[str, Result], total_s: float, pixels: tuple[int, int] = PIXELS) -> Table:
    real, naive = results["real"], results["naive"]

    def acks(r: Result) -> str:
        return " / ".join(seconds(v) for v in (nearest_rank(r.acks, 0.5), nearest_rank(r.acks, 0.99), max(r.acks)))

    t = Table(
        f"Acks while re-encoding {UPSCALES} upscales of {pixels[0]}x{pixels[1]}",
        machine=machine_lines(total_s, "python -m bench.media_acks", current_commit()),
    )
    worst = max(real.acks) if real.acks else float("inf")
    t.rows = [
        Row(
            f"Ack of /jobs every 50 ms while {UPSCALES} results are re-encoded, p50 / p99 / max",
            acks(real),
            acks(naive),
            "each ack < 300 ms",
            verdict(worst < ACK_BOUND_S and real.never == 0),
        ),
        Row(
            "/jobs acks counted (never acked)", f"{len(real.acks)} ({real.never})", f"{len(naive.acks)} ({naive.never})"
        ),
        Row(
            "The benchmark process's own worst loop lag meanwhile (included in the acks)",
            seconds(real.bench_lag_s),
            seconds(naive.bench_lag_s),
        ),
        Row(
            f"Final state -> all {UPSCALES} re-encoded images on Discord",
            seconds(real.reencode_s),
            seconds(naive.reencode_s),
        ),
        Row(
            "Attached size (original PNG)",
            f"{max(real.sizes) / 2**20:.1f} MiB ({real.original / 2**20:.1f} MiB)",
            f"{max(naive.sizes) / 2**20:.1f} MiB ({naive.original / 2**20:.1f} MiB)" if naive.sizes else "—",
            "≤ 10 MiB",
            verdict(bool(real.sizes) and max(real.sizes) <= 10 * 2**20),
        ),
    ]
    t.notes.append(
        "This bot re-encodes in worker processes ([media] reencode_processes = 2); the naive way is the same "
        "bot with Pillow called on its event loop. Ack = the double's dispatch of INTERACTION_CREATE -> the "
        "bot's first callback; /jobs answers from the database at once."
    )
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3072x3072 images: a smoke run (the suite runs it)")
    pixels = (3072, 3072) if parser.parse_args(argv).quick else PIXELS
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mjbot-bench-media-") as tmp:
        results = {kind: asyncio.run(measure(kind, Path(tmp) / kind, pixels)) for kind in ("real", "naive")}
    print(table(results, time.monotonic() - started, pixels).text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
