"""Names and roles for the admin page (``bot.admin.MemberDirectory``). The bot has no members
intent, so names come from discord.py's cache, else from the members it has seen run a command or
press a button (remembered here, the newest 10,000), else from Discord when a member's page asks
for their roles (by REST for a guild on another process's shards)."""

from __future__ import annotations

import logging
from collections import OrderedDict

import discord

log = logging.getLogger(__name__)

KNOWN_NAMES = 10_000


class DiscordDirectory:
    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._names: OrderedDict[tuple[int, int], str] = OrderedDict()
        client.add_listener(self._seen, "on_interaction")

    async def _seen(self, interaction: discord.Interaction) -> None:
        self._remember(interaction.guild_id or 0, interaction.user)

    def _remember(self, guild_id: int, user: discord.abc.User) -> None:
        key = (guild_id, user.id)
        self._names[key] = user.display_name
        self._names.move_to_end(key)
        while len(self._names) > KNOWN_NAMES:
            self._names.popitem(last=False)

    def member_name(self, guild_id: int, user_id: int) -> str | None:
        guild = self.client.get_guild(guild_id) if guild_id else None
        member = guild.get_member(user_id) if guild else None
        if member is not None:
            return member.display_name
        if (guild_id, user_id) in self._names:
            return self._names[(guild_id, user_id)]
        user = self.client.get_user(user_id)
        return user.display_name if user else None

    def guild_name(self, guild_id: int) -> str | None:
        guild = self.client.get_guild(guild_id)
        return guild.name if guild else None

    async def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        if not guild_id:
            return frozenset()  # direct messages: no roles
        guild = self.client.get_guild(guild_id)
        if guild is None:  # a guild of another process's shards: ask Discord itself
            try:
                data = await self.client.http.get_member(guild_id, user_id)
            except discord.HTTPException as exc:
                if exc.status != 404:
                    log.warning("admin page: cannot read member %s of guild %s: HTTP %s", user_id, guild_id, exc.status)
                return None
            return frozenset(int(role) for role in data.get("roles", []))
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.NotFound:
                return None
            except discord.HTTPException as exc:
                log.warning("admin page: cannot read member %s of guild %s: HTTP %s", user_id, guild_id, exc.status)
                return None
        self._remember(guild_id, member)
        return frozenset(role.id for role in member.roles)
