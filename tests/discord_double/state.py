"""The double's world (one guild, its channels, roles and members) and its stores.

Everything the REST side, the gateway and the test driver share lives here:
ids, recorded requests, messages with all their versions, interactions,
registered application commands, stored files and injected faults.  Every
change is announced on ``changed`` (an ``asyncio.Condition``) so tests can
wait on the recorded state instead of sleeping.
"""

from __future__ import annotations

import asyncio
import datetime
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import ApiError, invalid_form
from .ratelimit import ChannelWriteLimiter
from .records import (
    EPHEMERAL,
    LOADING,
    AttachmentRecord,
    DelayRule,
    FaultRule,
    GatewayConnection,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    RequestRecord,
    UploadedFile,
    snapshot,
)
from .validation import validate_message

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

# Gateway intents that decide which events a session receives.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15

# Message flags a sender may set; the rest are Discord's to set.
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
EDITABLE_FLAGS = SUPPRESS_EMBEDS | IS_COMPONENTS_V2


def unknown_message() -> ApiError:
    return ApiError(404, 10008, "Unknown Message")


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
    name: str
    position: int
    type: int = 0  # GUILD_TEXT


@dataclass
class Member:
    user: User
    role_ids: list[int]
    joined_at: datetime.datetime


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channels: list[Channel] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    locale: str = "en-US"


# (event name, data, required intent or None, whether MESSAGE_CONTENT gates the content)
Emitter = Callable[[str, dict[str, Any], int | None, bool], Awaitable[None]]


class State:
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
    ):
        if text_channels < 1:
            raise ValueError(f"the guild needs at least one text channel, got text_channels={text_channels}")
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.app_permissions = app_permissions
        self.interaction_ack_timeout = interaction_ack_timeout
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
        self.guild = self._build_guild(text_channels)

    # ----------------------------------------------------------------- world

    def _build_guild(self, text_channels: int) -> Guild:
        guild_id = self.new_id()
        now = datetime.datetime.now(datetime.UTC)
        alice = User(self.new_id(), "alice")
        bob = User(self.new_id(), "bob")
        # The @everyone role shares the guild's id, as on Discord.
        everyone = Role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        moderator = Role(self.new_id(), "Moderator", EVERYONE_PERMISSIONS | MANAGE_MESSAGES, 1)
        guild = Guild(id=guild_id, name="Double Guild", owner_id=alice.id)
        names = ["general", "second"] + [f"channel-{n}" for n in range(3, text_channels + 1)]
        guild.channels = [Channel(self.new_id(), name, position) for position, name in enumerate(names[:text_channels])]
        guild.roles = [everyone, moderator]
        guild.members = {
            alice.id: Member(alice, [moderator.id], now),
            bob.id: Member(bob, [], now),
            self.bot.id: Member(self.bot, [], now),
        }
        return guild

    def new_id(self) -> int:
        """A fresh snowflake whose timestamp is now (discord.py derives times from ids)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        snowflake = max((ms << 22) | (1 << 17), self._last_id + 1)
        self._last_id = snowflake
        return snowflake

    def user(self, user_id: int) -> User:
        member = self.guild.members.get(user_id)
        if member is None:
            raise KeyError(f"user {user_id} is not a member of the double's guild")
        return member.user

    def channel(self, channel_id: int) -> Channel:
        for channel in self.guild.channels:
            if channel.id == channel_id:
                return channel
        raise ApiError(404, 10003, "Unknown Channel")

    def role(self, role_id: int) -> Role:
        for role in self.guild.roles:
            if role.id == role_id:
                return role
        raise ApiError(404, 10011, "Unknown Role")

    def member_permissions(self, user_id: int) -> int:
        member = self.guild.members[user_id]
        if user_id == self.guild.owner_id:
            return ALL_PERMISSIONS
        permissions = self.role(self.guild.id).permissions
        for role_id in member.role_ids:
            permissions |= self.role(role_id).permissions
        return ALL_PERMISSIONS if permissions & ADMINISTRATOR else permissions

    # -------------------------------------------------------------- payloads

    def user_payload(self, user_id: int) -> dict[str, Any]:
        return self.user(user_id).to_payload()

    def member_payload(self, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        member = self.guild.members[user_id]
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
            payload["permissions"] = str(self.member_permissions(user_id))
        return payload

    def channel_payload(self, channel: Channel) -> dict[str, Any]:
        return {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(self.guild.id),
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def guild_payload(self) -> dict[str, Any]:
        """The guild as GUILD_CREATE carries it (full member list, channels and roles)."""
        guild = self.guild
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": str(guild.channels[0].id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": guild.locale,
            "features": [],
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "roles": [r.to_payload() for r in guild.roles],
            "emojis": [],
            "stickers": [],
            "joined_at": iso(guild.members[self.bot.id].joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [self.member_payload(uid) for uid in guild.members],
            "channels": [self.channel_payload(c) for c in guild.channels],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

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
            "redirect_uris": [],
            "interactions_endpoint_url": None,  # a URL here would make discord.py warn
            "approximate_guild_count": 1,
        }

    def message_payload(self, message: MessageRecord, *, resolve_reference: bool = True) -> dict[str, Any]:
        version = message.current
        payload: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "guild_id": str(self.guild.id),
            "type": message.type,
            "author": self.user_payload(message.author_id),
            "content": version.content,
            "timestamp": iso(snowflake_time(message.id)),
            "edited_timestamp": version.edited_timestamp,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.user_payload(uid) for uid in self._mentioned_users(version.content)],
            "mention_roles": [],
            "attachments": [a.to_payload() for a in version.attachments],
            "embeds": snapshot(version.embeds),
            "components": snapshot(version.components),
            "pinned": False,
            "flags": version.flags,
        }
        if message.origin == "interaction":
            # Interaction responses are posted through the application's webhook.
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            interaction = self.interactions.get(message.interaction_id or 0)
            if interaction is not None:
                payload["interaction_metadata"] = {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "user": self.user_payload(interaction.user_id),
                    "authorizing_integration_owners": {"0": str(self.guild.id)},
                }
        if version.message_reference is not None:
            payload["message_reference"] = snapshot(version.message_reference)
            if resolve_reference:
                referenced = self.messages.get(int(version.message_reference.get("message_id") or 0))
                payload["referenced_message"] = (
                    None
                    if referenced is None or referenced.deleted
                    else self.message_payload(referenced, resolve_reference=False)
                )
        return payload

    def _mentioned_users(self, content: str) -> list[int]:
        ids = dict.fromkeys(int(m) for m in re.findall(r"<@!?(\d+)>", content))
        return [uid for uid in ids if uid in self.guild.members]

    def _message_event(self, message: MessageRecord) -> dict[str, Any]:
        """A message as MESSAGE_CREATE/UPDATE carry it: with the author's guild member data."""
        member = self.member_payload(message.author_id)
        del member["user"]  # it is the message's "author"
        return {**self.message_payload(message), "member": member}

    def _content_gated(self, message: MessageRecord) -> bool:
        """Whether sessions without MESSAGE_CONTENT get the message emptied (users' messages not mentioning the bot)."""
        return message.origin == "user" and self.bot.id not in self._mentioned_users(message.content)

    # ------------------------------------------------------------ recording

    async def notify(self) -> None:
        """Wake every ``wait_for`` so it re-checks its predicate."""
        async with self.changed:
            self.changed.notify_all()

    def store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> AttachmentRecord:
        attachment_id = self.new_id()
        guessed = mimetypes.guess_type(filename)[0]
        if not content_type or content_type == "application/octet-stream":
            # Discord sniffs the type; discord.py always uploads as octet-stream.
            content_type = guessed or "application/octet-stream"
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        record = AttachmentRecord(
            id=attachment_id,
            filename=filename,
            content_type=content_type,
            data=data,
            url=url,
            proxy_url=url.replace("/attachments/", "/media/attachments/", 1),
            description=description,
            ephemeral=ephemeral,
        )
        self.files[attachment_id] = record
        return record

    # -------------------------------------------------------------- messages

    def _attachments(
        self,
        payload: dict[str, Any],
        files: list[UploadedFile],
        channel_id: int,
        existing: Iterable[AttachmentRecord] = (),
    ) -> tuple[AttachmentRecord, ...]:
        """Resolve a payload's ``attachments`` array against uploads and kept attachments.

        New files are referenced by their upload index (``files[n]``); kept ones by their id.
        Without an ``attachments`` array, existing attachments stay and uploads are appended.
        """
        for upload in files:
            if upload.size > self.attachment_size_limit:
                raise ApiError(413, 40005, "Request entity too large")
        uploads = dict(enumerate(files))
        existing_by_id = {str(a.id): a for a in existing}
        if payload.get("attachments") is None:
            new = [self.store_file(channel_id, f.filename, f.data, f.content_type) for f in files]
            return (*existing_by_id.values(), *new)

        result: list[AttachmentRecord] = []
        used: set[int] = set()
        for index, item in enumerate(payload["attachments"]):
            key = str(item.get("id"))
            if key in existing_by_id:
                result.append(existing_by_id[key])
                continue
            upload = uploads.get(int(key)) if key.isdigit() else None
            if upload is None:
                raise invalid_form(f"attachments.{index}", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {key}")
            used.add(int(key))
            filename = item.get("filename") or upload.filename
            result.append(
                self.store_file(
                    channel_id, filename, upload.data, upload.content_type, description=item.get("description")
                )
            )
        # Discord still attaches uploads the array forgot to mention.
        result += [
            self.store_file(channel_id, f.filename, f.data, f.content_type) for i, f in uploads.items() if i not in used
        ]
        return tuple(result)

    @staticmethod
    def _resolve_embed_urls(
        embeds: list[dict[str, Any]], attachments: Iterable[AttachmentRecord]
    ) -> list[dict[str, Any]]:
        """Replace ``attachment://name`` in embed media with the stored file's URL, as Discord does."""
        by_name = {a.filename: a for a in attachments}
        prefix = "attachment://"
        embeds = snapshot(embeds)
        for embed in embeds:
            for key in ("image", "thumbnail", "video"):
                media = embed.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith(prefix):
                    attachment = by_name.get(media["url"].removeprefix(prefix))
                    if attachment is not None:
                        media.update(url=attachment.url, proxy_url=attachment.proxy_url)
        return embeds

    @staticmethod
    def _validate(version: MessageVersion) -> None:
        """What is left to check once the payload passed ``validate_message``: the result is not empty."""
        if not (version.content or version.embeds or version.attachments or version.components or version.loading):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _reference(self, payload: dict[str, Any], channel_id: int) -> dict[str, Any] | None:
        reference = payload.get("message_reference")
        if not reference:
            return None
        reference = snapshot(reference)
        target = self.messages.get(int(reference.get("message_id") or 0))
        if target is None or target.deleted or target.channel_id != int(reference.get("channel_id") or channel_id):
            if reference.get("fail_if_not_exists", True):
                raise invalid_form("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            return None
        reference.setdefault("channel_id", str(channel_id))
        reference.setdefault("guild_id", str(self.guild.id))
        return reference

    async def create_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        payload: dict[str, Any],
        files: list[UploadedFile],
        via: str,
        interaction: InteractionRecord | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
    ) -> MessageRecord:
        self.channel(channel_id)  # 404 for unknown channels
        # Refused before anything is stored (no attachment either), as on Discord.
        validate_message(payload)
        flags = int(payload.get("flags") or 0) & (SENDABLE_FLAGS | (EPHEMERAL if interaction else 0))
        attachments = self._attachments(payload, files, channel_id)
        reference = self._reference(payload, channel_id)
        version = MessageVersion(
            content=str(payload.get("content") or ""),
            embeds=self._resolve_embed_urls(payload.get("embeds") or [], attachments),
            attachments=attachments,
            components=snapshot(payload.get("components") or []),
            flags=flags | extra_flags,
            message_reference=reference,
            via=via,
            at=time.monotonic(),
        )
        self._validate(version)
        if reference is not None and message_type == 0:
            message_type = 19  # REPLY
        message = MessageRecord(
            id=self.new_id(),
            channel_id=channel_id,
            author_id=author_id,
            origin=via,
            type=message_type,
            interaction_id=interaction.id if interaction else None,
            versions=[version],
        )
        self.messages[message.id] = message
        await self.notify()
        if not version.ephemeral:
            # Ephemeral messages exist only for their recipient; Discord sends no event for them.
            event = self._message_event(message)
            await self._emit("MESSAGE_CREATE", event, INTENT_GUILD_MESSAGES, self._content_gated(message))
        return message

    async def edit_message(
        self,
        message: MessageRecord,
        payload: dict[str, Any],
        files: list[UploadedFile],
        *,
        via: str,
    ) -> MessageRecord:
        """Apply a PATCH: fields present replace the current ones, absent ones stay."""
        if message.deleted:
            raise unknown_message()
        old = message.current
        validate_message(payload, components_v2=bool(old.flags & IS_COMPONENTS_V2))
        attachments = old.attachments
        if files or "attachments" in payload:
            attachments = self._attachments(payload, files, message.channel_id, old.attachments)
        flags = old.flags & ~(LOADING | EDITABLE_FLAGS)  # an edit always ends the "thinking" state
        flags |= (int(payload["flags"] or 0) if "flags" in payload else old.flags) & EDITABLE_FLAGS
        version = MessageVersion(
            content=str(payload.get("content") or "") if "content" in payload else old.content,
            embeds=self._resolve_embed_urls(payload.get("embeds") or [], attachments)
            if "embeds" in payload
            else old.embeds,
            attachments=attachments,
            components=snapshot(payload.get("components") or []) if "components" in payload else old.components,
            flags=flags,
            message_reference=old.message_reference,  # a message's reference cannot be changed
            via=via,
            at=time.monotonic(),
            edited_timestamp=iso(datetime.datetime.now(datetime.UTC)),
        )
        self._validate(version)
        message.versions.append(version)
        await self.notify()
        if not version.ephemeral:
            event = self._message_event(message)
            await self._emit("MESSAGE_UPDATE", event, INTENT_GUILD_MESSAGES, self._content_gated(message))
        return message

    async def delete_message(self, message: MessageRecord, *, by: str) -> None:
        if message.deleted:
            raise unknown_message()
        message.deleted = True
        message.deleted_by = by
        await self.notify()
        if not message.ephemeral:
            data = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(self.guild.id)}
            await self._emit("MESSAGE_DELETE", data, INTENT_GUILD_MESSAGES, False)

    def live_message(self, message_id: int, channel_id: int | None = None) -> MessageRecord:
        """A message the channel routes can see: not deleted, not ephemeral, in that channel."""
        message = self.messages.get(message_id)
        if message is None or message.deleted or message.ephemeral:
            raise unknown_message()
        if channel_id is not None and message.channel_id != channel_id:
            raise unknown_message()
        return message

    async def _emit(self, event: str, data: dict[str, Any], intent: int | None, content_gated: bool) -> None:
        if self.emit is not None:
            await self.emit(event, data, intent, content_gated)
