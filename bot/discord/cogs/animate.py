"""/animate: short videos from an image (an attachment, or one of the member's finished images)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.ui.delivery import InteractionOrigin
from bot.discord.ui.interactions import _, read_reference_image, requester, start_job
from bot.jobs import AnimateRequest

if TYPE_CHECKING:
    from bot.discord.app import MjBot

MOTIONS = [
    app_commands.Choice(name=_("Low motion", "cmd.animate.motion.choice.low"), value="low"),
    app_commands.Choice(name=_("High motion", "cmd.animate.motion.choice.high"), value="high"),
]


class AnimateCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("animate", "cmd.animate.name"),
        description=_("Turn an image into short videos", "cmd.animate.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(
        image=_("image", "cmd.animate.image.name"),
        job=_("job", "cmd.animate.job.name"),
        prompt=_("prompt", "cmd.animate.prompt.name"),
        motion=_("motion", "cmd.animate.motion.name"),
        end_image=_("end_image", "cmd.animate.end_image.name"),
        loop=_("loop", "cmd.animate.loop.name"),
        batch=_("batch", "cmd.animate.batch.name"),
    )
    @app_commands.describe(
        image=_("The image to animate (or give a job)", "cmd.animate.image.description"),
        job=_("One of your finished images, by its job id (or give an image)", "cmd.animate.job.description"),
        prompt=_("How it should move (optional)", "cmd.animate.prompt.description"),
        motion=_("Low or high motion", "cmd.animate.motion.description"),
        end_image=_("The image the video ends on (optional)", "cmd.animate.end_image.description"),
        loop=_("End where it starts", "cmd.animate.loop.description"),
        batch=_("How many videos: 1, 2 or 4", "cmd.animate.batch.description"),
    )
    @app_commands.choices(motion=MOTIONS)
    async def animate(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment | None = None,
        job: str | None = None,
        prompt: str | None = None,
        motion: app_commands.Choice[str] | None = None,
        end_image: discord.Attachment | None = None,
        loop: bool = False,
        batch: app_commands.Range[int, 1, 4] = 4,
    ) -> None:
        async def start() -> None:
            max_mb = self.bot.settings.limits.max_attachment_mb
            request = AnimateRequest(
                image=await read_reference_image(image, max_mb=max_mb, option="image") if image else None,
                job_id=job,
                prompt=prompt or "",
                motion=motion.value if motion else "low",
                end_image=(
                    await read_reference_image(end_image, max_mb=max_mb, option="end_image") if end_image else None
                ),
                loop=loop,
                batch=batch,
            )
            await self.bot.jobs.animate(request, requester(interaction), origin=InteractionOrigin(interaction))

        await start_job(interaction, "/animate", start)


async def setup(bot: MjBot) -> None:
    await bot.add_cog(AnimateCog(bot))
