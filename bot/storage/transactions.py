"""Group commit: job updates that arrive together share one transaction, and each caller returns
once its own rows are committed."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.storage.database import Database, Statement


class Transactions:
    """Mixed into the store: ``_queued`` updates wait for the next group commit."""

    _queued: list[tuple[list[tuple[str, list[tuple[Any, ...]]]], asyncio.Future[None]]]

    database: Database  # the store's engine

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
                    await self.database.run(_merged([batches for batches, _ in group]))
                except Exception as exc:  # noqa: BLE001 - handed to the callers that wait
                    if len(group) == 1:
                        settle(group[0][1], exc)
                        continue
                    for batches, done in group:
                        try:
                            await self.database.run(_merged([batches]))
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


def _merged(updates: list[list[tuple[str, list[tuple[Any, ...]]]]]) -> list[Statement]:
    """The statements of several callers' updates, in order; neighbours with the same columns
    merged into one ``executemany``."""
    merged: list[tuple[str, list[tuple[Any, ...]]]] = []
    for batches in updates:
        for sql, rows in batches:
            if merged and merged[-1][0] == sql:
                merged[-1][1].extend(rows)
            else:
                merged.append((sql, list(rows)))
    return merged


def settle(done: asyncio.Future[Any], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
