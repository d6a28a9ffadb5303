"""One transaction at a time on the store's shared connection: each runs as one step on SQLite's
thread, so no other coroutine's statement lands in the middle of it and no rollback takes another
caller's writes with it; updates that arrive together share one commit (group commit)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite


class Transactions:
    """Mixed into the store: ``_queued`` updates wait for the next group commit."""

    _queued: list[tuple[list[tuple[str, list[tuple[Any, ...]]]], asyncio.Future[None]]]

    db: aiosqlite.Connection  # the store's open connection (a property there)

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
                        settle(group[0][1], exc)
                        continue
                    for batches, done in group:
                        try:
                            await self._transaction(_writer([batches]))
                        except Exception as one:  # noqa: BLE001 - handed to its caller
                            settle(done, one)
                        else:
                            settle(done, None)
                else:
                    for _, done in group:
                        settle(done, None)
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


def settle(done: asyncio.Future[Any], error: BaseException | None) -> None:
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
