"""The jobs service's front: the one object the rest of the bot uses. It wires the parts (a
:class:`Submitter`, a :class:`Tracker`, a :class:`Delivery`), starts and stops them, answers members'
questions about their jobs, and holds the service open for members' requests under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.core.access import AccessPolicy, Requester
from bot.core.background import wait_event
from bot.core.config import Settings
from bot.core.errors import BotRestarting, JobNotReady, JobTooOld, ProxyError
from bot.core.events import JobEvents, NoEvents
from bot.core.models import Action, ImageFile, Job, Status
from bot.jobs.controls import Controls
from bot.jobs.credits import Credits
from bot.jobs.deliver import DISCORD_CHANNEL_WINDOW_S, DISCORD_CHANNEL_WRITES, Delivery, JobView
from bot.jobs.media import FinalMedia
from bot.jobs.members import Members
from bot.jobs.press import Presser
from bot.jobs.submit import Submitter
from bot.jobs.track import Tracker
from bot.jobs.video import AnimateRequest, Videos
from bot.media import MediaWorker
from bot.proxy.client import ProxyClient
from bot.storage import Store
from bot.storage.credit_book import Account, Cost, Spend

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0


def _member_request(method):  # type: ignore[no-untyped-def]
    """A member's request (a command, a click): refused once the service stops, and waited for by
    stop(), so it never meets a closed database or a closed connection half-way."""

    @functools.wraps(method)
    async def guarded(self: JobService, *args: object, **kwargs: object) -> object:
        async with self.member_request(method.__name__):
            return await method(self, *args, **kwargs)

    return guarded


@dataclass(frozen=True)
class ServiceStatus:
    proxy_problem: ProxyError | None
    proxy_latency_s: float | None
    running: int
    waiting: int
    oldest: Job | None


class JobService:
    """Submit tasks, track every unfinished one in a single loop, and push changes to a view.

    Parts, each owning its state, calling one way: this front → press → submit → track → deliver."""

    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        writes_per_window: int = DISCORD_CHANNEL_WRITES,
        write_window_s: float = DISCORD_CHANNEL_WINDOW_S,
        events: JobEvents | None = None,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.events: JobEvents = events or NoEvents()  # metrics, alerts, health
        self.policy = AccessPolicy(settings.access)
        self._clock = clock
        media = settings.media
        self._media_worker = MediaWorker(
            processes=media.reencode_processes, memory_mb=media.reencode_memory_mb, timeout_s=media.reencode_timeout_s
        )
        final_media = FinalMedia(proxy, self._media_worker, settings.proxy.lasting_media_hosts)
        self._deliver = Delivery(
            proxy, store, final_media, clock=clock, writes_per_window=writes_per_window, write_window_s=write_window_s
        )
        self._track = Tracker(settings, proxy, store, self._deliver, clock=clock, events=self.events)
        self._deliver.on_shown = self._track.shown  # the tracked copy learns what its message shows
        self.controls = Controls(proxy, store, self.policy, confirm=self._track.signal_push)  # ⏹, ✉️
        self._track.on_answer = self.controls.learn
        self._submit = Submitter(
            settings, proxy, store, self.policy, self._track, self._deliver, clock=clock, events=self.events
        )
        self._videos = Videos(settings, proxy, store, self.policy, self._submit, self._deliver)
        self._press = Presser(
            settings, proxy, store, self.policy, self._submit, self._track, self._deliver, self._videos
        )
        self._credits = self.credits = Credits(settings, store, self.policy, clock=clock)  # admin page: .credits
        # A member's preferences, prompt suggestions and /info: database reads and writes only.
        self.members = Members(settings, store, self.policy, self._credits)
        self._closing = False  # stop() began: members' requests are refused
        self._requests = 0  # members' requests under way
        self._requests_idle = asyncio.Event()
        self._requests_idle.set()
        # Several processes: hands a push for a task another process tracks to it (set by the app).
        self.forward_push: Callable[[str], Awaitable[None]] | None = None
        self._forwarding: set[asyncio.Task[None]] = set()

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self, view: JobView) -> None:
        """Resume from SQLite: track unfinished jobs again and repair messages left stale."""
        self._deliver.view = view
        self._closing = False
        try:
            await self.store.credits.reconcile()
        except Exception:  # noqa: BLE001 - a safety net; the jobs must start all the same
            log.exception("credits: checking for holds without a settle or refund failed")
        await self.controls.load()
        await self._track.start()

    async def stop(self) -> None:
        # Requests of members under way finish first (within the grace), new ones are refused.
        self._closing = True
        if not await wait_event(self._requests_idle, SHUTDOWN_GRACE_S):
            log.warning("stopping with %d member requests still under way", self._requests)
        try:
            await self._track.stop(SHUTDOWN_GRACE_S)
            await self._deliver.close(SHUTDOWN_GRACE_S)
        finally:
            await self._media_worker.close()  # its processes outlive the bot otherwise

    @contextlib.asynccontextmanager
    async def member_request(self, what: str) -> AsyncIterator[None]:
        """Hold the service open for a member's request, from the click to the answer on Discord:
        stop() waits for it, and once stopping began a new one raises :class:`BotRestarting`."""
        if self._closing:
            raise BotRestarting(f"{what} while stopping")
        self._requests += 1
        self._requests_idle.clear()
        try:
            yield
        finally:
            self._requests -= 1
            if not self._requests:
                self._requests_idle.set()

    @property
    def view(self) -> JobView | None:
        return self._deliver.view

    @property
    def notify_hook(self) -> str | None:
        """The push URL handed to the proxy with every submit (set when the push receiver runs)."""
        return self._submit.notify_hook

    @notify_hook.setter
    def notify_hook(self, url: str | None) -> None:
        self._submit.notify_hook = url

    # --- the tracker ---------------------------------------------------------------------------

    @property
    def tracked_ids(self) -> list[str]:
        return self._track.tracked_ids

    @property
    def ticks(self) -> int:
        return self._track.ticks

    async def tick(self) -> None:
        """One pass over every unfinished job: ask the proxy, store changes, show them."""
        await self._track.tick()

    async def wait_ticks(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` more ticks have finished (for tests and tools)."""
        await self._track.wait_ticks(count, timeout)

    def signal_push(self, task_id: str) -> None:
        """The proxy pushed a change of ``task_id``: look now (see :meth:`Tracker.signal_push`). A
        task another process tracks (several processes behind one push URL) is passed on to it."""
        if self._track.tracked(task_id) is not None or self.forward_push is None:
            self._track.signal_push(task_id)
            return
        task = asyncio.create_task(self._forward(task_id), name="mjbot-push-forward")
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    def signal_forwarded_push(self, task_id: str) -> None:
        """Another process received a push for ``task_id``: ours if we track it (else ignored)."""
        self._track.signal_push(task_id)

    async def _forward(self, task_id: str) -> None:
        assert self.forward_push is not None
        try:
            await self.forward_push(task_id)
        except Exception as exc:  # noqa: BLE001 - the owner's polling catches up
            log.warning("push for task %s: could not pass it on to the other processes (%s)", task_id, exc)

    # --- shards (several processes) ------------------------------------------------------------

    def serve_shards(self, shard_count: int, shards: set[int]) -> None:
        """Track only the jobs of guilds on ``shards`` (set before :meth:`start`)."""
        self.store.serve_shards(shard_count, shards)

    async def adopt_shards(self, shard_count: int, owned: set[int], gained: set[int]) -> int:
        """This process now serves ``gained`` too (taken over from a process that died): track
        their guilds' unfinished jobs and bring their messages up to date. Returns how many."""
        self.store.serve_shards(shard_count, owned)
        jobs = await self.store.unfinished_jobs(shards=gained)
        for job in jobs:
            if self._track.tracked(job.task_id) is None:
                self._track.follow(job)
        for job in await self.store.undelivered_jobs(shards=gained):
            self._deliver.schedule(job)
        # The process that died may have been submitting for these guilds: look for its tasks.
        self._track.submission_unconfirmed()
        log.info("took over shards %s: %d unfinished jobs", sorted(gained), len(jobs))
        return len(jobs)

    @_member_request
    async def status(self) -> ServiceStatus:
        """For admins: is the proxy reachable, how many jobs run and wait, which is oldest."""
        unfinished = await self.store.unfinished_jobs()
        waiting = sum(1 for job in unfinished if job.status in (Status.NOT_START, Status.SUBMITTED, Status.UNKNOWN))
        problem, latency = None, None
        try:
            latency = await self.proxy.ping()
        except ProxyError as exc:
            problem = exc
        return ServiceStatus(
            proxy_problem=problem,
            proxy_latency_s=latency,
            running=len(unfinished) - waiting,
            waiting=waiting,
            oldest=unfinished[0] if unfinished else None,
        )

    # --- submitting ----------------------------------------------------------------------------

    @_member_request
    async def imagine(
        self,
        prompt: str,
        who: Requester,
        *,
        image: ImageFile | None = None,
        images: Sequence[ImageFile] = (),
        references: Mapping[str, ImageFile] | None = None,
        origin: object | None = None,
    ) -> Job:
        """Submit an imagine and post its message. ``image``/``images``: up to 3 images sent with
        the prompt; ``references``: images for --sref, --cref, --oref, uploaded for a link each.

        Raises a UserInputError for a request the rules refuse and a ProxyError when the proxy
        refuses (nothing is stored or posted then), or a DeliveryError when the message could not be
        posted (the task is stored and tracked all the same).
        """
        images = [image, *images] if image is not None else list(images)
        return await self._submit.imagine(prompt, who, images=images, references=references, origin=origin)

    @_member_request
    async def describe(
        self, image: ImageFile | None, who: Requester, *, link: str | None = None, origin: object | None = None
    ) -> Job:
        """Four prompts for an image (or an image link); the message offers 1️⃣-4️⃣ to imagine one."""
        return await self._submit.describe(image, who, link=link, origin=origin)

    @_member_request
    async def shorten(self, prompt: str, who: Requester, *, origin: object | None = None) -> Job:
        """Shorter versions of a prompt; the message offers a button to imagine each."""
        return await self._submit.shorten(prompt, who, origin=origin)

    @_member_request
    async def blend(
        self, images: Sequence[ImageFile], dimensions: str, who: Requester, *, origin: object | None = None
    ) -> Job:
        """Blend 2-5 images into a grid (``dimensions``: PORTRAIT, SQUARE or LANDSCAPE)."""
        return await self._submit.blend(images, dimensions, who, origin=origin)

    @_member_request
    async def animate(self, request: AnimateRequest, who: Requester, *, origin: object | None = None) -> Job:
        """/animate: short videos from an image or one of the member's finished images. Raises
        :class:`VideoUnsupported` when the server has no video (novicezk, or trueai with it off)."""
        return await self._videos.animate(request, who, origin=origin)

    @_member_request
    async def imagine_described(self, task_id: str, number: int, who: Requester) -> Job:
        """1️⃣-4️⃣ under a /describe answer: an /imagine of that prompt, for whoever presses."""
        prompt = await self._submit.described_prompt(task_id, number, who)
        return await self.imagine(prompt, who)

    @_member_request
    async def change(self, parent_task_id: str, action: Action, index: int | None, who: Requester) -> Job:
        """The bot's own U/V/🔄 buttons: upscale, vary or reroll a finished grid, as a new job that
        replies to it. Sent as /submit/change, or as /submit/action with the matching server button
        where the server speaks only that. Each button submits once, however often it is pressed."""
        return await self._press.change(parent_task_id, action, index, who)

    @_member_request
    async def press(self, parent_task_id: str, position: int, who: Requester, *, prompt: str | None = None) -> Job:
        """One of the server's own buttons on a task (trueai, new-api): /submit/action with its
        customId. ``prompt`` answers a button that needs one (Custom Zoom) via /submit/modal."""
        return await self._press.press(parent_task_id, position, who, prompt=prompt)

    @_member_request
    async def give_prompt(self, task_id: str, prompt: str, who: Requester) -> Job:
        """A job waiting in MODAL (a Remix-mode account, or new-api hiding the 21) gets its prompt."""
        return await self._press.give_prompt(task_id, prompt, who)

    # --- a member's jobs -----------------------------------------------------------------------

    def check_press(self, who: Requester, job: Job) -> None:
        """Raise unless ``who`` may press ``job``'s buttons (before asking them for a prompt)."""
        self.policy.check_press(who, job)

    def check_admin(self, who: Requester) -> None:
        self.policy.check_admin(who)

    @_member_request
    async def get_job(self, task_id: str) -> Job | None:
        return await self.store.get_job(task_id)

    @_member_request
    async def job_for_message(self, message_id: int) -> Job | None:
        return await self.store.job_for_message(message_id)

    @_member_request
    async def recent_jobs(self, who: Requester, *, page: int, per_page: int) -> tuple[list[Job], bool]:
        """The member's jobs in this guild, newest first; and whether there are more."""
        jobs = await self.store.jobs_of(who.user_id, who.guild_id, limit=per_page + 1, offset=page * per_page)
        return jobs[:per_page], len(jobs) > per_page

    @_member_request
    async def job_to_show(self, task_id: str, who: Requester) -> Job:
        """A job a member may post again: their own (any, for admins), from this guild, finished."""
        job = await self.store.get_job(task_id.strip())
        if job is None and await self.store.pruned_guild(task_id.strip()) == (True, who.guild_id):
            raise JobTooOld(f"job {task_id} was pruned ([storage] keep_days)", task_id=task_id)
        job = self.policy.check_owner(who, job, task_id, "show")
        if not job.finished:
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        return job

    @_member_request
    async def forget_message(self, task_id: str, who: Requester) -> Job:
        """❌: the owner (or an admin) deletes a job's message; it is never edited again."""
        job = self.policy.check_owner(who, await self.store.get_job(task_id), task_id, "delete")
        await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
        log.info("task %s: message %s deleted by user %s", task_id, job.message_id, who.user_id)
        return job

    # --- credits -------------------------------------------------------------------------------

    @property
    def credits_unit(self) -> str | None:
        """The credits' unit when credits are on, else None."""
        return self._credits.unit if self._credits.enabled else None

    @_member_request
    async def account(self, who: Requester, *, last: int = 10) -> Account:
        """/balance: the member's balance here, allowance, next refill and last entries."""
        return await self._credits.account(who, last=last)

    @_member_request
    async def job_costs(self, jobs: Sequence[Job]) -> dict[str, Cost]:
        return await self._credits.costs(jobs)

    @_member_request
    async def adjust_credits(
        self, admin: Requester, member_id: int, member_roles: frozenset[int], amount: str, reason: str, *, give: bool
    ) -> tuple[int, int]:
        """/mj credits give|take: the amount and the member's new balance (units)."""
        return await self._credits.adjust(admin, member_id, member_roles, amount, reason, give=give)

    @_member_request
    async def spend(self, admin: Requester, period: str) -> Spend:
        """/mj spend: this server's charges by action and its top members since ``period``."""
        return await self._credits.spend(admin, period)

    async def final_media(self, job: Job) -> tuple[ImageFile, ...]:
        """The job's final result: its message's files, else from the proxy's links (() if neither)."""
        return await self._deliver.final_media(job)

    # --- for tests that reach inside (kept from the single-class service) ---------------------

    @property
    def _pushed(self) -> set[str]:
        return self._track._pushed
