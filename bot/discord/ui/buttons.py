"""The buttons on job messages.

Each button's custom_id carries everything a click needs (``mj:<kind>:<index>:<task id>``) and the
class is registered with ``Bot.add_dynamic_items``, so a button on a message posted before a restart
still reaches its callback. Kinds: ``u``/``v``/``r`` the bot's own U1-U4 / V1-V4 / 🔄 (index 1-4);
``b`` the server's own button at that position of the task's ``buttons`` (its customId can be longer
than Discord's 100 characters, so it stays in SQLite); ``p`` asks for a prompt (task in MODAL);
``d`` imagines prompt 1-5 of a /describe or /shorten answer; ``x`` deletes the job's message; ``c``
cancels a running job (where the server can).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING

import discord

from bot.core.access import Requester
from bot.core.errors import ButtonInvalid, JobNotFound
from bot.core.i18n import t
from bot.core.models import BUTTON_MARK, PROMPT_MARKS, Action, TaskButton
from bot.core.text import MAX_LABEL, clip
from bot.discord.ui.emoji import button_emoji
from bot.discord.ui.interactions import (
    PromptModal,
    answered,
    interaction_language,
    report_failure,
    requester,
)

if TYPE_CHECKING:
    from bot.core.models import Job
    from bot.discord.app import MjBot
    from bot.jobs import JobService

KIND_ACTION = {"u": Action.UPSCALE, "v": Action.VARIATION, "r": Action.REROLL}
ACTION_KIND = {action: kind for kind, action in KIND_ACTION.items()}
SERVER_BUTTON, PROMPT_BUTTON, DESCRIBED_BUTTON, DELETE_BUTTON, CANCEL_BUTTON = "b", "p", "d", "x", "c"
CUSTOM_ID_PREFIX = "mj"
MAX_ROW_WIDTH, MAX_ROWS = 5, 5

_KIND, _INDEX, _TASK_ID = r"[uvrbpdxc]", r"[0-9]{1,2}", r"[A-Za-z0-9_-]{1,80}"
JOB_BUTTON_TEMPLATE = rf"{CUSTOM_ID_PREFIX}:(?P<kind>{_KIND}):(?P<index>{_INDEX}):(?P<task_id>{_TASK_ID})"
# Ours by its prefix, but in no form we know (an older version's, or tampered with): every id
# JobButton does not take. Without a handler such a click would get "This interaction failed".
STALE_BUTTON_TEMPLATE = rf"{CUSTOM_ID_PREFIX}:(?!{_KIND}:{_INDEX}:{_TASK_ID}$).*"


def custom_id(kind: str, index: int, task_id: str) -> str:
    return f"{CUSTOM_ID_PREFIX}:{kind}:{index}:{task_id}"


def _style(used: bool, server_style: int = 2) -> discord.ButtonStyle:
    # Like Midjourney: a used button stays, in another colour.
    if used:
        return discord.ButtonStyle.primary
    return discord.ButtonStyle(server_style) if server_style in (1, 2, 3, 4) else discord.ButtonStyle.secondary


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=JOB_BUTTON_TEMPLATE):
    def __init__(
        self,
        kind: str,
        index: int,
        task_id: str,
        *,
        label: str | None = None,
        emoji: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        self.kind, self.index, self.task_id = kind, index, task_id
        super().__init__(
            discord.ui.Button(
                label=label or None,
                emoji=emoji or None,
                style=style,
                row=row,
                custom_id=custom_id(kind, index, task_id),
            )
        )

    @classmethod
    def own(cls, action: Action, index: int, task_id: str, *, used: bool = False) -> JobButton:
        """The bot's own U1-U4 (row 1), 🔄 (row 1) and V1-V4 (row 2)."""
        if action is Action.REROLL:
            return cls("r", 0, task_id, emoji="🔄", style=_style(used), row=0)
        kind = ACTION_KIND[action]
        return cls(
            kind,
            index,
            task_id,
            label=f"{kind.upper()}{index}",
            style=_style(used),
            row=0 if action is Action.UPSCALE else 1,
        )

    @classmethod
    def server(cls, position: int, button: TaskButton, task_id: str, *, used: bool = False) -> JobButton:
        # The server's text goes to Discord bounded, and only an emoji Discord takes (trueai sends
        # "upscale_1"): one refused part would make Discord refuse the whole message.
        emoji = button_emoji(button.emoji)
        label = clip(button.label.strip(), MAX_LABEL) or (None if emoji else "·")
        return cls(
            SERVER_BUTTON,
            position,
            task_id,
            label=label,
            emoji=emoji,
            style=_style(used, button.style),
            row=position // MAX_ROW_WIDTH,
        )

    @classmethod
    def cancel(cls, task_id: str) -> JobButton:
        return cls(CANCEL_BUTTON, 0, task_id, emoji="⏹️", style=discord.ButtonStyle.secondary)

    @classmethod
    def prompt(cls, task_id: str) -> JobButton:
        return cls(PROMPT_BUTTON, 0, task_id, emoji="✏️", style=discord.ButtonStyle.primary)

    @classmethod
    def described(cls, number: int, task_id: str) -> JobButton:
        return cls(DESCRIBED_BUTTON, number, task_id, emoji=PROMPT_MARKS[number - 1], row=0)

    @classmethod
    def delete(cls, task_id: str, row: int) -> JobButton:
        return cls(DELETE_BUTTON, 0, task_id, emoji="❌", row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(match["kind"], int(match["index"]), match["task_id"])

    async def callback(self, interaction: discord.Interaction[MjBot]) -> None:  # type: ignore[override]
        await press_button(interaction, self.kind, self.index, self.task_id)


class StaleButton(discord.ui.DynamicItem[discord.ui.Button], template=STALE_BUTTON_TEMPLATE):
    def __init__(self, custom_id: str) -> None:
        super().__init__(discord.ui.Button(label="?", custom_id=custom_id))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> StaleButton:
        return cls(item.custom_id or "")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await report_failure(interaction, ButtonInvalid(f"unknown button {self.custom_id!r}"), what="a stale button")


def with_delete(view: discord.ui.View | None, task_id: str) -> discord.ui.View:
    """❌ after the other buttons: on their last row if it has room, else on a row of its own."""
    view = view or discord.ui.View(timeout=None)
    rows = [item.row or 0 for item in view.children]
    last = max(rows, default=0)
    row = last if rows and rows.count(last) < MAX_ROW_WIDTH else (last + 1 if rows else 0)
    if row < MAX_ROWS:
        view.add_item(JobButton.delete(task_id, row))
    return view


def cancel_button(task_id: str) -> discord.ui.View:
    """⏹ under a job that runs, on a server that can cancel."""
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton.cancel(task_id))
    return view


def described_buttons(task_id: str, count: int) -> discord.ui.View:
    """1️⃣-4️⃣ under a /describe answer."""
    view = discord.ui.View(timeout=None)
    for number in range(1, count + 1):
        view.add_item(JobButton.described(number, task_id))
    return view


def grid_buttons(task_id: str, used: Collection[tuple[str, int]] = frozenset()) -> discord.ui.View:
    """The bot's own set: U1 U2 U3 U4 🔄 / V1 V2 V3 V4."""
    view = discord.ui.View(timeout=None)
    for index in range(1, 5):
        view.add_item(JobButton.own(Action.UPSCALE, index, task_id, used=(Action.UPSCALE.value, index) in used))
    view.add_item(JobButton.own(Action.REROLL, 0, task_id))
    for index in range(1, 5):
        view.add_item(JobButton.own(Action.VARIATION, index, task_id, used=(Action.VARIATION.value, index) in used))
    return view


def server_buttons(
    task_id: str, buttons: Sequence[TaskButton], used: Collection[tuple[str, int]] = frozenset()
) -> discord.ui.View:
    """The task's own buttons as the server lists them, five to a row (Discord's limit is 25, one
    of which stays free for ❌)."""
    view = discord.ui.View(timeout=None)
    for position, button in enumerate(buttons[: MAX_ROW_WIDTH * MAX_ROWS - 1]):
        view.add_item(JobButton.server(position, button, task_id, used=(BUTTON_MARK, position) in used))
    return view


def prompt_button(task_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton.prompt(task_id))
    return view


# --- what a click does ------------------------------------------------------------------------------


async def press_button(interaction: discord.Interaction[MjBot], kind: str, index: int, task_id: str) -> None:
    """A button on a job message; the new job's message appears as a reply to it."""
    jobs = interaction.client.jobs
    who = requester(interaction)
    what = f"button {kind}{index} of task {task_id}"
    await answered(interaction, what, lambda: _press(interaction, jobs, who, kind, index, task_id, what))


async def _press(
    interaction: discord.Interaction[MjBot],
    jobs: JobService,
    who: Requester,
    kind: str,
    index: int,
    task_id: str,
    what: str,
) -> None:
    """What a click does, by the kind of button (the new job's message appears as a reply)."""
    if kind == PROMPT_BUTTON:
        job = await jobs.get_job(task_id)
        await _ask_prompt(interaction, job, what, lambda i, prompt: jobs.give_prompt(task_id, prompt, requester(i)))
        return
    if kind == SERVER_BUTTON:
        job = await jobs.get_job(task_id)
        if job is not None and index < len(job.buttons) and job.buttons[index].needs_prompt:
            # A modal must be the first answer to the click, so ask before submitting.
            await _ask_prompt(
                interaction, job, what, lambda i, prompt: jobs.press(task_id, index, requester(i), prompt=prompt)
            )
            return
        await interaction.response.defer()
        await jobs.press(task_id, index, who)
        return
    if kind == CANCEL_BUTTON:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await jobs.controls.cancel(task_id, who)
        await interaction.edit_original_response(content=t("cancel.asked", interaction_language(interaction)))
        return
    await interaction.response.defer()
    if kind == DESCRIBED_BUTTON:
        await jobs.imagine_described(task_id, index, who)
        return
    if kind == DELETE_BUTTON:
        await jobs.forget_message(task_id, who)
        await interaction.delete_original_response()  # the message the ❌ is on
        return
    await jobs.change(task_id, KIND_ACTION[kind], index, who)


async def _ask_prompt(
    interaction: discord.Interaction,
    job: Job | None,
    what: str,
    submit: Callable[[discord.Interaction, str], Awaitable[object]],
) -> None:
    if job is None:
        raise JobNotFound(f"{what}: no such job")
    jobs = interaction.client.jobs  # type: ignore[attr-defined]
    jobs.check_press(requester(interaction), job)  # refuse before asking for the prompt
    prefill = job.final_prompt or job.prompt_en or job.prompt
    await interaction.response.send_modal(PromptModal(interaction_language(interaction), prefill, submit, what))
