"""/mj: commands for the bot's admins (``[access] admin_user_ids``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.credits import format_amount
from bot.core.errors import MemberNotInGuild
from bot.core.i18n import error_text, t
from bot.core.models import message_link
from bot.core.text import MAX_CONTENT, clip, duration_text
from bot.discord.ui.credits import spend_text
from bot.discord.ui.interactions import _, interaction_language, requester
from bot.jobs.credits import PERIODS

if TYPE_CHECKING:
    from bot.discord.app import MjBot

T = TypeVar("T")


PERIOD_CHOICES = [
    app_commands.Choice(name=_(period, f"cmd.mj.spend.period.choice.{period}"), value=period) for period in PERIODS
]


# Text options, so a non-number gets our own clear answer rather than the client's.
Amount = app_commands.Range[str, 1, 40]
Reason = app_commands.Range[str, 1, 200]


def adjust_options(sub: str, member_text: str) -> Callable[[T], T]:
    """The options of ``/mj credits give`` and ``take``: names and descriptions, with their keys."""
    key = f"cmd.mj.credits.{sub}"

    def decorate(command: T) -> T:
        command = app_commands.describe(
            member=_(member_text, f"{key}.member.description"),
            amount=_("How many, e.g. 10 or 0.5", f"{key}.amount.description"),
            reason=_("Why (kept in the ledger)", f"{key}.reason.description"),
        )(command)
        return app_commands.rename(
            member=_("member", f"{key}.member.name"),
            amount=_("amount", f"{key}.amount.name"),
            reason=_("reason", f"{key}.reason.name"),
        )(command)

    return decorate


class AdminCog(commands.Cog):
    mj = app_commands.Group(
        name=_("mj", "cmd.mj.name"), description=_("mjbot administration", "cmd.mj.description"), guild_only=True
    )
    credits = app_commands.Group(
        name=_("credits", "cmd.mj.credits.name"),
        description=_("Give or take a member's credits (admins only)", "cmd.mj.credits.description"),
        parent=mj,
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

    @credits.command(
        name=_("give", "cmd.mj.credits.give.name"),
        description=_("Give a member credits (admins only)", "cmd.mj.credits.give.description"),
    )
    @adjust_options("give", "Who gets them")
    async def give(
        self, interaction: discord.Interaction, member: discord.Member | discord.User, amount: Amount, reason: Reason
    ) -> None:
        await self._adjust(interaction, member, amount, reason, give=True)

    @credits.command(
        name=_("take", "cmd.mj.credits.take.name"),
        description=_("Take credits from a member (admins only)", "cmd.mj.credits.take.description"),
    )
    @adjust_options("take", "Whose credits")
    async def take(
        self, interaction: discord.Interaction, member: discord.Member | discord.User, amount: Amount, reason: Reason
    ) -> None:
        await self._adjust(interaction, member, amount, reason, give=False)

    async def _adjust(
        self,
        interaction: discord.Interaction,
        member: discord.Member | discord.User,
        amount: str,
        reason: str,
        *,
        give: bool,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.bot.jobs.check_admin(requester(interaction))
        if not isinstance(member, discord.Member):  # a user who is not (or no longer) in this server
            raise MemberNotInGuild(f"user {member.id} is not in guild {interaction.guild_id}", user_id=member.id)
        roles = frozenset(role.id for role in member.roles)
        units, balance = await self.bot.jobs.adjust_credits(
            requester(interaction), member.id, roles, amount, reason, give=give
        )
        await interaction.edit_original_response(
            content=t(
                "credits.given" if give else "credits.taken",
                interaction_language(interaction),
                amount=format_amount(units),
                unit=self.bot.settings.credits.unit,
                member=member.id,
                balance=format_amount(balance),
            )
        )

    @mj.command(
        name=_("spend", "cmd.mj.spend.name"),
        description=_("What members spent, by action and member (admins only)", "cmd.mj.spend.description"),
    )
    @app_commands.rename(period=_("period", "cmd.mj.spend.period.name"))
    @app_commands.describe(period=_("Since when (UTC); default today", "cmd.mj.spend.period.description"))
    @app_commands.choices(period=PERIOD_CHOICES)
    async def spend(self, interaction: discord.Interaction, period: str = "today") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        spend = await self.bot.jobs.spend(requester(interaction), period)
        await interaction.edit_original_response(
            content=spend_text(spend, self.bot.settings.credits.unit, period, interaction_language(interaction))
        )


async def setup(bot: MjBot) -> None:
    await bot.add_cog(AdminCog(bot))
