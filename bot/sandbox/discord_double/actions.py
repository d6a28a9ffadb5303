"""What users (and Discord's own trouble) do to the bot: interactions, messages, DMs, guilds, dropped gateways.

``Actions`` is mixed into ``DiscordDouble``.  Interactions are built by
driver.py, checked against what the bot registered, and reach only the
gateway sessions whose shard owns their guild.
"""

from __future__ import annotations

import time
from typing import Any

from . import driver
from .gateway import Gateway
from .messages import INTENT_GUILDS
from .records import InteractionRecord, MessageRecord, UploadedFile
from .state import State
from .world import PREMIUM_TIERS, DMChannel


class Actions:
    """Mixed into ``DiscordDouble``."""

    state: State
    gateway: Gateway
    channel_id: int
    member_id: int

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: int | None = None,
        channel: int | None = None,
        guild: int | None = None,
        attachments: dict[str, driver.AttachmentSpec] | None = None,
        locale: str = "en-US",
        app_permissions: int | None = None,
    ) -> InteractionRecord:
        """Run a registered slash command as ``user`` would; returns at once with its record.

        ``name`` may include subcommands ("settings show").  ``attachments`` maps
        attachment options to ``(filename, bytes, content_type)``.  The command runs in
        ``channel``, else in the first channel of ``guild``, else in the main channel.
        The record's ``delivered`` says whether a session got it (see ``_send_interaction``).
        """
        interaction = driver.slash_interaction(
            self.state,
            name,
            options or {},
            attachments or {},
            user_id=self.member_id if user is None else user,
            channel_id=self._channel(channel, guild),
            locale=locale,
            app_permissions=app_permissions,
        )
        await self._send_interaction(interaction)
        return interaction

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any] | None,
        focused: str,
        *,
        user: int | None = None,
        channel: int | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """``user`` is typing option ``focused`` of /``name`` (subcommands as in ``slash``): Discord
        sends an APPLICATION_COMMAND_AUTOCOMPLETE (type 4); returns at once with its record.

        ``options`` are the values in the boxes so far, the focused one included (left out: an empty
        box).  Strings and the focused value go as typed, unchecked (min/max length, choices), the
        focused one marked ``"focused": true``; other options are checked as ``slash`` checks them;
        required ones may be missing.  The focused option must be registered with
        ``autocomplete: true``, else ValueError (Discord would not ask the bot); an unregistered
        command, LookupError.  The bot answers with callback type 8, validated like Discord (at most
        25 choices...: see autocomplete.py); read them in ``record.choices``.
        """
        interaction = driver.autocomplete_interaction(
            self.state,
            name,
            options or {},
            focused,
            user_id=self.member_id if user is None else user,
            channel_id=self._channel(channel, None),
            locale=locale,
        )
        await self._send_interaction(interaction)
        return interaction

    async def submit_modal(
        self,
        opened_by: InteractionRecord,
        values: dict[str, str] | None = None,
        *,
        user: int | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Fill in the modal the bot answered ``opened_by`` with (``{input custom_id: text}``; inputs
        not named keep their prefilled value) and submit it."""
        interaction = driver.modal_submit_interaction(
            self.state, opened_by, values or {}, user_id=opened_by.user_id if user is None else user, locale=locale
        )
        await self._send_interaction(interaction)
        return interaction

    async def click(
        self, message_id: int, custom_id: str, *, user: int | None = None, locale: str = "en-US"
    ) -> InteractionRecord:
        """Click a button of a message (as its current version shows it).

        discord.py registers a non-persistent view only once it has processed the
        response that created the message, which can be after the double recorded
        it: before clicking, wait for something the bot does afterwards.  Persistent
        views and DynamicItems (registered at startup) have no such race.
        """
        return await self._component(message_id, custom_id, None, user, locale)

    async def select(
        self, message_id: int, custom_id: str, values: list[str], *, user: int | None = None, locale: str = "en-US"
    ) -> InteractionRecord:
        """Pick ``values`` in a select menu of a message."""
        return await self._component(message_id, custom_id, values, user, locale)

    async def _component(
        self, message_id: int, custom_id: str, values: list[str] | None, user: int | None, locale: str
    ) -> InteractionRecord:
        message = self.state.messages.get(message_id)
        if message is None:
            raise LookupError(f"no message {message_id}")
        interaction = driver.component_interaction(
            self.state,
            message,
            custom_id,
            values,
            user_id=self.member_id if user is None else user,
            locale=locale,
            app_permissions=None,
        )
        await self._send_interaction(interaction)
        return interaction

    async def _send_interaction(self, interaction: InteractionRecord) -> None:
        """Hand INTERACTION_CREATE to the sessions that own the interaction's guild.

        If none does (its shard has no live session), nobody gets it, as on Discord, where
        the user's client then says the interaction failed: the record is kept with
        ``delivered`` False and listed in ``undelivered_interactions``.  Before any client ever
        identified, though, it is a test's mistake: RuntimeError.
        """
        if not self.gateway.sessions:
            del self.state.interactions[interaction.id]
            raise RuntimeError("no gateway session: is the client logged in?")
        # A dropped session buffers the event; the client gets it on RESUME.
        interaction.sent_at = time.monotonic()
        sessions = await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        interaction.delivered_to = [s.id for s in sessions]
        if not sessions:
            self.state.undelivered.append(interaction)
        await self.state.notify()

    async def send_user_message(
        self,
        content: str,
        *,
        user: int | None = None,
        channel: int | None = None,
        guild: int | None = None,
        files: list[tuple[str, bytes, str]] | None = None,
        reply_to: int | None = None,
    ) -> MessageRecord:
        """Post a message as a member in ``channel`` (else the first channel of ``guild``, else the
        main channel); the bot gets MESSAGE_CREATE, content gated by MESSAGE_CONTENT.  In a DM only its
        user may post (``send_user_dm`` finds or opens it)."""
        channel_id = self._channel(channel, guild)
        author_id = self.member_id if user is None else user
        dm = self.state.channel(channel_id)
        if isinstance(dm, DMChannel) and author_id != dm.recipient.id:
            raise ValueError(f"user {author_id} is not in DM {channel_id} (with user {dm.recipient.id})")
        payload: dict[str, Any] = {"content": content}
        if reply_to is not None:
            payload["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
        uploads = [UploadedFile(f"files[{i}]", name, ctype, data) for i, (name, data, ctype) in enumerate(files or [])]
        return await self.state.create_message(
            channel_id=channel_id,
            author_id=author_id,
            payload=payload,
            files=uploads,
            via="user",
        )

    async def send_user_dm(
        self,
        content: str,
        *,
        user: int | None = None,
        files: list[tuple[str, bytes, str]] | None = None,
        reply_to: int | None = None,
    ) -> MessageRecord:
        """``user`` (default: alice) writes to the bot in their DM, opened if need be (the DM id the
        bot gets is the one ``POST /users/@me/channels`` answers for that user).  The bot gets
        MESSAGE_CREATE with the DIRECT_MESSAGES intent, on shard 0, without ``guild_id``, content
        ungated (DMs with the app are exempt from MESSAGE_CONTENT)."""
        author = self.state.user(self.member_id if user is None else user)  # KeyError for an unknown user
        if author.bot:
            raise ValueError(f"user {author.id} is a bot: no DM between it and the bot")
        dm = self.state.open_dm(author.id)
        return await self.send_user_message(
            content, user=dm.recipient.id, channel=dm.id, files=files, reply_to=reply_to
        )

    def close_dms(self, user_id: int) -> None:
        """``user_id`` accepts no DM from the bot any more (DMs from server members off, or the bot
        blocked): opening the DM still works, but every message the bot sends there is answered 403
        Cannot send messages to this user (50007), which discord.py raises as ``Forbidden``."""
        self.state.user(user_id)  # KeyError for a user the double does not know
        self.state.closed_dms.add(user_id)

    def open_dms(self, user_id: int) -> None:
        """Undo ``close_dms``: the bot may message ``user_id`` again."""
        self.state.user(user_id)
        self.state.closed_dms.discard(user_id)

    async def delete_message(self, message_id: int) -> None:
        """Delete a message as a user/moderator would; later edits of it get 404 Unknown Message."""
        message = self.state.messages.get(message_id)
        if message is None:
            raise LookupError(f"no message {message_id}")
        await self.state.delete_message(message, by="user")

    async def drop_gateway(self, code: int | None = None, *, shard: int | None = None, resumable: bool = True) -> int:
        """Break the client's gateway connection so it must RESUME.

        By default the TCP connection is cut with no close frame; pass ``code``
        (e.g. 4000) to close with that code instead.  Events dispatched until
        the client resumes are buffered and replayed.  ``shard``: only the
        sessions of that shard id.  ``resumable=False`` ends the sessions too, as
        when Discord times one out: the client's RESUME is refused and it must
        IDENTIFY again; until it does, its shard's events reach nobody.
        """
        dropped = await self.gateway.drop(code, shard=shard, resumable=resumable)
        if not dropped:
            raise RuntimeError("no identified gateway connection to drop")
        await self.state.notify()
        return dropped

    # ---------------------------------------------------------------- guilds

    def _channel(self, channel: int | None, guild: int | None) -> int:
        if channel is not None:
            return channel
        return self.channel_id if guild is None else self.state.guild_by_id(guild).channels[0].id

    def add_user(self, name: str) -> int:
        """A Discord user in none of the bot's guilds (a slash command's user option may name them)."""
        return self.state.add_user(name).id

    async def add_guild(self, guild_id: int | None = None, *, name: str | None = None, text_channels: int = 1) -> int:
        """The bot joins a new guild (alice owns it, bob is in it); returns its id.

        ``guild_id`` places it on a shard: see ``guild_id_on_shard``.  Its channels are
        ``channel_ids_of(guild_id)``.  Live sessions owning it get its GUILD_CREATE, as when a
        bot is added to a server; sessions identifying later get it after READY.
        """
        guild = self.state.add_guild(guild_id, name=name, text_channels=text_channels)
        await self.gateway.dispatch("GUILD_CREATE", guild.to_payload(), guild_id=guild.id)
        await self.state.notify()
        return guild.id

    async def set_premium_tier(self, guild_id: int, tier: int) -> None:
        """Set a guild's boost tier (0-3), as when members boost it or their boosts run out.

        From now on every file uploaded to a message there may have up to ``upload_limit(guild_id)``
        bytes: 10 MiB at tiers 0 and 1, 50 MiB at 2, 100 MiB at 3 (never less than the double's
        ``attachment_size_limit``); interactions there carry that ``attachment_size_limit``.  Live
        sessions owning the guild get GUILD_UPDATE, so discord.py's ``guild.premium_tier`` and
        ``guild.filesize_limit`` follow.
        """
        if tier not in PREMIUM_TIERS:
            raise ValueError(f"a premium tier is 0, 1, 2 or 3, got {tier!r}")
        guild = self.state.guild_by_id(guild_id)
        guild.premium_tier = tier
        await self.gateway.dispatch("GUILD_UPDATE", guild.rest_payload(), INTENT_GUILDS, guild_id=guild.id)
        await self.state.notify()
