"""SQLite persistence for jobs: WAL, a busy timeout, versioned migrations, one transaction at a time.

Everything the bot needs after a restart lives here: which tasks are unfinished, which Discord
message shows each one, and what that message showed last.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.errors import ConfigError
from bot.core.models import BUTTON_MARK, Action, Job, Status, Submission
from bot.storage.schema import COLUMN_OF, MIGRATIONS, UPDATABLE, buttons_of, job_of, row_of, update_sql
from bot.storage.transactions import Transactions, settle

log = logging.getLogger(__name__)


class Store(Transactions):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        # Job updates waiting for the next group commit, and the task committing them.
        self._queued: list[tuple[list[tuple[str, list[tuple[Any, ...]]]], asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None
        # get_job calls waiting for the next shared read, by task id, and the task reading them.
        self._wanted: dict[str, list[asyncio.Future[Job | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = aiosqlite.connect(self.path)
        # aiosqlite runs the connection in a non-daemon thread: one left open by a crash would keep
        # the process from exiting. (Older aiosqlite is the thread; newer keeps it in _thread.)
        worker = getattr(connection, "_thread", connection)
        if isinstance(worker, threading.Thread):
            worker.daemon = True
        self._db = await connection
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._migrate()

    async def close(self) -> None:
        pending = {task for task in (self._committing, self._reading) if task is not None}
        if pending:
            await asyncio.wait(pending)  # updates and reads already asked for are done first
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cursor:
            (version,) = await cursor.fetchone()
        if version > len(MIGRATIONS):
            # Written by a newer mjbot: this code would misread it, and could damage it by writing.
            await self.close()
            raise ConfigError(
                f"the database {self.path} has schema version {version}, newer than this "
                f"mjbot knows ({len(MIGRATIONS)}): run the newer mjbot, or restore a backup "
                f"made by this version"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("migrating database %s to version %d", self.path, target)
            # executescript commits first; the version bump lands in the same script.
            await self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={target};\nCOMMIT;")

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cursor:
            (version,) = await cursor.fetchone()
        return int(version)

    async def meta_value(self, key: str, default: Callable[[], str]) -> str:
        """This install's value for ``key``, created with ``default()`` the first time."""
        await self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default()))
        await self.db.commit()
        async with self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor:
            (value,) = await cursor.fetchone()
        return str(value)

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        await self.db.commit()

    # --- writes --------------------------------------------------------------------------------

    async def insert_job(self, job: Job) -> None:
        """Store a new job; in the same transaction, its submission (if any) is done with."""
        row = row_of(job)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)

        def insert(connection: sqlite3.Connection) -> None:
            connection.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", tuple(row.values()))
            if job.nonce:
                connection.execute("DELETE FROM submissions WHERE nonce = ?", (job.nonce,))

        await self._transaction(insert)

    async def insert_submission(self, submission: Submission) -> None:
        """Record an intent to submit, before the proxy is asked. Raises ``sqlite3.IntegrityError``
        when the same button of the same grid already has one."""
        row = asdict(submission)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        await self._transaction(
            lambda connection: connection.execute(
                f"INSERT INTO submissions ({columns}) VALUES ({marks})", tuple(row.values())
            )
        )

    async def delete_submission(self, nonce: str) -> None:
        await self._transaction(
            lambda connection: connection.execute("DELETE FROM submissions WHERE nonce = ?", (nonce,))
        )

    async def submissions(self, *, before: float) -> list[Submission]:
        async with self.db.execute(
            "SELECT * FROM submissions WHERE created_at < ? ORDER BY created_at", (before,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [Submission(**dict(row)) for row in rows]

    async def update_job(self, job: Job, fields: Iterable[str]) -> None:
        """Write only ``fields`` of ``job`` (plus its display signature and ``updated_at``).

        Field-level writes let the tracker and the Discord delivery update one job concurrently
        without either overwriting the other's columns.
        """
        await self.update_jobs([(job, fields)])

    async def update_jobs(self, updates: Sequence[tuple[Job, Iterable[str]]]) -> None:
        """Several field-level updates in one transaction (one commit for a whole tick).

        Consecutive updates of the same columns go to SQLite as one ``executemany``, and the
        whole transaction runs in one step on the connection's thread (see :meth:`_transaction`):
        a tick's 1,000 updates cost one hand-over to that thread, not 1,001. The order of the
        updates is kept, so of two updates of one job the later still wins.
        """
        batches: list[tuple[str, list[tuple[Any, ...]]]] = []
        for job, fields in updates:
            fields = list(fields)
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

        _ = self.db  # raises at once when the store is not open
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((batches, done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_queued(), name="mjbot-store-commit")
        await done

    # --- reads ---------------------------------------------------------------------------------

    async def get_job(self, task_id: str) -> Job | None:
        """One job by its task id. Calls made together (every write of a tick starts with one)
        share one read: one hand-over to the connection's thread for all of them."""
        _ = self.db  # raises at once when the store is not open
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

    async def unfinished_jobs(self) -> list[Job]:
        return await self._select("WHERE finished_at IS NULL ORDER BY created_at")

    async def undelivered_jobs(self) -> list[Job]:
        """Jobs whose message does not show their latest state yet (e.g. after a crash)."""
        return await self._select("WHERE message_gone = 0 AND (shown IS NULL OR shown <> display) ORDER BY updated_at")

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
            "WHERE owner_id = ? AND guild_id IS ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
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
        async with self.db.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params) as cursor:
            (count,) = await cursor.fetchone()
        return int(count)

    async def count_jobs(self) -> tuple[int, int]:
        """All jobs, and the unfinished ones."""
        async with self.db.execute("SELECT COUNT(*), COUNT(*) - COUNT(finished_at) FROM jobs") as cursor:
            (total, unfinished) = await cursor.fetchone()
        return int(total), int(unfinished)

    # --- housekeeping --------------------------------------------------------------------------

    async def prune_finished(self, before: float, *, now: float | None = None) -> int:
        """Delete jobs that finished before ``before``, keeping their ids as tombstones; return how
        many. Unfinished jobs are never touched, however old."""
        # Two single statements: another coroutine's commit on this shared connection between them
        # leaves only a tombstone next to its job for a moment, which no reader minds.
        try:
            await self.db.execute(
                "INSERT OR IGNORE INTO pruned (task_id, guild_id, pruned_at) "
                "SELECT task_id, guild_id, ? FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                (time.time() if now is None else now, before),
            )
            cursor = await self.db.execute(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,)
            )
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return cursor.rowcount

    async def pruned_guild(self, task_id: str) -> tuple[bool, int | None]:
        """Whether ``task_id`` was pruned, and the guild it belonged to."""
        async with self.db.execute("SELECT guild_id FROM pruned WHERE task_id = ?", (task_id,)) as cursor:
            row = await cursor.fetchone()
        return (row is not None), (row[0] if row is not None else None)

    async def oldest_unfinished(self) -> Job | None:
        jobs = await self._select("WHERE finished_at IS NULL ORDER BY created_at LIMIT 1")
        return jobs[0] if jobs else None

    async def child_jobs(self, parent_task_id: str) -> list[Job]:
        return await self._select("WHERE parent_task_id = ? ORDER BY created_at, rowid", (parent_task_id,))

    async def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[Job]:
        """Jobs matching ``where``, with ``used_buttons`` filled: the rows and the buttons they need
        are read in one hand-over to the connection's thread."""
        sql = f"SELECT * FROM jobs {where}"
        db = self.db
        run = getattr(db, "_execute", None)
        connection = getattr(db, "_connection", None)
        if run is None or not isinstance(connection, sqlite3.Connection):
            rows = list(await db.execute_fetchall(sql, params))
            used_rows = [
                row
                for chunk in _used_button_chunks(rows)
                for row in await db.execute_fetchall(_used_buttons_sql(len(chunk)), chunk)
            ]
        else:

            def read() -> tuple[list[Any], list[Any]]:
                rows = connection.execute(sql, params).fetchall()
                used_rows = [
                    row
                    for chunk in _used_button_chunks(rows)
                    for row in connection.execute(_used_buttons_sql(len(chunk)), chunk).fetchall()
                ]
                return rows, used_rows

            rows, used_rows = await run(read)
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
