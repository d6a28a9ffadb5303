"""SQLite, the embedded default: one file, WAL, a busy timeout, one connection on aiosqlite's thread.

Each transaction runs as one step on that thread, so no other coroutine's statement lands in the
middle of it, and a rollback never takes another caller's writes with it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.database import Conflict, Statement, newer_schema

log = logging.getLogger(__name__)


class SqliteDatabase:
    engine = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.where = self.path
        self._db: aiosqlite.Connection | None = None
        # Interactive transactions span several awaits: batches wait for them to end.
        self._lock = asyncio.Lock()

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

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def _thread_call(self) -> tuple[Callable[..., Awaitable[Any]], sqlite3.Connection] | None:
        """aiosqlite's "run this on the connection's thread", when this version has it.

        aiosqlite has no public call for it; ``Connection._execute`` (the queue every one of its
        methods goes through) is used when it is there, and the public API statement by statement
        otherwise (slower: one hand-over per statement)."""
        db = self.db
        run = getattr(db, "_execute", None)
        connection = getattr(db, "_connection", None)
        if run is None or not isinstance(connection, sqlite3.Connection):
            return None
        return run, connection

    async def run(self, statements: Sequence[Statement]) -> list[int]:
        def write(connection: sqlite3.Connection) -> list[int]:
            counts = []
            try:
                for sql, rows in statements:
                    if len(rows) == 1:
                        counts.append(connection.execute(sql, rows[0]).rowcount)
                    else:
                        counts.append(connection.executemany(sql, rows).rowcount)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            return counts

        async with self._lock:
            thread = self._thread_call()
            if thread is not None:
                return await _conflicts(thread[0](write, thread[1]))
            return await _conflicts(self._run_stepwise(statements))

    async def _run_stepwise(self, statements: Sequence[Statement]) -> list[int]:
        counts = []
        try:
            for sql, rows in statements:
                cursor = await (self.db.execute(sql, rows[0]) if len(rows) == 1 else self.db.executemany(sql, rows))
                counts.append(cursor.rowcount)
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return counts

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(await self.db.execute_fetchall(sql, params))

    async def fetch_then(
        self,
        sql: str,
        params: tuple[Any, ...],
        then: Callable[[list[Any]], Sequence[tuple[str, tuple[Any, ...]]]],
    ) -> tuple[list[Any], list[Any]]:
        """Both reads in one hand-over to the connection's thread where aiosqlite allows it."""

        def read(connection: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            rows = connection.execute(sql, params).fetchall()
            more = [row for query, args in then(rows) for row in connection.execute(query, args).fetchall()]
            return rows, more

        thread = self._thread_call()
        if thread is not None:
            return await thread[0](read, thread[1])
        rows = await self.fetch(sql, params)
        return rows, [row for query, args in then(rows) for row in await self.fetch(query, args)]

    async def transact(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                result = await _conflicts(work(_SqliteTransaction(self.db)))
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()
            return result

    async def schema_version(self) -> int:
        rows = await self.fetch("PRAGMA user_version")
        return int(rows[0][0])

    async def migrate(self, migrations: Sequence[str]) -> None:
        version = await self.schema_version()
        if version > len(migrations):
            await self.close()
            raise newer_schema(self.where, version, len(migrations))
        for target, script in enumerate(migrations[version:], start=version + 1):
            log.info("migrating database %s to version %d", self.where, target)
            # executescript commits first; the version bump lands in the same script.
            await self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={target};\nCOMMIT;")

    async def tables(self) -> list[str]:
        rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [row[0] for row in rows]


class _SqliteTransaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        cursor = await self._db.execute(sql, params)
        return cursor.rowcount

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))

    async def lock(self, key: int) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the file's write lock."""


async def _conflicts(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(str(exc)) from exc
        raise
