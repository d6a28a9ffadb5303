"""/imagine: a prompt (with up to three images, and images for --sref, --cref and --oref) becomes a job."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.ui.delivery import InteractionOrigin
from bot.discord.ui.interactions import _, read_reference_image, requester, start_job

if TYPE_CHECKING:
    from bot.discord.app import MjBot

log = logging.getLogger(__name__)


class ImagineCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("imagine", "cmd.imagine.name"), description=_("Create images from a prompt", "cmd.imagine.description")
    )
    @app_commands.guild_only()
    @app_commands.rename(
        prompt=_("prompt", "cmd.imagine.prompt.name"),
        image=_("image", "cmd.imagine.image.name"),
        image2=_("image2", "cmd.imagine.image2.name"),
        image3=_("image3", "cmd.imagine.image3.name"),
        sref=_("sref", "cmd.imagine.sref.name"),
        cref=_("cref", "cmd.imagine.cref.name"),
        oref=_("oref", "cmd.imagine.oref.name"),
    )
    @app_commands.describe(
        prompt=_("What to imagine", "cmd.imagine.prompt.description"),
        image=_("A reference image (optional)", "cmd.imagine.image.description"),
        image2=_("A second reference image (optional)", "cmd.imagine.image2.description"),
        image3=_("A third reference image (optional)", "cmd.imagine.image3.description"),
        sref=_("An image for --sref: its style (optional)", "cmd.imagine.sref.description"),
        cref=_("An image for --cref: its character (optional)", "cmd.imagine.cref.description"),
        oref=_("An image for --oref: its object or person (optional)", "cmd.imagine.oref.description"),
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        sref: discord.Attachment | None = None,
        cref: discord.Attachment | None = None,
        oref: discord.Attachment | None = None,
    ) -> None:
        async def start() -> None:
            max_mb = self.bot.settings.limits.max_attachment_mb
            images = [
                await read_reference_image(attachment, max_mb=max_mb, option=name)
                for name, attachment in (("image", image), ("image2", image2), ("image3", image3))
                if attachment is not None
            ]
            references = {
                name: await read_reference_image(attachment, max_mb=max_mb, option=name)
                for name, attachment in (("sref", sref), ("cref", cref), ("oref", oref))
                if attachment is not None
            }
            await self.bot.jobs.imagine(
                prompt,
                requester(interaction),
                images=images,
                references=references,
                origin=InteractionOrigin(interaction),
            )

        await start_job(interaction, "/imagine", start)

    @imagine.autocomplete("prompt")
    async def prompt_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The member's recent prompts, and after ``--`` the parameters and their own options: from
        the database only (Discord waits 3 s), never the proxy."""
        try:
            found = await self.bot.jobs.members.suggestions(requester(interaction), current)
        except Exception:  # noqa: BLE001 - an empty list is a fine answer; a failure is logged
            log.exception("prompt suggestions for user %s failed", interaction.user.id)
            return []
        return [app_commands.Choice(name=s.name, value=s.value) for s in found]


async def setup(bot: MjBot) -> None:
    await bot.add_cog(ImagineCog(bot))
