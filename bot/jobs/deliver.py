"""Delivering jobs to the view: the front end's :class:`JobView`, the channels' write budgets, one
write at a time per job, final results (downloaded and fitted by :mod:`bot.jobs.media`, prefetched),
and used buttons brought up to date.

Every write reads the job's latest state from SQLite when its turn comes, and compares what it would
show with what the message shows (``shown``), so a write is sent only when something changed.
Nothing here knows who tracks or submits jobs: the tracker hears of a write through ``on_shown``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

from bot.core.errors import DeliveryError, DeliveryForbidden, MessageGone, ProxyError, UserInputError
from bot.core.models import Display, ImageFile, Job, Phase
from bot.jobs.media import FinalMedia, Prepared
from bot.jobs.scheduler import WriteScheduler
from bot.media import MediaError
from bot.proxy.client import ProxyClient
from bot.storage import Store

log = logging.getLogger(__name__)

IMAGE_DOWNLOAD_ATTEMPTS = 3
# Discord's limit on message writes in one channel: about 5 per 5 s.
DISCORD_CHANNEL_WRITES, DISCORD_CHANNEL_WINDOW_S = 5, 5.0
MAX_DELIVERY_ATTEMPTS = 20  # one per tick; Discord trouble lasting longer than that is not passing
# Downloading a result (up to four videos) and fitting it, in all: a stalled server is not waited
# for longer (each read has the proxy timeout; a trickle would pass that).
PREPARE_TIMEOUT_S = 180.0


class JobView(Protocol):
    """What the service needs from a front end."""

    async def show(
        self,
        job: Job,
        display: Display,
        *,
        files: Sequence[ImageFile] = (),
        reply_to: int | None,
        origin: object | None = None,
    ) -> int:
        """Create (when ``job.message_id`` is None) or edit the job's message so that it shows
        ``display``; return the message id. ``files`` are the final result to attach (an image, or
        a batch's videos), already within :meth:`upload_limit`; ``job.media_note`` says what was
        done to them. ``origin`` is what the front end handed to the submit that started the job
        (e.g. the command's interaction), for posting the first message.

        Raises :class:`MessageGone` when the message or channel no longer exists,
        :class:`DeliveryForbidden` when the bot may not post there, :class:`DeliveryError` otherwise.
        """
        ...

    def upload_limit(self, job: Job) -> int:
        """How many bytes of files one message in ``job``'s channel may carry."""
        ...

    async def posted_files(self, job: Job) -> tuple[ImageFile, ...]:
        """The files ``job``'s message carries (its result: they do not expire, links do); () when
        it has none or cannot be read."""
        ...

    def lane(self, job: Job, origin: object | None = None) -> Hashable:
        """Which write budget a write to ``job``'s message spends: writes in one lane wait for each
        other's budget, writes in different lanes never do (e.g. a channel, or an interaction's
        own webhook)."""
        ...

    async def find_posted(self, job: Job) -> list[int]:
        """Ids of messages, newest first, that may be ``job``'s message from a posting attempt whose
        answer was lost (posted since ``job.posting_at``)."""
        ...


class Delivery:
    """Brings jobs' messages up to date. Owns the write budgets, the per-job write locks, the
    deliveries to retry, the first messages' origins and the final images being fetched."""

    def __init__(
        self,
        proxy: ProxyClient,
        store: Store,
        media: FinalMedia,
        *,
        clock: Callable[[], float],
        writes_per_window: int = DISCORD_CHANNEL_WRITES,
        write_window_s: float = DISCORD_CHANNEL_WINDOW_S,
    ) -> None:
        self.proxy = proxy
        self.store = store
        self.media = media
        self.view: JobView | None = None
        self._clock = clock
        # Told when a message now shows a state (task id, signature, message id): the tracker's hook.
        self.on_shown: Callable[[str, str, int], None] = lambda task_id, shown, message_id: None
        self._image_failures: dict[str, int] = {}
        self._writes: WriteScheduler[DeliveryError] = WriteScheduler(
            self._write, limit=writes_per_window, per_s=write_window_s
        )
        self._retry: dict[str, Job] = {}  # jobs whose last delivery failed; retried on the next tick
        self._finals: dict[str, asyncio.Task[Prepared | None]] = {}  # final results being fetched
        self._origins: dict[str, object] = {}  # the front end's handle for a job's first message
        self._delivery_failures: dict[str, int] = {}
        # One write at a time per job (see _write): its lock, and how many writes hold or await it.
        self._job_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def remember_origin(self, task_id: str, origin: object) -> None:
        """What the front end handed to the submit: used for the job's first message only."""
        self._origins[task_id] = origin

    async def close(self, grace_s: float) -> None:
        # Let Discord writes under way finish: cancelling a send half-way could post a message
        # whose id never reaches SQLite, and the next start would post it again. Queued ones are
        # repaired at the next start (their display differs from what was shown).
        await self._writes.close(grace_s)
        for fetch in self._finals.values():
            fetch.cancel()
        await asyncio.gather(*self._finals.values(), return_exceptions=True)

    def schedule(self, job: Job, display: Display | None = None) -> asyncio.Future[DeliveryError | None]:
        """Bring the job's message up to date, within its channel's write budget. A job already
        waiting is queued once: the write reads the latest state when its turn comes, so only that
        state is sent. New messages and final states go first."""
        phase = (display or Display.of(job)).phase
        urgent = job.message_id is None or phase in (Phase.DONE, Phase.FAILED)
        if phase is Phase.DONE:
            self.prefetch_image(job)
        lane = self.view.lane(job, self._origins.get(job.task_id)) if self.view is not None else job.channel_id
        return self._writes.submit(lane, job.task_id, urgent=urgent)

    def retry_failed(self) -> None:
        """Each tick, retry messages whose last delivery failed for a passing reason."""
        retry, self._retry = self._retry, {}
        for job in retry.values():
            self.schedule(job)

    async def refresh_used_buttons(self, parent_task_id: str) -> None:
        """A button of this job was used: bring its message up to date (a write happens only if
        what it shows changed)."""
        refreshed = await self.store.get_job(parent_task_id)
        if refreshed is not None:
            await self.store.update_job(refreshed, ())
            self.schedule(refreshed)

    async def _write(self, task_id: str) -> tuple[DeliveryError | None, bool]:
        """One scheduled write: (the delivery problem if any, whether Discord was written to).

        One at a time per job, whatever lane it was queued in: a write that starts while the job's
        first post is unanswered would not know the message and post a second one (or edit through
        a route that does not own it), and two edits racing could leave the older state shown."""
        lock, users = self._job_locks.get(task_id) or (asyncio.Lock(), 0)
        self._job_locks[task_id] = (lock, users + 1)
        try:
            async with lock:
                return await self._write_now(task_id)
        finally:
            lock, users = self._job_locks[task_id]
            if users == 1:
                del self._job_locks[task_id]
            else:
                self._job_locks[task_id] = (lock, users - 1)

    async def _write_now(self, task_id: str) -> tuple[DeliveryError | None, bool]:
        assert self.view is not None, "start() the service with a view first"
        job = await self.store.get_job(task_id)
        if job is None or job.message_gone:
            self._drop_final(task_id)
            return None, False
        display = Display.of(job)
        signature = display.signature()
        if signature == job.shown:
            if job.shows_final:
                self._drop_final(task_id)
            return None, False
        files: tuple[ImageFile, ...] = ()
        note = job.media_note
        if display.phase is Phase.DONE and (job.image_url or job.videos) and not job.shows_final:
            # Downloading and re-encoding take seconds: never while this channel's lane waits.
            # The write comes back when the result is ready.
            fetch = self._finals.get(task_id)
            if fetch is None or fetch.cancelled():
                self._finals.pop(task_id, None)
                self.prefetch_image(job)
                fetch = self._finals[task_id]
            if not fetch.done():
                fetch.add_done_callback(lambda done: None if done.cancelled() else self.schedule(job))
                return None, False
            del self._finals[task_id]
            prepared = fetch.result()
            if prepared is None:
                if self._image_failures.get(task_id, 0) < IMAGE_DOWNLOAD_ATTEMPTS:
                    self._retry[task_id] = job
                    return None, False
                prepared = self.media.gave_up(job)
            files, note = prepared.files, prepared.note
            job = job.with_changes(media_note=note)
        reply_to = None
        if job.message_id is None:
            job = await self._before_posting(job)
        if job.parent_task_id and job.message_id is None:
            parent = await self.store.get_job(job.parent_task_id)
            reply_to = parent.message_id if parent else None
        try:
            message_id = await self.view.show(
                job,
                display,
                files=files,
                reply_to=reply_to,
                origin=self._origins.pop(task_id, None) if job.message_id is None else None,
            )
        except (MessageGone, DeliveryForbidden) as exc:
            log.warning("task %s: no more updates to its message in channel %s (%s)", task_id, job.channel_id, exc)
            await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            return exc, True
        except DeliveryError as exc:
            failures = self._delivery_failures.get(task_id, 0) + 1
            self._delivery_failures[task_id] = failures
            if failures >= MAX_DELIVERY_ATTEMPTS:
                log.error("task %s: updating its message failed %d times (%s); giving up on it", task_id, failures, exc)
                await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            else:
                log.warning("task %s: updating its message failed (%s); will retry", task_id, exc)
                self._retry[task_id] = job
            return exc, True
        fields = ["shown"] if message_id == job.message_id else ["shown", "message_id"]
        if files or note is not None:
            fields.append("media_note")
        await self.store.update_job(job.with_changes(shown=signature, message_id=message_id), fields)
        self.on_shown(task_id, signature, message_id)
        self._image_failures.pop(task_id, None)
        self._delivery_failures.pop(task_id, None)
        return None, True

    async def _before_posting(self, job: Job) -> Job:
        """Before posting a job's message: if an earlier attempt may have posted it (the process
        died, or Discord failed, before its id was stored), adopt that message instead of posting
        a second one. Otherwise note that posting begins."""
        assert self.view is not None
        if job.posting_at is not None:
            try:
                candidates = await self.view.find_posted(job)
            except DeliveryError as exc:
                log.warning("task %s: looking for its earlier message failed (%s)", job.task_id, exc)
                candidates = []
            for message_id in candidates:
                if await self.store.job_for_message(message_id) is None:
                    log.info("task %s: adopting message %s posted before a restart", job.task_id, message_id)
                    job = job.with_changes(message_id=message_id)
                    await self.store.update_job(job, ["message_id"])
                    return job
        job = job.with_changes(posting_at=self._clock())
        await self.store.update_job(job, ["posting_at"])
        return job

    # --- final results -------------------------------------------------------------------------

    def prefetch_image(self, job: Job) -> None:
        """Start downloading (and fitting) a final result as soon as it is known, not when the
        channel's write budget lets its message be edited."""
        if (job.image_url or job.videos) and job.task_id not in self._finals and not job.shows_final:
            if not job.message_gone:
                self._finals[job.task_id] = asyncio.create_task(self._prepare(job))

    def _drop_final(self, task_id: str) -> None:
        """A result fetched for a message that will not show it: let it go (it may be 400 MB)."""
        fetch = self._finals.pop(task_id, None)
        if fetch is not None:
            fetch.cancel()

    async def final_media(self, job: Job) -> tuple[ImageFile, ...]:
        """The job's final result as files (() if it cannot be had), e.g. for /show or /animate: its
        message's attachments, else from the proxy's links, fitted to its channel."""
        if not (job.image_url or job.videos) or self.view is None:
            return ()
        if job.message_id is not None and not job.message_gone and job.shows_final:
            posted = await self.view.posted_files(job)
            if posted:
                return posted
        prepared = await self._prepare(job)
        return prepared.files if prepared is not None else ()

    async def _prepare(self, job: Job) -> Prepared | None:
        """Download the final result now: proxy and CDN links expire, attachments do not. None when
        it failed for now (counted: after IMAGE_DOWNLOAD_ATTEMPTS the message goes without it)."""
        assert self.view is not None
        try:
            async with asyncio.timeout(PREPARE_TIMEOUT_S):
                return await self.media.prepare(job, self.view.upload_limit(job))
        except (ProxyError, UserInputError, MediaError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave the message running
            log.exception("task %s: preparing its result crashed", job.task_id)
            problem = f"{type(exc).__name__}"
        count = self._image_failures.get(job.task_id, 0) + 1
        self._image_failures[job.task_id] = count
        log.warning("task %s: fetching its result failed (%s, attempt %d)", job.task_id, problem, count)
        return None
