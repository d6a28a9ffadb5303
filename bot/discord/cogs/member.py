"""A member's own Midjourney: /settings (menus, kept per member in the database), /prefer suffix
and options, and /info. Every answer is private to the member."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import BadSetting
from bot.core.i18n import t
from bot.discord.ui.interactions import _, answered, interaction_language, requester
from bot.discord.ui.preferences import (
    DEFAULT,
    SETTING_PREFIX,
    info_text,
    options_text,
    setting_id,
    settings_items,
    settings_text,
)

if TYPE_CHECKING:
    from bot.core.preferences import Preferences
    from bot.discord.app import MjBot

_MENU = rf"{SETTING_PREFIX}:(?P<name>version|stylize|speed)"
_BUTTON = rf"{SETTING_PREFIX}:(?P<name>remix|reset)"


def settings_view(bot: MjBot, preferences: Preferences, language: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)  # dynamic items: the menus work after a restart too
    menus = settings_items(preferences, language, versions=bot.settings.bot.versions, speeds=bot.settings.proxy.speeds)
    for row, (name, options) in enumerate(menus):
        view.add_item(SettingMenu(name, options=options, placeholder=_placeholder(name, language), row=row))
    if bot.settings.proxy.api != "change":  # Remix needs the server's own buttons (/submit/action)
        remix = "settings.remix_on" if not preferences.remix else "settings.remix_off"
        view.add_item(SettingButton("remix", label=t(remix, language), row=len(menus)))
    view.add_item(SettingButton("reset", label=t("settings.reset", language), row=len(menus)))
    return view


def _placeholder(name: str, language: str) -> str:
    return t(f"settings.pick_{name}", language)


async def _show_settings(interaction: discord.Interaction[MjBot], preferences: Preferences) -> None:
    """Edit the panel the member clicked in to show their settings now."""
    language = interaction_language(interaction)
    await interaction.response.edit_message(
        content=settings_text(preferences, language), view=settings_view(interaction.client, preferences, language)
    )


class SettingMenu(discord.ui.DynamicItem[discord.ui.Select], template=_MENU):
    def __init__(
        self,
        name: str,
        *,
        options: list[discord.SelectOption] | None = None,
        placeholder: str | None = None,
        row: int | None = None,
    ) -> None:
        self.name = name
        super().__init__(
            discord.ui.Select(
                custom_id=setting_id(name),
                options=options or [discord.SelectOption(label=DEFAULT)],
                placeholder=placeholder,
                row=row,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Select, match: re.Match[str], /
    ) -> SettingMenu:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction[MjBot]) -> None:  # type: ignore[override]
        async def work() -> None:
            values = (interaction.data or {}).get("values") or []
            if len(values) != 1:
                raise BadSetting(f"menu {self.name} answered {values!r}", limit=0)
            value = "" if values[0] == DEFAULT else str(values[0])
            preferences = await interaction.client.jobs.members.set_setting(requester(interaction), self.name, value)
            await _show_settings(interaction, preferences)

        await answered(interaction, f"/settings {self.name}", work)


class SettingButton(discord.ui.DynamicItem[discord.ui.Button], template=_BUTTON):
    def __init__(self, name: str, *, label: str | None = None, row: int | None = None) -> None:
        self.name = name
        style = discord.ButtonStyle.danger if name == "reset" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(custom_id=setting_id(name), label=label or name, style=style, row=row))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> SettingButton:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction[MjBot]) -> None:  # type: ignore[override]
        async def work() -> None:
            members, who = interaction.client.jobs.members, requester(interaction)
            if self.name == "remix":
                current = await members.preferences(who)
                preferences = await members.set_setting(who, "remix", "off" if current.remix else "on")
            else:
                preferences = await members.set_setting(who, "reset", "")
            await _show_settings(interaction, preferences)

        await answered(interaction, f"/settings {self.name}", work)


class MemberCog(commands.Cog):
    prefer = app_commands.Group(
        name=_("prefer", "cmd.prefer.name"), description=_("Your prompt preferences", "cmd.prefer.description")
    )
    option = app_commands.Group(
        name=_("option", "cmd.prefer.option.name"),
        description=_("Your own --options", "cmd.prefer.option.description"),
        parent=prefer,
    )

    def __init__(self, bot: MjBot) -> None:
        self.bot = bot

    @app_commands.command(
        name=_("settings", "cmd.settings.name"),
        description=_("Your default version, stylize, speed and remix", "cmd.settings.description"),
    )
    @app_commands.guild_only()
    async def settings(self, interaction: discord.Interaction) -> None:
        language = interaction_language(interaction)
        preferences = await self.bot.jobs.members.preferences(requester(interaction))
        await interaction.response.send_message(
            settings_text(preferences, language), view=settings_view(self.bot, preferences, language), ephemeral=True
        )

    @prefer.command(
        name=_("suffix", "cmd.prefer.suffix.name"),
        description=_("Text added to every prompt (empty: none)", "cmd.prefer.suffix.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(value=_("value", "cmd.prefer.suffix.value.name"))
    @app_commands.describe(value=_("e.g. --ar 16:9 --v 7", "cmd.prefer.suffix.value.description"))
    async def suffix(self, interaction: discord.Interaction, value: str = "") -> None:
        language = interaction_language(interaction)
        preferences = await self.bot.jobs.members.set_suffix(requester(interaction), value)
        await interaction.response.send_message(settings_text(preferences, language), ephemeral=True)

    @option.command(
        name=_("set", "cmd.prefer.option.set.name"),
        description=_("--name in a prompt becomes the value", "cmd.prefer.option.set.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(
        name=_("name", "cmd.prefer.option.set.name_option.name"),
        value=_("value", "cmd.prefer.option.set.value.name"),
    )
    @app_commands.describe(
        name=_("e.g. portrait", "cmd.prefer.option.set.name_option.description"),
        value=_("e.g. --ar 2:3 --s 250", "cmd.prefer.option.set.value.description"),
    )
    async def option_set(self, interaction: discord.Interaction, name: str, value: str) -> None:
        preferences = await self.bot.jobs.members.set_option(requester(interaction), name, value)
        await interaction.response.send_message(
            options_text(preferences, interaction_language(interaction)), ephemeral=True
        )

    @option.command(
        name=_("list", "cmd.prefer.option.list.name"),
        description=_("Your options", "cmd.prefer.option.list.description"),
    )
    @app_commands.guild_only()
    async def option_list(self, interaction: discord.Interaction) -> None:
        preferences = await self.bot.jobs.members.preferences(requester(interaction))
        await interaction.response.send_message(
            options_text(preferences, interaction_language(interaction)), ephemeral=True
        )

    @option.command(
        name=_("delete", "cmd.prefer.option.delete.name"),
        description=_("Forget one of your options", "cmd.prefer.option.delete.description"),
    )
    @app_commands.guild_only()
    @app_commands.rename(name=_("name", "cmd.prefer.option.delete.name_option.name"))
    @app_commands.describe(name=_("The option's name", "cmd.prefer.option.delete.name_option.description"))
    async def option_delete(self, interaction: discord.Interaction, name: str) -> None:
        preferences = await self.bot.jobs.members.delete_option(requester(interaction), name)
        await interaction.response.send_message(
            options_text(preferences, interaction_language(interaction)), ephemeral=True
        )

    @app_commands.command(
        name=_("info", "cmd.info.name"),
        description=_("Your jobs today, your limits and your credits", "cmd.info.description"),
    )
    @app_commands.guild_only()
    async def info(self, interaction: discord.Interaction) -> None:
        info = await self.bot.jobs.members.info(requester(interaction), time.time())
        text = info_text(info, interaction_language(interaction), self.bot.settings.credits.unit)
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: MjBot) -> None:
    bot.add_dynamic_items(SettingMenu, SettingButton)
    await bot.add_cog(MemberCog(bot))
