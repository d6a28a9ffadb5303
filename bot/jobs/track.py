"""Tracking every unfinished job in a single loop: poll the proxy (or confirm its pushes), store what
changed, then have it delivered. Also recovers submissions a crash or a timeout cut off before the
proxy's answer was stored, fails jobs past their deadline, and jobs whose task the proxy forgot.

Order of work for every change: the proxy's answer is written to SQLite first, then the view is
asked to show it; a crash in between is repaired at start-up because SQLite knows which jobs show a
stale state (``display`` differs from ``shown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

from bot.core.background import wait_event
from bot.core.config import Settings
from bot.core.errors import ProxyEndpointMissing, ProxyError
from bot.core.events import JobEvents
from bot.core.models import Display, Job, ProxyTask, Status, local_reason
from bot.core.text import duration_text
from bot.jobs.changes import changes_of
from bot.jobs.deliver import Delivery
from bot.jobs.recover import Recovery
from bot.proxy.client import ProxyClient
from bot.storage import Store

log = logging.getLogger(__name__)

LIST_BATCH_SIZE = 1000  # ids per list-by-condition request
FETCH_CONCURRENCY = 8  # per-task fetches at once when the server has no list-by-condition
VANISHED_AFTER_MISSES = 3  # ticks in a row the proxy does not know a task before it counts as lost
MAX_BACKOFF_S = 60.0
PUSHED_POLL_FACTOR = 10  # tasks that get pushes are polled this many times less often


class Tracker:
    """Owns the unfinished jobs (by task id) and everything about asking the proxy for them: the
    loop, missed answers, pushed tasks, when each was last polled; and the recovery of submissions
    cut off by a crash, whose jobs it adopts."""

    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        delivery: Delivery,
        *,
        clock: Callable[[], float],
        events: JobEvents,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.delivery = delivery
        # Told of every answer's tasks (the service learns what the server can do from them).
        self.on_answer: Callable[[Sequence[ProxyTask]], None] = lambda tasks: None
        self.events = events
        self._clock = clock
        self._tracked: dict[str, Job] = {}  # unfinished jobs, by task id
        self._misses: dict[str, int] = {}
        self._pushed: set[str] = set()  # tasks the proxy pushes updates for: polled less often
        self._push_signals: set[str] = set()  # pushed tasks waiting for their confirming request
        self._confirming: asyncio.Task[None] | None = None
        self._last_polled: dict[str, float] = {}
        self._list_supported = True
        self.recovery = Recovery(settings, proxy, store, clock=clock)  # submissions cut off by a crash
        self._loop: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._ticked = asyncio.Condition()
        self.ticks = 0

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume from SQLite: track unfinished jobs again and repair messages left stale."""
        self.recovery.started()
        for job in await self.store.unfinished_jobs():
            self._tracked[job.task_id] = job
        pending = await self.store.undelivered_jobs()
        log.info("resuming %d unfinished jobs, %d messages to bring up to date", len(self._tracked), len(pending))
        for job in pending:
            self.delivery.schedule(job)
        self._stopping.clear()
        self._loop = asyncio.create_task(self._track_forever(), name="mjbot-tracker")

    async def stop(self, grace_s: float) -> None:
        self._stopping.set()
        if self._loop is not None:
            # Let a tick under way finish its writes; the loop ends as soon as it sees _stopping.
            done, _ = await asyncio.wait({self._loop}, timeout=grace_s)
            if not done:
                self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._confirming is not None:
            self._confirming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._confirming

    # --- what the other parts tell the tracker -------------------------------------------------

    @property
    def tracked_ids(self) -> list[str]:
        return list(self._tracked)

    def tracked(self, task_id: str) -> Job | None:
        return self._tracked.get(task_id)

    def follow(self, job: Job) -> None:
        """Track a job from now on (it was just stored)."""
        self._tracked[job.task_id] = job

    def submission_unconfirmed(self) -> None:
        """A submit's answer was lost: look for its task on the next ticks."""
        self.recovery.submission_unconfirmed()

    def shown(self, task_id: str, signature: str, message_id: int) -> None:
        """A job's message now shows ``signature`` (the delivery wrote it)."""
        if task_id in self._tracked:
            self._tracked[task_id] = self._tracked[task_id].with_changes(shown=signature, message_id=message_id)

    # --- the loop ------------------------------------------------------------------------------

    async def _track_forever(self) -> None:
        failures = 0
        interval = self.settings.tracking.poll_interval_s
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                await self.tick()
                failures = 0
                # A fixed rate: a result waits at most one interval, however long the tick took.
                delay = max(0.0, interval - (loop.time() - started))
            except ProxyError as exc:
                self.events.proxy_answered(exc)
                failures += 1
                # Back off while the proxy is in trouble; jitter keeps restarts from aligning.
                delay = min(interval * 2**failures, MAX_BACKOFF_S) * random.uniform(0.8, 1.2)
                log.warning(
                    "tracking %d tasks failed (%s: %s); retrying in %.1fs",
                    len(self._tracked),
                    type(exc).__name__,
                    exc,
                    delay,
                )
            except Exception:
                log.exception("tracker tick crashed; continuing")
                delay = interval
            await wait_event(self._stopping, delay)

    async def tick(self) -> None:
        """One pass over every unfinished job: ask the proxy, store changes, show them."""
        started = time.perf_counter()
        try:
            if self.recovery.pending:
                try:
                    await self._adopt_recovered()
                except ProxyError as exc:  # not a reason to stop tracking the others
                    log.warning("checking interrupted submissions failed (%s: %s); will retry", type(exc).__name__, exc)
            await self._expire_overdue()
            ids = self._due_for_poll()
            seen: set[str] = set()
            # A batch at a time, each applied before the next is asked for: the loop is never held
            # for more than one batch's work, however many jobs are tracked.
            for start in range(0, len(ids), LIST_BATCH_SIZE):
                tasks = await self._poll(ids[start : start + LIST_BATCH_SIZE])
                self.events.proxy_answered(None)
                seen.update(task.id for task in tasks)
                self._answered(tasks)
                await self.apply_all(tasks)
            missing = [task_id for task_id in ids if task_id not in seen and task_id in self._tracked]
            if missing:
                await self._recheck_missing(missing)
            self.delivery.retry_failed()
        finally:
            self.events.tracker_ticked(time.perf_counter() - started, len(self._tracked))
            async with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()

    async def wait_ticks(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` more ticks have finished (for tests and tools)."""
        async with self._ticked:
            target = self.ticks + count
            await asyncio.wait_for(self._ticked.wait_for(lambda: self.ticks >= target), timeout)

    def _due_for_poll(self) -> list[str]:
        """Every tracked task, except those that get pushes and were polled recently: for them
        polling is only the safety net for a lost delivery."""
        now = self._clock()
        slow = self.settings.tracking.poll_interval_s * PUSHED_POLL_FACTOR
        due = [
            task_id
            for task_id in self._tracked
            if task_id not in self._pushed or now - self._last_polled.get(task_id, 0.0) >= slow
        ]
        for task_id in due:
            self._last_polled[task_id] = now
        return due

    async def _adopt_recovered(self) -> None:
        """Track the jobs of submissions a crash or a timeout cut off, and show them."""
        async with contextlib.aclosing(self.recovery.recovered()) as found:
            async for job, task in found:
                self._tracked[job.task_id] = job
                await self.apply_all([task])
                self.delivery.schedule(await self.store.get_job(job.task_id) or job)
                if job.parent_task_id:
                    await self.delivery.refresh_used_buttons(job.parent_task_id)

    # --- pushes --------------------------------------------------------------------------------

    def signal_push(self, task_id: str) -> None:
        """The proxy pushed a change of ``task_id``: look now. A push is only a signal, because
        anyone who can call the proxy can read the push URL from a task's ``properties.notifyHook``
        and forge one; the state shown comes from an authenticated request. Pushes arriving
        together are confirmed with one request."""
        if task_id not in self._tracked:
            log.debug("push for task %s, which is not tracked (finished or not ours): ignored", task_id)
            return
        self._push_signals.add(task_id)
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.create_task(self._confirm_pushes(), name="mjbot-push-confirm")

    async def _confirm_pushes(self) -> None:
        while self._push_signals:
            await asyncio.sleep(0)  # deliveries already arrived join this batch
            ids, self._push_signals = [i for i in self._push_signals if i in self._tracked], set()
            if not ids:
                continue
            try:
                tasks = await self._poll(ids)
            except ProxyError as exc:  # the tracker's next poll will see the change
                log.warning(
                    "confirming pushes of %d tasks failed (%s: %s); polling will catch up",
                    len(ids),
                    type(exc).__name__,
                    exc,
                )
                continue
            now = self._clock()
            for task in tasks:
                self._pushed.add(task.id)
                self._last_polled[task.id] = now
            self._answered(tasks)
            await self.apply_all(tasks)

    # --- asking the proxy ----------------------------------------------------------------------

    def _answered(self, tasks: Sequence[ProxyTask]) -> None:
        """The proxy answered for these tasks: they are not missing, and a finished one's image is
        fetched now, not after every write queued before its message."""
        self.on_answer(tasks)
        for task in tasks:
            self._misses.pop(task.id, None)
            job = self._tracked.get(task.id)
            if job is not None and task.status is Status.SUCCESS and (task.image_url or task.videos):
                self.delivery.prefetch_image(job.with_changes(image_url=task.image_url, videos=task.videos))

    async def _poll(self, ids: Sequence[str]) -> list[ProxyTask]:
        if self._list_supported:
            try:
                tasks: list[ProxyTask] = []
                for start in range(0, len(ids), LIST_BATCH_SIZE):
                    tasks += await self.proxy.list_tasks(ids[start : start + LIST_BATCH_SIZE])
                return tasks
            except ProxyEndpointMissing:
                log.warning("proxy has no list-by-condition; falling back to one fetch per task")
                self._list_supported = False
        return await self._fetch_each(ids)

    async def _fetch_each(self, ids: Sequence[str]) -> list[ProxyTask]:
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(task_id: str) -> ProxyTask | None:
            async with limit:
                return await self.proxy.fetch_task(task_id)

        results = await asyncio.gather(*(fetch(task_id) for task_id in ids))
        return [task for task in results if task is not None]

    async def _recheck_missing(self, missing: list[str]) -> None:
        """A task absent from the list may be one the server forgot: confirm by fetching it."""
        found = await self._fetch_each(missing) if self._list_supported else []
        for task in found:
            if task.id in self._tracked:
                self._misses.pop(task.id, None)
                await self.apply_all([task])
        for task_id in set(missing) - {task.id for task in found}:
            misses = self._misses.get(task_id, 0) + 1
            self._misses[task_id] = misses
            if misses >= VANISHED_AFTER_MISSES and task_id in self._tracked:
                log.warning("task %s: the proxy no longer knows it; marking it failed", task_id)
                await self._finish_locally(self._tracked[task_id], local_reason("lost"))

    async def _expire_overdue(self) -> None:
        deadline = self.settings.tracking.deadline_s
        now = self._clock()
        for job in list(self._tracked.values()):
            if now - job.created_at > deadline:
                log.warning("task %s: not finished after %ss; marking it failed", job.task_id, deadline)
                await self._finish_locally(job, local_reason("deadline", duration=duration_text(deadline)))

    async def _finish_locally(self, job: Job, reason: str) -> None:
        await self.save(job, status=Status.FAILURE, fail_reason=reason, progress=None)

    # --- recording changes ---------------------------------------------------------------------

    async def apply_all(self, tasks: Sequence[ProxyTask]) -> None:
        """Record what the proxy says about tracked jobs, in one transaction, then show what
        changed. Idempotent and order-proof: pushes arrive twice or out of order, and a gateway may
        answer a poll with stale data, so an update older than what we know changes nothing."""
        saves = []
        for task in tasks:
            job = self._tracked.get(task.id)  # None: finished meanwhile (a push and a poll raced)
            changes = changes_of(job, task) if job is not None else None
            if changes:
                saves.append(self._before_save(job, changes))
        if saves:
            await self.store.update_jobs([(updated, changes) for _, updated, changes in saves])
        for job, updated, changes in saves:
            self._after_save(job, updated, changes)

    async def save(self, job: Job, **changes: object) -> None:
        job, updated, changes = self._before_save(job, changes)
        await self.store.update_job(updated, changes)
        self._after_save(job, updated, changes)

    def _before_save(self, job: Job, changes: dict[str, object]) -> tuple[Job, Job, dict[str, object]]:
        """The job with ``changes``; tracking bookkeeping happens now, before the write awaits."""
        now = self._clock()
        status = changes.get("status", job.status)
        if isinstance(status, Status) and status.finished and job.finished_at is None:
            changes["finished_at"] = now
        updated = job.with_changes(updated_at=now, **changes)
        if updated.finished:
            self._tracked.pop(job.task_id, None)
            self._misses.pop(job.task_id, None)
            self._pushed.discard(job.task_id)
            self._last_polled.pop(job.task_id, None)
            log.info(
                "task %s finished: %s%s",
                job.task_id,
                updated.status.value,
                f" ({updated.fail_reason})" if updated.fail_reason else "",
            )
        elif job.task_id in self._tracked:
            self._tracked[job.task_id] = updated
        return job, updated, changes

    def _after_save(self, job: Job, updated: Job, changes: dict[str, object]) -> None:
        """Once SQLite has it: tell the observers, and show it if what the message shows changed."""
        if "finished_at" in changes:
            self.events.job_finished(updated)
        shown = Display.of(updated)
        if shown != Display.of(job):  # what the message shows changed
            self.delivery.schedule(updated, shown)
