"""Housekeeping: finished jobs older than ``[storage] keep_days`` are deleted from SQLite.

Their messages stay on Discord; ``/show`` then says the job is too old (the store keeps the ids).
The app prunes at start-up, then this runs every hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.core.background import BackgroundLoop
from bot.storage import Store

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
DAY_S = 86400.0


class Housekeeper:
    def __init__(
        self, store: Store, keep_days: float, *, every_s: float = PRUNE_EVERY_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keep_days = keep_days
        self.every_s = every_s
        self._clock = clock
        self._loop = BackgroundLoop("mjbot-housekeeping", self._run)

    async def prune(self) -> int:
        """Delete finished jobs past the retention now; how many went."""
        if not self.keep_days:
            return 0
        cutoff = self._clock() - self.keep_days * DAY_S
        pruned = await self.store.prune_finished(cutoff)
        if pruned:
            log.info("pruned %d jobs that finished more than %g days ago", pruned, self.keep_days)
        return pruned

    def start(self) -> None:
        if self.keep_days:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        # The app prunes once at start-up itself (before members can ask for old jobs).
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.prune()
            except Exception:  # a busy or broken database: try again next time
                log.exception("pruning old jobs failed")
