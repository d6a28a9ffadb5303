"""A per-channel write budget: Discord lets a bot write about 5 messages per 5 s in one channel.

Writes are queued per channel and run one at a time within that budget, so the bot never waits on
(or provokes) a 429. Each queued write is keyed by job: queueing a job that is already waiting
keeps one entry, and the write reads the job's latest state only when it runs, so progress updates
coalesce into one edit. Urgent writes (new messages, final states) go before progress edits, and
each channel has its own queue, so a busy channel never delays another.

Progress edits are best-effort; the final is what the member waits for. So progress never spends
the last ``reserve`` writes of a window: they stay free for an urgent write, which then goes out at
once instead of waiting for the window to reopen.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.core.background import wait_event

log = logging.getLogger(__name__)

T = TypeVar("T")

URGENT, NORMAL = 0, 1


@dataclass(order=True)
class _Entry(Generic[T]):
    priority: int
    seq: int
    key: str = field(compare=False)
    done: asyncio.Future[T | None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _Channel(Generic[T]):
    def __init__(self) -> None:
        self.heap: list[_Entry[T]] = []
        self.waiting: dict[str, _Entry[T]] = {}
        self.recent: deque[float] = deque()  # when the last writes were made
        self.worker: asyncio.Task[None] | None = None
        self.writing = False  # a write is under way (as opposed to waiting for budget)
        self.wake = asyncio.Event()  # a write was queued: an urgent one may use the reserve now


class WriteScheduler(Generic[T]):
    """``run(key)`` performs one write for ``key`` and returns ``(result, wrote)``; only calls that
    really wrote count against the budget."""

    def __init__(
        self,
        run: Callable[[str], Awaitable[tuple[T | None, bool]]],
        *,
        limit: int = 5,
        per_s: float = 5.0,
        margin_s: float = 0.25,
        reserve: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self.limit = limit
        # Writes of each window kept for urgent ones; progress always keeps at least one.
        self.reserve = max(0, min(reserve, limit - 1))
        # A little slack on top of Discord's window: our clock and theirs do not tick together.
        self.per_s = per_s + margin_s
        self._clock = clock
        self._channels: dict[Hashable, _Channel[T]] = {}
        self._seq = itertools.count()
        self._closed = False

    def submit(self, channel_id: Hashable, key: str, *, urgent: bool = False) -> asyncio.Future[T | None]:
        """Queue a write for ``key`` in lane ``channel_id`` (a channel, or any other budget such as
        an interaction's webhook); the future resolves with its result."""
        channel = self._channels.setdefault(channel_id, _Channel())
        priority = URGENT if urgent else NORMAL
        queued = channel.waiting.get(key)
        if queued is not None:
            if queued.priority <= priority:
                return queued.done
            queued.cancelled = True  # re-queued with the higher priority, sharing its future
            entry = _Entry(priority, next(self._seq), key, queued.done)
        else:
            entry = _Entry(priority, next(self._seq), key, asyncio.get_running_loop().create_future())
        channel.waiting[key] = entry
        heapq.heappush(channel.heap, entry)
        channel.wake.set()
        if not self._closed and (channel.worker is None or channel.worker.done()):
            channel.worker = asyncio.create_task(self._drain(channel_id, channel), name=f"mjbot-writes-{channel_id}")
        return entry.done

    def queued(self, channel_id: Hashable | None = None) -> int:
        channels = self._channels.values() if channel_id is None else [self._channels.get(channel_id, _Channel())]
        return sum(len(channel.waiting) for channel in channels)

    async def _drain(self, channel_id: Hashable, channel: _Channel[T]) -> None:
        while channel.heap:
            await self._wait_for_budget(channel)
            if not channel.heap:  # closed while waiting
                return
            entry = heapq.heappop(channel.heap)
            if entry.cancelled:
                continue
            del channel.waiting[entry.key]
            channel.writing = True
            try:
                result, wrote = await self._run(entry.key)
            except Exception as exc:  # the caller's bug; keep the channel's queue moving
                log.exception("write for %s in channel %s crashed", entry.key, channel_id)
                if not entry.done.done():
                    entry.done.set_exception(exc)
                continue
            finally:
                channel.writing = False
            if wrote:
                channel.recent.append(self._clock())
            if not entry.done.done():
                entry.done.set_result(result)

    async def _wait_for_budget(self, channel: _Channel[T]) -> None:
        """Until the write at the head of the queue may go: any write while the window has room
        beyond the reserve, an urgent one also into the reserve."""
        while True:
            channel.wake.clear()
            now = self._clock()
            while channel.recent and now - channel.recent[0] >= self.per_s:
                channel.recent.popleft()
            while channel.heap and channel.heap[0].cancelled:
                heapq.heappop(channel.heap)
            if not channel.heap:
                return
            allowed = self.limit if channel.heap[0].priority == URGENT else self.limit - self.reserve
            if len(channel.recent) < allowed:
                return
            # The window frees enough room when the write that overfills it leaves; an urgent write
            # queued meanwhile may not need to wait that long.
            frees_at = channel.recent[len(channel.recent) - allowed] + self.per_s
            await wait_event(channel.wake, max(0.0, frees_at - now))

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop: let writes under way finish (within ``grace_s``), drop the ones still queued."""
        self._closed = True
        workers = [c.worker for c in self._channels.values() if c.worker is not None and not c.worker.done()]
        writing = [c.worker for c in self._channels.values() if c.writing and c.worker is not None]
        for channel in self._channels.values():
            for entry in channel.heap:
                if not entry.done.done():
                    entry.done.cancel()
            channel.heap.clear()
            channel.waiting.clear()
            if not channel.writing and channel.worker is not None:
                channel.worker.cancel()  # only waiting for budget: nothing to finish
        if writing:
            await asyncio.wait(writing, timeout=grace_s)
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
