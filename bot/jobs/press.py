"""Pressing buttons under a job's message: the bot's own U/V/🔄 (``change``), the server's own
buttons (``press``), and a prompt for a job waiting in MODAL. Each button submits once, however often
it is pressed; the submit itself is :class:`Submitter`'s, like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.core.access import AccessPolicy, Requester
from bot.core.config import Settings
from bot.core.errors import (
    ButtonAlreadyUsed,
    ButtonBusy,
    ButtonInvalid,
    ButtonNotRelayed,
    ButtonUnsupported,
    DeliveryForbidden,
    JobNotFound,
    JobNotReady,
    MessageGone,
    ProxyActionNotAllowed,
    ProxyEndpointMissing,
    SubmitRefused,
)
from bot.core.models import BUTTON_MARK, Action, Job, Status, SubmitAccepted, TaskButton, message_link
from bot.core.prompt import check_prompt
from bot.jobs.deliver import Delivery
from bot.jobs.submit import Submitter
from bot.jobs.track import Tracker
from bot.jobs.video import UNKNOWN_ACTION, Videos
from bot.proxy.client import ProxyClient
from bot.storage import Conflict, Store

log = logging.getLogger(__name__)

API_STYLE_KEY = "proxy_api"  # meta key: the api style learned for the bot's own buttons


class Presser:
    """Owns the buttons being submitted now and the api style learned for the bot's own buttons."""

    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        policy: AccessPolicy,
        submitter: Submitter,
        tracker: Tracker,
        delivery: Delivery,
        videos: Videos,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.policy = policy
        self.submitter = submitter
        self.tracker = tracker
        self.delivery = delivery
        self.videos = videos
        self._learned_api: str | None = None  # "change"/"action" once learned (kept in SQLite)
        self._pressing: set[tuple[str, str, int | None]] = set()  # buttons being submitted now

    async def change(self, parent_task_id: str, action: Action, index: int | None, who: Requester) -> Job:
        if action not in (Action.UPSCALE, Action.VARIATION, Action.REROLL):
            raise ButtonInvalid(f"not a change action: {action}")
        index = 0 if action is Action.REROLL else index
        if action is not Action.REROLL and index not in (1, 2, 3, 4):
            raise ButtonInvalid(f"index {index} out of 1..4")
        parent = await self._pressable(parent_task_id, who, need_grid=True)
        position = _button_for(parent.buttons, action, index)
        what = f"{action.value} {index} of {parent_task_id}"
        remix = await self._remix(who, action)

        async def submit(nonce: str) -> SubmitAccepted:
            if await self._api_style(parent) == "change":
                try:
                    return await self.proxy.submit_change(
                        parent_task_id, action, index, state=nonce, notify_hook=self.submitter.notify_hook
                    )
                except ProxyEndpointMissing:
                    if self.settings.proxy.api == "auto":
                        await self._learn_api_style("action")
                    if position is None:
                        raise
            if position is None:
                raise ProxyEndpointMissing(f"{what}: the server wants /submit/action, but the task lists no button")
            return await self.proxy.submit_action(
                parent_task_id,
                parent.buttons[position].custom_id,
                state=nonce,
                notify_hook=self.submitter.notify_hook,
                remix=remix,
            )

        # On a task that lists buttons this is one of them: record which, so it shows as used.
        return await self._submit_child(
            parent,
            who,
            action=action,
            index=index,
            button=position,
            what=what,
            submit=submit,
            done=await (
                self.store.child_of_button(parent_task_id, position)
                if position is not None
                else self.store.child_job(parent_task_id, action, index)
            ),
            splittable=action is Action.UPSCALE,
        )

    async def _split_grid(
        self, parent: Job, index: int | None, position: int | None, who: Requester, why: Exception
    ) -> Job:
        """U1-U4 when the server's upscale is unavailable (no such endpoint, or a gateway key not
        allowed mj_upscale): the grid's own image ``index`` (trueai's ``imageUrls``), posted as the
        upscale's result. No proxy task, so nothing to charge or track; one per button all the same."""
        assert index is not None
        log.info("task %s: upscale %d unavailable (%s); posting the grid's own image", parent.task_id, index, why)
        now = self.submitter.now()
        job = Job(
            task_id=f"{parent.task_id}-u{index}",  # what a button's custom_id can carry
            action=Action.UPSCALE,
            prompt=parent.prompt,
            owner_id=who.user_id,
            channel_id=parent.channel_id,
            guild_id=parent.guild_id,
            parent_task_id=parent.task_id,
            parent_index=index,
            parent_button=position,
            language=who.language,
            status=Status.SUCCESS,
            image_url=parent.grid_images[index - 1],
            created_at=now,
            updated_at=now,
            finished_at=now,
        )
        try:
            await self.store.insert_job(job)
        except Conflict:
            done = await self.store.get_job(job.task_id)
            link = message_link(parent.guild_id, parent.channel_id, done.message_id if done else None)
            raise ButtonAlreadyUsed(f"upscale {index} of {parent.task_id} is split already", link=link) from None
        problem = await self.delivery.schedule(job)
        if isinstance(problem, (DeliveryForbidden, MessageGone)):
            raise problem
        await self.delivery.refresh_used_buttons(parent.task_id)
        return await self.store.get_job(job.task_id) or job

    async def press(self, parent_task_id: str, position: int, who: Requester, *, prompt: str | None = None) -> Job:
        parent = await self._pressable(parent_task_id, who, need_grid=False)
        if not 0 <= position < len(parent.buttons):
            raise ButtonInvalid(f"task {parent_task_id} has no button {position}")
        button = parent.buttons[position]
        if button.needs_mask:
            raise ButtonUnsupported(f"{button.custom_id} needs a mask")
        action, index = button.change()
        if action is Action.REROLL:
            index = 0
        what = f"button {position} ({button.label or button.emoji or button.custom_id[:40]}) of {parent_task_id}"
        # U1-U4, V1-V4 and 🔄 are the same buttons whether pressed as ours or as the server's.
        done = await self.store.child_of_button(parent_task_id, position)
        if done is None and index is not None and button.is_plain_change:
            done = await self.store.child_job(parent_task_id, action, index)
        remix = prompt is None and await self._remix(who, action)

        async def submit(nonce: str) -> SubmitAccepted:
            try:
                accepted = await self.proxy.submit_action(
                    parent_task_id, button.custom_id, state=nonce, notify_hook=self.submitter.notify_hook, remix=remix
                )
            except SubmitRefused as exc:
                if button.animates is not None:
                    return await self.videos.animate_instead(parent, button.animates, exc, nonce)
                if UNKNOWN_ACTION in (exc.description or ""):
                    # new-api lists the server's buttons but cannot press this one (distributor.go).
                    raise ButtonNotRelayed(f"{button.custom_id}: {exc.description}") from None
                raise
            if prompt is not None:
                # The new task waits in MODAL for its prompt (trueai answers 21; new-api says 1).
                await self.proxy.submit_modal(accepted.task_id, prompt)
            return accepted

        return await self._submit_child(
            parent,
            who,
            action=action,
            index=index,
            button=position,
            what=what,
            submit=submit,
            done=done,
            prompt=prompt,
            pressed=button,
            splittable=button.is_plain_change and action is Action.UPSCALE,
        )

    async def give_prompt(self, task_id: str, prompt: str, who: Requester) -> Job:
        job = await self._pressable(task_id, who, need_grid=False, finished=False)
        if job.status is not Status.MODAL:
            raise JobNotReady(f"task {task_id} is {job.status.value}, not waiting for a prompt", task_id=task_id)
        prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)
        await self.proxy.submit_modal(task_id, prompt)
        log.info("task %s: prompt given by user %s", task_id, who.user_id)
        tracked = self.tracker.tracked(task_id) or job
        await self.tracker.save(tracked, status=Status.SUBMITTED, prompt=prompt)
        return await self.store.get_job(task_id) or job

    async def _pressable(self, task_id: str, who: Requester, *, need_grid: bool, finished: bool = True) -> Job:
        job = await self.store.get_job(task_id)
        if job is None:
            raise JobNotFound(f"no job {task_id}", task_id=task_id)
        self.policy.check_press(who, job)
        if finished and (job.status is not Status.SUCCESS or (need_grid and not job.action.makes_grid)):
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        return job

    async def _submit_child(
        self,
        parent: Job,
        who: Requester,
        *,
        action: Action,
        index: int | None,
        button: int | None,
        what: str,
        submit: Callable[[str], Awaitable[SubmitAccepted]],
        done: Job | None,
        prompt: str | None = None,
        pressed: TaskButton | None = None,
        splittable: bool = False,
    ) -> Job:
        """What every button press shares: once per button, the member's limits, a stored
        submission before the proxy hears of it, and the new job's message as a reply.
        ``splittable``: an upscale, which the grid's own image stands in for when the server cannot
        make it (see :meth:`_split_grid`)."""
        if done is not None:
            raise ButtonAlreadyUsed(
                f"{what} is task {done.task_id}", link=message_link(done.guild_id, done.channel_id, done.message_id)
            )
        # A server button is itself (Upscale Subtle and Creative share UPSCALE 1); a button of our own
        # on a task without server buttons is its action and index.
        key = (parent.task_id, BUTTON_MARK, button) if button is not None else (parent.task_id, action.value, index)
        if key in self._pressing:
            raise ButtonBusy(f"{what} is being submitted")
        if prompt is not None:
            prompt = check_prompt(prompt, banned_words=self.settings.access.banned_words)
        self._pressing.add(key)
        try:
            submission = self.submitter.submission(
                action, prompt or parent.prompt, who, parent.channel_id, parent=parent, index=index, button=button
            )
            try:
                await self.store.insert_submission(
                    submission, self.submitter.limits_for(who.user_id), self.submitter.charge_for(who, action, pressed)
                )
            except Conflict:  # one left by a crash, being recovered
                raise ButtonBusy(f"{what} has a submission") from None
            try:
                accepted = await self.submitter.submitting(submission, submit(submission.nonce))
            except (ProxyEndpointMissing, ProxyActionNotAllowed) as exc:
                if not (splittable and parent.grid_images and index):
                    raise
                # Refunded and forgotten by submitting(): the grid's own image instead.
                return await self._split_grid(parent, index, button, who, exc)
            log.info(
                "task %s submitted: %s by user %s in channel %s",
                accepted.task_id,
                what,
                who.user_id,
                parent.channel_id,
            )
            job = await self.submitter.accept_task(submission, accepted)
        finally:
            self._pressing.discard(key)
        await self.delivery.refresh_used_buttons(parent.task_id)
        return job

    async def _remix(self, who: Requester, action: Action) -> bool:
        """Whether the member's Remix asks for a prompt before this press: trueai waits in MODAL
        for a variation, reroll, pan or video (TaskService.SubmitAction), never for an upscale."""
        if action not in (Action.VARIATION, Action.REROLL, Action.PAN, Action.VIDEO):
            return False
        return (await self.store.preferences.get(who.guild_id or 0, who.user_id)).remix

    async def _api_style(self, parent: Job) -> str:
        """ "change" or "action" for the bot's own buttons: as configured, or as learned."""
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


def _button_for(buttons: Sequence[TaskButton], action: Action, index: int | None) -> int | None:
    """The position of the server's button that does ``action``/``index`` (U2 → upsample::2)."""
    for position, button in enumerate(buttons):
        kind, number = button.change()
        if button.is_plain_change and kind is action and (action is Action.REROLL or number == index):
            return position
    return None
