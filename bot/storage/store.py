"""Persistence for jobs, on SQLite (the default) or PostgreSQL: versioned migrations, group commit.

Everything the bot needs after a restart lives here: which tasks are unfinished, which Discord
message shows each one, and what that message showed last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import bot.storage.job_events as job_events
import bot.storage.ledger as ledger
from bot.core.models import BUTTON_MARK, Action, Job, Status, Submission
from bot.storage.admin_queries import AdminQueries
from bot.storage.connect import open_database
from bot.storage.credit_book import CreditBook
from bot.storage.database import Conflict, Database, Transaction, newer_schema
from bot.storage.ledger import Charge
from bot.storage.limits import MemberLimits, check_limits
from bot.storage.preference_book import PreferenceBook
from bot.storage.schema import COLUMN_OF, MIGRATIONS, UPDATABLE, buttons_of, job_of, row_of, update_sql
from bot.storage.transactions import Transactions, settle

log = logging.getLogger(__name__)


class Store(Transactions):
    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        self.database: Database = open_database(self.url)
        self.path = self.database.where  # the SQLite file, or the PostgreSQL URL without its password
        self._open = False
        # Job updates waiting for the next group commit, and the task committing them.
        self._queued: list[tuple[list[tuple[str, list[tuple[Any, ...]]]], asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None
        # get_job calls waiting for the next shared read, by task id, and the task reading them.
        self._wanted: dict[str, list[asyncio.Future[Job | None]]] = {}
        self._reading: asyncio.Task[None] | None = None
        self._shards: tuple[int, tuple[int, ...]] | None = None  # see serve_shards
        self.credits = CreditBook(self.database)  # balances, the ledger's reports, admins' changes
        self.preferences = PreferenceBook(self.database)  # members' settings, suffixes and options
        self.admin = AdminQueries(self.database)  # what the admin page reads

    def __repr__(self) -> str:
        return f"Store({self.database.where!r})"

    @property
    def engine(self) -> str:
        return self.database.engine

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self, *, migrate: bool = True) -> None:
        if self._open:
            return
        await self.database.open()
        try:
            if migrate:
                await self.database.migrate(MIGRATIONS)
            elif (version := await self.database.schema_version()) > len(MIGRATIONS):
                raise newer_schema(self.database.where, version, len(MIGRATIONS))
        except BaseException:
            await self.database.close()
            raise
        self._open = True

    async def close(self) -> None:
        pending = {task for task in (self._committing, self._reading) if task is not None}
        if pending:
            await asyncio.wait(pending)  # updates and reads already asked for are done first
        self._open = False
        await self.database.close()

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("store is not open")

    async def schema_version(self) -> int:
        return await self.database.schema_version()

    async def meta_value(self, key: str, default: Callable[[], str]) -> str:
        """This install's value for ``key``, created with ``default()`` the first time (by whichever
        process of a cluster gets there first: the others read the same value)."""
        await self.database.run(
            [("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [(key, default())])]
        )
        rows = await self.database.fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0])

    async def get_meta(self, key: str) -> str | None:
        rows = await self.database.fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.database.run(
            [
                (
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [(key, value)],
                )
            ]
        )

    # --- writes --------------------------------------------------------------------------------

    async def insert_job(self, job: Job) -> None:
        """Store a new job; in the same transaction, its submission (if any) is done with. Raises
        :class:`~bot.storage.database.Conflict` when its button already has a job."""
        row = row_of(job)
        statements: list[tuple[str, list[tuple[Any, ...]]]] = [(insert_sql("jobs", row), [tuple(row.values())])]
        if job.nonce:
            statements.append(("DELETE FROM submissions WHERE nonce = ?", [(job.nonce,)]))
            statements += ledger.end_statements([job])
        try:
            await self.database.run(statements)
        except Conflict:
            if not await self._stored_already("jobs", "task_id", job.task_id, job.nonce):
                raise

    async def insert_submission(
        self, submission: Submission, limits: MemberLimits | None = None, charge: Charge | None = None
    ) -> None:
        """Record an intent to submit, before the proxy is asked, with its price held from the
        member's credits (``charge``). Raises :class:`~bot.storage.database.Conflict` when the same
        button of the same grid already has one, :class:`TooManyRunning` / :class:`DailyLimitReached`
        when the member is at a limit (their unfinished jobs and submissions under way count, in
        every process), and :class:`NotEnoughCredits` when their balance does not cover the price."""
        row = asdict(submission)
        insert = insert_sql("submissions", row)
        if charge is None and (limits is None or not (limits.max_running or limits.max_per_day)):
            try:
                await self.database.run([(insert, [tuple(row.values())])])
            except Conflict:
                if not await self._stored_already("submissions", "nonce", submission.nonce, submission.nonce):
                    raise
            return

        async def reserve(tx: Transaction) -> Exception | None:
            # Tried again after the connection dropped during a COMMIT that went through: done.
            if await tx.fetch("SELECT 1 FROM submissions WHERE nonce = ?", (submission.nonce,)):
                return None
            await tx.lock(submission.owner_id)  # one submit at a time per member, cluster-wide
            if limits is not None:
                await check_limits(tx, submission.owner_id, limits)
            if charge is not None and (refused := await ledger.hold(tx, submission, charge, submission.created_at)):
                return refused  # committed: the member's refill stands, nothing else was written
            await tx.execute(insert, tuple(row.values()))
            return None

        refused = await self.database.transact(reserve)
        if refused is not None:
            raise refused

    async def _stored_already(self, table: str, key: str, value: str, nonce: str | None) -> bool:
        """Whether a refused insert's row is there with our nonce: PostgreSQL's connection dropped
        after the COMMIT went through, and the store tried again (``PostgresDatabase._patiently``)."""
        if not nonce:
            return False
        rows = await self.database.fetch(f"SELECT nonce FROM {table} WHERE {key} = ?", (value,))
        return bool(rows) and rows[0][0] == nonce

    async def delete_submission(self, nonce: str, *, refund: str = "", now: float | None = None) -> None:
        """Forget a submission; ``refund`` (why) gives back its hold, unless it became a job."""
        statements: list[tuple[str, Sequence[tuple[Any, ...]]]] = [
            ("DELETE FROM submissions WHERE nonce = ?", [(nonce,)])
        ]
        if refund:
            statements.append(ledger.refund_unused(nonce, refund, time.time() if now is None else now))
        await self.database.run(statements)

    async def submissions(self, *, before: float) -> list[Submission]:
        where, params = self._shard_filter(self._shards)  # a process recovers its own guilds' only
        rows = await self.database.fetch(
            f"SELECT * FROM submissions WHERE created_at < ?{where} ORDER BY created_at", (before, *params)
        )
        return [Submission(**dict(row)) for row in rows]

    async def update_job(self, job: Job, fields: Iterable[str]) -> None:
        """Write only ``fields`` of ``job`` (plus its display signature and ``updated_at``): the tracker
        and the Discord delivery update one job concurrently without overwriting each other's columns."""
        await self.update_jobs([(job, fields)])

    async def update_jobs(self, updates: Sequence[tuple[Job, Iterable[str]]]) -> None:
        """Several field-level updates in one transaction (one commit for a whole tick).

        Consecutive updates of the same columns go to SQLite as one ``executemany``, and the
        whole transaction runs in one step on SQLite's thread (see ``SqliteDatabase.run``):
        a tick's 1,000 updates cost one hand-over to that thread, not 1,001. The order of the
        updates is kept, so of two updates of one job the later still wins.
        """
        batches: list[tuple[str, list[tuple[Any, ...]]]] = []
        finished: list[Job] = []
        updates = [(job, list(fields)) for job, fields in updates]  # fields may be a one-pass iterable
        for job, fields in updates:
            unknown = set(fields) - UPDATABLE
            if unknown:
                raise ValueError(f"not updatable: {sorted(unknown)}")
            names = tuple(dict.fromkeys(fields)) + tuple(n for n in ("display", "updated_at") if n not in fields)
            sql = update_sql(names)
            values = (*[COLUMN_OF[name](job) for name in names], job.task_id)
            if batches and batches[-1][0] == sql:
                batches[-1][1].append(values)
            else:
                batches.append((sql, [values]))
            if "finished_at" in fields and job.nonce:
                finished.append(job)
        # A job's settle or refund is written with its final state, in one transaction: there is
        # no moment, and no crash, between the two.
        batches += ledger.end_statements(finished)
        batches += job_events.statements(updates)

        self._check_open()  # raises at once when the store is not open
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((batches, done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_queued(), name="mjbot-store-commit")
        await done

    # --- reads ---------------------------------------------------------------------------------

    async def get_job(self, task_id: str) -> Job | None:
        """One job by its task id. Calls made together (every write of a tick starts with one)
        share one read: one hand-over to the connection's thread for all of them."""
        self._check_open()  # raises at once when the store is not open
        found: asyncio.Future[Job | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(task_id, []).append(found)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_wanted(), name="mjbot-store-read")
        return await found

    async def _read_wanted(self) -> None:
        wanted: dict[str, list[asyncio.Future[Job | None]]] = {}
        try:
            while self._wanted:
                wanted, self._wanted = self._wanted, {}
                ids = list(wanted)
                try:
                    jobs = {
                        job.task_id: job
                        for start in range(0, len(ids), _IDS_PER_READ)
                        for job in await self._select(
                            f"WHERE task_id IN ({', '.join('?' for _ in ids[start : start + _IDS_PER_READ])})",
                            tuple(ids[start : start + _IDS_PER_READ]),
                        )
                    }
                except Exception as exc:  # noqa: BLE001 - handed to the callers that wait
                    for futures in wanted.values():
                        for found in futures:
                            settle(found, exc)
                    continue
                for task_id, futures in wanted.items():
                    for found in futures:
                        if not found.done():
                            found.set_result(jobs.get(task_id))
        except BaseException:  # cancelled (the loop is going away): so are the waiting callers
            for futures in (*wanted.values(), *self._wanted.values()):
                for found in futures:
                    found.cancel()
            self._wanted = {}
            raise

    def serve_shards(self, shard_count: int, shards: Iterable[int] | None) -> None:
        """From now on, :meth:`unfinished_jobs` and :meth:`undelivered_jobs` are those of guilds on
        ``shards`` (the ones this process serves; None: every guild)."""
        self._shards = None if shards is None else (shard_count, tuple(sorted(shards)))

    def _scope(self, shards: Iterable[int] | None) -> tuple[int, tuple[int, ...]] | None:
        if shards is None:
            return self._shards
        if self._shards is None:
            raise RuntimeError("serve_shards() first: the shard count is not known")
        return self._shards[0], tuple(sorted(shards))

    def _shard_filter(self, shards: tuple[int, tuple[int, ...]] | None) -> tuple[str, tuple[Any, ...]]:
        if shards is None:
            return "", ()
        count, ids = shards
        if not ids:
            return " AND 1 = 0", ()
        # Discord's rule: a guild is on shard (guild_id >> 22) % count; direct messages on shard 0.
        return f" AND (COALESCE(guild_id, 0) / 4194304) % ? IN ({', '.join('?' for _ in ids)})", (count, *ids)

    async def unfinished_jobs(self, *, shards: Iterable[int] | None = None) -> list[Job]:
        """Unfinished jobs of the guilds this process serves (or of ``shards``)."""
        where, params = self._shard_filter(self._scope(shards))
        return await self._select(f"WHERE finished_at IS NULL{where} ORDER BY created_at", params)

    async def undelivered_jobs(self, *, shards: Iterable[int] | None = None) -> list[Job]:
        """Jobs whose message does not show their latest state yet (e.g. after a crash)."""
        where, params = self._shard_filter(self._scope(shards))
        return await self._select(
            f"WHERE message_gone = 0 AND (shown IS NULL OR shown <> display){where} ORDER BY updated_at", params
        )

    async def child_of_button(self, parent_task_id: str, position: int) -> Job | None:
        jobs = await self._select("WHERE parent_task_id = ? AND parent_button = ?", (parent_task_id, position))
        return jobs[0] if jobs else None

    async def child_job(self, parent_task_id: str, action: Action, index: int) -> Job | None:
        """The job our own U/V/🔄 made on a task without server buttons (those are known by position)."""
        jobs = await self._select(
            "WHERE parent_task_id = ? AND action = ? AND parent_index = ? AND parent_button IS NULL",
            (parent_task_id, action.value, index),
        )
        return jobs[0] if jobs else None

    async def jobs_of(self, owner_id: int, guild_id: int | None, *, limit: int, offset: int = 0) -> list[Job]:
        return await self._select(
            "WHERE owner_id = ? AND guild_id IS ? ORDER BY created_at DESC, task_id DESC LIMIT ? OFFSET ?",
            (owner_id, guild_id, limit, offset),
        )

    async def job_for_message(self, message_id: int) -> Job | None:
        jobs = await self._select("WHERE message_id = ?", (message_id,))
        return jobs[0] if jobs else None

    async def count_unfinished(self, owner_id: int) -> int:
        return await self._count("owner_id = ? AND finished_at IS NULL", (owner_id,))

    async def count_created_since(self, owner_id: int, since: float) -> int:
        return await self._count("owner_id = ? AND created_at >= ?", (owner_id, since))

    async def _count(self, where: str, params: tuple[Any, ...]) -> int:
        rows = await self.database.fetch(f"SELECT COUNT(*) FROM jobs WHERE {where}", params)
        return int(rows[0][0])

    async def count_jobs(self) -> tuple[int, int]:
        """All jobs, and the unfinished ones."""
        rows = await self.database.fetch("SELECT COUNT(*), COUNT(*) - COUNT(finished_at) FROM jobs")
        return int(rows[0][0]), int(rows[0][1])

    # --- housekeeping --------------------------------------------------------------------------

    async def prune_finished(self, before: float, *, now: float | None = None) -> int:
        """Delete jobs that finished before ``before``, keeping their ids as tombstones; return how
        many. Unfinished jobs are never touched, however old."""
        counts = await self.database.run(
            [
                (
                    "INSERT INTO pruned (task_id, guild_id, pruned_at) "
                    "SELECT task_id, guild_id, CAST(? AS DOUBLE PRECISION) FROM jobs "
                    "WHERE finished_at IS NOT NULL AND finished_at < ? ON CONFLICT (task_id) DO NOTHING",
                    [(time.time() if now is None else now, before)],
                ),
                (job_events.PRUNE_SQL, [(before,)]),
                ("DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", [(before,)]),
            ]
        )
        return counts[-1]

    async def pruned_guild(self, task_id: str) -> tuple[bool, int | None]:
        """Whether ``task_id`` was pruned, and the guild it belonged to."""
        rows = await self.database.fetch("SELECT guild_id FROM pruned WHERE task_id = ?", (task_id,))
        return bool(rows), (rows[0][0] if rows else None)

    async def oldest_unfinished(self) -> Job | None:
        jobs = await self._select("WHERE finished_at IS NULL ORDER BY created_at LIMIT 1")
        return jobs[0] if jobs else None

    async def child_jobs(self, parent_task_id: str) -> list[Job]:
        return await self._select("WHERE parent_task_id = ? ORDER BY created_at, task_id", (parent_task_id,))

    async def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[Job]:
        """Jobs matching ``where``, with ``used_buttons`` filled: the rows and the buttons they need
        are read in one hand-over to the connection's thread."""
        self._check_open()
        rows, used_rows = await self.database.fetch_then(
            f"SELECT * FROM jobs {where}",
            params,
            lambda rows: [(_used_buttons_sql(len(chunk)), tuple(chunk)) for chunk in _used_button_chunks(rows)],
        )
        jobs = [job_of(row) for row in rows]
        if not used_rows:
            return jobs
        used: dict[str, set[tuple[str, int]]] = {}
        for parent, action, index, button in used_rows:
            # A server button is known by its position; our own U/V by action and index.
            mark = (BUTTON_MARK, int(button)) if button is not None else (action, int(index or 0))
            used.setdefault(parent, set()).add(mark)
        return [
            job.with_changes(used_buttons=frozenset(used[job.task_id])) if job.task_id in used else job for job in jobs
        ]


def insert_sql(table: str, row: dict[str, Any]) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"


_USED_BUTTONS_CHUNK = 500
_IDS_PER_READ = 500  # task ids in one SELECT … IN (…) (SQLite allows 999 parameters on old builds)


def _used_button_chunks(rows: Sequence[Any]) -> list[list[str]]:
    """The ids of finished grids among ``rows`` (jobs rows), in chunks: their children say which
    U/V buttons (or server buttons) were used."""
    grids = [
        row["task_id"]
        for row in rows
        if Status.parse(row["status"]) is Status.SUCCESS
        and (Action(row["action"]).makes_grid or buttons_of(row["buttons"]))
    ]
    return [grids[start : start + _USED_BUTTONS_CHUNK] for start in range(0, len(grids), _USED_BUTTONS_CHUNK)]


def _used_buttons_sql(count: int) -> str:
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT parent_task_id, action, parent_index, parent_button FROM jobs "
        f"WHERE parent_task_id IN ({marks}) "
        f"AND (parent_button IS NOT NULL OR action IN ('UPSCALE', 'VARIATION'))"
    )
