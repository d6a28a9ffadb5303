"""Messages: creating, editing and deleting them, and the events they cause.

``MessageStore`` is the message half of ``State``: a message, with every
version of it, is stored before its event (MESSAGE_CREATE, MESSAGE_UPDATE,
MESSAGE_DELETE) goes to the gateway through ``emit``, which routes it by the
guild of the message's channel.  A DM's messages have no guild: their events
go to shard 0 only, to sessions with the DIRECT_MESSAGES intent, content
ungated, and without ``guild_id`` or ``member``, as Discord sends them.
A message's files are stored and resolved by ``MessageFiles`` (message_files.py),
mixed into ``MessageStore``.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .errors import ApiError, invalid_form
from .message_files import MessageFiles
from .records import (
    EPHEMERAL,
    LOADING,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    UploadedFile,
    snapshot,
)
from .validation import validate_message
from .world import DM, Channel, DMChannel, Guild, iso, snowflake_time

# Gateway intents that decide which events a session receives.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Message flags a sender may set; the rest are Discord's to set.
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
EDITABLE_FLAGS = SUPPRESS_EMBEDS | IS_COMPONENTS_V2


def unknown_message() -> ApiError:
    return ApiError(404, 10008, "Unknown Message")


def cannot_message_user() -> ApiError:
    """Sending in the DM of a user who accepts no DM from the bot (https://discord.com/developers/docs/
    topics/opcodes-and-status-codes#json-json-error-codes: 50007; discord.py raises Forbidden)."""
    return ApiError(403, 50007, "Cannot send messages to this user")


# (event name, data, required intent or None, whether MESSAGE_CONTENT gates the content)
Emitter = Callable[[str, dict[str, Any], int | None, bool], Awaitable[Any]]


class MessageStore(MessageFiles):
    """Messages, their files and the events they cause: the message half of ``State``."""

    # Provided by State.
    attachment_size_limit: int
    messages: dict[int, MessageRecord]
    interactions: dict[int, InteractionRecord]
    emit: Emitter | None
    guild_of: Callable[[int], Guild]
    channel: Callable[[int], Channel | DMChannel]
    bot: Any  # the bot's User
    closed_dms: set[int]
    user_payload: Callable[[int], dict[str, Any]]
    member_payload: Callable[..., dict[str, Any]]
    notify: Callable[[], Awaitable[None]]

    # -------------------------------------------------------------- payloads

    def message_payload(self, message: MessageRecord, *, resolve_reference: bool = True) -> dict[str, Any]:
        version = message.current
        guild = self._guild_or_none(message.channel_id)
        payload: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "author": self.user_payload(message.author_id),
            "content": version.content,
            "timestamp": iso(snowflake_time(message.id)),
            "edited_timestamp": version.edited_timestamp,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.user_payload(uid) for uid in self._mentioned_users(version.content, message.channel_id)],
            "mention_roles": [],
            "attachments": [a.to_payload() for a in version.attachments],
            "embeds": snapshot(version.embeds),
            "components": snapshot(version.components),
            "pinned": False,
            "flags": version.flags,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
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
                    "authorizing_integration_owners": {"0": str(guild.id)}
                    if guild is not None
                    else {"1": str(interaction.user_id)},
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

    def _guild_or_none(self, channel_id: int) -> Guild | None:
        """The guild of a channel; None for a DM."""
        channel = self.channel(channel_id)
        return None if isinstance(channel, DMChannel) else self.guild_of(channel_id)

    def _mentioned_users(self, content: str, channel_id: int) -> list[int]:
        """Users mentioned in ``content`` who can see the channel: its guild's members, or a DM's two users."""
        channel = self.channel(channel_id)
        present: Iterable[int] = (
            (self.bot.id, channel.recipient.id) if isinstance(channel, DMChannel) else self.guild_of(channel_id).members
        )
        ids = dict.fromkeys(int(m) for m in re.findall(r"<@!?(\d+)>", content))
        return [uid for uid in ids if uid in present]

    def _message_event(self, message: MessageRecord) -> dict[str, Any]:
        """A message as MESSAGE_CREATE/UPDATE carry it: with the author's guild member data (none in DMs)."""
        guild = self._guild_or_none(message.channel_id)
        if guild is None:
            return {**self.message_payload(message), "channel_type": DM}
        member = self.member_payload(message.author_id, guild=guild)
        del member["user"]  # it is the message's "author"
        return {**self.message_payload(message), "member": member}

    def _message_intent(self, channel_id: int) -> int:
        """The intent a session needs for a message's events: DIRECT_MESSAGES in DMs, else GUILD_MESSAGES."""
        return INTENT_DIRECT_MESSAGES if isinstance(self.channel(channel_id), DMChannel) else INTENT_GUILD_MESSAGES

    def _content_gated(self, message: MessageRecord) -> bool:
        """Whether sessions without MESSAGE_CONTENT get the message emptied: users' messages in guilds
        not mentioning the bot (DMs with the app are exempt, as Discord documents for the intent)."""
        if message.origin != "user" or isinstance(self.channel(message.channel_id), DMChannel):
            return False
        return self.bot.id not in self._mentioned_users(message.content, message.channel_id)

    # -------------------------------------------------------------- messages

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
        guild_id = self.channel(channel_id).guild_id
        if guild_id is not None:  # a DM's messages have none
            reference.setdefault("guild_id", str(guild_id))
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
        channel = self.channel(channel_id)  # 404 for unknown channels
        if (
            isinstance(channel, DMChannel)
            and author_id != channel.recipient.id
            and channel.recipient.id in self.closed_dms
        ):
            raise cannot_message_user()
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
        if isinstance(channel, DMChannel):
            channel.last_message_id = message.id
        await self.notify()
        if not version.ephemeral:
            # Ephemeral messages exist only for their recipient; Discord sends no event for them.
            event = self._message_event(message)
            intent = self._message_intent(channel_id)
            await self._emit("MESSAGE_CREATE", event, intent, self._content_gated(message))
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
            intent = self._message_intent(message.channel_id)
            await self._emit("MESSAGE_UPDATE", event, intent, self._content_gated(message))
        return message

    async def delete_message(self, message: MessageRecord, *, by: str) -> None:
        if message.deleted:
            raise unknown_message()
        message.deleted = True
        message.deleted_by = by
        await self.notify()
        if not message.ephemeral:
            guild_id = self.channel(message.channel_id).guild_id
            data = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if guild_id is not None:  # none in DMs
                data["guild_id"] = str(guild_id)
            await self._emit("MESSAGE_DELETE", data, self._message_intent(message.channel_id), False)

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
