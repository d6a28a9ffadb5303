"""The jobs service: submit tasks, track every unfinished one in a single loop, and push changes to a
view. No Discord here: the Discord layer implements :class:`JobView`, tests implement it in memory.

Order of work for every change: the proxy's answer is written to SQLite first, then the view is
asked to show it; a crash in between is repaired at start-up because SQLite knows which jobs show a
stale state (``display`` differs from ``shown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from bot.access import AccessPolicy, Requester
from bot.background import wait_event
from bot.config import Settings
from bot.errors import (
    BotRestarting,
    ButtonAlreadyUsed,
    ButtonBusy,
    ButtonInvalid,
    ButtonUnsupported,
    DailyLimitReached,
    DeliveryError,
    DeliveryForbidden,
    JobNotFound,
    JobNotReady,
    JobTooOld,
    MessageGone,
    NotJobOwner,
    ProxyEndpointMissing,
    ProxyError,
    ProxyTimeout,
    SubmitUnconfirmed,
    TooManyRunning,
    UserInputError,
    VideoUnsupported,
)
from bot.events import JobEvents, NoEvents
from bot.models import (
    BUTTON_MARK,
    Action,
    Display,
    ImageFile,
    Job,
    Phase,
    ProxyTask,
    Status,
    Submission,
    SubmitAccepted,
    TaskButton,
    describe_prompts,
    image_identity,
    local_reason,
    message_link,
)
from bot.prompt import check_prompt
from bot.proxy import ProxyClient
from bot.scheduler import WriteScheduler
from bot.store import Store
from bot.text import duration_text

log = logging.getLogger(__name__)

LIST_BATCH_SIZE = 1000  # ids per list-by-condition request
FETCH_CONCURRENCY = 8  # per-task fetches at once when the server has no list-by-condition
MAX_IMAGE_BYTES = 64 * 1024 * 1024
IMAGE_DOWNLOAD_ATTEMPTS = 3
VANISHED_AFTER_MISSES = 3  # ticks in a row the proxy does not know a task before it counts as lost
MAX_BACKOFF_S = 60.0
PUSHED_POLL_FACTOR = 10
API_STYLE_KEY = "proxy_api"  # tasks that get pushes are polled this many times less often
# Discord's limit on message writes in one channel: about 5 per 5 s.
DISCORD_CHANNEL_WRITES, DISCORD_CHANNEL_WINDOW_S = 5, 5.0
RECOVERY_GRACE_S = 10.0  # beyond the proxy timeout, before a pending submission counts as cut off
# A submission whose answer was lost is looked for this long; then it counts as never accepted, so
# the member can try again (they are told this bound when the answer is lost).
SUBMISSION_GIVE_UP_S = 600.0
SHUTDOWN_GRACE_S = 10.0
MAX_DELIVERY_ATTEMPTS = 20  # one per tick; Discord trouble lasting longer than that is not passing


class JobView(Protocol):
    """What the service needs from a front end."""

    async def show(
        self, job: Job, display: Display, *, image: ImageFile | None, reply_to: int | None,
        origin: object | None = None,
    ) -> int:
        """Create (when ``job.message_id`` is None) or edit the job's message so that it shows
        ``display``; return the message id. ``image`` is the final image to attach, if any;
        ``origin`` is what the front end handed to the submit that started the job (e.g. the
        command's interaction), for posting the first message.

        Raises :class:`MessageGone` when the message or channel no longer exists,
        :class:`DeliveryForbidden` when the bot may not post there, :class:`DeliveryError` otherwise.
        """
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
        self.view: JobView | None = None
        self._clock = clock
        self._tracked: dict[str, Job] = {}  # unfinished jobs, by task id
        self._misses: dict[str, int] = {}
        self._image_failures: dict[str, int] = {}
        self._writes: WriteScheduler[DeliveryError] = WriteScheduler(
            self._write, limit=writes_per_window, per_s=write_window_s)
        self._retry: dict[str, Job] = {}  # jobs whose last delivery failed; retried on the next tick
        self._images: dict[str, asyncio.Task[ImageFile | None]] = {}  # final images being fetched
        self._origins: dict[str, object] = {}  # the front end's handle for a job's first message
        self._delivery_failures: dict[str, int] = {}
        # One write at a time per job (see _write): its lock, and how many writes hold or await it.
        self._job_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.notify_hook: str | None = None  # set when the push receiver runs
        self._pushed: set[str] = set()  # tasks the proxy pushes updates for: polled less often
        self._push_signals: set[str] = set()  # pushed tasks waiting for their confirming request
        self._confirming: asyncio.Task[None] | None = None
        self._last_polled: dict[str, float] = {}
        self._list_supported = True
        self._learned_api: str | None = None  # "change"/"action" once learned (kept in SQLite)
        self._pressing: set[tuple[str, str, int | None]] = set()  # buttons being submitted now
        self._submitting_per_user: dict[int, int] = {}
        self._recovering = False  # submissions may wait to be recovered
        self._started_at = clock()
        self._tracker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._closing = False  # stop() began: members' requests are refused
        self._requests = 0  # members' requests under way
        self._requests_idle = asyncio.Event()
        self._requests_idle.set()
        self._ticked = asyncio.Condition()
        self.ticks = 0

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self, view: JobView) -> None:
        """Resume from SQLite: track unfinished jobs again and repair messages left stale."""
        self.view = view
        self._closing = False
        self._started_at = self._clock()
        self._recovering = True
        for job in await self.store.unfinished_jobs():
            self._tracked[job.task_id] = job
        pending = await self.store.undelivered_jobs()
        log.info("resuming %d unfinished jobs, %d messages to bring up to date",
                 len(self._tracked), len(pending))
        for job in pending:
            self._schedule_delivery(job)
        self._stopping.clear()
        self._tracker = asyncio.create_task(self._track_forever(), name="mjbot-tracker")

    async def stop(self) -> None:
        # Requests of members under way finish first (within the grace), new ones are refused.
        self._closing = True
        if not await wait_event(self._requests_idle, SHUTDOWN_GRACE_S):
            log.warning("stopping with %d member requests still under way", self._requests)
        self._stopping.set()
        if self._tracker is not None:
            # Let a tick under way finish its writes; the loop ends as soon as it sees _stopping.
            done, _ = await asyncio.wait({self._tracker}, timeout=SHUTDOWN_GRACE_S)
            if not done:
                self._tracker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tracker
            self._tracker = None
        if self._confirming is not None:
            self._confirming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._confirming
        # Let Discord writes under way finish: cancelling a send half-way could post a message
        # whose id never reaches SQLite, and the next start would post it again. Queued ones are
        # repaired at the next start (their display differs from what was shown).
        await self._writes.close(SHUTDOWN_GRACE_S)
        for fetch in self._images.values():
            fetch.cancel()
        await asyncio.gather(*self._images.values(), return_exceptions=True)

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
    def tracked_ids(self) -> list[str]:
        return list(self._tracked)

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
        return ServiceStatus(proxy_problem=problem, proxy_latency_s=latency, running=len(unfinished) - waiting,
                             waiting=waiting, oldest=unfinished[0] if unfinished else None)

    # --- submitting ----------------------------------------------------------------------------

    @_member_request
    async def imagine(self, prompt: str, who: Requester, *, image: ImageFile | None = None,
                      origin: object | None = None) -> Job:
        """Submit an imagine and post its message.

        Raises a UserInputError for a request the rules refuse and a ProxyError when the proxy
        refuses (nothing is stored or posted then), or a DeliveryError when the message could not be
        posted (the task is stored and tracked all the same).
        """
        self.policy.check_start(who)
        prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)
        images = [image.as_data_url()] if image else []
        return await self._submit_new(Action.IMAGINE, prompt, who, lambda nonce: self.proxy.submit_imagine(
            prompt, images, state=nonce, notify_hook=self.notify_hook), origin=origin)

    @_member_request
    async def describe(self, image: ImageFile, who: Requester, *, origin: object | None = None) -> Job:
        """Four prompts for an image; the message offers 1️⃣-4️⃣ to imagine one of them."""
        self.policy.check_start(who)
        return await self._submit_new(Action.DESCRIBE, "", who, lambda nonce: self.proxy.submit_describe(
            image.as_data_url(), state=nonce, notify_hook=self.notify_hook), origin=origin)

    @_member_request
    async def blend(self, images: Sequence[ImageFile], dimensions: str, who: Requester, *,
                    origin: object | None = None) -> Job:
        """Blend 2-5 images into a grid (``dimensions``: PORTRAIT, SQUARE or LANDSCAPE)."""
        self.policy.check_start(who)
        if not 2 <= len(images) <= 5:
            raise UserInputError(f"blend of {len(images)} images")
        urls = [image.as_data_url() for image in images]
        return await self._submit_new(Action.BLEND, "", who, lambda nonce: self.proxy.submit_blend(
            urls, dimensions, state=nonce, notify_hook=self.notify_hook), origin=origin)

    @_member_request
    async def imagine_described(self, task_id: str, number: int, who: Requester) -> Job:
        """1️⃣-4️⃣ under a /describe answer: an /imagine of that prompt, for whoever presses."""
        job = await self.store.get_job(task_id)
        if job is None or job.guild_id != who.guild_id:
            raise JobNotFound(f"no describe job {task_id} here", task_id=task_id)
        prompts = describe_prompts(job.final_prompt or job.prompt_en or job.prompt)
        if job.action is not Action.DESCRIBE or job.status is not Status.SUCCESS or not 1 <= number <= len(prompts):
            raise JobNotReady(f"job {task_id} has no prompt {number}", task_id=task_id)
        return await self.imagine(prompts[number - 1], who)

    async def _submit_new(self, action: Action, prompt: str, who: Requester,
                          submit: Callable[[str], Awaitable[SubmitAccepted]], *, origin: object | None = None) -> Job:
        async with self._reservation(who.user_id):
            submission = self._submission(action, prompt, who, who.channel_id)
            await self.store.insert_submission(submission)
            accepted = await self._submitting(submission, submit(submission.nonce))
            log.info("task %s submitted: %s by user %s in guild %s channel %s",
                     accepted.task_id, action.value.lower(), who.user_id, who.guild_id, who.channel_id)
            if origin is not None:
                self._origins[accepted.task_id] = origin  # used for its first message only
            return await self._accept(self._new_job(accepted.task_id, submission, queue_ahead=accepted.queue_ahead))

    # --- a member's jobs ---------------------------------------------------------------------------

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
        if job is None or job.guild_id != who.guild_id:
            raise JobNotFound(f"no job {task_id} here", task_id=task_id)
        if job.owner_id != who.user_id and not self.policy.is_admin(who.user_id):
            raise NotJobOwner(f"user {who.user_id} asked to show {job.owner_id}'s job", owner_id=job.owner_id)
        if not job.finished:
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        return job

    @_member_request
    async def forget_message(self, task_id: str, who: Requester) -> Job:
        """❌: the owner (or an admin) deletes a job's message; it is never edited again."""
        job = await self.store.get_job(task_id)
        if job is None or job.guild_id != who.guild_id:
            raise JobNotFound(f"no job {task_id} here", task_id=task_id)
        if job.owner_id != who.user_id and not self.policy.is_admin(who.user_id):
            raise NotJobOwner(f"user {who.user_id} tried to delete {job.owner_id}'s job", owner_id=job.owner_id)
        await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
        log.info("task %s: message %s deleted by user %s", task_id, job.message_id, who.user_id)
        return job

    @_member_request
    async def change(self, parent_task_id: str, action: Action, index: int | None, who: Requester) -> Job:
        """The bot's own U/V/🔄 buttons: upscale, vary or reroll a finished grid, as a new job that
        replies to it. Sent as /submit/change, or as /submit/action with the matching server button
        where the server speaks only that. Each button submits once, however often it is pressed."""
        if action not in (Action.UPSCALE, Action.VARIATION, Action.REROLL):
            raise ButtonInvalid(f"not a change action: {action}")
        index = 0 if action is Action.REROLL else index
        if action is not Action.REROLL and index not in (1, 2, 3, 4):
            raise ButtonInvalid(f"index {index} out of 1..4")
        parent = await self._pressable(parent_task_id, who, need_grid=True)
        position = _button_for(parent.buttons, action, index)
        what = f"{action.value} {index} of {parent_task_id}"

        async def submit(nonce: str) -> SubmitAccepted:
            if await self._api_style(parent) == "change":
                try:
                    return await self.proxy.submit_change(parent_task_id, action, index, state=nonce,
                                                          notify_hook=self.notify_hook)
                except ProxyEndpointMissing:
                    if self.settings.proxy.api == "auto":
                        await self._learn_api_style("action")
                    if position is None:
                        raise
            if position is None:
                raise ProxyEndpointMissing(f"{what}: the server wants /submit/action, but the task lists no button")
            return await self.proxy.submit_action(parent_task_id, parent.buttons[position].custom_id, state=nonce,
                                                  notify_hook=self.notify_hook)

        # On a task that lists buttons this is one of them: record which, so it shows as used.
        return await self._submit_child(
            parent, who, action=action, index=index, button=position, what=what, submit=submit,
            done=await (self.store.child_of_button(parent_task_id, position) if position is not None
                        else self.store.child_job(parent_task_id, action, index)))

    @_member_request
    async def press(self, parent_task_id: str, position: int, who: Requester, *, prompt: str | None = None) -> Job:
        """One of the server's own buttons on a task (trueai, new-api): /submit/action with its
        customId. ``prompt`` answers a button that needs one (Custom Zoom) via /submit/modal."""
        parent = await self._pressable(parent_task_id, who, need_grid=False)
        if not 0 <= position < len(parent.buttons):
            raise ButtonInvalid(f"task {parent_task_id} has no button {position}")
        button = parent.buttons[position]
        if button.needs_mask:
            raise ButtonUnsupported(f"{button.custom_id} needs a mask")
        if button.makes_video:
            raise VideoUnsupported(f"{button.custom_id} makes a video")
        action, index = button.change()
        if action is Action.REROLL:
            index = 0
        what = f"button {position} ({button.label or button.emoji or button.custom_id[:40]}) of {parent_task_id}"
        # U1-U4, V1-V4 and 🔄 are the same buttons whether pressed as ours or as the server's.
        done = await self.store.child_of_button(parent_task_id, position)
        if done is None and index is not None and button.is_plain_change:
            done = await self.store.child_job(parent_task_id, action, index)

        async def submit(nonce: str) -> SubmitAccepted:
            accepted = await self.proxy.submit_action(parent_task_id, button.custom_id, state=nonce,
                                                      notify_hook=self.notify_hook)
            if prompt is not None:
                # The new task waits in MODAL for its prompt (trueai answers 21; new-api says 1).
                await self.proxy.submit_modal(accepted.task_id, prompt)
            return accepted

        return await self._submit_child(
            parent, who, action=action, index=index, button=position, what=what, submit=submit,
            done=done, prompt=prompt)

    @_member_request
    async def give_prompt(self, task_id: str, prompt: str, who: Requester) -> Job:
        """A job waiting in MODAL (a Remix-mode account, or new-api hiding the 21) gets its prompt."""
        job = await self._pressable(task_id, who, need_grid=False, finished=False)
        if job.status is not Status.MODAL:
            raise JobNotReady(f"task {task_id} is {job.status.value}, not waiting for a prompt", task_id=task_id)
        prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)
        await self.proxy.submit_modal(task_id, prompt)
        log.info("task %s: prompt given by user %s", task_id, who.user_id)
        tracked = self._tracked.get(task_id, job)
        await self._save(tracked, status=Status.SUBMITTED, prompt=prompt)
        return await self.store.get_job(task_id) or job

    async def _pressable(self, task_id: str, who: Requester, *, need_grid: bool, finished: bool = True) -> Job:
        job = await self.store.get_job(task_id)
        if job is None:
            raise JobNotFound(f"no job {task_id}", task_id=task_id)
        self.policy.check_press(who, job)
        if finished and (job.status is not Status.SUCCESS or (need_grid and not job.action.makes_grid)):
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        return job

    async def _submit_child(self, parent: Job, who: Requester, *, action: Action, index: int | None,
                            button: int | None, what: str, submit: Callable[[str], Awaitable[SubmitAccepted]],
                            done: Job | None, prompt: str | None = None) -> Job:
        """What every button press shares: once per button, the member's limits, a stored
        submission before the proxy hears of it, and the new job's message as a reply."""
        if done is not None:
            raise ButtonAlreadyUsed(f"{what} is task {done.task_id}",
                                    link=message_link(done.guild_id, done.channel_id, done.message_id))
        # A server button is itself (Upscale Subtle and Creative share UPSCALE 1); a button of our own
        # on a task without server buttons is its action and index.
        key = (parent.task_id, BUTTON_MARK, button) if button is not None else (parent.task_id, action.value, index)
        if key in self._pressing:
            raise ButtonBusy(f"{what} is being submitted")
        if prompt is not None:
            prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)
        self._pressing.add(key)
        try:
            async with self._reservation(who.user_id):
                submission = self._submission(action, prompt or parent.prompt, who, parent.channel_id,
                                              parent=parent, index=index, button=button)
                try:
                    await self.store.insert_submission(submission)
                except sqlite3.IntegrityError:  # one left by a crash, being recovered
                    raise ButtonBusy(f"{what} has a submission") from None
                accepted = await self._submitting(submission, submit(submission.nonce))
                log.info("task %s submitted: %s by user %s in channel %s", accepted.task_id, what, who.user_id,
                         parent.channel_id)
                job = await self._accept(self._new_job(accepted.task_id, submission, queue_ahead=accepted.queue_ahead))
        finally:
            self._pressing.discard(key)
        await self._refresh_used_buttons(parent.task_id)
        return job

    async def _api_style(self, parent: Job) -> str:
        """"change" or "action" for the bot's own buttons: as configured, or as learned."""
        configured = self.settings.proxy.api
        if configured != "auto":
            return configured
        if self._learned_api is None:
            self._learned_api = await self.store.meta_value(API_STYLE_KEY, lambda: "")
        if parent.buttons or self._learned_api == "action":
            return "action"
        return "change"

    async def _learn_api_style(self, style: str) -> None:
        log.warning("the proxy has no /submit/change; using /submit/action from now on")
        self._learned_api = style
        await self.store.set_meta(API_STYLE_KEY, style)

    async def _refresh_used_buttons(self, parent_task_id: str) -> None:
        """A button of this job was used: bring its message up to date (a write happens only if
        what it shows changed)."""
        refreshed = await self.store.get_job(parent_task_id)
        if refreshed is not None:
            await self.store.update_job(refreshed, ())
            self._schedule_delivery(refreshed)

    @contextlib.asynccontextmanager
    async def _reservation(self, user_id: int) -> AsyncIterator[None]:
        """Hold one of the member's job slots while a submit is under way (admins have no limit)."""
        limits = self.settings.limits
        # Take the slot before awaiting the counts, so concurrent submits see each other.
        pending = self._submitting_per_user.get(user_id, 0)
        self._submitting_per_user[user_id] = pending + 1
        try:
            if not self.policy.is_admin(user_id):
                if limits.max_running_per_user:
                    running = await self.store.count_unfinished(user_id) + pending
                    if running >= limits.max_running_per_user:
                        raise TooManyRunning(f"user {user_id} has {running} jobs running",
                                             limit=limits.max_running_per_user)
                if limits.max_jobs_per_user_per_day:
                    midnight = datetime.fromtimestamp(self._clock(), timezone.utc).replace(
                        hour=0, minute=0, second=0, microsecond=0).timestamp()
                    today = await self.store.count_created_since(user_id, midnight) + pending
                    if today >= limits.max_jobs_per_user_per_day:
                        raise DailyLimitReached(f"user {user_id} started {today} jobs today",
                                                limit=limits.max_jobs_per_user_per_day)
            yield
        finally:
            self._submitting_per_user[user_id] -= 1
            if not self._submitting_per_user[user_id]:
                del self._submitting_per_user[user_id]

    def _submission(self, action: Action, prompt: str, who: Requester, channel_id: int, *,
                    parent: Job | None = None, index: int | None = None, button: int | None = None) -> Submission:
        return Submission(
            nonce=f"mjbot:{uuid.uuid4().hex}", action=action.value, prompt=prompt, owner_id=who.user_id,
            guild_id=who.guild_id if parent is None else parent.guild_id, channel_id=channel_id,
            parent_task_id=parent.task_id if parent else None, parent_index=index, created_at=self._clock(),
            parent_button=button, language=who.language)

    async def _submitting(self, submission: Submission, submit: Awaitable[SubmitAccepted]) -> SubmitAccepted:
        """Await the proxy's answer. A refusal means there is nothing to recover: forget the
        submission. A timeout may hide an accepted task: keep it, and recovery will look for it."""
        try:
            return await submit
        except ProxyTimeout as exc:
            self._recovering = True
            raise SubmitUnconfirmed(str(exc), minutes=round(SUBMISSION_GIVE_UP_S / 60)) from exc
        except BaseException as exc:
            if isinstance(exc, ProxyError):
                self.events.submit_refused(exc)
            await self.store.delete_submission(submission.nonce)
            raise

    def _new_job(self, task_id: str, submission: Submission, **extra: object) -> Job:
        now = self._clock()
        return Job(task_id=task_id, action=Action(submission.action), prompt=submission.prompt,
                   owner_id=submission.owner_id, channel_id=submission.channel_id,
                   guild_id=submission.guild_id, parent_task_id=submission.parent_task_id,
                   parent_index=submission.parent_index, parent_button=submission.parent_button,
                   language=submission.language,
                   status=Status.SUBMITTED, nonce=submission.nonce,
                   created_at=now, updated_at=now, **extra)  # type: ignore[arg-type]

    async def _accept(self, job: Job) -> Job:
        """Store an accepted task before anyone hears of it, track it, and post its message."""
        try:
            await self.store.insert_job(job)
        except sqlite3.IntegrityError:
            # Another job already holds this button (pressed another way); ours was accepted
            # all the same, which the log must say, since the proxy will run it.
            log.error("task %s: accepted by the proxy but its button already has a job; not tracked", job.task_id)
            if job.nonce:
                await self.store.delete_submission(job.nonce)
            raise ButtonBusy(f"task {job.task_id}: its button already has a job") from None
        self._tracked[job.task_id] = job
        self.events.job_submitted(job)
        problem = await self._schedule_delivery(job)
        if isinstance(problem, (DeliveryForbidden, MessageGone)):
            raise problem
        return await self.store.get_job(job.task_id) or job

    # --- recovering submissions cut off by a crash ---------------------------------------------

    async def _recover_submissions(self) -> None:
        """Find tasks the proxy accepted but the bot never stored (it died, or the answer timed
        out), by the nonce each submit carries as ``state``; adopt them as jobs."""
        now = self._clock()
        # Submits of this process still waiting for their answer are not lost (yet).
        cutoff = max(self._started_at, now - self.settings.proxy.timeout_s - RECOVERY_GRACE_S)
        waiting = await self.store.submissions(before=float("inf"))
        if not waiting:
            self._recovering = False
            return
        pending = [submission for submission in waiting if submission.created_at < cutoff]
        if not pending:
            return
        try:
            tasks = {task.state: task for task in await self.proxy.recent_tasks() if task.state}
        except ProxyEndpointMissing:
            tasks = {}
            log.warning("the proxy cannot list its tasks; %d interrupted submissions cannot be checked",
                        len(pending))
        except ProxyError:
            # Not for ever: past the bound a submission is given up even while the list fails.
            await self._give_up_submissions([s for s in pending if now - s.created_at > SUBMISSION_GIVE_UP_S])
            raise
        for submission in pending:
            task = tasks.get(submission.nonce)
            if task is not None and await self.store.get_job(task.id) is not None:
                await self.store.delete_submission(submission.nonce)  # stored after all
            elif task is not None:
                log.warning("task %s: recovered a submission interrupted before its answer was stored "
                            "(%s by user %s in channel %s)", task.id, submission.action,
                            submission.owner_id, submission.channel_id)
                job = self._new_job(task.id, submission).with_changes(created_at=submission.created_at)
                try:
                    await self.store.insert_job(job)
                except sqlite3.IntegrityError:
                    log.error("task %s: recovered, but its button already has a job; dropped", task.id)
                    await self.store.delete_submission(submission.nonce)
                    continue
                self._tracked[job.task_id] = job
                await self._apply(job, task)
                self._schedule_delivery(await self.store.get_job(job.task_id) or job)
                if submission.parent_task_id:
                    await self._refresh_used_buttons(submission.parent_task_id)
            elif not tasks or now - submission.created_at > SUBMISSION_GIVE_UP_S:
                await self._give_up_submissions([submission])

    async def _give_up_submissions(self, submissions: Sequence[Submission]) -> None:
        """The proxy cannot confirm these: count them as never accepted, which frees their button."""
        for submission in submissions:
            log.warning("submission %s (%s by user %s in channel %s) could not be confirmed by the proxy; "
                        "counting it as never accepted", submission.nonce, submission.action,
                        submission.owner_id, submission.channel_id)
            await self.store.delete_submission(submission.nonce)

    # --- tracking ------------------------------------------------------------------------------

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
                delay = min(interval * 2 ** failures, MAX_BACKOFF_S) * random.uniform(0.8, 1.2)
                log.warning("tracking %d tasks failed (%s: %s); retrying in %.1fs",
                            len(self._tracked), type(exc).__name__, exc, delay)
            except Exception:
                log.exception("tracker tick crashed; continuing")
                delay = interval
            await wait_event(self._stopping, delay)

    async def tick(self) -> None:
        """One pass over every unfinished job: ask the proxy, store changes, show them."""
        started = time.perf_counter()
        try:
            if self._recovering:
                try:
                    await self._recover_submissions()
                except ProxyError as exc:  # not a reason to stop tracking the others
                    log.warning("checking interrupted submissions failed (%s: %s); will retry",
                                type(exc).__name__, exc)
            await self._expire_overdue()
            ids = self._due_for_poll()
            seen: set[str] = set()
            # A batch at a time, each applied before the next is asked for: the loop is never held
            # for more than one batch's work, however many jobs are tracked.
            for start in range(0, len(ids), LIST_BATCH_SIZE):
                tasks = await self._poll(ids[start:start + LIST_BATCH_SIZE])
                self.events.proxy_answered(None)
                seen.update(task.id for task in tasks)
                self._answered(tasks)
                await self._apply_all(tasks)
            missing = [task_id for task_id in ids if task_id not in seen and task_id in self._tracked]
            if missing:
                await self._recheck_missing(missing)
            self._retry_failed_deliveries()
        finally:
            self.events.tracker_ticked(time.perf_counter() - started, len(self._tracked))
            async with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()

    def _due_for_poll(self) -> list[str]:
        """Every tracked task, except those that get pushes and were polled recently: for them
        polling is only the safety net for a lost delivery."""
        now = self._clock()
        slow = self.settings.tracking.poll_interval_s * PUSHED_POLL_FACTOR
        due = [task_id for task_id in self._tracked
               if task_id not in self._pushed or now - self._last_polled.get(task_id, 0.0) >= slow]
        for task_id in due:
            self._last_polled[task_id] = now
        return due

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
                log.warning("confirming pushes of %d tasks failed (%s: %s); polling will catch up",
                            len(ids), type(exc).__name__, exc)
                continue
            now = self._clock()
            for task in tasks:
                self._pushed.add(task.id)
                self._last_polled[task.id] = now
            self._answered(tasks)
            await self._apply_all(tasks)

    def _answered(self, tasks: Sequence[ProxyTask]) -> None:
        """The proxy answered for these tasks: they are not missing, and a finished one's image is
        fetched now, not after every write queued before its message."""
        for task in tasks:
            self._misses.pop(task.id, None)
            job = self._tracked.get(task.id)
            if job is not None and task.status is Status.SUCCESS and task.image_url and not task.is_video:
                self._prefetch_image(job.with_changes(image_url=task.image_url))

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
                await self._finish_locally(self._tracked[task_id], local_reason("lost"))

    async def _expire_overdue(self) -> None:
        deadline = self.settings.tracking.deadline_s
        now = self._clock()
        for job in list(self._tracked.values()):
            if now - job.created_at > deadline:
                log.warning("task %s: not finished after %ss; marking it failed", job.task_id, deadline)
                await self._finish_locally(job, local_reason("deadline", duration=duration_text(deadline)))

    async def _finish_locally(self, job: Job, reason: str) -> None:
        await self._save(job, status=Status.FAILURE, fail_reason=reason, progress=None)

    async def _apply(self, job: Job, task: ProxyTask) -> None:
        """Record what the proxy says about ``job``; show it if what the message shows changed."""
        await self._apply_all([task])

    async def _apply_all(self, tasks: Sequence[ProxyTask]) -> None:
        """Record what the proxy says about tracked jobs, in one transaction, then show what
        changed. Idempotent and order-proof: pushes arrive twice or out of order, and a gateway may
        answer a poll with stale data, so an update older than what we know changes nothing."""
        saves = []
        for task in tasks:
            job = self._tracked.get(task.id)  # None: finished meanwhile (a push and a poll raced)
            changes = self._changes(job, task) if job is not None else None
            if changes:
                saves.append(self._before_save(job, changes))
        if saves:
            await self.store.update_jobs([(updated, changes) for _, updated, changes in saves])
        for job, updated, changes in saves:
            self._after_save(job, updated, changes)

    def _changes(self, job: Job, task: ProxyTask) -> dict[str, object] | None:
        if progress_rank(task.status, task.progress) < progress_rank(job.status, job.progress):
            return None
        changes: dict[str, object] = {}
        status = task.status
        if status is not job.status and status is not Status.UNKNOWN:
            changes["status"] = status
        if task.progress != job.progress:
            changes["progress"] = task.progress
        if status is Status.SUCCESS and task.is_video:
            # Showing videos is not built yet: end the job clearly rather than attach an .mp4 as .png.
            status, changes["status"] = Status.FAILURE, Status.FAILURE
            task = task.model_copy(update={"fail_reason": local_reason("video"), "image_url": None})
        if (task.image_url or status.finished) and image_identity(task.image_url) != image_identity(job.image_url):
            changes["image_url"] = task.image_url
        if task.prompt_en and task.prompt_en != job.prompt_en:
            changes["prompt_en"] = task.prompt_en
        if task.final_prompt and task.final_prompt != job.final_prompt:
            changes["final_prompt"] = task.final_prompt
        if task.buttons and task.buttons != job.buttons:
            changes["buttons"] = task.buttons
        if status in (Status.FAILURE, Status.CANCEL):
            reason = task.fail_reason or task.description or "the proxy gave no reason"
            if reason != job.fail_reason:
                changes["fail_reason"] = reason
        if job.queue_ahead and status not in (Status.NOT_START, Status.SUBMITTED, Status.UNKNOWN):
            changes["queue_ahead"] = None
        if changes and task.image_url and task.image_url != job.image_url:
            changes["image_url"] = task.image_url  # with any other change, the freshest link
        return changes

    async def _save(self, job: Job, **changes: object) -> None:
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
            log.info("task %s finished: %s%s", job.task_id, updated.status.value,
                     f" ({updated.fail_reason})" if updated.fail_reason else "")
        elif job.task_id in self._tracked:
            self._tracked[job.task_id] = updated
        return job, updated, changes

    def _after_save(self, job: Job, updated: Job, changes: dict[str, object]) -> None:
        """Once SQLite has it: tell the observers, and show it if what the message shows changed."""
        if "finished_at" in changes:
            self.events.job_finished(updated)
        shown = Display.of(updated)
        if shown != Display.of(job):  # what the message shows changed
            self._schedule_delivery(updated, shown)

    # --- delivering to the view ----------------------------------------------------------------

    def _schedule_delivery(self, job: Job, display: Display | None = None) -> asyncio.Future[DeliveryError | None]:
        """Bring the job's message up to date, within its channel's write budget. A job already
        waiting is queued once: the write reads the latest state when its turn comes, so only that
        state is sent. New messages and final states go first."""
        phase = (display or Display.of(job)).phase
        urgent = job.message_id is None or phase in (Phase.DONE, Phase.FAILED)
        if phase is Phase.DONE:
            self._prefetch_image(job)
        lane = self.view.lane(job, self._origins.get(job.task_id)) if self.view is not None else job.channel_id
        return self._writes.submit(lane, job.task_id, urgent=urgent)

    def _retry_failed_deliveries(self) -> None:
        """Each tick, retry messages whose last delivery failed for a passing reason."""
        retry, self._retry = self._retry, {}
        for job in retry.values():
            self._schedule_delivery(job)

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
            return None, False
        display = Display.of(job)
        signature = display.signature()
        if signature == job.shown:
            return None, False
        image = None
        if display.phase is Phase.DONE and job.image_url and not job.shows_final:
            image = await self._final_image(job)
            if image is None and self._image_failures.get(task_id, 0) < IMAGE_DOWNLOAD_ATTEMPTS:
                self._retry[task_id] = job
                return None, False
        reply_to = None
        if job.message_id is None:
            job = await self._before_posting(job)
        if job.parent_task_id and job.message_id is None:
            parent = await self.store.get_job(job.parent_task_id)
            reply_to = parent.message_id if parent else None
        try:
            message_id = await self.view.show(job, display, image=image, reply_to=reply_to,
                                              origin=self._origins.pop(task_id, None) if job.message_id is None else None)
        except (MessageGone, DeliveryForbidden) as exc:
            log.warning("task %s: no more updates to its message in channel %s (%s)", task_id, job.channel_id, exc)
            await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            return exc, True
        except DeliveryError as exc:
            failures = self._delivery_failures.get(task_id, 0) + 1
            self._delivery_failures[task_id] = failures
            if failures >= MAX_DELIVERY_ATTEMPTS:
                log.error("task %s: updating its message failed %d times (%s); giving up on it",
                          task_id, failures, exc)
                await self.store.update_job(job.with_changes(message_gone=True), ("message_gone",))
            else:
                log.warning("task %s: updating its message failed (%s); will retry", task_id, exc)
                self._retry[task_id] = job
            return exc, True
        fields = ["shown"] if message_id == job.message_id else ["shown", "message_id"]
        await self.store.update_job(job.with_changes(shown=signature, message_id=message_id), fields)
        if task_id in self._tracked:
            self._tracked[task_id] = self._tracked[task_id].with_changes(shown=signature, message_id=message_id)
        self._image_failures.pop(task_id, None)
        self._delivery_failures.pop(task_id, None)
        self._images.pop(task_id, None)
        return None, True

    async def _before_posting(self, job: Job) -> Job:
        """Before posting a job's message: if an earlier attempt may have posted it (the process
        died, or Discord failed, before its id was stored), adopt that message instead of posting
        a second one. Otherwise note that posting begins."""
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

    def _prefetch_image(self, job: Job) -> None:
        """Start downloading a final image as soon as it is known, not when the channel's write
        budget lets its message be edited."""
        if job.image_url and job.task_id not in self._images and not job.shows_final:
            self._images[job.task_id] = asyncio.create_task(self._download_image(job))

    async def final_image(self, job: Job) -> ImageFile | None:
        """The job's final image from the proxy's link (None if it cannot be had)."""
        return await self._download_image(job) if job.image_url else None

    async def _final_image(self, job: Job) -> ImageFile | None:
        fetch = self._images.pop(job.task_id, None)
        image = await fetch if fetch is not None else None
        return image or await self._download_image(job)

    async def _download_image(self, job: Job) -> ImageFile | None:
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


_STATUS_RANK = {
    Status.UNKNOWN: 0, Status.NOT_START: 0, Status.SUBMITTED: 1, Status.MODAL: 1, Status.IN_PROGRESS: 2,
    Status.SUCCESS: 3, Status.FAILURE: 3, Status.CANCEL: 3,
}


def progress_rank(status: Status, progress: str | None) -> tuple[int, float]:
    """How far along a task is: status first, then the percentage (when it is one)."""
    percent = -1.0
    if progress:
        with contextlib.suppress(ValueError):
            percent = float(progress.strip().rstrip("%"))
    return _STATUS_RANK.get(status, 0), percent


def _button_for(buttons: Sequence[TaskButton], action: Action, index: int | None) -> int | None:
    """The position of the server's button that does ``action``/``index`` (U2 → upsample::2)."""
    for position, button in enumerate(buttons):
        kind, number = button.change()
        if button.is_plain_change and kind is action and (action is Action.REROLL or number == index):
            return position
    return None


def _image_filename(job: Job, content_type: str | None) -> str:
    extension = {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(
        (content_type or "").split(";")[0].strip(), "png")
    return f"{job.action.value.lower()}_{job.task_id}.{extension}"
