"""/mj: commands for the bot's admins (``[access] admin_user_ids``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.i18n import error_text, t
from bot.core.models import message_link
from bot.core.text import MAX_CONTENT, clip, duration_text
from bot.discord.ui.interactions import _, interaction_language, requester

if TYPE_CHECKING:
    from bot.discord.app import MjBot


class AdminCog(commands.Cog):
    mj = app_commands.Group(
        name=_("mj", "cmd.mj.name"), description=_("mjbot administration", "cmd.mj.description"), guild_only=True
    )

    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @mj.command(
        name=_("status", "cmd.mj.status.name"),
        description=_("Proxy health and the jobs in flight (admins only)", "cmd.mj.status.description"),
    )
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.bot.jobs.check_admin(requester(interaction))  # a refusal goes to the tree's on_error
        status = await self.bot.jobs.status()
        language = interaction_language(interaction)
        if status.proxy_problem is None:
            lines = [t("admin.status.proxy_ok", language, latency_ms=round((status.proxy_latency_s or 0) * 1000))]
        else:
            lines = [t("admin.status.proxy_down", language, problem=error_text(status.proxy_problem, language))]
        lines.append(t("admin.status.jobs", language, running=status.running, waiting=status.waiting))
        oldest = status.oldest
        if oldest is None:
            lines.append(t("admin.status.none", language))
        else:
            lines.append(
                t(
                    "admin.status.oldest",
                    language,
                    task_id=oldest.task_id,
                    status=oldest.status.value or "?",
                    age=duration_text(time.time() - oldest.created_at),
                    link=message_link(oldest.guild_id, oldest.channel_id, oldest.message_id)
                    if oldest.message_id
                    else "",
                )
            )
        await interaction.edit_original_response(content=clip("\n".join(lines), MAX_CONTENT))


async def setup(bot: MjBot) -> None:
    await bot.add_cog(AdminCog(bot))
