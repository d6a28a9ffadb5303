"""Several processes over one PostgreSQL database, below Discord: shard leases shared and taken over,
each process tracking only its shards' jobs, and pushes passed on to the process that tracks the task.
(The end-to-end run of two real bot processes is in tests/e2e/test_cluster.py.)"""

from __future__ import annotations

import asyncio

import pytest

from bot.core.background import wait_event
from bot.jobs.shards import ShardKeeper, shard_of
from bot.storage import Store
from bot.storage.leases import ShardLeases
from tests.test_store import make_job


async def wait_until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)  # polling a condition, bounded by the timeout


def guild_on(shard: int, count: int, n: int = 0) -> int:
    return ((n * count + shard) << 22) | 12345


def test_the_shard_of_a_guild_is_discords():
    assert shard_of(None, 4) == 0
    assert [shard_of(guild_on(s, 4, n), 4) for s in range(4) for n in range(3)] == [
        s for s in range(4) for _ in range(3)
    ]
    assert shard_of(81384788765712384, 2) == (81384788765712384 >> 22) % 2


async def test_two_processes_share_the_shards_and_one_takes_over_the_other(pg_dsn):
    stores = [Store(pg_dsn), Store(pg_dsn)]
    for store in stores:
        await store.open()
    gained: list[set[int]] = []

    async def on_gained(shards: set[int]) -> None:
        gained.append(shards)

    keepers = [
        ShardKeeper(ShardLeases(store.database, name, 4), ttl_s=1.0, renew_s=0.2, on_gained=on_gained)
        for store, name in zip(stores, "ab", strict=True)
    ]
    first, second = await asyncio.gather(*(keeper.start() for keeper in keepers))
    assert len(first) == len(second) == 2 and not first & second
    # "a" dies without a word (no release): its leases run out, "b" takes its shards.
    keepers[0]._loop.cancel()
    await wait_until(lambda: keepers[1].owned == {0, 1, 2, 3}, timeout=10)
    assert gained == [first]
    await keepers[1].stop()
    for store in stores:
        await store.close()


async def test_fixed_shards_that_overlap_another_process_are_refused(pg_dsn):
    from bot.core.errors import ConfigError

    store = Store(pg_dsn)
    await store.open()
    a = ShardKeeper(ShardLeases(store.database, "a", 4), static_shards=[0, 1], ttl_s=5, renew_s=1)
    b = ShardKeeper(ShardLeases(store.database, "b", 4), static_shards=[1, 2], ttl_s=5, renew_s=1)
    assert await a.start() == {0, 1}
    with pytest.raises(ConfigError, match="shard 1 .* already served by another live process"):
        await b.start()
    await a.stop()
    assert await b.start() == {1, 2}  # once "a" stopped cleanly, its shards are free at once
    await b.stop()
    await store.close()


async def test_a_process_tracks_only_its_shards_jobs(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    await store.open()
    for shard in range(4):
        await store.insert_job(make_job(f"{shard}00", guild_id=guild_on(shard, 4)))
    await store.insert_job(make_job("dm", guild_id=None))
    store.serve_shards(4, {0, 2})
    assert sorted(j.task_id for j in await store.unfinished_jobs()) == ["000", "200", "dm"]
    assert sorted(j.task_id for j in await store.undelivered_jobs()) == ["000", "200", "dm"]
    assert [j.task_id for j in await store.unfinished_jobs(shards={3})] == ["300"]
    store.serve_shards(4, None)
    assert len(await store.unfinished_jobs()) == 5
    await store.close()


async def test_a_notify_reaches_the_other_process_and_survives_a_database_restart(pg_server, pg_dsn):
    first, second = Store(pg_dsn), Store(pg_dsn)
    await first.open()
    await second.open()
    heard: list[str] = []
    got = asyncio.Event()

    def hear(payload: str) -> None:
        heard.append(payload)
        got.set()

    listener = second.database.listen("mjbot_push", hear)
    # The listener connects in the background: send until it hears (NOTIFY before LISTEN is lost).
    async with asyncio.timeout(10):
        while not got.is_set():
            await first.database.notify("mjbot_push", "task-1")
            await wait_event(got, 0.1)
    assert heard[0] == "task-1"
    pg_server.stop()
    pg_server.start()
    got.clear()
    async with asyncio.timeout(20):
        while not got.is_set():
            await first.database.notify("mjbot_push", "task-2")
            await wait_event(got, 0.2)
    assert heard[-1] == "task-2"
    listener.cancel()
    await first.close()
    await second.close()
