"""notifyHook deliveries: the pushes made on every task save, one ordered lane per task, and
the scripted ways they go wrong (drop, duplicate, pause, reorder)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .tasks import Delivery, SimTask


@dataclass
class _Push:
    """A delivery waiting to be sent; the payload is a snapshot taken at the save."""

    task_id: str
    url: str
    payload: dict[str, Any]
    drop: bool = False
    copies: int = 1


@dataclass
class _PushFault:
    left: int
    task_id: str | None  # None: any task


class _DeliveryMixin:
    """ProxySim's notifyHook pushes: scripting them and sending them."""

    # ---- scripting: notifyHook deliveries -------------------------------
    # Faults are decided when a task is saved, not when the POST goes out, so a test
    # knows exactly which change they hit even while earlier pushes are still queued.

    def drop_next_deliveries(self, n: int = 1, task_id: str | None = None) -> None:
        """Lose the next ``n`` deliveries (of ``task_id`` only, if given): recorded as "dropped"."""
        self._drops.append(_PushFault(_at_least_one(n), task_id))

    def duplicate_next_deliveries(self, n: int = 1, task_id: str | None = None) -> None:
        """Send each of the next ``n`` deliveries twice, back to back (a dropped one is not sent)."""
        self._duplicates.append(_PushFault(_at_least_one(n), task_id))

    def reorder_deliveries(self, on: bool = True) -> None:
        """While on, hold deliveries back; flush_deliveries() (or turning it off) sends
        them newest first, one after another, so e.g. 80% arrives after SUCCESS."""
        self._reorder = on
        if not on and not self._paused:
            self._release(reverse=True)

    def pause_deliveries(self) -> None:
        """Hold deliveries back until resume_deliveries() (or flush_deliveries())."""
        self._paused = True

    def resume_deliveries(self) -> None:
        """Send what was held, in the order it was saved, and stop holding."""
        self._paused = False
        if not self._reorder:
            self._release(reverse=False)

    async def flush_deliveries(self, timeout: float = 5.0) -> None:
        """Send the held deliveries now (newest first while reordering) and wait until
        every delivery under way is done. Holding goes on for later saves."""
        self._release(reverse=self._reorder)
        await self.wait_for(lambda: self._in_flight == 0, timeout)

    async def wait_deliveries(self, timeout: float = 5.0) -> None:
        """Wait until no delivery is in flight or held (TimeoutError otherwise)."""
        await self.wait_for(lambda: self._in_flight == 0 and not self._held, timeout)

    # ---- internals: notifyHook deliveries --------------------------------

    def _push(self, task: SimTask) -> None:
        """Queue a POST of the task as it is now to its hook (or the global one)."""
        url = task.notify_hook or self.notify_hook
        if not url:
            return
        push = _Push(task.id, url, self._upstream.task_json(task))  # the server holding it posts
        push.drop = _take_fault(self._drops, task.id)
        if not push.drop and _take_fault(self._duplicates, task.id):
            push.copies = 2
        if self._session is None:  # not started, or stopped: nothing can go out
            self._record(push, None, "dropped" if push.drop else "not running", time.time())
        elif self._runner is None:  # set_down(): off the network, so pushes are lost too
            self._record(push, None, "dropped" if push.drop else "server down", time.time())
        elif self._paused or self._reorder:
            self._held.append(push)
        else:
            self._enqueue(task.id, [push])

    def _release(self, *, reverse: bool) -> None:
        """Send what was held: newest first on one lane when reversing, else per task."""
        held, self._held = self._held, []
        if reverse:
            self._enqueue(object(), held[::-1])
        else:
            for push in held:
                self._enqueue(push.task_id, [push])

    def _enqueue(self, lane: Any, pushes: list[_Push]) -> None:
        if not pushes:
            return
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            worker = asyncio.create_task(self._drain(lane, queue), name="proxy-sim-notify")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.extend(pushes)
        self._in_flight += len(pushes)

    async def _drain(self, lane: Any, queue: deque[_Push]) -> None:
        try:
            while queue:
                await self._send(queue[0])
                queue.popleft()  # only now: stop() finds the one being sent still queued
                self._in_flight -= 1
                self._notify()
        finally:
            # No await between the empty check and this: _enqueue cannot slip in between.
            if self._lanes.get(lane) is queue:
                del self._lanes[lane]

    async def _send(self, push: _Push) -> None:
        """POST the push (once, or twice if duplicated); no retries, like the real servers."""
        if push.drop:
            self._record(push, None, "dropped", time.time())
            return
        body = json.dumps(push.payload, ensure_ascii=False).encode()
        for _ in range(push.copies):
            at = time.time()
            try:
                async with self._session.post(
                    push.url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                self._record(push, response.status, None, at)
            except Exception as exc:  # refused, timed out, bad URL: the delivery is lost
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._record(push, None, error, at)

    def _record(self, push: _Push, http_status: int | None, error: str | None, at: float) -> None:
        payload = push.payload
        self.deliveries.append(
            Delivery(push.task_id, push.url, payload["status"], payload["progress"], http_status, error, at, payload)
        )

    async def _stop_deliveries(self) -> None:
        queues = list(self._lanes.values())  # workers remove their lane when cancelled
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        # What never went out is lost, as when a real server stops; say so in the record.
        for push in [p for queue in queues for p in queue] + self._held:
            self._record(push, None, "cancelled", time.time())
        self._lanes.clear()
        self._held = []
        self._in_flight = 0
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._notify()


def _at_least_one(n: int) -> int:
    if n < 1:
        raise ValueError("n must be at least 1")
    return n


def _take_fault(faults: list[_PushFault], task_id: str) -> bool:
    """Use up one scripted push fault that applies to this task, if any."""
    for fault in faults:
        if fault.task_id is None or fault.task_id == task_id:
            fault.left -= 1
            if fault.left == 0:
                faults.remove(fault)
            return True
    return False
