"""The U1-U4 / V1-V4 / 🔄 buttons.

Each button's custom_id carries everything a click needs (``mj:<kind>:<index>:<task id>``), and the
class is registered with ``Bot.add_dynamic_items``, so a button on a message posted before a restart
still reaches its callback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from bot.errors import ButtonInvalid
from bot.models import Action

if TYPE_CHECKING:
    from bot.app import MjBot

KIND_ACTION = {"u": Action.UPSCALE, "v": Action.VARIATION, "r": Action.REROLL}
ACTION_KIND = {action: kind for kind, action in KIND_ACTION.items()}
CUSTOM_ID_PREFIX = "mj"


def custom_id(action: Action, index: int, task_id: str) -> str:
    return f"{CUSTOM_ID_PREFIX}:{ACTION_KIND[action]}:{index}:{task_id}"


_KIND, _INDEX, _TASK_ID = r"[uvr]", r"[0-4]", r"[A-Za-z0-9_-]{1,80}"
JOB_BUTTON_TEMPLATE = rf"{CUSTOM_ID_PREFIX}:(?P<kind>{_KIND}):(?P<index>{_INDEX}):(?P<task_id>{_TASK_ID})"
# Ours by its prefix, but in no form we know (an older version's, or tampered with): every id
# JobButton does not take. Without a handler such a click would get "This interaction failed".
STALE_BUTTON_TEMPLATE = rf"{CUSTOM_ID_PREFIX}:(?!{_KIND}:{_INDEX}:{_TASK_ID}$).*"


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=JOB_BUTTON_TEMPLATE):
    def __init__(self, action: Action, index: int, task_id: str, *, used: bool = False) -> None:
        self.action = action
        self.index = index
        self.task_id = task_id
        if action is Action.REROLL:
            label, emoji, row = None, "🔄", 0
        else:
            label, emoji, row = f"{ACTION_KIND[action].upper()}{index}", None, 0 if action is Action.UPSCALE else 1
        # Like Midjourney: a used button stays, in another colour.
        style = discord.ButtonStyle.primary if used else discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, row=row,
                              custom_id=custom_id(action, index, task_id))
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(KIND_ACTION[match["kind"]], int(match["index"]), match["task_id"])

    async def callback(self, interaction: discord.Interaction[MjBot]) -> None:  # type: ignore[override]
        from bot.cogs.imagine import press_button  # the cog owns the flow; avoid an import cycle

        await press_button(interaction, self.action, self.index, self.task_id)


class StaleButton(discord.ui.DynamicItem[discord.ui.Button], template=STALE_BUTTON_TEMPLATE):
    def __init__(self, custom_id: str) -> None:
        super().__init__(discord.ui.Button(label="?", custom_id=custom_id))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> StaleButton:
        return cls(item.custom_id or "")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        from bot.cogs.imagine import report_failure

        await report_failure(interaction, ButtonInvalid(f"unknown button {self.custom_id!r}"),
                             what="a stale button")


def grid_buttons(task_id: str, used: frozenset[tuple[str, int]] | set[tuple[str, int]] = frozenset()) -> discord.ui.View:
    """Two rows: U1 U2 U3 U4 🔄 / V1 V2 V3 V4."""
    view = discord.ui.View(timeout=None)
    for index in range(1, 5):
        view.add_item(JobButton(Action.UPSCALE, index, task_id, used=(Action.UPSCALE.value, index) in used))
    view.add_item(JobButton(Action.REROLL, 0, task_id))
    for index in range(1, 5):
        view.add_item(JobButton(Action.VARIATION, index, task_id,
                                used=(Action.VARIATION.value, index) in used))
    return view
