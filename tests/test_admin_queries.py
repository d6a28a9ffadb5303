"""What the admin page reads, on both engines (a real SQLite file, a real PostgreSQL server): the
job timeline written with each status change, its pruning, the pages of jobs, the members list,
and the copy between engines keeping every table."""

from __future__ import annotations

import pytest

from bot.core.models import Status
from bot.storage import MIGRATIONS, Store
from bot.storage.admin_queries import UNFINISHED, JobFilter
from bot.storage.copy import TABLES
from tests.test_store import db_url, make_job  # noqa: F401


@pytest.fixture
async def store(db_url):  # noqa: F811
    opened = Store(db_url)
    await opened.open()
    yield opened
    await opened.close()


async def test_each_status_or_progress_change_is_a_timeline_row_and_pruned_with_its_job(store):
    job = make_job("t1")
    await store.insert_job(job)
    running = job.with_changes(status=Status.IN_PROGRESS, progress="31%", updated_at=1010.0)
    await store.update_job(running, ["status", "progress"])
    await store.update_job(running.with_changes(message_id=5, updated_at=1011.0), ["message_id"])  # not a change
    failed = running.with_changes(
        status=Status.FAILURE, progress=None, fail_reason="banned", finished_at=1020.0, updated_at=1020.0
    )
    await store.update_job(failed, ["status", "progress", "fail_reason", "finished_at"])
    # An update of a job that is not there (deleted meanwhile) leaves no orphan row.
    await store.update_job(make_job("gone", status=Status.SUCCESS, updated_at=1030.0), ["status"])
    events = await store.admin.events("t1")
    assert [(e.at, e.status, e.progress, e.detail) for e in events] == [
        (1010.0, "IN_PROGRESS", "31%", None),
        (1020.0, "FAILURE", None, "banned"),
    ]
    assert await store.admin.events("gone") == []
    assert await store.prune_finished(before=2000.0, now=3000.0) == 1
    assert await store.admin.events("t1") == []


async def test_pages_of_jobs_skip_none_when_many_share_a_time(store):
    for n in range(7):  # one created_at for all: the cursor must also use the task id
        await store.insert_job(make_job(f"j{n}", owner_id=42 if n % 2 else 43, created_at=1000.0))
    seen, before = [], None
    while True:
        page = await store.admin.find_jobs(JobFilter(before=before, limit=3))
        seen += [job.task_id for job in page]
        if len(page) < 3:
            break
        before = (page[-1].created_at, page[-1].task_id)
    assert sorted(seen) == [f"j{n}" for n in range(7)] and len(seen) == 7
    mine = await store.admin.find_jobs(JobFilter(member_id=42, status=UNFINISHED))
    assert {job.task_id for job in mine} == {"j1", "j3", "j5"}


async def test_members_list_balances_and_todays_jobs_per_server(store):
    await store.insert_job(make_job("a", owner_id=42, guild_id=9, created_at=5000.0))
    await store.insert_job(
        make_job("b", owner_id=42, guild_id=9, created_at=100.0, finished_at=200.0, status=Status.SUCCESS)
    )
    await store.credits.adjust(9, 42, 25_000, reason="prize", admin_id=1, allowance=None, starting=0, now=4000.0)
    await store.credits.adjust(9, 77, 10_000, reason="gift", admin_id=1, allowance=None, starting=0, now=3000.0)
    rows = await store.admin.members(since=1000.0)
    assert [(r.guild_id, r.member_id, r.balance, r.jobs_since, r.running) for r in rows] == [
        (9, 42, 25_000, 1, 1),  # most recently active first
        (9, 77, 10_000, 0, 0),
    ]
    assert [r.member_id for r in await store.admin.members(since=0.0, member_id=77)] == [77]
    counts = await store.admin.jobs_by_action(since=1000.0)
    assert [(c.action, c.jobs) for c in counts] == [("IMAGINE", 1)]


async def test_a_form_sent_twice_changes_the_balance_once(store):
    for _ in range(2):
        balance = await store.credits.adjust(
            9, 42, 5_000, reason="x", admin_id=1, allowance=None, starting=0, now=10.0, key="adjust:page:nonce-1"
        )
    assert balance == 5_000
    view = await store.credits.view(9, 42, allowance=None, now=10.0, last=10)
    assert view.balance == 5_000 and len(view.entries) == 1


async def test_looking_at_an_account_writes_nothing(store):
    view = await store.credits.view(9, 1234, allowance=None, now=10.0, last=10)
    assert view.balance == 0 and view.entries == []
    assert await store.admin.members(since=0.0) == []


def test_the_copy_between_engines_takes_every_lasting_table():
    made = {word.split("(")[0].strip() for migration in MIGRATIONS for word in migration.split("CREATE TABLE ")[1:]}
    per_process = {"cluster_members", "shard_leases"}  # who runs where now: not data to move
    assert made - per_process == set(TABLES)
