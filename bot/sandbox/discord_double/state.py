"""The double's shared state: ids, its world's guilds by id and DMs (see world.py) and what it records.

Everything the REST side, the gateway and the test driver share lives here:
ids, recorded requests, messages with all their versions (messages.py),
interactions, registered application commands, stored files and injected
faults.  Every change is announced on ``changed`` (an ``asyncio.Condition``)
so tests can wait on the recorded state instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .errors import ApiError
from .messages import Emitter, MessageStore
from .oauth import OAuth
from .ratelimit import ChannelWriteLimiter
from .records import (
    AttachmentRecord,
    GatewayConnection,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    RequestRecord,
)
from .rules import DelayRule, FaultRule
from .shards import Sharding
from .world import DISCORD_EPOCH_MS, Channel, DMChannel, Guild, Role, User, build_guild


class State(MessageStore):
    """Shared state of one Discord double."""

    def __init__(
        self,
        *,
        token: str,
        attachment_size_limit: int,
        app_permissions: int,
        interaction_ack_timeout: float | None,
        text_channels: int = 2,
        channel_write_limit: tuple[int, float] | None = None,
        guild_id: int | None = None,
        sharding: Sharding | None = None,
    ):
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.app_permissions = app_permissions
        self.interaction_ack_timeout = interaction_ack_timeout
        self.sharding = sharding or Sharding()
        # Set once the server listens.
        self.base_url = ""
        self.gateway_url = ""
        self.resume_gateway_url = ""

        self._last_id = 0
        self.changed = asyncio.Condition()
        # Set by the double: delivers gateway events for changes made here (MESSAGE_CREATE ...).
        self.emit: Emitter | None = None

        self.requests: list[RequestRecord] = []
        self.messages: dict[int, MessageRecord] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.undelivered: list[InteractionRecord] = []  # interactions no live session's shard owned
        self.commands: dict[int | None, list[dict[str, Any]]] = {None: []}  # guild id (None: global) -> commands
        self.files: dict[int, AttachmentRecord] = {}
        self.faults: list[FaultRule] = []
        self.delays: list[DelayRule] = []
        # Message writes per channel, enforced like Discord's bucket (None: unlimited).
        self.write_limiter: ChannelWriteLimiter | None = (
            ChannelWriteLimiter(*channel_write_limit) if channel_write_limit is not None else None
        )
        self.rate_limited: list[RequestRecord] = []  # requests the write rate limit answered 429
        self.refusals: list[RequestRecord] = []  # requests refused 400 by Discord's rules (invalid payloads...)
        self.gateway_connections: list[GatewayConnection] = []
        self.gateway_log: list[GatewayFrame] = []

        self.bot = User(self.new_id(), "double-bot", bot=True)
        self.application_id = self.bot.id  # modern applications share the bot user's id
        self.users = {u.id: u for u in (self.bot, User(self.new_id(), "alice"), User(self.new_id(), "bob"))}
        self.guilds: dict[int, Guild] = {}
        self.guild = self.add_guild(guild_id, name="Double Guild", text_channels=text_channels)  # the main one
        self.dm_channels: dict[int, DMChannel] = {}  # by channel id; one per user, opened by the bot
        self.closed_dms: set[int] = set()  # users who accept no DM from the bot (``close_dms``)
        self.oauth = OAuth(self)  # the application's OAuth2 authorization server (oauth.py)

    # ----------------------------------------------------------------- world

    def new_id(self) -> int:
        """A fresh snowflake whose timestamp is now (discord.py derives times from ids)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        snowflake = max((ms << 22) | (1 << 17), self._last_id + 1)
        self._last_id = snowflake
        return snowflake

    def add_guild(self, guild_id: int | None = None, *, name: str | None = None, text_channels: int = 1) -> Guild:
        """A new guild with every user in it (alice owns it); ``guild_id`` None: a fresh id."""
        guild_id = self.new_id() if guild_id is None else guild_id
        if guild_id in self.guilds or guild_id in self.users:
            raise ValueError(f"id {guild_id} is taken")
        alice, bob = [u for u in self.users.values() if not u.bot][:2]  # users added later join no guild
        guild = build_guild(
            guild_id,
            name or f"Double Guild {len(self.guilds) + 1}",
            owner=alice,
            others=[bob, self.bot],
            text_channels=text_channels,
            new_id=self.new_id,
        )
        self.guilds[guild.id] = guild
        return guild

    def add_user(self, name: str) -> User:
        user = User(self.new_id(), name)
        self.users[user.id] = user
        return user

    def guild_by_id(self, guild_id: int) -> Guild:
        guild = self.guilds.get(guild_id)
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def guild_of(self, channel_id: int) -> Guild:
        """The guild a channel is in (404 Unknown Channel if none)."""
        return self.guild_by_id(self.channel(channel_id).guild_id)

    def upload_limit(self, channel_id: int) -> int:
        """The most bytes one file may have in a message of this channel: its guild's limit (by boost
        tier), or ``attachment_size_limit`` outside guilds (DMs)."""
        guild = self.guilds.get(self.channel(channel_id).guild_id)
        return self.attachment_size_limit if guild is None else guild.upload_limit(self.attachment_size_limit)

    def user(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(f"user {user_id} is not known to the double")
        return user

    def channel(self, channel_id: int) -> Channel | DMChannel:
        dm = self.dm_channels.get(channel_id)
        if dm is not None:
            return dm
        for guild in self.guilds.values():
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel
        raise ApiError(404, 10003, "Unknown Channel")

    def dm_channel_of(self, user_id: int) -> DMChannel | None:
        """The DM between the bot and ``user_id``, if one was opened."""
        return next((dm for dm in self.dm_channels.values() if dm.recipient.id == user_id), None)

    def open_dm(self, recipient_id: int) -> DMChannel:
        """The DM with ``recipient_id``: the one already open, else a new one, as Create DM does.

        Refused like Discord: a snowflake that is no user with 400 Invalid Recipient(s) (50033); the
        bot itself or another bot with 400 Cannot send messages to this user (50007).  A user who
        closed their DMs still gets a channel: sending in it is what fails (403 50007).
        """
        recipient = self.users.get(recipient_id)
        if recipient is None:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        if recipient.bot:
            raise ApiError(400, 50007, "Cannot send messages to this user")
        dm = self.dm_channel_of(recipient_id)
        if dm is None:
            dm = DMChannel(self.new_id(), recipient)
            self.dm_channels[dm.id] = dm
        return dm

    def role(self, role_id: int) -> Role:
        for guild in self.guilds.values():
            role = guild.role(role_id)
            if role is not None:
                return role
        raise ApiError(404, 10011, "Unknown Role")

    def member_permissions(self, user_id: int, guild: Guild | None = None) -> int:
        return (guild or self.guild).permissions(user_id)

    # -------------------------------------------------------------- payloads

    def user_payload(self, user_id: int) -> dict[str, Any]:
        return self.user(user_id).to_payload()

    def member_payload(
        self, user_id: int, *, with_permissions: bool = False, guild: Guild | None = None
    ) -> dict[str, Any]:
        return (guild or self.guild).member_payload(user_id, with_permissions=with_permissions)

    def channel_payload(self, channel: Channel | DMChannel) -> dict[str, Any]:
        return channel.to_payload()

    def guild_payload(self, guild: Guild | None = None) -> dict[str, Any]:
        """A guild (default: the main one) as GUILD_CREATE carries it."""
        return (guild or self.guild).to_payload()

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "Discord double test application",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self.user_payload(self.guild.owner_id),
            "team": None,
            "bot": self.bot.to_payload(),
            "redirect_uris": list(self.oauth.redirect_uris),
            "interactions_endpoint_url": None,  # a URL here would make discord.py warn
            "approximate_guild_count": len(self.guilds),
        }

    # ------------------------------------------------------------ recording

    async def notify(self) -> None:
        """Wake every ``wait_for`` so it re-checks its predicate."""
        async with self.changed:
            self.changed.notify_all()
