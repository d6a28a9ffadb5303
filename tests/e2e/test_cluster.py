"""Two real bot processes over one real PostgreSQL, sharing four Discord shards of the double: every job
finishes once on its one message, through a SIGKILL of one process and a 10 s PostgreSQL outage, and
a member's running limit holds across the two processes."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.sandbox.discord_double import DiscordDouble, guild_id_on_shard, shard_of
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import BotProcess, free_port, write_config

SHARDS = 4
GUILDS_PER_SHARD = 2
CHANNELS_PER_GUILD = 8  # the jobs of a dead process are edited through the channel: 5 edits per 5 s each
CLUSTER_JOBS = int(os.environ.get("MJBOT_CLUSTER_JOBS", "1000"))
FINISHING_AT_ONCE = 12  # tasks one proxy account finishes together, about (trueai's core size is 3-12)
LEASES = f"[cluster]\nshard_count = {SHARDS}\nlease_ttl_s = 8\nlease_renew_s = 2\n"


async def start_cluster(
    stack: AsyncExitStack,
    tmp_path: Path,
    dd: DiscordDouble,
    sim: ProxySim,
    pg_dsn: str,
    extras: dict[str, str],
    **options,
) -> tuple[dict[str, BotProcess], list[int]]:
    """Eight guilds, two on each shard, and one bot process per ``extras`` entry (its own config
    lines), leasing the shards between them."""
    guilds = [
        await dd.add_guild(guild_id_on_shard(shard, SHARDS, n), text_channels=CHANNELS_PER_GUILD)
        for shard in range(SHARDS)
        for n in range(1, GUILDS_PER_SHARD + 1)
    ]
    processes = {}
    for name, extra in extras.items():
        config = write_config(
            tmp_path / f"{name}.toml",
            dd,
            sim,
            tmp_path / "unused.sqlite3",
            secret=PROXY_SECRET,
            storage_url=pg_dsn,
            guild_ids=guilds,
            extra=LEASES + extra,
            **options,
        )
        processes[name] = process = BotProcess(config, tmp_path / f"{name}.log")
        stack.push_async_callback(process.stop)
    # Started together, as a deployment starts them: they see each other before claiming shards.
    for process in processes.values():
        await process.spawn()
    await dd.wait_for(
        lambda: (
            sorted(shard for shard, _ in dd.live_shards) == list(range(SHARDS))
            or any(p.process.returncode is not None for p in processes.values())
        ),
        timeout=60,
        what="the four shards served",
    )
    for name, process in processes.items():
        assert process.process.returncode is None, f"{name} exited:\n{process.log_tail()}"
    return processes, guilds


def job_messages(dd: DiscordDouble, guilds: list[int]):
    return [
        message
        for guild in guilds
        for channel in dd.channel_ids_of(guild)
        for message in dd.channel_messages(channel)
        if not message.ephemeral
        and message.origin in ("bot", "interaction")
        and not message.current.loading
        and message.content.startswith("**cluster job")
    ]


def shows_final(message) -> bool:
    return bool(message.current.attachments) and "(" not in message.content.rsplit("-", 1)[-1]


@pytest.mark.timeout(300)
async def test_jobs_finish_once_through_a_killed_process_and_a_database_outage(tmp_path, pg_server, pg_dsn):
    push_port, other_port = free_port(), free_port()
    public = f'public_url = "http://127.0.0.1:{push_port}/mj/notify"\n'
    async with AsyncExitStack() as stack:
        dd = await stack.enter_async_context(DiscordDouble(shard_count=SHARDS))
        sim = await stack.enter_async_context(
            ProxySim(secret=PROXY_SECRET, max_running=CLUSTER_JOBS, max_queue=CLUSTER_JOBS)
        )
        # One push URL for both, as behind one public address: it reaches "b", which passes the pushes
        # for "a"'s tasks on through PostgreSQL.
        processes, guilds = await start_cluster(
            stack,
            tmp_path,
            dd,
            sim,
            pg_dsn,
            {
                "a": f'[notify]\nlisten = "127.0.0.1:{other_port}"\n{public}',
                "b": f'[notify]\nlisten = "127.0.0.1:{push_port}"\n{public}',
            },
            poll_interval_s=1.0,
        )
        members = dd.members
        for n in range(CLUSTER_JOBS):
            guild = guilds[n % len(guilds)]
            channel = dd.channel_ids_of(guild)[(n // len(guilds)) % CHANNELS_PER_GUILD]
            await dd.slash("imagine", {"prompt": f"cluster job {n}"}, user=members[n % 2], channel=channel)
        await dd.wait_for(
            lambda: len(job_messages(dd, guilds)) >= CLUSTER_JOBS, timeout=120, what="every job's message"
        )
        assert len(sim.tasks) == CLUSTER_JOBS and not dd.undelivered_interactions
        for task_id in list(sim.tasks):
            sim.advance(task_id)

        # "a" dies without a word. A proxy finishes a few tasks at a time (an account runs a handful):
        # those of "a"'s guilds must be shown by "b" within 30 s of the kill.
        a_shards = {int(s) for s in _owned(processes["a"].log_text())}
        assert a_shards and len(a_shards) == SHARDS // 2, processes["a"].log_tail()
        await processes["a"].kill()
        killed_at = time.monotonic()
        orphans = [m for m in job_messages(dd, guilds) if shard_of(guild_of(dd, m), SHARDS) in a_shards]
        first = orphans[:FINISHING_AT_ONCE]
        for message in first:
            sim.succeed(task_of(sim, message))
        await dd.wait_for(
            lambda: all(shows_final(m) for m in first), timeout=30, what="the killed process's jobs shown by the other"
        )
        takeover_s = time.monotonic() - killed_at
        assert "took over shards" in processes["b"].log_text()

        # PostgreSQL goes away for 10 s while the rest finish; nothing is lost.
        pg_server.stop()
        for task_id, task in list(sim.tasks.items()):
            if not task.is_finished:
                sim.succeed(task_id)
        await asyncio.sleep(10)  # the outage itself, not a wait for something
        pg_server.start()
        await dd.wait_for(
            lambda: sum(shows_final(m) for m in job_messages(dd, guilds)) >= CLUSTER_JOBS,
            timeout=120,  # a channel takes 5 edits per 5 s: the 16 finals of one channel take 15 s
            what="every final image",
        )
        messages = job_messages(dd, guilds)
        prompts = [m.content.split("**")[1] for m in messages]
        assert len(prompts) == len(set(prompts)) == CLUSTER_JOBS, "a job with two messages, or one lost"
        assert sim.count("/submit/imagine") == CLUSTER_JOBS, "a job submitted twice"
        assert not dd.refusals and not [r for r in dd.requests if r.status == 404]
        print(f"takeover: the killed process's finished jobs shown {takeover_s:.1f} s after the kill")


def _owned(log: str) -> list[str]:
    """The shards a process said it serves, last said first."""
    lines = [line for line in log.splitlines() if "serving shards [" in line]
    if not lines:
        return []
    inside = lines[-1].split("serving shards [", 1)[1].split("]", 1)[0]
    return [part.strip() for part in inside.split(",") if part.strip()]


def guild_of(dd: DiscordDouble, message) -> int:
    return dd.state.guild_of(message.channel_id).id


def task_of(sim: ProxySim, message) -> str:
    prompt = message.content.split("**")[1]
    return next(task_id for task_id, task in sim.tasks.items() if task.prompt == prompt)


async def test_a_members_running_limit_holds_across_two_processes(tmp_path, pg_dsn):
    async with AsyncExitStack() as stack:
        dd = await stack.enter_async_context(DiscordDouble(shard_count=SHARDS))
        sim = await stack.enter_async_context(ProxySim(secret=PROXY_SECRET, max_running=100, max_queue=100))
        processes, guilds = await start_cluster(
            stack, tmp_path, dd, sim, pg_dsn, {"a": "", "b": ""}, max_running_per_user=3
        )
        a_shards = {int(s) for s in _owned(processes["a"].log_text())}
        here = next(g for g in guilds if shard_of(g, SHARDS) in a_shards)
        there = next(g for g in guilds if shard_of(g, SHARDS) not in a_shards)
        member = dd.members[1]  # not an admin
        burst = await asyncio.gather(
            *(
                dd.slash("imagine", {"prompt": f"burst {n}"}, user=member, guild=here if n % 2 else there)
                for n in range(50)
            )
        )
        await sim.wait_for(lambda: len(sim.tasks) >= 3, timeout=30)

        def answered(interaction) -> bool:
            original = interaction.original
            return bool(interaction.followups) or (original is not None and not original.current.loading)

        await dd.wait_for(lambda: all(answered(i) for i in burst), timeout=30, what="every /imagine answered")

        def ephemeral_texts(interaction) -> list[str]:
            said = [interaction.original, *interaction.followups]
            return [m.content for m in said if m is not None and m.ephemeral and not m.current.loading]

        await dd.wait_for(
            lambda: sum(any("You already have 3 jobs running" in t for t in ephemeral_texts(i)) for i in burst) >= 47,
            timeout=30,
            what="47 refusals",
        )
        assert len(sim.tasks) == 3, f"{len(sim.tasks)} jobs started past a limit of 3"
