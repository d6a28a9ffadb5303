"""``DiscordDouble``: the server plus the test-facing API (ids, records, driver, faults)."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from . import driver
from .gateway import Gateway
from .ratelimit import ChannelWriteLimiter
from .records import (
    DelayRule,
    FaultRule,
    GatewayConnection,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    RequestRecord,
    UploadedFile,
    WriteEvent,
)
from .rest import RestApi
from .state import ALL_TEXT_PERMISSIONS, State

T = TypeVar("T")

DEFAULT_TOKEN = "discord-double-bot-token"
# Discord's limit on message writes in one channel: 5 per 5 seconds.
DISCORD_CHANNEL_WRITE_LIMIT = (5, 5.0)


class DiscordDouble:
    """A Discord stand-in on 127.0.0.1 that an unmodified discord.py client can log into.

    Point a client at it with::

        discord.http.Route.BASE = dd.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dd.gateway_url)

    and start it with ``dd.bot_token``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float = 41.25,
        attachment_size_limit: int = 10 * 1024 * 1024,
        app_permissions: int = ALL_TEXT_PERMISSIONS,
        interaction_ack_timeout: float | None = None,
        text_channels: int = 2,
        channel_write_limit: tuple[int, float] | None = DISCORD_CHANNEL_WRITE_LIMIT,
    ):
        """
        :param heartbeat_interval: seconds, sent in HELLO.
        :param app_permissions: the bot's permissions in interactions (``app_permissions`` field).
        :param interaction_ack_timeout: if set, callbacks later than this many seconds after the
            interaction get 404 Unknown interaction, like Discord's 3 s window.  Off by default
            so slow CI machines do not flake.
        :param text_channels: how many text channels the guild has ("general", "second",
            "channel-3"...); see ``channel_ids``.
        :param channel_write_limit: ``(limit, per)``: at most ``limit`` message writes
            (POST/PATCH/DELETE on ``/channels/{id}/messages[/{mid}]`` with the bot token) per
            ``per`` seconds in each channel, like Discord (5 per 5 s, the default); more are
            answered 429.  ``None`` disables it.  Interaction callbacks and webhooks are not counted.
        """
        self._host = host
        self._port = port
        self.state = State(
            token=token,
            attachment_size_limit=attachment_size_limit,
            app_permissions=app_permissions,
            interaction_ack_timeout=interaction_ack_timeout,
            text_channels=text_channels,
            channel_write_limit=channel_write_limit,
        )
        self.gateway = Gateway(self.state, heartbeat_interval=heartbeat_interval)
        self.rest = RestApi(self.state)
        # Messages the bot (or a simulated user) creates reach the client as gateway events.
        self.state.emit = self.gateway.dispatch
        self._runner: web.AppRunner | None = None

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> DiscordDouble:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        app.router.add_route("*", r"/api/{tail:.*}", self.rest.handle)
        app.router.add_get(r"/attachments/{tail:.*}", self.rest.handle)
        app.router.add_get(r"/media/attachments/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self.state.base_url = f"http://{self._host}:{self._port}"
        self.state.gateway_url = f"ws://{self._host}:{self._port}/gateway"
        # A different path, so a test can tell that the client resumed where READY told it to.
        self.state.resume_gateway_url = f"ws://{self._host}:{self._port}/gateway/resume"
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.rest.closing.set()  # release answers held by delay_next instead of waiting for them
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> DiscordDouble:
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    # -------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return f"{self.state.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be set to (as a ``yarl.URL``)."""
        return self.state.gateway_url

    @property
    def resume_gateway_url(self) -> str:
        return self.state.resume_gateway_url

    # ---------------------------------------------------------------- the world

    @property
    def bot_token(self) -> str:
        return self.state.token

    @property
    def bot_id(self) -> int:
        return self.state.bot.id

    @property
    def application_id(self) -> int:
        return self.state.application_id

    @property
    def guild_id(self) -> int:
        return self.state.guild.id

    @property
    def channel_ids(self) -> list[int]:
        """Every text channel, in guild order (``text_channels`` of them)."""
        return [c.id for c in self.state.guild.channels]

    @property
    def channel_id(self) -> int:
        """The main text channel ("general")."""
        return self.channel_ids[0]

    @property
    def second_channel_id(self) -> int:
        return self.channel_ids[1]

    @property
    def members(self) -> list[int]:
        """Ids of the human members: [alice (owner, Moderator role), bob (no extra role)]."""
        return [uid for uid, m in self.state.guild.members.items() if not m.user.bot]

    @property
    def member_id(self) -> int:
        """The default user of ``slash``/``click``: alice."""
        return self.members[0]

    @property
    def role_ids(self) -> list[int]:
        return [r.id for r in self.state.guild.roles]

    @property
    def everyone_role_id(self) -> int:
        return self.state.guild.id

    @property
    def role_id(self) -> int:
        """The one role besides @everyone ("Moderator", held by alice)."""
        return self.role_ids[1]

    @property
    def app_permissions(self) -> int:
        return self.state.app_permissions

    @app_permissions.setter
    def app_permissions(self, value: int) -> None:
        self.state.app_permissions = value

    # ----------------------------------------------------------------- records

    @property
    def requests(self) -> list[RequestRecord]:
        return self.state.requests

    @property
    def messages(self) -> dict[int, MessageRecord]:
        return self.state.messages

    @property
    def interactions(self) -> dict[int, InteractionRecord]:
        return self.state.interactions

    @property
    def gateway_log(self) -> list[GatewayFrame]:
        return self.state.gateway_log

    @property
    def gateway_connections(self) -> list[GatewayConnection]:
        return self.state.gateway_connections

    # ------------------------------------------------------- write rate limit

    @property
    def channel_write_limit(self) -> tuple[int, float] | None:
        """``(limit, per)`` of the per-channel message write rate limit, or None when off."""
        limiter = self.state.write_limiter
        return None if limiter is None else (limiter.limit, limiter.per)

    @channel_write_limit.setter
    def channel_write_limit(self, value: tuple[int, float] | None) -> None:
        """Change (or switch off with None) the limit; every channel's bucket starts empty."""
        self.state.write_limiter = None if value is None else ChannelWriteLimiter(*value)

    @property
    def rate_limited(self) -> list[RequestRecord]:
        """Every request the channel write rate limit answered 429, in order.

        Injected 429s (``fail_next``) are not here: see their rule's ``hits``.
        """
        return self.state.rate_limited

    @property
    def refusals(self) -> list[RequestRecord]:
        """Every request the double refused with 400 by one of Discord's rules, in order.

        Mostly 50035 Invalid Form Body (content over 2000, a bad emoji, too many rows...: see
        validation.py), also 50006 empty message, 40060 already acknowledged...  Each record has
        ``status`` 400, ``error`` (the JSON body sent), ``error_code`` and ``form_errors``
        (``FormError(path, code, message)``).  A refused request changed nothing.  Injected
        faults (``fail_next``) are not refusals.
        """
        return self.state.refusals

    def refused_requests(
        self, method: str | None = None, path_re: str | None = None, *, code: str | int | None = None
    ) -> list[RequestRecord]:
        """``refusals`` filtered by method, path (re.search) and error ``code``: Discord's JSON code
        (50035) or a form error code name ("BASE_TYPE_MAX_LENGTH", "BUTTON_COMPONENT_INVALID_EMOJI")."""
        return [
            r
            for r in self.state.refusals
            if (method is None or r.method == method.upper())
            and (path_re is None or re.search(path_re, r.path))
            and (
                code is None
                or (r.error_code == code if isinstance(code, int) else any(e.code == code for e in r.form_errors))
            )
        ]

    def rate_limit_hits(self, channel_id: int | None = None) -> int:
        """How many 429s the write rate limit sent for ``channel_id`` (None: all channels)."""
        return sum(1 for r in self.state.rate_limited if channel_id is None or r.write_channel_id == channel_id)

    def channel_writes(self, channel_id: int | None = None) -> int:
        """Message writes the rate limit let through in ``channel_id`` (None: all channels).

        Counted whatever the route then answered (a PATCH of a deleted message still
        counts, as on Discord); 429s are not writes (see ``rate_limit_hits``).  Counted
        with the limit off too.
        """
        return sum(
            1
            for r in self.state.requests
            if r.write_channel_id is not None
            and not r.rate_limited
            and (channel_id is None or r.write_channel_id == channel_id)
        )

    def write_timeline(self, channel_id: int | None = None) -> list[WriteEvent]:
        """Message writes in ``channel_id`` (None: all channels) in arrival order, 429s included.

        Each is ``(at, method, path, status)``: ``at`` is ``time.monotonic()`` when the rate limit
        counted it; ``status`` 429 means refused by the limit, None not answered yet.  Recorded
        with the limit off too.
        """
        return [
            WriteEvent(r.at, r.method, r.path, r.status)
            for r in self.state.requests
            if r.write_channel_id is not None and (channel_id is None or r.write_channel_id == channel_id)
        ]

    def find_requests(self, method: str | None = None, path_re: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.state.requests
            if (method is None or r.method == method.upper()) and (path_re is None or re.search(path_re, r.path))
        ]

    def channel_messages(
        self, channel_id: int | None = None, *, include_deleted: bool = False, include_ephemeral: bool = True
    ) -> list[MessageRecord]:
        """Messages of a channel (default: the main one), oldest first."""
        channel_id = self.channel_id if channel_id is None else channel_id
        return sorted(
            (
                m
                for m in self.state.messages.values()
                if m.channel_id == channel_id
                and (include_deleted or not m.deleted)
                and (include_ephemeral or not m.ephemeral)
            ),
            key=lambda m: m.id,
        )

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The registered commands as Discord stores them: global ones, or a guild's."""
        return self.state.commands.get(guild_id, [])

    def command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        for command in self.commands(guild_id):
            if command["name"] == name:
                return command
        raise KeyError(f"no command {name!r} registered {'globally' if guild_id is None else f'in guild {guild_id}'}")

    @property
    def identify_count(self) -> int:
        return sum(1 for f in self.state.gateway_log if f.direction == "in" and f.op == 2)

    @property
    def resume_count(self) -> int:
        """RESUMEs the double accepted (answered with RESUMED)."""
        return sum(1 for f in self.state.gateway_log if f.direction == "out" and f.t == "RESUMED")

    # ------------------------------------------------------------------ driver

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: int | None = None,
        channel: int | None = None,
        attachments: dict[str, driver.AttachmentSpec] | None = None,
        locale: str = "en-US",
        app_permissions: int | None = None,
    ) -> InteractionRecord:
        """Run a registered slash command as ``user`` would; returns at once with its record.

        ``name`` may include subcommands ("settings show").  ``attachments`` maps
        attachment options to ``(filename, bytes, content_type)``.
        """
        interaction = driver.slash_interaction(
            self.state,
            name,
            options or {},
            attachments or {},
            user_id=self.member_id if user is None else user,
            channel_id=self.channel_id if channel is None else channel,
            locale=locale,
            app_permissions=app_permissions,
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
        if not self.gateway.live_sessions:
            del self.state.interactions[interaction.id]
            raise RuntimeError("no gateway session: is the client logged in?")
        await self.state.notify()
        # A dropped session buffers the event; the client gets it on RESUME.
        interaction.sent_at = time.monotonic()
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)

    async def send_user_message(
        self,
        content: str,
        *,
        user: int | None = None,
        channel: int | None = None,
        files: list[tuple[str, bytes, str]] | None = None,
        reply_to: int | None = None,
    ) -> MessageRecord:
        """Post a message as a member (the bot gets MESSAGE_CREATE, content gated by MESSAGE_CONTENT)."""
        channel_id = self.channel_id if channel is None else channel
        payload: dict[str, Any] = {"content": content}
        if reply_to is not None:
            payload["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
        uploads = [UploadedFile(f"files[{i}]", name, ctype, data) for i, (name, data, ctype) in enumerate(files or [])]
        return await self.state.create_message(
            channel_id=channel_id,
            author_id=self.member_id if user is None else user,
            payload=payload,
            files=uploads,
            via="user",
        )

    async def delete_message(self, message_id: int) -> None:
        """Delete a message as a user/moderator would; later edits of it get 404 Unknown Message."""
        message = self.state.messages.get(message_id)
        if message is None:
            raise LookupError(f"no message {message_id}")
        await self.state.delete_message(message, by="user")

    async def drop_gateway(self, code: int | None = None) -> int:
        """Break the client's gateway connection so it must RESUME.

        By default the TCP connection is cut with no close frame; pass ``code``
        (e.g. 4000) to close with that code instead.  Events dispatched until
        the client resumes are buffered and replayed.
        """
        dropped = await self.gateway.drop(code)
        if not dropped:
            raise RuntimeError("no identified gateway connection to drop")
        await self.state.notify()
        return dropped

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        *,
        method: str | None = None,
        path_re: str | None = None,
        status: int = 429,
        times: int = 1,
        retry_after: float = 0.2,
        is_global: bool = False,
        body: dict[str, Any] | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` requests matching ``method`` and ``path_re`` with ``status``.

        ``path_re`` is searched in the API-relative path (e.g. "/channels/1/messages/2").
        Default bodies: 429 rate limit (with the headers discord.py needs to retry),
        403 Missing Permissions (50013), 404 Unknown Message (10008), 5xx server error.
        The returned rule's ``hits`` lists the requests it answered.
        """
        rule = FaultRule(
            status=status,
            method=method,
            path_re=re.compile(path_re) if path_re is not None else None,
            times=times,
            retry_after=retry_after,
            is_global=is_global,
            body=body,
        )
        self.state.faults.append(rule)
        return rule

    def delay_next(
        self, *, method: str | None = None, path_re: str | None = None, seconds: float, times: int = 1
    ) -> DelayRule:
        """Hold back the answer to the next ``times`` matching requests for ``seconds``.

        The request is processed and recorded at once (a message is created, its
        MESSAGE_CREATE sent, ``record.status`` set); only the HTTP answer waits, so a
        test can kill the client meanwhile: "message created, but the bot never learned
        its id".  Only requests that reach a route are held: not those answered by an
        injected fault, a 429 of the write rate limit or a 401.  The returned rule's
        ``hits`` lists the requests it held.
        """
        rule = DelayRule(
            seconds=seconds,
            method=method,
            path_re=re.compile(path_re) if path_re is not None else None,
            times=times,
        )
        self.state.delays.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every injected fault and delay."""
        self.state.faults.clear()
        self.state.delays.clear()

    # ----------------------------------------------------------------- waiting

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, *, what: str | None = None) -> T:
        """Wait until ``predicate()`` is truthy and return its value.

        The predicate is re-checked on every recorded change (request, message
        version, gateway frame...).  On timeout, raises ``TimeoutError`` naming
        what was awaited and summarising the recent traffic.
        """
        condition = self.state.changed
        try:
            async with asyncio.timeout(timeout):
                async with condition:
                    return await condition.wait_for(predicate)
        except TimeoutError:
            description = what or _describe(predicate)
            raise TimeoutError(
                f"DiscordDouble.wait_for: gave up after {timeout}s waiting for {description}\n{self.summary()}"
            ) from None

    def summary(self, last: int = 8) -> str:
        """Recent requests and messages, for failure messages."""
        lines = ["recent requests:"]
        for request in self.state.requests[-last:]:
            path = re.sub(r"/[\w-]{40,}", "/<token>", request.path)  # interaction tokens are long
            lines.append(f"  {request.method} {path} -> {request.status}")
        lines.append("recent messages:")
        for message in sorted(self.state.messages.values(), key=lambda m: m.id)[-last:]:
            current = message.current
            lines.append(
                f"  {message.id} in {message.channel_id} by {message.origin} v{len(message.versions)}"
                f"{' deleted' if message.deleted else ''}{' ephemeral' if current.ephemeral else ''}"
                f"{' loading' if current.loading else ''}: {current.content[:60]!r}"
                f" files={[a.filename for a in current.attachments]}"
            )
        return "\n".join(lines)


def _describe(predicate: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
