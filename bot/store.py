"""SQLite persistence for jobs: WAL, a busy timeout, and versioned migrations.

Everything the bot needs after a restart lives here: which tasks are unfinished, which Discord
message shows each one, and what that message showed last.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import ConfigError
from bot.models import BUTTON_MARK, Action, Display, Job, Status, Submission, TaskButton

log = logging.getLogger(__name__)

# Each entry upgrades the schema by one version; PRAGMA user_version records how far a file got.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE jobs (
        task_id        TEXT PRIMARY KEY,
        action         TEXT NOT NULL,
        prompt         TEXT NOT NULL,
        prompt_en      TEXT,
        owner_id       INTEGER NOT NULL,
        guild_id       INTEGER,
        channel_id     INTEGER NOT NULL,
        parent_task_id TEXT,
        parent_index   INTEGER,
        message_id     INTEGER,
        status         TEXT NOT NULL,
        progress       TEXT,
        queue_ahead    INTEGER,
        image_url      TEXT,
        fail_reason    TEXT,
        display        TEXT NOT NULL,   -- signature of what the message should show
        shown          TEXT,            -- signature of what it showed last (NULL: never posted)
        message_gone   INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        finished_at    REAL
    );
    CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE finished_at IS NULL;
    CREATE INDEX jobs_parent ON jobs (parent_task_id) WHERE parent_task_id IS NOT NULL;
    CREATE INDEX jobs_undelivered ON jobs (updated_at)
        WHERE message_gone = 0 AND (shown IS NULL OR shown <> display);
    """,
    # 2: crash safety. A submission is written before the proxy is asked (and found again through
    # its nonce, sent as the task's `state`, if the bot dies before storing the answer); a job
    # notes when its message started being posted (so a restart looks for it before posting again);
    # one job per button of a grid.
    """
    CREATE TABLE submissions (
        nonce          TEXT PRIMARY KEY,
        action         TEXT NOT NULL,
        prompt         TEXT NOT NULL,
        owner_id       INTEGER NOT NULL,
        guild_id       INTEGER,
        channel_id     INTEGER NOT NULL,
        parent_task_id TEXT,
        parent_index   INTEGER,
        created_at     REAL NOT NULL
    );
    CREATE UNIQUE INDEX submissions_one_per_button ON submissions (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL;
    ALTER TABLE jobs ADD COLUMN posting_at REAL;
    ALTER TABLE jobs ADD COLUMN nonce TEXT;
    CREATE UNIQUE INDEX jobs_one_per_button ON jobs (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL;
    CREATE INDEX jobs_owner ON jobs (owner_id, created_at);
    CREATE INDEX jobs_message ON jobs (message_id) WHERE message_id IS NOT NULL;
    """,
    # 3: values this install keeps for itself (the push receiver's secret token).
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: the server's own buttons on a task (trueai, new-api), and which of them made a job.
    """
    ALTER TABLE jobs ADD COLUMN buttons TEXT;          -- JSON list of {customId, label, emoji, style}
    ALTER TABLE jobs ADD COLUMN final_prompt TEXT;
    ALTER TABLE jobs ADD COLUMN parent_button INTEGER;
    CREATE UNIQUE INDEX jobs_one_per_server_button ON jobs (parent_task_id, parent_button)
        WHERE parent_button IS NOT NULL;
    ALTER TABLE submissions ADD COLUMN parent_button INTEGER;
    CREATE UNIQUE INDEX submissions_one_per_server_button ON submissions (parent_task_id, parent_button)
        WHERE parent_button IS NOT NULL;
    """,
    # 5: the language of the member who started a job: its public message speaks it.
    """
    ALTER TABLE jobs ADD COLUMN language TEXT;
    ALTER TABLE submissions ADD COLUMN language TEXT;
    """,
    # 6: housekeeping. Finished jobs past [storage] keep_days are deleted; their ids stay here so
    # /show can say "too old" rather than "unknown".
    """
    CREATE TABLE pruned (
        task_id   TEXT PRIMARY KEY,
        guild_id  INTEGER,
        pruned_at REAL NOT NULL
    );
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # 7: a server button is known by its position (its customId) alone. trueai's Upscale (Subtle) and
    # (Creative) both make UPSCALE 1, so one job per (action, index) applies only to jobs made
    # without a server button.
    """
    DROP INDEX jobs_one_per_button;
    CREATE UNIQUE INDEX jobs_one_per_button ON jobs (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL AND parent_button IS NULL;
    DROP INDEX submissions_one_per_button;
    CREATE UNIQUE INDEX submissions_one_per_button ON submissions (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL AND parent_button IS NULL;
    """,
]

def _same(value: Any) -> Any:
    return value


def _buttons_of(text: str | None) -> tuple[TaskButton, ...]:
    if not text:
        return ()
    return tuple(b for b in map(TaskButton.from_json, json.loads(text)) if b is not None)


# The jobs table, one entry per column: how a Job's field is written to it, and how it is read back
# (None: written only; "display" is derived from the job). The one list of the columns the code
# knows; the migrations above create them.
_JOB_COLUMNS: dict[str, tuple[Callable[[Job], Any], Callable[[Any], Any] | None]] = {
    "task_id": (lambda job: job.task_id, str),
    "action": (lambda job: job.action.value, Action),
    "prompt": (lambda job: job.prompt, _same),
    "prompt_en": (lambda job: job.prompt_en, _same),
    "owner_id": (lambda job: job.owner_id, _same),
    "guild_id": (lambda job: job.guild_id, _same),
    "channel_id": (lambda job: job.channel_id, _same),
    "parent_task_id": (lambda job: job.parent_task_id, _same),
    "parent_index": (lambda job: job.parent_index, _same),
    "message_id": (lambda job: job.message_id, _same),
    "status": (lambda job: job.status.value, Status.parse),
    "progress": (lambda job: job.progress, _same),
    "queue_ahead": (lambda job: job.queue_ahead, _same),
    "image_url": (lambda job: job.image_url, _same),
    "fail_reason": (lambda job: job.fail_reason, _same),
    "display": (lambda job: Display.of(job).signature(), None),
    "shown": (lambda job: job.shown, _same),
    "message_gone": (lambda job: int(job.message_gone), bool),
    "created_at": (lambda job: job.created_at, _same),
    "updated_at": (lambda job: job.updated_at or time.time(), _same),
    "finished_at": (lambda job: job.finished_at, _same),
    "posting_at": (lambda job: job.posting_at, _same),
    "nonce": (lambda job: job.nonce, _same),
    "buttons": (lambda job: (json.dumps([b.to_json() for b in job.buttons], ensure_ascii=False)
                             if job.buttons else None), _buttons_of),
    "final_prompt": (lambda job: job.final_prompt, _same),
    "parent_button": (lambda job: job.parent_button, _same),
    "language": (lambda job: job.language, _same),
}
# How each column is written from a Job (an update computes only the columns it writes), and read.
_COLUMN_OF: dict[str, Callable[[Job], Any]] = {name: write for name, (write, _) in _JOB_COLUMNS.items()}
_FIELD_OF: dict[str, Callable[[Any], Any]] = {name: read for name, (_, read) in _JOB_COLUMNS.items() if read}
_UPDATABLE = frozenset(_COLUMN_OF) - {"task_id", "created_at"}


class Store:
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
            raise ConfigError(f"the database {self.path} has schema version {version}, newer than this "
                              f"mjbot knows ({len(MIGRATIONS)}): run the newer mjbot, or restore a backup "
                              f"made by this version")
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
        row = _row_of(job)
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
        await self._transaction(lambda connection: connection.execute(
            f"INSERT INTO submissions ({columns}) VALUES ({marks})", tuple(row.values())))

    async def delete_submission(self, nonce: str) -> None:
        await self._transaction(lambda connection: connection.execute(
            "DELETE FROM submissions WHERE nonce = ?", (nonce,)))

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
            unknown = set(fields) - _UPDATABLE
            if unknown:
                raise ValueError(f"not updatable: {sorted(unknown)}")
            names = tuple(dict.fromkeys(fields)) + tuple(n for n in ("display", "updated_at") if n not in fields)
            sql = _update_sql(names)
            values = (*[_COLUMN_OF[name](job) for name in names], job.task_id)
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

    async def _commit_queued(self) -> None:
        """Group commit: every update asked for while the previous transaction was under way (or
        in the same turn of the event loop) goes into the next one. With a write per Discord edit
        and edits ending close together, 1,000 updates took about 1,000 commits; they now take a
        few dozen, and each caller still returns only once its rows are committed. Should a group
        fail, its updates are tried again one caller at a time, so one bad update fails only its
        own caller, as before."""
        group: list[tuple[list[tuple[str, list[tuple[Any, ...]]]], asyncio.Future[None]]] = []
        try:
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    await self._transaction(_writer([batches for batches, _ in group]))
                except Exception as exc:  # noqa: BLE001 - handed to the callers that wait
                    if len(group) == 1:
                        _settle(group[0][1], exc)
                        continue
                    for batches, done in group:
                        try:
                            await self._transaction(_writer([batches]))
                        except Exception as one:  # noqa: BLE001 - handed to its caller
                            _settle(done, one)
                        else:
                            _settle(done, None)
                else:
                    for _, done in group:
                        _settle(done, None)
        except BaseException:  # cancelled (the loop is going away): so are the waiting callers
            for _, done in group + self._queued:
                done.cancel()
            self._queued = []
            raise

    async def _transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work(connection)`` then commit, or roll back if it raises, as one step on the
        connection's thread: one hand-over to the thread instead of one per statement, and no other
        coroutine's statement runs in the middle of it.

        aiosqlite has no public call for "run this on the thread"; ``Connection._execute`` (the
        queue every one of its methods goes through) is used when it is there, and the statements
        are sent one by one through the public API otherwise."""
        db = self.db
        run = getattr(db, "_execute", None)
        connection = getattr(db, "_connection", None)
        if run is None or not isinstance(connection, sqlite3.Connection):
            return await self._transaction_stepwise(work)

        def in_thread() -> Any:
            try:
                result = work(connection)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            return result

        return await run(in_thread)

    async def _transaction_stepwise(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """:meth:`_transaction` through aiosqlite's public API: ``work`` runs against a stand-in
        that records its statements, which are then sent one by one."""
        recorder = _Recorder()
        result = work(recorder)  # type: ignore[arg-type]
        try:
            for method, sql, parameters in recorder.calls:
                await getattr(self.db, method)(sql, parameters)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return result

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
                    jobs = {job.task_id: job for start in range(0, len(ids), _IDS_PER_READ)
                            for job in await self._select(
                                f"WHERE task_id IN ({', '.join('?' for _ in ids[start:start + _IDS_PER_READ])})",
                                tuple(ids[start:start + _IDS_PER_READ]))}
                except Exception as exc:  # noqa: BLE001 - handed to the callers that wait
                    for futures in wanted.values():
                        for found in futures:
                            _settle(found, exc)
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
        return await self._select(
            "WHERE message_gone = 0 AND (shown IS NULL OR shown <> display) ORDER BY updated_at"
        )

    async def child_of_button(self, parent_task_id: str, position: int) -> Job | None:
        jobs = await self._select("WHERE parent_task_id = ? AND parent_button = ?", (parent_task_id, position))
        return jobs[0] if jobs else None

    async def child_job(self, parent_task_id: str, action: Action, index: int) -> Job | None:
        """The job our own U/V/🔄 made on a task without server buttons (those are known by position)."""
        jobs = await self._select("WHERE parent_task_id = ? AND action = ? AND parent_index = ? "
                                  "AND parent_button IS NULL", (parent_task_id, action.value, index))
        return jobs[0] if jobs else None

    async def jobs_of(self, owner_id: int, guild_id: int | None, *, limit: int, offset: int = 0) -> list[Job]:
        return await self._select("WHERE owner_id = ? AND guild_id IS ? ORDER BY created_at DESC, rowid DESC "
                                  "LIMIT ? OFFSET ?", (owner_id, guild_id, limit, offset))

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
                (time.time() if now is None else now, before))
            cursor = await self.db.execute(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,))
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
            used_rows = [row for chunk in _used_button_chunks(rows)
                         for row in await db.execute_fetchall(_used_buttons_sql(len(chunk)), chunk)]
        else:
            def read() -> tuple[list[Any], list[Any]]:
                rows = connection.execute(sql, params).fetchall()
                used_rows = [row for chunk in _used_button_chunks(rows)
                             for row in connection.execute(_used_buttons_sql(len(chunk)), chunk).fetchall()]
                return rows, used_rows

            rows, used_rows = await run(read)
        jobs = [_job_of(row) for row in rows]
        if not used_rows:
            return jobs
        used: dict[str, set[tuple[str, int]]] = {}
        for parent, action, index, button in used_rows:
            # A server button is known by its position; our own U/V by action and index.
            mark = (BUTTON_MARK, int(button)) if button is not None else (action, int(index or 0))
            used.setdefault(parent, set()).add(mark)
        return [
            job.with_changes(used_buttons=frozenset(used[job.task_id])) if job.task_id in used else job
            for job in jobs
        ]


_USED_BUTTONS_CHUNK = 500
_IDS_PER_READ = 500  # task ids in one SELECT … IN (…) (SQLite allows 999 parameters on old builds)


def _used_button_chunks(rows: Sequence[Any]) -> list[list[str]]:
    """The ids of finished grids among ``rows`` (jobs rows), in chunks: their children say which
    U/V buttons (or server buttons) were used."""
    grids = [row["task_id"] for row in rows
             if Status.parse(row["status"]) is Status.SUCCESS
             and (Action(row["action"]).makes_grid or _buttons_of(row["buttons"]))]
    return [grids[start:start + _USED_BUTTONS_CHUNK] for start in range(0, len(grids), _USED_BUTTONS_CHUNK)]


def _used_buttons_sql(count: int) -> str:
    marks = ", ".join("?" for _ in range(count))
    return (f"SELECT parent_task_id, action, parent_index, parent_button FROM jobs "
            f"WHERE parent_task_id IN ({marks}) "
            f"AND (parent_button IS NOT NULL OR action IN ('UPSCALE', 'VARIATION'))")


def _writer(updates: list[list[tuple[str, list[tuple[Any, ...]]]]]) -> Callable[[sqlite3.Connection], None]:
    """The statements of several callers' updates, in order; neighbours with the same columns
    merged into one ``executemany``."""
    merged: list[tuple[str, list[tuple[Any, ...]]]] = []
    for batches in updates:
        for sql, rows in batches:
            if merged and merged[-1][0] == sql:
                merged[-1][1].extend(rows)
            else:
                merged.append((sql, list(rows)))

    def write(connection: sqlite3.Connection) -> None:
        for sql, rows in merged:
            if len(rows) == 1:
                connection.execute(sql, rows[0])
            else:
                connection.executemany(sql, rows)

    return write


def _settle(done: asyncio.Future[Any], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class _Recorder:
    """Stands in for a ``sqlite3.Connection`` inside :meth:`Store._transaction_stepwise`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def execute(self, sql: str, parameters: Any = ()) -> None:
        self.calls.append(("execute", sql, parameters))

    def executemany(self, sql: str, parameters: Any) -> None:
        self.calls.append(("executemany", sql, list(parameters)))


@dataclass(frozen=True)
class BackupInfo:
    jobs: int
    schema_version: int
    size_bytes: int


def backup_database(source: str | Path, target: str | Path) -> BackupInfo:
    """Copy the live database at ``source`` to ``target`` with SQLite's online backup: a consistent
    snapshot even while the bot writes (WAL lets it go on meanwhile). The copy is a single
    self-contained file, checked before it replaces ``target``; a failed backup leaves ``target``
    as it was."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"no database at {str(source)!r} (storage.path)")
    if target.exists() and target.resolve() == source.resolve():
        raise ValueError("the backup must go to another file than the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # mode=rw: never create an empty database where the admin mistyped a path.
    live = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            live.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside the copy
            (check,) = copy.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy fails its integrity check: {check}")
            (version,) = copy.execute("PRAGMA user_version").fetchone()
            has_jobs = copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone()
            jobs = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if has_jobs else 0
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        live.close()
    os.replace(partial, target)
    return BackupInfo(jobs=int(jobs), schema_version=int(version), size_bytes=target.stat().st_size)


_UPDATE_SQL: dict[tuple[str, ...], str] = {}


def _update_sql(names: tuple[str, ...]) -> str:
    sql = _UPDATE_SQL.get(names)
    if sql is None:
        assignments = ", ".join(f"{name} = ?" for name in names)
        sql = _UPDATE_SQL[names] = f"UPDATE jobs SET {assignments} WHERE task_id = ?"
    return sql


def _row_of(job: Job) -> dict[str, Any]:
    return {name: column(job) for name, column in _COLUMN_OF.items()}


def _job_of(row: aiosqlite.Row) -> Job:
    return Job(**{name: read(row[name]) for name, read in _FIELD_OF.items()})
