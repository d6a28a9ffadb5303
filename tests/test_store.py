"""The store on both engines, a real SQLite file and a real PostgreSQL server: migrations, round trips,
reopening, hostile text, conflicts, member limits and shard leases."""

from __future__ import annotations

import sqlite3

import pytest

from bot.core.models import Action, Display, Job, Status
from bot.storage import MIGRATIONS, Conflict, Store


def make_job(task_id: str = "1320098173412546", **changes) -> Job:
    base = Job(
        task_id=task_id,
        action=Action.IMAGINE,
        prompt="a cat",
        owner_id=42,
        channel_id=7,
        guild_id=9,
        status=Status.SUBMITTED,
        created_at=1000.0,
        updated_at=1000.0,
    )
    return base.with_changes(**changes)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same test on each engine: an SQLite file, or a fresh database on the test PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.sqlite3")
    return request.getfixturevalue("pg_dsn")


async def open_store(path) -> Store:
    store = Store(path)
    await store.open()
    return store


async def test_migrates_a_new_file_with_wal(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = await open_store(path)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_job_round_trip_survives_reopen(db_url):
    path = db_url
    store = await open_store(path)
    job = make_job(
        prompt="'); DROP TABLE jobs; -- 🐱 猫",
        message_id=123456789012345678,
        progress="23%",
        queue_ahead=2,
        image_url="http://x/p.webp",
    )
    await store.insert_job(job)
    await store.close()

    store = await open_store(path)  # a new process on the same file
    loaded = await store.get_job(job.task_id)
    assert loaded is not None
    assert loaded.prompt == "'); DROP TABLE jobs; -- 🐱 猫"
    assert loaded.task_id == "1320098173412546" and isinstance(loaded.task_id, str)
    assert (loaded.action, loaded.status, loaded.owner_id, loaded.guild_id, loaded.channel_id) == (
        Action.IMAGINE,
        Status.SUBMITTED,
        42,
        9,
        7,
    )
    assert (loaded.message_id, loaded.progress, loaded.queue_ahead) == (123456789012345678, "23%", 2)
    assert [j.task_id for j in await store.unfinished_jobs()] == [job.task_id]
    await store.close()


async def test_field_level_updates_do_not_clobber_each_other(db_url):
    store = await open_store(db_url)
    job = make_job()
    await store.insert_job(job)
    # The delivery sets the message id while the tracker holds an older copy without it.
    await store.update_job(job.with_changes(message_id=555, shown="x"), ["message_id", "shown"])
    await store.update_job(job.with_changes(status=Status.IN_PROGRESS, progress="40%"), ["status", "progress"])
    loaded = await store.get_job(job.task_id)
    assert loaded.message_id == 555 and loaded.status is Status.IN_PROGRESS and loaded.progress == "40%"
    await store.close()


async def test_unfinished_and_undelivered_queries(db_url):
    store = await open_store(db_url)
    running = make_job("1")
    done = make_job("2", status=Status.SUCCESS, finished_at=2000.0, image_url="http://x/2.png")
    shown_done = done.with_changes(task_id="3")
    await store.insert_job(running)
    await store.insert_job(done)
    await store.insert_job(shown_done.with_changes(shown=Display.of(shown_done).signature()))
    assert [j.task_id for j in await store.unfinished_jobs()] == ["1"]
    # "3" shows its final state already; "1" and "2" have never been shown.
    assert sorted(j.task_id for j in await store.undelivered_jobs()) == ["1", "2"]
    await store.update_job(running.with_changes(message_gone=True), ["message_gone"])
    assert [j.task_id for j in await store.undelivered_jobs()] == ["2"]
    await store.close()


async def test_used_buttons_come_from_child_jobs(db_url):
    store = await open_store(db_url)
    grid = make_job("10", status=Status.SUCCESS, finished_at=1.0)
    await store.insert_job(grid)
    await store.insert_job(make_job("11", action=Action.UPSCALE, parent_task_id="10", parent_index=2))
    await store.insert_job(make_job("12", action=Action.VARIATION, parent_task_id="10", parent_index=3))
    await store.insert_job(make_job("13", action=Action.REROLL, parent_task_id="10"))
    loaded = await store.get_job("10")
    assert loaded.used_buttons == {("UPSCALE", 2), ("VARIATION", 3)}
    assert [j.task_id for j in await store.child_jobs("10")] == ["11", "12", "13"]
    await store.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path):
    import pytest

    from bot.core.errors import ConfigError

    path = tmp_path / "jobs.sqlite3"
    await (await open_store(path)).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(ConfigError, match="newer than this mjbot knows"):
        await open_store(path)
    with sqlite3.connect(path) as raw:  # left as it was
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1


async def test_a_refused_insert_does_not_undo_another_callers_update(db_url):
    """One transaction at a time on the shared connection: the rollback after an expected
    Conflict (one submit per button) must not take another coroutine's update with it."""
    import asyncio

    from bot.core.models import Submission

    path = db_url
    store = await open_store(path)
    job, other = make_job(), make_job("1320098173412547")
    await store.insert_job(job)
    await store.insert_job(other)
    pending = Submission("mjbot:a", "UPSCALE", "p", 42, 9, 7, job.task_id, 1, 1000.0)
    await store.insert_submission(pending)
    clash = Submission("mjbot:b", "UPSCALE", "p", 42, 9, 7, job.task_id, 1, 1001.0)  # same button
    # A tick's update of two jobs, and a refused press, at the same moment.
    results = await asyncio.gather(
        store.update_jobs([(j.with_changes(progress="55%"), ["progress"]) for j in (job, other)]),
        store.insert_submission(clash),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], Conflict)
    await store.close()
    reopened = await open_store(path)  # what is on disk, not in any cache
    assert [(await reopened.get_job(j.task_id)).progress for j in (job, other)] == ["55%", "55%"]
    await reopened.close()


async def test_an_insert_tried_again_after_its_commit_went_through_is_not_a_conflict(db_url):
    """PostgreSQL's connection can drop after a COMMIT went through; the store then tries the same
    insert again. Its own row (the same nonce) is success; another's is still a conflict."""
    from bot.core.models import Submission
    from bot.storage import MemberLimits

    store = await open_store(db_url)
    job = make_job(nonce="mjbot:n1")
    await store.insert_job(job)
    await store.insert_job(job)  # the same job again: already stored
    with pytest.raises(Conflict):
        await store.insert_job(job.with_changes(nonce="mjbot:other"))
    pending = Submission("mjbot:s1", "IMAGINE", "p", 42, 9, 7, None, None, 1000.0)
    await store.insert_submission(pending)
    await store.insert_submission(pending)
    await store.insert_submission(pending, MemberLimits(max_running=2))  # its own row is not counted twice
    assert len(await store.submissions(before=float("inf"))) == 1
    await store.close()


def test_every_stored_field_of_a_job_has_its_column():
    """The jobs table's columns are listed once (bot/storage/schema.py); a Job field added without its
    column (or a column without its field) fails here, not at run time."""
    from dataclasses import fields

    from bot.storage.schema import FIELD_OF as _FIELD_OF

    derived = {"used_buttons"}  # computed from other rows when a job is read
    assert set(_FIELD_OF) == {f.name for f in fields(Job)} - derived


async def test_a_postgres_database_newer_than_the_code_is_refused(pg_dsn):
    from bot.core.errors import ConfigError

    await (await open_store(pg_dsn)).close()
    import asyncpg

    raw = await asyncpg.connect(pg_dsn)
    await raw.execute("UPDATE mjbot_schema SET version = $1", len(MIGRATIONS) + 1)
    with pytest.raises(ConfigError, match="newer than this mjbot knows"):
        await open_store(pg_dsn)
    assert await raw.fetchval("SELECT version FROM mjbot_schema") == len(MIGRATIONS) + 1  # left as it was
    await raw.close()


async def test_two_processes_migrating_together_migrate_once(pg_dsn):
    """Two bot processes starting at the same moment on an empty database: one migrates, the other
    waits for it and finds nothing left to do (no "relation already exists")."""
    import asyncio

    first, second = Store(pg_dsn), Store(pg_dsn)
    await asyncio.gather(first.open(), second.open())
    assert await first.schema_version() == await second.schema_version() == len(MIGRATIONS)
    await first.close()
    await second.close()


async def test_member_limits_hold_across_stores_sharing_a_database(db_url):
    """Two processes (two stores on one database) taking a member's last slots at the same moment:
    the database lets exactly the limit through, counting submissions under way and unfinished jobs."""
    import asyncio

    from bot.core.errors import DailyLimitReached, TooManyRunning
    from bot.core.models import Submission
    from bot.storage import MemberLimits

    first, second = await open_store(db_url), await open_store(db_url)
    await first.insert_job(make_job("900", owner_id=42))  # one running already
    limits = MemberLimits(max_running=5)
    attempts = [
        (first if n % 2 else second).insert_submission(
            Submission(f"mjbot:{n}", "IMAGINE", "p", 42, 9, 7, None, None, 1000.0 + n), limits
        )
        for n in range(30)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(r is None for r in results) == 4
    assert all(isinstance(r, TooManyRunning) for r in results if r is not None)
    # Another member is not affected; an admin-free daily quota counts today's jobs too.
    await first.insert_submission(Submission("mjbot:other", "IMAGINE", "p", 43, 9, 7, None, None, 1000.0), limits)
    with pytest.raises(DailyLimitReached):
        await second.insert_submission(
            Submission("mjbot:day", "IMAGINE", "p", 43, 9, 7, None, None, 1000.0),
            MemberLimits(max_per_day=1, day_start=999.0),
        )
    await first.close()
    await second.close()


async def test_shard_leases_are_shared_and_taken_over(db_url):
    from bot.storage.leases import ShardLeases

    store = await open_store(db_url)
    a, b = ShardLeases(store.database, "a", 4), ShardLeases(store.database, "b", 4)
    await a.prepare(1000.0)
    await b.prepare(1000.0)
    now = 1000.0
    assert [await a.claim(s, now, 20) for s in (0, 1)] == [True, True]
    assert [await b.claim(s, now, 20) for s in (0, 1, 2, 3)] == [False, False, True, True]
    assert await a.held() == {0, 1} and await b.held() == {2, 3}
    assert await b.free(now + 5) == []
    # a stops renewing; b renews. Once a's leases run out, b may take them, and a learns it lost them.
    assert await b.renew(now + 15, 20) == {2, 3}
    assert await b.free(now + 21) == [0, 1]
    assert [await b.claim(s, now + 21, 20) for s in (0, 1)] == [True, True]
    assert await a.renew(now + 22, 20) == set()
    # A process asking for another shard count while one runs is refused.
    from bot.storage import StorageError

    with pytest.raises(StorageError, match="same count"):
        await ShardLeases(store.database, "c", 8).prepare(now + 22)
    # Once the others' leases ran out (a crash leaves them owned), another count is taken.
    await ShardLeases(store.database, "d", 8).prepare(now + 100)
    assert await ShardLeases(store.database, "d", 8).free(now + 100) == list(range(8))
    await ShardLeases(store.database, "b", 4).prepare(now + 100)
    await b.release()
    assert await b.free(now + 22) == [0, 1, 2, 3]
    await store.close()


async def test_migrate_storage_copies_a_live_sqlite_install_into_postgres(tmp_path, pg_dsn):
    from bot.core.models import Submission
    from bot.storage.copy import backup_postgres, migrate_storage

    source = await open_store(tmp_path / "live.sqlite3")
    for n in range(1500):
        await source.insert_job(make_job(str(5000 + n), prompt=f"fox {n} 🦊", message_id=10**17 + n))
    await source.insert_submission(Submission("mjbot:s", "IMAGINE", "p", 42, 9, 7, None, None, 1000.0))
    await source.set_meta("push_token", "tok")
    running = make_job("5000", status=Status.IN_PROGRESS, progress="10%", updated_at=1001.0)
    await source.update_job(running, ["status", "progress"])  # a row of its timeline
    info = await migrate_storage(str(tmp_path / "live.sqlite3"), pg_dsn)  # the source stays open
    assert info.rows == {
        "jobs": 1500, "submissions": 1, "meta": 1, "pruned": 0, "ledger": 0, "member_preferences": 0, "job_events": 1
    }  # fmt: skip
    await source.close()
    target = await open_store(pg_dsn)
    assert (await target.get_job("5007")).prompt == "fox 7 🦊"
    assert [(e.status, e.progress) for e in await target.admin.events("5000")] == [("IN_PROGRESS", "10%")]
    assert (await target.get_job("5007")).message_id == 10**17 + 7
    assert await target.get_meta("push_token") == "tok"
    await target.close()
    # Copying again into a database that holds jobs is refused, and changes nothing.
    from bot.storage import StorageError

    with pytest.raises(StorageError, match="already holds 1500 jobs"):
        await migrate_storage(str(tmp_path / "live.sqlite3"), pg_dsn)
    # The PostgreSQL install backs up into an SQLite file that opens as an install of its own.
    backup = await backup_postgres(pg_dsn, tmp_path / "backup.sqlite3")
    assert backup.jobs == 1500 and backup.schema_version == len(MIGRATIONS)
    copy = await open_store(tmp_path / "backup.sqlite3")
    assert (await copy.get_job("6499")).prompt == "fox 1499 🦊"
    await copy.close()


def test_a_postgres_url_never_shows_its_password():
    from bot.core.config import StorageSettings
    from bot.storage.postgres import PostgresDatabase

    url = "postgresql://mjbot:s3cret-pw@db.example:5432/mj"
    settings = StorageSettings(url=url)
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in settings.where
    assert settings.where == "postgresql://mjbot:***@db.example:5432/mj"
    assert "s3cret-pw" not in repr(PostgresDatabase(url)) and "s3cret-pw" not in repr(Store(url))
    # Passwords that were not percent-encoded, and a password given as a parameter, are masked too.
    from bot.core.config import redacted_url, url_password

    odd = "postgresql://mjbot:ab/c#d?e@f@db:5432/mj"
    assert redacted_url(odd) == "postgresql://mjbot:***@db:5432/mj" and url_password(odd) == "ab/c#d?e@f"
    query = "postgresql://db/mj?user=mjbot&password=hunter2&sslmode=require"
    assert redacted_url(query) == "postgresql://db/mj?user=mjbot&password=***&sslmode=require"
    assert url_password(query) == "hunter2"


async def test_an_unparsable_postgres_url_is_refused_without_its_password():
    from bot.storage import StorageUnavailable

    with pytest.raises(StorageUnavailable, match="percent-encode") as refused:
        await open_store("postgresql://mjbot:ab:cd/ef@db:notaport/mj")
    assert "ab:cd/ef" not in str(refused.value)


async def test_an_unreachable_postgres_says_which_and_why_without_the_password(pg_server):
    from bot.storage import StorageUnavailable
    from tests.pg_server import free_port

    wrong = pg_server.dsn(password="not-the-password")
    with pytest.raises(StorageUnavailable, match="refused the password") as refused:
        await open_store(wrong)
    assert "not-the-password" not in str(refused.value)
    nowhere = f"postgresql://mjbot:s3cret-pw@127.0.0.1:{free_port()}/mj"
    with pytest.raises(StorageUnavailable, match="unreachable") as unreachable:
        await open_store(nowhere)
    assert "s3cret-pw" not in str(unreachable.value)
