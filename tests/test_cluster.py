"""Several processes over one PostgreSQL database, below Discord: shard leases shared and taken over,
each process tracking only its shards' jobs, and pushes passed on to the process that tracks the task.
(The end-to-end run of two real bot processes is in tests/e2e/test_cluster.py.)"""

from __future__ import annotations

import asyncio

import pytest

from bot.core.background import wait_event
from bot.jobs.shards import ShardKeeper
from bot.storage import Store
from bot.storage.leases import ShardLeases
from tests.test_store import make_job


async def wait_until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)  # polling a condition, bounded by the timeout


def guild_on(shard: int, count: int, n: int = 0) -> int:
    return ((n * count + shard) << 22) | 12345


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


async def test_a_database_outage_longer_than_the_lease_never_serves_a_shard_twice(pg_server, pg_dsn):
    """PostgreSQL away for longer than the leases last: when it is back, a process neither "gains"
    the shards it already serves nor keeps serving one another process took (it learns of it and
    stops), and every shard ends with exactly one server."""
    from bot.storage.postgres import PostgresDatabase

    store = Store(pg_dsn)
    await store.open()
    await store.close()
    gained: dict[str, list[set[int]]] = {"a": [], "b": []}
    lost: dict[str, list[set[int]]] = {"a": [], "b": []}
    databases, keepers = [], []
    for name in "ab":

        async def on_gained(shards: set[int], name: str = name) -> None:
            gained[name].append(shards)

        database = PostgresDatabase(pg_dsn, pool_size=2)  # waits for the server, as the store does
        await database.open()
        databases.append(database)
        keepers.append(
            ShardKeeper(
                ShardLeases(database, name, 4),
                ttl_s=1.0,
                renew_s=0.2,
                on_gained=on_gained,
                on_lost=lambda shards, name=name: lost[name].append(shards),
            )
        )
    before = await asyncio.gather(*(keeper.start() for keeper in keepers))
    pg_server.stop()
    await asyncio.sleep(2.0)  # the outage itself: twice the lease
    rounds = [keeper.rounds for keeper in keepers]
    pg_server.start()
    # Each live keeper renews a few times more once the database is back (or stopped, its lease lost).
    await wait_until(
        lambda: all(k._loop.done() or k.rounds >= n + 3 for k, n in zip(keepers, rounds, strict=True)), timeout=30
    )
    assert _settled(keepers)
    for name, first in zip("ab", before, strict=True):
        for shards in gained[name]:
            assert not shards & first or lost[name], f"{name} gained {shards}, which it served all along"
    serving = [k.owned for k in keepers if not k._loop.done()]
    assert sorted(s for owned in serving for s in owned) == [0, 1, 2, 3]
    for keeper in keepers:
        await keeper.stop()
    for database in databases:
        await database.close()


def _settled(keepers: list[ShardKeeper]) -> bool:
    live = [k for k in keepers if not k._loop.done()]
    owned = [s for k in live for s in k.owned]
    return len(owned) == len(set(owned)) == 4


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
