"""The double's world: its users and guilds (channels, roles, members) and how Discord shows them.

Every guild has the same humans (alice, its owner with a "Moderator" role, and
bob) and the bot; each has its own channels and roles.  Ids are snowflakes, so
a guild's id also decides which gateway shard it belongs to (see shards.py).
The bot may also open a DM (``DMChannel``) with any user it knows.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADD_REACTIONS = 1 << 6
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
USE_EXTERNAL_STICKERS = 1 << 37
SEND_MESSAGES_IN_THREADS = 1 << 38
SEND_VOICE_MESSAGES = 1 << 46
SEND_POLLS = 1 << 49
USE_EXTERNAL_APPS = 1 << 50
PIN_MESSAGES = 1 << 51
BYPASS_SLOWMODE = 1 << 52

# Every text-channel permission (discord.Permissions.text() plus view_channel):
# what the bot gets in interactions unless a test says otherwise.
ALL_TEXT_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | SEND_TTS_MESSAGES | MANAGE_MESSAGES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS | ADD_REACTIONS | USE_APPLICATION_COMMANDS
    | MANAGE_THREADS | CREATE_PUBLIC_THREADS | CREATE_PRIVATE_THREADS | USE_EXTERNAL_STICKERS
    | SEND_MESSAGES_IN_THREADS | SEND_VOICE_MESSAGES | SEND_POLLS | USE_EXTERNAL_APPS | PIN_MESSAGES
    | BYPASS_SLOWMODE
)  # fmt: skip
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS
)  # fmt: skip

# Upload limits (https://discord.com/developers/docs/reference#uploading-files): each file of a
# request may be up to 10 MiB, more in a boosted server; discord.py's Guild.filesize_limit
# (``_PREMIUM_GUILD_LIMITS``) has the same numbers.
MiB = 1024 * 1024
DEFAULT_UPLOAD_LIMIT = 10 * MiB  # tiers 0 and 1, and DMs
BOOSTED_UPLOAD_LIMITS = {2: 50 * MiB, 3: 100 * MiB}
PREMIUM_TIERS = range(4)
# Boosts a server needs for each tier: what ``premium_subscription_count`` shows.
BOOSTS_FOR_TIER = {0: 0, 1: 2, 2: 7, 3: 14}


def iso(ts: datetime.datetime) -> str:
    return ts.isoformat()


def snowflake_time(snowflake: int) -> datetime.datetime:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


@dataclass
class User:
    id: int
    username: str
    bot: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": None if self.bot else self.username.title(),
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    position: int
    type: int = 0  # GUILD_TEXT

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


DM = 1  # the channel type of a direct message between the bot and one user


@dataclass
class DMChannel:
    """A DM (channel type 1) between the bot and one user, outside every guild.

    ``POST /users/@me/channels`` opens it (https://discord.com/developers/docs/resources/user#create-dm):
    one per user, returned again on every later call.  Its object is Discord's "Example DM Channel"
    (https://discord.com/developers/docs/resources/channel#channel-object-example-dm-channel): no
    ``guild_id``, no name, the other user in ``recipients``.
    """

    id: int
    recipient: User
    last_message_id: int | None = None  # the newest message sent in it, as Discord reports it
    type: int = DM
    guild_id: None = None  # no guild: code asking a channel for its guild finds none

    @property
    def name(self) -> str:
        return ""  # DMs have none; for code that shows a channel's name

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": None if self.last_message_id is None else str(self.last_message_id),
            "flags": 0,
            "recipients": [self.recipient.to_payload()],
        }


@dataclass
class Member:
    user: User
    role_ids: list[int]
    joined_at: datetime.datetime


# What only GUILD_CREATE carries (https://discord.com/developers/docs/events/gateway-events#guild-create).
GATEWAY_ONLY_GUILD_FIELDS = (
    "joined_at", "large", "unavailable", "member_count", "members", "channels", "threads", "presences",
    "voice_states", "stage_instances", "guild_scheduled_events", "soundboard_sounds",
)  # fmt: skip


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channels: list[Channel] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    locale: str = "en-US"
    premium_tier: int = 0  # the server's boost level, 0-3 (``DiscordDouble.set_premium_tier``)

    def role(self, role_id: int) -> Role | None:
        return next((r for r in self.roles if r.id == role_id), None)

    def permissions(self, user_id: int) -> int:
        """A member's guild-wide permissions: @everyone's plus their roles' (all for the owner)."""
        member = self.members[user_id]
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        roles = [self.role(self.id), *(self.role(r) for r in member.role_ids)]  # @everyone shares the guild's id
        permissions = 0
        for role in roles:
            permissions |= role.permissions if role is not None else 0
        return ALL_PERMISSIONS if permissions & ADMINISTRATOR else permissions

    def upload_limit(self, default: int = DEFAULT_UPLOAD_LIMIT) -> int:
        """The most bytes one file may have in this guild: ``default`` (10 MiB unless the double
        was told otherwise) or more at boost tier 2 and 3."""
        return max(default, BOOSTED_UPLOAD_LIMITS.get(self.premium_tier, 0))

    def member_payload(self, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        member = self.members[user_id]
        payload: dict[str, Any] = {
            "user": member.user.to_payload(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in member.role_ids],
            "joined_at": iso(member.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_permissions:
            payload["permissions"] = str(self.permissions(user_id))
        return payload

    def to_payload(self) -> dict[str, Any]:
        """The guild as GUILD_CREATE carries it (full member list, channels and roles)."""
        bot = next(m for m in self.members.values() if m.user.bot)
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": BOOSTS_FOR_TIER[self.premium_tier],
            "premium_progress_bar_enabled": False,
            "system_channel_id": str(self.channels[0].id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": self.locale,
            "features": [],
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "roles": [r.to_payload() for r in self.roles],
            "emojis": [],
            "stickers": [],
            "joined_at": iso(bot.joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [self.member_payload(uid) for uid in self.members],
            "channels": [c.to_payload() for c in self.channels],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def rest_payload(self) -> dict[str, Any]:
        """The guild as ``GET /guilds/{id}`` and GUILD_UPDATE carry it: without GUILD_CREATE's extras."""
        payload = self.to_payload()
        for key in GATEWAY_ONLY_GUILD_FIELDS:
            payload.pop(key, None)
        return payload


def build_guild(
    guild_id: int, name: str, *, owner: User, others: list[User], text_channels: int, new_id: Callable[[], int]
) -> Guild:
    """A guild owned by ``owner`` (who holds its "Moderator" role), with ``others`` as plain members
    and ``text_channels`` channels: "general", "second", "channel-3"..."""
    if text_channels < 1:
        raise ValueError(f"a guild needs at least one text channel, got text_channels={text_channels}")
    now = datetime.datetime.now(datetime.UTC)
    # The @everyone role shares the guild's id, as on Discord.
    everyone = Role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
    moderator = Role(new_id(), "Moderator", EVERYONE_PERMISSIONS | MANAGE_MESSAGES, 1)
    guild = Guild(id=guild_id, name=name, owner_id=owner.id)
    names = ["general", "second"] + [f"channel-{n}" for n in range(3, text_channels + 1)]
    guild.channels = [
        Channel(new_id(), guild_id, name, position) for position, name in enumerate(names[:text_channels])
    ]
    guild.roles = [everyone, moderator]
    guild.members = {owner.id: Member(owner, [moderator.id], now)}
    guild.members.update((user.id, Member(user, [], now)) for user in others)
    return guild
