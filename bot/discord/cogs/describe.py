"""/describe, /blend and /shorten: the other ways to start a job (from images, or a prompt to shorten)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.ui.delivery import InteractionOrigin
from bot.discord.ui.interactions import _, read_reference_image, requester, start_job

if TYPE_CHECKING:
    from bot.discord.app import MjBot

DIMENSIONS = [
    app_commands.Choice(name=_("Portrait (2:3)", "cmd.blend.dimensions.choice.portrait"), value="PORTRAIT"),
    app_commands.Choice(name=_("Square (1:1)", "cmd.blend.dimensions.choice.square"), value="SQUARE"),
    app_commands.Choice(name=_("Landscape (3:2)", "cmd.blend.dimensions.choice.landscape"), value="LANDSCAPE"),
]


class DescribeCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("describe", "cmd.describe.name"),
        description=_("Get four prompts that describe an image", "cmd.describe.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(image=_("image", "cmd.describe.image.name"), link=_("link", "cmd.describe.link.name"))
    @app_commands.describe(
        image=_("The image to describe", "cmd.describe.image.description"),
        link=_("Or an image's link (where the server takes one)", "cmd.describe.link.description"),
    )
    async def describe(
        self, interaction: discord.Interaction, image: discord.Attachment | None = None, link: str | None = None
    ) -> None:
        async def start() -> None:
            max_mb = self.bot.settings.limits.max_attachment_mb
            picture = await read_reference_image(image, max_mb=max_mb) if image else None
            await self.bot.jobs.describe(
                picture, requester(interaction), link=link, origin=InteractionOrigin(interaction)
            )

        await start_job(interaction, "/describe", start)

    @app_commands.command(
        name=_("shorten", "cmd.shorten.name"),
        description=_("Shorter versions of a prompt, to imagine", "cmd.shorten.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(prompt=_("prompt", "cmd.shorten.prompt.name"))
    @app_commands.describe(prompt=_("The prompt to shorten", "cmd.shorten.prompt.description"))
    async def shorten(self, interaction: discord.Interaction, prompt: str) -> None:
        async def start() -> None:
            await self.bot.jobs.shorten(prompt, requester(interaction), origin=InteractionOrigin(interaction))

        await start_job(interaction, "/shorten", start)

    @app_commands.command(
        name=_("blend", "cmd.blend.name"), description=_("Blend 2 to 5 images into one", "cmd.blend.description")
    )
    @app_commands.guild_only()
    @app_commands.rename(
        **{f"image{n}": _(f"image{n}", f"cmd.blend.image{n}.name") for n in range(1, 6)},
        dimensions=_("dimensions", "cmd.blend.dimensions.name"),
    )
    @app_commands.describe(
        **{f"image{n}": _(f"Image {n}", f"cmd.blend.image{n}.description") for n in range(1, 6)},
        dimensions=_("Shape of the result", "cmd.blend.dimensions.description"),
    )
    @app_commands.choices(dimensions=DIMENSIONS)
    async def blend(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
    ) -> None:
        attachments = [a for a in (image1, image2, image3, image4, image5) if a is not None]

        async def start() -> None:
            max_mb = self.bot.settings.limits.max_attachment_mb
            images = [await read_reference_image(a, max_mb=max_mb) for a in attachments]
            await self.bot.jobs.blend(
                images,
                dimensions.value if dimensions else "SQUARE",
                requester(interaction),
                origin=InteractionOrigin(interaction),
            )

        await start_job(interaction, "/blend", start)


async def setup(bot: MjBot) -> None:
    await bot.add_cog(DescribeCog(bot))
