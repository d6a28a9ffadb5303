"""The jobs service: submit tasks, track every unfinished one in a single loop, and push changes to a
view. No Discord here: the Discord layer implements :class:`JobView`, tests implement it in memory.

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
from typing import Protocol

from bot.config import Settings
from bot.errors import (
    DeliveryError,
    DeliveryForbidden,
    EmptyPrompt,
    JobNotFound,
    JobNotReady,
    MessageGone,
    ProxyEndpointMissing,
    ProxyError,
    UserInputError,
)
from bot.models import Action, Display, ImageFile, Job, Phase, ProxyTask, Status
from bot.proxy import ProxyClient
from bot.store import Store

log = logging.getLogger(__name__)

LIST_BATCH_SIZE = 1000  # ids per list-by-condition request
FETCH_CONCURRENCY = 8  # per-task fetches at once when the server has no list-by-condition
MAX_IMAGE_BYTES = 64 * 1024 * 1024
IMAGE_DOWNLOAD_ATTEMPTS = 3
VANISHED_AFTER_MISSES = 3  # ticks in a row the proxy does not know a task before it counts as lost
MAX_BACKOFF_S = 60.0
SHUTDOWN_GRACE_S = 10.0
MAX_DELIVERY_ATTEMPTS = 20  # one per tick; Discord trouble lasting longer than that is not passing


class JobView(Protocol):
    """What the service needs from a front end."""

    async def show(
        self, job: Job, display: Display, *, image: ImageFile | None, reply_to: int | None
    ) -> int:
        """Create (when ``job.message_id`` is None) or edit the job's message so that it shows
        ``display``; return the message id. ``image`` is the final image to attach, if any.

        Raises :class:`MessageGone` when the message or channel no longer exists,
        :class:`DeliveryForbidden` when the bot may not post there, :class:`DeliveryError` otherwise.
        """
        ...


class JobService:
    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.view: JobView | None = None
        self._clock = clock
        self._tracked: dict[str, Job] = {}  # unfinished jobs, by task id
        self._misses: dict[str, int] = {}
        self._image_failures: dict[str, int] = {}
        self._deliveries: dict[str, asyncio.Task[DeliveryError | None]] = {}
        self._stale: set[str] = set()  # jobs that changed while their delivery was running
        self._retry: set[str] = set()  # jobs whose last delivery failed; retried on the next tick
        self._delivery_failures: dict[str, int] = {}
        self._list_supported = True
        self._tracker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._ticked = asyncio.Condition()
        self.ticks = 0

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self, view: JobView) -> None:
        """Resume from SQLite: track unfinished jobs again and repair messages left stale."""
        self.view = view
        for job in await self.store.unfinished_jobs():
            self._tracked[job.task_id] = job
        pending = await self.store.undelivered_jobs()
        log.info("resuming %d unfinished jobs, %d messages to bring up to date",
                 len(self._tracked), len(pending))
        for job in pending:
            self._schedule_delivery(job.task_id)
        self._stopping.clear()
        self._tracker = asyncio.create_task(self._track_forever(), name="mjbot-tracker")

    async def stop(self) -> None:
        self._stopping.set()
        if self._tracker is not None:
            self._tracker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tracker
            self._tracker = None
        # Let Discord writes under way finish: cancelling a send half-way could post a message
        # whose id never reaches SQLite, and the next start would post it again.
        deliveries = list(self._deliveries.values())
        if deliveries:
            await asyncio.wait(deliveries, timeout=SHUTDOWN_GRACE_S)
        for task in deliveries:
            task.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)

    @property
    def tracked_ids(self) -> list[str]:
        return list(self._tracked)

    # --- submitting ----------------------------------------------------------------------------

    async def imagine(
        self,
        prompt: str,
        *,
        owner_id: int,
        channel_id: int,
        guild_id: int | None,
        image: ImageFile | None = None,
    ) -> Job:
        """Submit an imagine and post its message. Raises a ProxyError when the proxy refuses
        (nothing is stored or posted then), or a DeliveryError when the message could not be posted
        (the task is stored and tracked all the same)."""
        prompt = " ".join(prompt.split())
        if not prompt:
            raise EmptyPrompt("empty prompt")
        images = [image.as_data_url()] if image else []
        accepted = await self.proxy.submit_imagine(prompt, images)
        log.info("task %s submitted: imagine by user %s in guild %s channel %s",
                 accepted.task_id, owner_id, guild_id, channel_id)
        job = self._new_job(accepted.task_id, Action.IMAGINE, prompt, owner_id, channel_id, guild_id,
                            queue_ahead=accepted.queue_ahead)
        return await self._accept(job)

    async def change(self, parent_task_id: str, action: Action, index: int | None, *, user_id: int) -> Job:
        """Upscale, vary or reroll a finished grid: a new job that replies to the parent."""
        if action not in (Action.UPSCALE, Action.VARIATION, Action.REROLL):
            raise UserInputError(f"not a change action: {action}")
        if action is not Action.REROLL and index not in (1, 2, 3, 4):
            raise UserInputError(f"index {index} out of 1..4")
        parent = await self.store.get_job(parent_task_id)
        if parent is None:
            raise JobNotFound(f"no job {parent_task_id}", task_id=parent_task_id)
        if parent.status is not Status.SUCCESS or not parent.action.makes_grid:
            raise JobNotReady(f"job {parent_task_id} is {parent.status.value}", task_id=parent_task_id)
        accepted = await self.proxy.submit_change(parent_task_id, action, index)
        log.info("task %s submitted: %s %s of %s by user %s in channel %s", accepted.task_id,
                 action.value, index, parent_task_id, user_id, parent.channel_id)
        job = self._new_job(
            accepted.task_id, action, parent.prompt, user_id, parent.channel_id, parent.guild_id,
            queue_ahead=accepted.queue_ahead, parent_task_id=parent_task_id,
            parent_index=index if action is not Action.REROLL else None,
        )
        job = await self._accept(job)
        if action in (Action.UPSCALE, Action.VARIATION):
            # The grid's button is now "used": bring the grid's message up to date.
            refreshed = await self.store.get_job(parent_task_id)
            if refreshed is not None:
                await self.store.update_job(refreshed, ())
                self._schedule_delivery(parent_task_id)
        return job

    def _new_job(self, task_id: str, action: Action, prompt: str, owner_id: int, channel_id: int,
                 guild_id: int | None, **extra: object) -> Job:
        now = self._clock()
        return Job(task_id=task_id, action=action, prompt=prompt, owner_id=owner_id,
                   channel_id=channel_id, guild_id=guild_id, status=Status.SUBMITTED,
                   created_at=now, updated_at=now, **extra)  # type: ignore[arg-type]

    async def _accept(self, job: Job) -> Job:
        """Store an accepted task before anyone hears of it, track it, and post its message."""
        await self.store.insert_job(job)
        self._tracked[job.task_id] = job
        problem = await self._schedule_delivery(job.task_id)
        if isinstance(problem, (DeliveryForbidden, MessageGone)):
            raise problem
        return await self.store.get_job(job.task_id) or job

    # --- tracking ------------------------------------------------------------------------------

    async def _track_forever(self) -> None:
        failures = 0
        interval = self.settings.tracking.poll_interval_s
        while not self._stopping.is_set():
            delay = interval
            try:
                await self.tick()
                failures = 0
            except ProxyError as exc:
                failures += 1
                # Back off while the proxy is in trouble; jitter keeps restarts from aligning.
                delay = min(interval * 2 ** failures, MAX_BACKOFF_S) * random.uniform(0.8, 1.2)
                log.warning("tracking %d tasks failed (%s: %s); retrying in %.1fs",
                            len(self._tracked), type(exc).__name__, exc, delay)
            except Exception:
                log.exception("tracker tick crashed; continuing")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def tick(self) -> None:
        """One pass over every unfinished job: ask the proxy, store changes, show them."""
        try:
            await self._expire_overdue()
            ids = list(self._tracked)
            if ids:
                tasks = await self._poll(ids)
                seen = {task.id for task in tasks}
                for task in tasks:
                    if task.id in self._tracked:
                        self._misses.pop(task.id, None)
                        await self._apply(self._tracked[task.id], task)
                missing = [task_id for task_id in ids if task_id not in seen and task_id in self._tracked]
                if missing:
                    await self._recheck_missing(missing)
            self._retry_failed_deliveries()
        finally:
            async with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()

    async def wait_ticks(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` more ticks have finished (for tests and tools)."""
        async with self._ticked:
            target = self.ticks + count
            await asyncio.wait_for(self._ticked.wait_for(lambda: self.ticks >= target), timeout)

    async def _poll(self, ids: Sequence[str]) -> list[ProxyTask]:
        if self._list_supported:
            try:
                tasks: list[ProxyTask] = []
                for start in range(0, len(ids), LIST_BATCH_SIZE):
                    tasks += await self.proxy.list_tasks(ids[start:start + LIST_BATCH_SIZE])
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
                await self._apply(self._tracked[task.id], task)
        for task_id in set(missing) - {task.id for task in found}:
            misses = self._misses.get(task_id, 0) + 1
            self._misses[task_id] = misses
            if misses >= VANISHED_AFTER_MISSES and task_id in self._tracked:
                log.warning("task %s: the proxy no longer knows it; marking it failed", task_id)
                await self._finish_locally(self._tracked[task_id],
                                           "the proxy lost this task (it no longer knows its id)")

    async def _expire_overdue(self) -> None:
        deadline = self.settings.tracking.deadline_s
        now = self._clock()
        for job in list(self._tracked.values()):
            if now - job.created_at > deadline:
                minutes = max(1, round(deadline / 60))
                log.warning("task %s: not finished after %ss; marking it failed", job.task_id, deadline)
                await self._finish_locally(
                    job, f"no result after {minutes} min; the proxy may be stuck, please try again")

    async def _finish_locally(self, job: Job, reason: str) -> None:
        await self._save(job, status=Status.FAILURE, fail_reason=reason, progress=None)

    async def _apply(self, job: Job, task: ProxyTask) -> None:
        """Record what the proxy says about ``job``; show it if what the message shows changed."""
        changes: dict[str, object] = {}
        status = task.status
        if status is not job.status and status is not Status.UNKNOWN:
            changes["status"] = status
        if task.progress != job.progress:
            changes["progress"] = task.progress
        if task.image_url != job.image_url and (task.image_url or status.finished):
            changes["image_url"] = task.image_url
        if task.prompt_en and task.prompt_en != job.prompt_en:
            changes["prompt_en"] = task.prompt_en
        if status in (Status.FAILURE, Status.CANCEL):
            reason = task.fail_reason or task.description or "the proxy gave no reason"
            if reason != job.fail_reason:
                changes["fail_reason"] = reason
        if job.queue_ahead and status not in (Status.NOT_START, Status.SUBMITTED, Status.UNKNOWN):
            changes["queue_ahead"] = None
        if changes:
            await self._save(job, **changes)

    async def _save(self, job: Job, **changes: object) -> None:
        now = self._clock()
        status = changes.get("status", job.status)
        if isinstance(status, Status) and status.finished and job.finished_at is None:
            changes["finished_at"] = now
        updated = job.with_changes(updated_at=now, **changes)
        if updated.finished:
            self._tracked.pop(job.task_id, None)
            self._misses.pop(job.task_id, None)
            log.info("task %s finished: %s%s", job.task_id, updated.status.value,
                     f" ({updated.fail_reason})" if updated.fail_reason else "")
        elif job.task_id in self._tracked:
            self._tracked[job.task_id] = updated
        old_display = Display.of(job).signature()
        await self.store.update_job(updated, changes)
        if Display.of(updated).signature() != old_display:
            self._schedule_delivery(job.task_id)

    # --- delivering to the view ----------------------------------------------------------------

    def _schedule_delivery(self, task_id: str) -> asyncio.Task[DeliveryError | None]:
        """Bring the job's message up to date. One delivery per job at a time; changes that arrive
        meanwhile are coalesced into one more pass, so only the latest state is sent."""
        running = self._deliveries.get(task_id)
        if running is not None and not running.done():
            self._stale.add(task_id)
            return running
        task = asyncio.create_task(self._deliver(task_id), name=f"mjbot-deliver-{task_id}")
        self._deliveries[task_id] = task
        task.add_done_callback(lambda done: self._deliveries.pop(task_id, None)
                               if self._deliveries.get(task_id) is done else None)
        return task

    def _retry_failed_deliveries(self) -> None:
        """Each tick, retry messages whose last delivery failed for a passing reason."""
        for task_id in list(self._retry):
            if task_id not in self._deliveries:
                self._retry.discard(task_id)
                self._schedule_delivery(task_id)

    async def _deliver(self, task_id: str) -> DeliveryError | None:
        while True:
            self._stale.discard(task_id)
            problem = await self._deliver_once(task_id)
            if task_id not in self._stale or problem is not None:
                return problem

    async def _deliver_once(self, task_id: str) -> DeliveryError | None:
        assert self.view is not None, "start() the service with a view first"
        job = await self.store.get_job(task_id)
        if job is None or job.message_gone:
            return None
        display = Display.of(job)
        signature = display.signature()
        if signature == job.shown:
            return None
        image = None
        if display.phase is Phase.DONE and job.image_url and not job.shows_final:
            image = await self._final_image(job)
            if image is None and self._image_failures.get(task_id, 0) < IMAGE_DOWNLOAD_ATTEMPTS:
                self._retry.add(task_id)
                return None
        reply_to = None
        if job.parent_task_id and job.message_id is None:
            parent = await self.store.get_job(job.parent_task_id)
            reply_to = parent.message_id if parent else None
        try:
            message_id = await self.view.show(job, display, image=image, reply_to=reply_to)
        except MessageGone as exc:
            log.warning("task %s: message gone (%s); no more edits", task_id, exc)
            await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            return exc
        except DeliveryForbidden as exc:
            log.error("task %s: cannot post in channel %s: %s", task_id, job.channel_id, exc)
            await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            return exc
        except DeliveryError as exc:
            failures = self._delivery_failures.get(task_id, 0) + 1
            self._delivery_failures[task_id] = failures
            if failures >= MAX_DELIVERY_ATTEMPTS:
                log.error("task %s: updating its message failed %d times (%s); giving up on it",
                          task_id, failures, exc)
                await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            else:
                log.warning("task %s: updating its message failed (%s); will retry", task_id, exc)
                self._retry.add(task_id)
            return exc
        fields = ["shown"] if message_id == job.message_id else ["shown", "message_id"]
        await self.store.update_job(job.with_changes(shown=signature, message_id=message_id), fields)
        self._image_failures.pop(task_id, None)
        self._delivery_failures.pop(task_id, None)
        return None

    async def _final_image(self, job: Job) -> ImageFile | None:
        """Download the final image now: proxy and CDN links expire, the attachment does not."""
        assert job.image_url
        try:
            data, content_type = await self.proxy.download_image(job.image_url, max_bytes=MAX_IMAGE_BYTES)
        except (ProxyError, UserInputError) as exc:
            count = self._image_failures.get(job.task_id, 0) + 1
            self._image_failures[job.task_id] = count
            log.warning("task %s: downloading its image failed (%s, attempt %d)", job.task_id, exc, count)
            return None
        return ImageFile(filename=_image_filename(job, content_type), data=data, content_type=content_type)


def _image_filename(job: Job, content_type: str | None) -> str:
    extension = {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(
        (content_type or "").split(";")[0].strip(), "png")
    return f"{job.action.value.lower()}_{job.task_id}.{extension}"
