"""Submitting new jobs (imagine, describe, blend), and what every submit shares, button presses
included (see ``press``): it holds one of the member's job slots, stores a submission before the
proxy hears of it (so a crash in between can be recovered), and turns the accepted task into a
tracked job whose message is then posted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone

from bot.core.access import AccessPolicy, Requester
from bot.core.config import Settings
from bot.core.credits import price_name
from bot.core.errors import (
    ButtonBusy,
    DeliveryForbidden,
    DescribeNeedsOneImage,
    InvalidSubmit,
    JobNotFound,
    JobNotReady,
    LinkUnsupported,
    MessageGone,
    ProxyEndpointMissing,
    ProxyError,
    ProxyTimeout,
    ReferenceTwice,
    ReferenceUploadUnsupported,
    ShortenUnsupported,
    SubmitUnconfirmed,
    TooManyImages,
    UserInputError,
)
from bot.core.events import JobEvents
from bot.core.models import (
    Action,
    ImageFile,
    Job,
    Status,
    Submission,
    SubmitAccepted,
    TaskButton,
    offered_prompts,
)
from bot.core.preferences import apply as apply_preferences
from bot.core.prompt import check_image_link, check_prompt, parameter_names
from bot.jobs.deliver import Delivery
from bot.jobs.recover import SUBMISSION_GIVE_UP_S
from bot.jobs.track import Tracker
from bot.proxy.client import ProxyClient
from bot.storage import Conflict, MemberLimits, Store
from bot.storage.ledger import Charge

log = logging.getLogger(__name__)

MAX_PROMPT_IMAGES = 3  # /imagine's image, image2, image3
REFERENCE_PARAMETERS = ("sref", "cref", "oref")


class Submitter:
    """Owns what submitting needs to remember: each member's submits under way (their job slots),
    and the push URL to hand the proxy."""

    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        policy: AccessPolicy,
        tracker: Tracker,
        delivery: Delivery,
        *,
        clock: Callable[[], float],
        events: JobEvents,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.policy = policy
        self.tracker = tracker
        self.delivery = delivery
        self.events = events
        self._clock = clock
        self.notify_hook: str | None = None  # set when the push receiver runs

    def now(self) -> float:
        return self._clock()

    # --- new jobs ------------------------------------------------------------------------------

    async def imagine(
        self,
        prompt: str,
        who: Requester,
        *,
        images: Sequence[ImageFile] = (),
        references: Mapping[str, ImageFile] | None = None,
        origin: object | None = None,
    ) -> Job:
        """``images`` go with the prompt (``base64Array``); ``references`` ("sref", "cref", "oref")
        are uploaded to the server for a link each, added to the prompt as ``--sref <link>``."""
        self.policy.check_start(who)
        banned = self.settings.access.banned_words
        # The member's options, suffix and settings first: the message shows what is sent.
        preferences = await self.store.preferences.get(who.guild_id or 0, who.user_id)
        prompt = check_prompt(apply_preferences(prompt, preferences), banned_words=banned)
        mode = preferences.speed if preferences.speed in self.settings.proxy.speeds else None
        if len(images) > MAX_PROMPT_IMAGES:
            raise TooManyImages(f"{len(images)} images with a prompt")
        if references:
            prompt = check_prompt(prompt + await self._reference_links(prompt, references), banned_words=banned)
        urls = [image.as_data_url() for image in images]
        return await self.submit_new(
            Action.IMAGINE,
            prompt,
            who,
            lambda nonce: self.proxy.submit_imagine(prompt, urls, state=nonce, notify_hook=self.notify_hook, mode=mode),
            origin=origin,
        )

    async def _reference_links(self, prompt: str, references: Mapping[str, ImageFile]) -> str:
        """`` --sref <link>`` for each attached reference, its link from the server's upload."""
        present = parameter_names(prompt)
        for name in references:
            if name not in REFERENCE_PARAMETERS:
                raise UserInputError(f"unknown reference --{name}")
            if name in present:
                raise ReferenceTwice(f"--{name} in the prompt and attached", parameter=f"--{name}")
        names = list(references)
        try:
            links = await self.proxy.upload_images([references[name].as_data_url() for name in names])
        except ProxyEndpointMissing as exc:
            raise ReferenceUploadUnsupported(
                f"the proxy has no image upload: {exc}", parameters=" ".join(f"--{n}" for n in names)
            ) from None
        return "".join(f" --{name} {link}" for name, link in zip(names, links, strict=True))

    async def describe(
        self, image: ImageFile | None, who: Requester, *, link: str | None = None, origin: object | None = None
    ) -> Job:
        """Four prompts for an attached image, or for an image ``link`` where the server takes one
        (trueai; novicezk reads only base64 and refuses with 'base64不能为空')."""
        self.policy.check_start(who)
        if (image is None) == (link is None):
            raise DescribeNeedsOneImage("an image or a link")
        source = image.as_data_url() if image is not None else check_image_link(link or "")

        async def submit(nonce: str) -> SubmitAccepted:
            try:
                return await self.proxy.submit_describe(source, state=nonce, notify_hook=self.notify_hook)
            except InvalidSubmit as exc:
                if link is not None and "base64" in (exc.description or ""):
                    raise LinkUnsupported(f"the proxy wants base64: {exc.description}") from None
                raise

        return await self.submit_new(Action.DESCRIBE, "", who, submit, origin=origin)

    async def shorten(self, prompt: str, who: Requester, *, origin: object | None = None) -> Job:
        """Shorter versions of a prompt (trueai, new-api), each with a button that imagines it."""
        self.policy.check_start(who)
        prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)

        async def submit(nonce: str) -> SubmitAccepted:
            try:
                return await self.proxy.submit_shorten(prompt, state=nonce, notify_hook=self.notify_hook)
            except ProxyEndpointMissing as exc:
                raise ShortenUnsupported(f"the proxy has no /submit/shorten: {exc}") from None

        return await self.submit_new(Action.SHORTEN, prompt, who, submit, origin=origin)

    async def blend(
        self, images: Sequence[ImageFile], dimensions: str, who: Requester, *, origin: object | None = None
    ) -> Job:
        self.policy.check_start(who)
        if not 2 <= len(images) <= 5:
            raise UserInputError(f"blend of {len(images)} images")
        urls = [image.as_data_url() for image in images]
        return await self.submit_new(
            Action.BLEND,
            "",
            who,
            lambda nonce: self.proxy.submit_blend(urls, dimensions, state=nonce, notify_hook=self.notify_hook),
            origin=origin,
        )

    async def described_prompt(self, task_id: str, number: int, who: Requester) -> str:
        """Prompt ``number`` of a finished /describe or /shorten answer in the member's guild."""
        job = await self.store.get_job(task_id)
        if job is None or job.guild_id != who.guild_id:
            raise JobNotFound(f"no describe job {task_id} here", task_id=task_id)
        prompts = offered_prompts(job)
        if not prompts or job.status is not Status.SUCCESS or not 1 <= number <= len(prompts):
            raise JobNotReady(f"job {task_id} has no prompt {number}", task_id=task_id)
        return prompts[number - 1]

    async def submit_new(
        self,
        action: Action,
        prompt: str,
        who: Requester,
        submit: Callable[[str], Awaitable[SubmitAccepted]],
        *,
        origin: object | None = None,
    ) -> Job:
        submission = self.submission(action, prompt, who, who.channel_id)
        await self.store.insert_submission(submission, self.limits_for(who.user_id), self.charge_for(who, action))
        accepted = await self.submitting(submission, submit(submission.nonce))
        log.info(
            "task %s submitted: %s by user %s in guild %s channel %s",
            accepted.task_id,
            action.value.lower(),
            who.user_id,
            who.guild_id,
            who.channel_id,
        )
        if origin is not None:
            self.delivery.remember_origin(accepted.task_id, origin)  # used for its first message only
        return await self.accept_task(submission, accepted)

    # --- what every submit shares --------------------------------------------------------------

    def limits_for(self, user_id: int) -> MemberLimits | None:
        """What the member may still start; the database checks it as their submission is written,
        counting their unfinished jobs and submissions under way in every process (admins: none)."""
        limits = self.settings.limits
        if self.policy.is_admin(user_id) or not (limits.max_running_per_user or limits.max_jobs_per_user_per_day):
            return None
        midnight = (
            datetime.fromtimestamp(self._clock(), timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        ).timestamp()
        return MemberLimits(
            max_running=limits.max_running_per_user,
            max_per_day=limits.max_jobs_per_user_per_day,
            day_start=midnight,
        )

    def charge_for(self, who: Requester, action: Action, button: TaskButton | None = None) -> Charge | None:
        """What the job costs the member, held from their credits with its submission (None: credits
        are off). Admins are never refused, but what they spend is recorded like anyone's."""
        credits = self.settings.credits
        if not credits.enabled:
            return None
        name = price_name(action, button)
        return Charge(
            action=name,
            price=credits.price_of(name),
            allowance=credits.allowance_for(who.role_ids, who.guild_id),
            starting_balance=credits.starting_balance,
            overdraft=self.policy.is_admin(who.user_id),
            unit=credits.unit,
        )

    def submission(
        self,
        action: Action,
        prompt: str,
        who: Requester,
        channel_id: int,
        *,
        parent: Job | None = None,
        index: int | None = None,
        button: int | None = None,
    ) -> Submission:
        return Submission(
            nonce=f"mjbot:{uuid.uuid4().hex}",
            action=action.value,
            prompt=prompt,
            owner_id=who.user_id,
            guild_id=who.guild_id if parent is None else parent.guild_id,
            channel_id=channel_id,
            parent_task_id=parent.task_id if parent else None,
            parent_index=index,
            created_at=self._clock(),
            parent_button=button,
            language=who.language,
        )

    async def submitting(self, submission: Submission, submit: Awaitable[SubmitAccepted]) -> SubmitAccepted:
        """Await the proxy's answer. A refusal means there is nothing to recover: forget the
        submission. A timeout may hide an accepted task: keep it, and recovery will look for it."""
        try:
            return await submit
        except ProxyTimeout as exc:
            self.tracker.submission_unconfirmed()
            raise SubmitUnconfirmed(str(exc), minutes=round(SUBMISSION_GIVE_UP_S / 60)) from exc
        except asyncio.CancelledError:
            # The request may have reached the proxy: kept, like a lost answer, for recovery to
            # find or give up (and refund).
            self.tracker.submission_unconfirmed()
            raise
        except BaseException as exc:
            if isinstance(exc, ProxyError):
                self.events.submit_refused(exc)
            # Nothing was submitted: the member gets their credits back.
            await self.store.delete_submission(
                submission.nonce, refund=f"refused: {type(exc).__name__}", now=self._clock()
            )
            raise

    async def accept_task(self, submission: Submission, accepted: SubmitAccepted) -> Job:
        """The proxy accepted ``submission``: it becomes a job (see :meth:`accept`)."""
        return await self.accept(submission.to_job(accepted.task_id, self._clock(), queue_ahead=accepted.queue_ahead))

    async def accept(self, job: Job) -> Job:
        """Store an accepted task before anyone hears of it, track it, and post its message."""
        try:
            await self.store.insert_job(job)
        except Conflict:
            # Another job already holds this button (pressed another way); ours was accepted
            # all the same, which the log must say, since the proxy will run it.
            log.error("task %s: accepted by the proxy but its button already has a job; not tracked", job.task_id)
            if job.nonce:
                await self.store.delete_submission(job.nonce, refund="its button already has a job", now=self._clock())
            raise ButtonBusy(f"task {job.task_id}: its button already has a job") from None
        self.tracker.follow(job)
        self.events.job_submitted(job)
        problem = await self.delivery.schedule(job)
        if isinstance(problem, (DeliveryForbidden, MessageGone)):
            raise problem
        return await self.store.get_job(job.task_id) or job
