"""Names and roles for the admin page (``bot.admin.MemberDirectory``), from discord.py's cache, and
for roles from Discord itself when the member is not cached."""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)


class DiscordDirectory:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    def member_name(self, guild_id: int, user_id: int) -> str | None:
        guild = self.client.get_guild(guild_id) if guild_id else None
        member = guild.get_member(user_id) if guild else None
        if member is not None:
            return member.display_name
        user = self.client.get_user(user_id)
        return user.display_name if user else None

    def guild_name(self, guild_id: int) -> str | None:
        guild = self.client.get_guild(guild_id)
        return guild.name if guild else None

    async def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        guild = self.client.get_guild(guild_id) if guild_id else None
        if guild is None:
            return frozenset() if not guild_id else None
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.NotFound:
                return None
            except discord.HTTPException as exc:
                log.warning("admin page: cannot read member %s of guild %s: HTTP %s", user_id, guild_id, exc.status)
                return None
        return frozenset(role.id for role in member.roles)
