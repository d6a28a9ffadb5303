"""``python -m bench.cluster [--quick]``: this bot on one SQLite file, on PostgreSQL, and as two processes
sharing four shards over PostgreSQL, measured side by side in one run (``bench.run`` runs it too).

Per setup: jobs per minute (a burst of ``/imagine`` over 8 guilds and 64 channels, from the first
command to the last final image on Discord, push on), push latency (the proxy's final state to the
final image on Discord), and the resident memory of each process while it tracks its share of
10,000 unfinished tasks. A real PostgreSQL server is started for the run (``tests/pg_server.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.procs import memory_mb
from bench.world import SECRET, first_final, free_port, wall_minus_monotonic
from bot.core.models import Action, Display, Job, Status
from bot.sandbox.discord_double import DiscordDouble, guild_id_on_shard
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store
from bot.storage.schema import row_of
from bot.storage.store import insert_sql
from tests.e2e.harness import BotProcess, write_config
from tests.pg_server import PgServer

SHARDS, GUILDS, CHANNELS = 4, 8, 8  # guilds, and channels per guild
PACE_S = 0.25  # push latency: jobs arriving four a second, over the 64 channels
SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2))
LABEL = {
    ("sqlite", 1): "1 process, SQLite",
    ("postgresql", 1): "1 process, PostgreSQL",
    ("postgresql", 2): "2 processes, PostgreSQL",
}


@dataclass(frozen=True)
class Sizes:
    jobs: int  # the burst, for jobs per minute
    paced: int  # jobs at a steady pace, for push latency
    tracked: int  # unfinished tasks, for memory


FULL, QUICK = Sizes(jobs=400, paced=40, tracked=10_000), Sizes(jobs=20, paced=8, tracked=300)


@dataclass
class SetupResult:
    sizes: Sizes
    jobs_per_min: float
    push_p50_s: float
    push_max_s: float
    rss_mb: list[float]  # per process


async def measure_setup(workdir: Path, pg: PgServer, engine: str, processes: int, sizes: Sizes) -> SetupResult:
    name = f"{engine}-{processes}"
    rss = await _memory(workdir / f"{name}-memory", pg, engine, processes, sizes.tracked)
    throughput, p50, worst = await _throughput(workdir / f"{name}-jobs", pg, engine, processes, sizes)
    return SetupResult(sizes, throughput, p50, worst, rss)


async def _cluster(
    stack: AsyncExitStack, directory: Path, pg: PgServer, engine: str, processes: int, sim: ProxySim, *, push: bool
) -> tuple[DiscordDouble, list[int], list[BotProcess], str]:
    directory.mkdir(parents=True)
    dd = await stack.enter_async_context(DiscordDouble(shard_count=SHARDS if processes > 1 else 1))
    guilds = [
        await dd.add_guild(guild_id_on_shard(n % SHARDS, SHARDS, 1 + n // SHARDS), text_channels=CHANNELS)
        for n in range(GUILDS)
    ]
    url = pg.dsn(pg.create_database()) if engine == "postgresql" else str(directory / "mjbot.sqlite3")
    push_port = free_port()
    bots = []
    for n in range(processes):
        listen = push_port if n == 0 else free_port()
        extra = (
            f'[notify]\nlisten = "127.0.0.1:{listen}"\npublic_url = "http://127.0.0.1:{push_port}/mj/notify"\n'
            if push
            else ""
        )
        if processes > 1:
            extra += f"[cluster]\nshard_count = {SHARDS}\nlease_ttl_s = 8\nlease_renew_s = 2\n"
        config = write_config(
            directory / f"bot{n}.toml",
            dd,
            sim,
            directory / "mjbot.sqlite3",
            secret=SECRET,
            storage_url=url if engine == "postgresql" else "",
            guild_ids=guilds,
            poll_interval_s=3.0,
            extra=extra,
        )
        bots.append(BotProcess(config, directory / f"bot{n}.log"))
    return dd, guilds, bots, url


async def _start(stack: AsyncExitStack, dd: DiscordDouble, bots: list[BotProcess], processes: int) -> None:
    for bot in bots:
        stack.push_async_callback(bot.stop)
        await bot.spawn()
    wanted = list(range(SHARDS)) if processes > 1 else [0]
    await dd.wait_for(lambda: sorted(s for s, _ in dd.live_shards) == wanted, timeout=90, what="every shard served")


async def _memory(directory: Path, pg: PgServer, engine: str, processes: int, tracked: int) -> list[float]:
    """RSS of each process once it has polled its share of ``tracked`` unfinished tasks a few times."""
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(ProxySim(secret=SECRET, max_running=tracked, max_queue=tracked))
        dd, guilds, bots, url = await _cluster(stack, directory, pg, engine, processes, sim, push=False)
        store = Store(url)
        await store.open()
        now = time.time()
        rows = []
        for n in range(tracked):
            task = sim.add_task(f"held task {n}")
            guild = guilds[n % GUILDS]
            job = Job(
                task_id=task.id,
                action=Action.IMAGINE,
                prompt=task.prompt,
                owner_id=dd.member_id,
                channel_id=dd.channel_ids_of(guild)[0],
                guild_id=guild,
                message_id=10**17 + n,
                status=Status(task.status),
                progress=task.progress,
                prompt_en=task.prompt_en,
                final_prompt=task.final_prompt,
                created_at=now,
                updated_at=now,
            )
            rows.append(job.with_changes(shown=Display.of(job).signature()))
        await store.database.run([(insert_sql("jobs", row_of(rows[0])), [tuple(row_of(job).values()) for job in rows])])
        await store.close()
        polls = sim.count("/task/list-by-condition")
        await _start(stack, dd, bots, processes)
        # Each process has made a few full passes over its share (batches of up to 1,000 ids).
        await sim.wait_for(
            lambda: sim.count("/task/list-by-condition") - polls >= processes * (tracked // 1000 + 1) * 3, timeout=120
        )
        return [memory_mb(bot.process.pid)[0] for bot in bots]


async def _throughput(
    directory: Path, pg: PgServer, engine: str, processes: int, sizes: Sizes
) -> tuple[float, float, float]:
    """Jobs per minute under a burst; then push latency with jobs arriving at a steady pace (a burst's
    latency is its queue, measured by the first figure)."""
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            ProxySim(secret=SECRET, mode="time", step_s=0.5, seed=7, max_running=sizes.jobs, max_queue=sizes.jobs)
        )
        jobs = sizes.jobs
        dd, guilds, bots, _ = await _cluster(stack, directory, pg, engine, processes, sim, push=True)
        await _start(stack, dd, bots, processes)

        def messages(prefix: str) -> list:
            return [m for m in dd.messages.values() if not m.ephemeral and m.first.content.startswith(prefix)]

        async def imagine(prefix: str, count: int, pace_s: float) -> None:
            for n in range(count):
                guild = guilds[n % GUILDS]
                channel = dd.channel_ids_of(guild)[(n // GUILDS) % CHANNELS]
                await dd.slash("imagine", {"prompt": f"{prefix} {n}"}, user=dd.members[n % 2], channel=channel)
                if pace_s:
                    await asyncio.sleep(pace_s)  # the pace jobs arrive at, not synchronisation
            await dd.wait_for(
                lambda: sum(1 for m in messages(f"**{prefix}") if first_final(m)) >= count, timeout=300, what="finals"
            )

        started = time.monotonic()
        await imagine("burst job", jobs, 0)
        elapsed = max(first_final(m).at for m in messages("**burst job")) - started
        await imagine("paced job", sizes.paced, PACE_S)
        offset = wall_minus_monotonic()
        finished = {t.prompt: t.finished_at for t in sim.tasks.values()}
        latencies = [
            first_final(m).at + offset - finished[m.first.content.split("**")[1]] for m in messages("**paced job")
        ]
        return jobs / elapsed * 60, statistics.median(latencies), max(latencies)


async def measure_all(workdir: Path, sizes: Sizes) -> dict[tuple[str, int], SetupResult]:
    pg = PgServer().start()
    try:
        return {
            (engine, processes): await measure_setup(workdir, pg, engine, processes, sizes)
            for engine, processes in SETUPS
        }
    finally:
        pg.cleanup()


def lines(results: dict[tuple[str, int], SetupResult]) -> list[str]:
    """The rows as a Markdown table: one column per setup."""
    setups = list(results)
    out = ["| metric | " + " | ".join(LABEL[s] for s in setups) + " | goal |", "|---" * (len(setups) + 2) + "|"]
    first = results[setups[0]]
    out.append(
        f"| jobs per minute ({first.sizes.jobs} /imagine, push) | "
        + " | ".join(f"{results[s].jobs_per_min:,.0f}" for s in setups)
        + " | — |"
    )
    out.append(
        f"| push p50 (proxy final → Discord; {first.sizes.paced} jobs, {1 / PACE_S:.0f} a second) | "
        + " | ".join(f"{results[s].push_p50_s * 1000:.0f} ms" for s in setups)
        + " | < 100 ms |"
    )
    out.append("| push max | " + " | ".join(f"{results[s].push_max_s * 1000:.0f} ms" for s in setups) + " | — |")
    out.append(
        f"| RSS per process, {first.sizes.tracked:,} unfinished tasks | "
        + " | ".join(" + ".join(f"{mb:.0f} MiB" for mb in results[s].rss_mb) for s in setups)
        + " | — |"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mjbot-bench-cluster-") as folder:
        started = time.monotonic()
        results = asyncio.run(measure_all(Path(folder), QUICK if args.quick else FULL))
    print("\n".join(lines(results)))
    print(f"\n(measured in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
