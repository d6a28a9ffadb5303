"""/imagine: a prompt (and an optional reference image) becomes a job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.ui.delivery import InteractionOrigin
from bot.discord.ui.interactions import _, read_reference_image, requester, start_job

if TYPE_CHECKING:
    from bot.discord.app import MjBot


class ImagineCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("imagine", "cmd.imagine.name"), description=_("Create images from a prompt", "cmd.imagine.description")
    )
    @app_commands.guild_only()
    @app_commands.rename(prompt=_("prompt", "cmd.imagine.prompt.name"), image=_("image", "cmd.imagine.image.name"))
    @app_commands.describe(
        prompt=_("What to imagine", "cmd.imagine.prompt.description"),
        image=_("A reference image (optional)", "cmd.imagine.image.description"),
    )
    async def imagine(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        async def start() -> None:
            reference = None
            if image:
                reference = await read_reference_image(image, max_mb=self.bot.settings.limits.max_attachment_mb)
            await self.bot.jobs.imagine(
                prompt, requester(interaction), image=reference, origin=InteractionOrigin(interaction)
            )

        await start_job(interaction, "/imagine", start)


async def setup(bot: MjBot) -> None:
    await bot.add_cog(ImagineCog(bot))
