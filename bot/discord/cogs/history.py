"""/jobs, /show and ❌: a member's own jobs, a finished job posted again, a job's message removed."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import MjBotError
from bot.core.i18n import DEFAULT_LANGUAGE, error_text, t
from bot.core.models import Display, Job, message_link
from bot.discord.ui.credits import cost_text
from bot.discord.ui.interactions import _, interaction_language, member_requester, report_failure, requester
from bot.discord.ui.render import render

if TYPE_CHECKING:
    from bot.discord.app import MjBot

log = logging.getLogger(__name__)

PER_PAGE = 8
DELETE_EMOJI = "❌"
SEED_EMOJI = "\u2709"  # ✉️, as on Midjourney: its owner gets the seed in a direct message


async def jobs_answer(bot: MjBot, interaction: discord.Interaction, page: int) -> tuple[discord.Embed, discord.ui.View]:
    """A page of the member's jobs, each with what it cost when credits are on."""
    jobs, has_more = await bot.jobs.recent_jobs(requester(interaction), page=page, per_page=PER_PAGE)
    unit = bot.jobs.credits_unit
    costs = await bot.jobs.job_costs(jobs) if unit is not None else {}
    language = interaction_language(interaction)
    return jobs_page(
        jobs, page, has_more, language, {task_id: cost_text(c, unit, language) for task_id, c in costs.items()}
    )


def jobs_page(
    jobs: list[Job], page: int, has_more: bool, language: str, costs: dict[str, str] | None = None
) -> tuple[discord.Embed, discord.ui.View]:
    costs = costs or {}
    embed = discord.Embed(title=t("jobs.title", language))
    if not jobs:
        embed.description = t("jobs.empty", language)
    lines = []
    for job in jobs:
        title = discord.utils.escape_markdown(" ".join(job.prompt.split())[:80]) or t(
            f"job.title.{job.action.value.lower()}", language
        )
        link = (
            message_link(job.guild_id, job.channel_id, job.message_id)
            if job.message_id and not job.message_gone
            else t("jobs.no_message", language)
        )
        lines.append(
            f"**{title}**\n"
            + t(
                "jobs.line",
                language,
                task_id=job.task_id,
                action=job.action.value.lower(),
                status=(job.status.value or "?").lower(),
                when=int(job.created_at),
                link=link,
            )
            + costs.get(job.task_id, "")
        )
    if lines:
        embed.description = "\n".join(lines)
    embed.set_footer(text=t("jobs.page", language, page=page + 1))
    view = discord.ui.View(timeout=None)
    view.add_item(JobsPageButton(page - 1, "◀", disabled=page == 0))
    view.add_item(JobsPageButton(page + 1, "▶", disabled=not has_more))
    return embed, view


class JobsPageButton(discord.ui.DynamicItem[discord.ui.Button], template=r"mjl:(?P<page>[0-9]{1,4}):(?P<dir>[<>])"):
    """◀ ▶ under /jobs. The list is ephemeral, so whoever presses is the member it belongs to."""

    def __init__(self, page: int, arrow: str, *, disabled: bool = False) -> None:
        self.page = max(page, 0)
        super().__init__(
            discord.ui.Button(
                emoji=arrow,
                style=discord.ButtonStyle.secondary,
                disabled=disabled,
                custom_id=f"mjl:{self.page}:{'<' if arrow == '◀' else '>'}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobsPageButton:
        return cls(int(match["page"]), "◀" if match["dir"] == "<" else "▶")

    async def callback(self, interaction: discord.Interaction[MjBot]) -> None:  # type: ignore[override]
        try:
            embed, view = await jobs_answer(interaction.client, interaction, self.page)
            await interaction.response.edit_message(embed=embed, view=view)
        except Exception as exc:
            await report_failure(interaction, exc, what=f"/jobs page {self.page}")


class JobsCog(commands.Cog):
    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(name=_("jobs", "cmd.jobs.name"), description=_("Your recent jobs", "cmd.jobs.description"))
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        embed, view = await jobs_answer(self.bot, interaction, 0)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(
        name=_("show", "cmd.show.name"),
        description=_("Post one of your jobs again, with its buttons", "cmd.show.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(job_id=_("job_id", "cmd.show.job_id.name"))
    @app_commands.describe(job_id=_("The job's id", "cmd.show.job_id.description"))
    async def show(self, interaction: discord.Interaction, job_id: str) -> None:
        # Checked before answering, so a refusal stays private (the tree's on_error answers it).
        job = await self.bot.jobs.job_to_show(job_id, requester(interaction))
        await interaction.response.defer(thinking=True)
        files = await self.bot.jobs.final_media(job)  # its message's files, else the proxy's links
        language = self.bot.settings.bot.language or job.language or interaction_language(interaction)
        rendered = render(
            job,
            Display.of(job),
            language=language,
            image_attached=bool(files),
            server_buttons_ok=self.bot.settings.proxy.api != "change",
        )
        await interaction.followup.send(**rendered.new_message(files))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """❌ as a reaction on a job's message, as with Midjourney's bot: its owner (or an admin)
        deletes it. Anyone else's ❌ is ignored."""
        emoji = str(payload.emoji).replace("\ufe0f", "")  # ✉ comes with or without its variation selector
        if (
            emoji not in (DELETE_EMOJI, SEED_EMOJI)
            or payload.guild_id is None
            or (self.bot.user is not None and payload.user_id == self.bot.user.id)
        ):
            return
        if emoji == SEED_EMOJI:
            await self._send_seed(payload)
            return
        job = await self.bot.jobs.job_for_message(payload.message_id)
        if job is None or job.message_gone or not job.finished:
            return
        # The member with their roles when the gateway sent them, else the user alone.
        member = payload.member or discord.Object(payload.user_id)
        who = member_requester(member, payload.guild_id, payload.channel_id)
        try:
            await self.bot.jobs.forget_message(job.task_id, who)
            await self.bot.get_partial_messageable(payload.channel_id).get_partial_message(payload.message_id).delete()
        except MjBotError as exc:
            log.info("❌ on task %s by user %s ignored: %s", job.task_id, payload.user_id, exc)
        except discord.HTTPException as exc:
            log.warning("task %s: deleting its message failed: %s", job.task_id, exc)

    async def _send_seed(self, payload: discord.RawReactionActionEvent) -> None:
        """✉️ on a finished job's message, as with Midjourney's bot: its owner gets the seed in a
        direct message. Anyone else's ✉️ is ignored; a server without seeds is said so, privately."""
        job = await self.bot.jobs.job_for_message(payload.message_id)
        if job is None or job.owner_id != payload.user_id or not job.finished:
            return
        who = member_requester(payload.member or discord.Object(payload.user_id), payload.guild_id, payload.channel_id)
        language = job.language or DEFAULT_LANGUAGE
        link = message_link(job.guild_id, job.channel_id, job.message_id)
        try:
            seed = await self.bot.jobs.controls.seed(job.task_id, who)
            text = t("seed.dm", language, link=link, seed=seed)
        except MjBotError as exc:
            log.info("✉️ on task %s by user %s: %s", job.task_id, payload.user_id, exc)
            text = t("seed.dm_failed", language, link=link, reason=error_text(exc, language))
        try:
            user = self.bot.get_user(payload.user_id) or await self.bot.fetch_user(payload.user_id)
            await user.send(text)
        except discord.HTTPException as exc:  # DMs closed: nothing else reaches only them
            log.info("task %s: the seed could not be sent to user %s (%s)", job.task_id, payload.user_id, exc)


async def setup(bot: MjBot) -> None:
    bot.add_dynamic_items(JobsPageButton)
    await bot.add_cog(JobsCog(bot))
