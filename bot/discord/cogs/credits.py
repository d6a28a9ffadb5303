"""/balance: a member's credits in this server, privately (loaded when ``[credits] enabled``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.ui.credits import account_text
from bot.discord.ui.interactions import _, interaction_language, requester

if TYPE_CHECKING:
    from bot.discord.app import MjBot

ENTRIES_SHOWN = 10


class CreditsCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("balance", "cmd.balance.name"),
        description=_("Your credits: balance, allowance and last entries", "cmd.balance.description"),
    )
    @app_commands.guild_only()
    async def balance(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        account = await self.bot.jobs.account(requester(interaction), last=ENTRIES_SHOWN)
        unit = self.bot.settings.credits.unit
        await interaction.edit_original_response(content=account_text(account, unit, interaction_language(interaction)))


async def setup(bot: MjBot) -> None:
    await bot.add_cog(CreditsCog(bot))
