"""The SQLite store on a real file: migrations, round trips, reopening, hostile text."""

from __future__ import annotations

import sqlite3

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


async def test_job_round_trip_survives_reopen(tmp_path):
    path = tmp_path / "jobs.sqlite3"
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


async def test_field_level_updates_do_not_clobber_each_other(tmp_path):
    store = await open_store(tmp_path / "jobs.sqlite3")
    job = make_job()
    await store.insert_job(job)
    # The delivery sets the message id while the tracker holds an older copy without it.
    await store.update_job(job.with_changes(message_id=555, shown="x"), ["message_id", "shown"])
    await store.update_job(job.with_changes(status=Status.IN_PROGRESS, progress="40%"), ["status", "progress"])
    loaded = await store.get_job(job.task_id)
    assert loaded.message_id == 555 and loaded.status is Status.IN_PROGRESS and loaded.progress == "40%"
    await store.close()


async def test_unfinished_and_undelivered_queries(tmp_path):
    store = await open_store(tmp_path / "jobs.sqlite3")
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


async def test_used_buttons_come_from_child_jobs(tmp_path):
    store = await open_store(tmp_path / "jobs.sqlite3")
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


async def test_a_refused_insert_does_not_undo_another_callers_update(tmp_path):
    """One transaction at a time on the shared connection: the rollback after an expected
    Conflict (one submit per button) must not take another coroutine's update with it."""
    import asyncio

    from bot.core.models import Submission

    path = tmp_path / "jobs.sqlite3"
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


def test_every_stored_field_of_a_job_has_its_column():
    """The jobs table's columns are listed once (bot/storage/schema.py); a Job field added without its
    column (or a column without its field) fails here, not at run time."""
    from dataclasses import fields

    from bot.storage.schema import FIELD_OF as _FIELD_OF

    derived = {"used_buttons"}  # computed from other rows when a job is read
    assert set(_FIELD_OF) == {f.name for f in fields(Job)} - derived
