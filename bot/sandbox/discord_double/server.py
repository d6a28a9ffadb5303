"""``DiscordDouble``: the server plus the test-facing API (ids, records, waiting).

What users do to the bot (interactions, messages, guilds joining, dropped
gateways) is in actions.py, the queries over the records in queries.py, the
injected faults and delays and the channel write rate limit in faults.py; all
are mixed into ``DiscordDouble``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from .actions import Actions
from .faults import Faults
from .gateway import Gateway
from .oauth import OAuthControls
from .oauth_pages import AuthorizePage
from .queries import Queries
from .records import (
    GatewayConnection,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    RequestRecord,
)
from .rest import RestApi
from .shards import Sharding
from .state import State
from .validation import MAX_ATTACHMENTS
from .world import ALL_TEXT_PERMISSIONS, BOOSTED_UPLOAD_LIMITS, DEFAULT_UPLOAD_LIMIT

T = TypeVar("T")

DEFAULT_TOKEN = "discord-double-bot-token"
# Discord's limit on message writes in one channel: 5 per 5 seconds.
DISCORD_CHANNEL_WRITE_LIMIT = (5, 5.0)


class DiscordDouble(Actions, Queries, Faults, OAuthControls):
    """A Discord stand-in on 127.0.0.1 that an unmodified discord.py client can log into.

    Point a client at it with::

        discord.http.Route.BASE = dd.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dd.gateway_url)

    and start it with ``dd.bot_token``.  A bot may also run as several clients, each with
    some shards (``AutoShardedClient(shard_count=N, shard_ids=[...])``): each session then
    gets only its shard's guilds and their events (see shards.py).

    The bot may DM any user (``User.send``): read them with ``direct_messages(user_id)``; a user
    may refuse them (``close_dms``) or write to the bot (``send_user_dm``).

    "Log in with Discord" (OAuth2 code grant, oauth.py): client ``oauth_client_id`` (the application
    id) with ``oauth_client_secret``; ``register_oauth_redirect(uri)`` fills ``oauth_redirect_uris``;
    ``oauth_authorize_url`` is the consent page (preselecting ``oauth_user_id``), ``oauth_token_url``
    the token URL; ``oauth_grants`` records every decision and token request.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float = 41.25,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        app_permissions: int = ALL_TEXT_PERMISSIONS,
        interaction_ack_timeout: float | None = None,
        text_channels: int = 2,
        channel_write_limit: tuple[int, float] | None = DISCORD_CHANNEL_WRITE_LIMIT,
        guild_id: int | None = None,
        shard_count: int = 1,
        require_sharding: bool | None = None,
        max_concurrency: int = 1,
        session_start_limit: int = 1000,
    ):
        """
        :param heartbeat_interval: seconds, sent in HELLO.
        :param attachment_size_limit: the most bytes one uploaded file may have (checked per file,
            as Discord does) at boost tiers 0 and 1 and outside guilds; tiers 2 and 3 raise it to
            50 and 100 MiB (``set_premium_tier``, ``upload_limit``).  Over it: 413, code 40005.
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
        :param guild_id: the main guild's id (default: a fresh snowflake), e.g. to put it on a
            chosen shard with ``guild_id_on_shard``; more guilds: ``add_guild``.
        :param shard_count: the shard count ``GET /gateway/bot`` recommends (``shards``).
        :param require_sharding: whether IDENTIFY must carry ``shard`` with at least
            ``shard_count`` shards, else the gateway closes with 4011 Sharding required
            (None, the default: required when ``shard_count`` is over 1).
        :param max_concurrency: ``session_start_limit.max_concurrency`` (reported, not enforced).
        :param session_start_limit: the daily IDENTIFY budget; ``remaining`` goes down with
            every accepted IDENTIFY (reported, not enforced).
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
            guild_id=guild_id,
            sharding=Sharding(
                count=shard_count,
                required=require_sharding,
                max_concurrency=max_concurrency,
                session_start_total=session_start_limit,
            ),
        )
        self.gateway = Gateway(self.state, heartbeat_interval=heartbeat_interval)
        self.rest = RestApi(self.state)
        # Messages the bot (or a simulated user) creates reach the client as gateway events.
        self.state.emit = self.gateway.dispatch
        self._runner: web.AppRunner | None = None

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> DiscordDouble:
        # Room for a message's 10 files at the highest upload limit: the double, not aiohttp, refuses
        # what is too big, with Discord's 413 (per file) or 400 (too many files).
        largest_file = max(self.state.attachment_size_limit, *BOOSTED_UPLOAD_LIMITS.values())
        app = web.Application(client_max_size=MAX_ATTACHMENTS * largest_file + 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        app.router.add_route("*", r"/api/{tail:.*}", self.rest.handle)
        AuthorizePage(self.state).add_routes(app)  # /oauth2/authorize, the OAuth2 consent page
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
        """The main guild, where ``slash``, ``send_user_message``... act unless told otherwise."""
        return self.state.guild.id

    @property
    def guild_ids(self) -> list[int]:
        """Every guild the bot is in: the main one first, then those of ``add_guild``."""
        return list(self.state.guilds)

    def channel_ids_of(self, guild_id: int) -> list[int]:
        """The text channels of any guild, in guild order."""
        return [c.id for c in self.state.guild_by_id(guild_id).channels]

    def upload_limit(self, guild_id: int | None = None) -> int:
        """The most bytes one uploaded file may have in a guild (default: the main one), by its boost
        tier: see ``set_premium_tier``.  A file over it is answered 413 Request entity too large (40005)."""
        guild = self.state.guild if guild_id is None else self.state.guild_by_id(guild_id)
        return guild.upload_limit(self.state.attachment_size_limit)

    def premium_tier(self, guild_id: int | None = None) -> int:
        """A guild's boost tier (default: the main one's), 0 unless ``set_premium_tier`` changed it."""
        return (self.state.guild if guild_id is None else self.state.guild_by_id(guild_id)).premium_tier

    @property
    def shard_count(self) -> int:
        """The shard count ``GET /gateway/bot`` recommends; a test may change it, as Discord
        does when a bot grows (sessions already identified keep their shard)."""
        return self.state.sharding.count

    @shard_count.setter
    def shard_count(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"shard_count must be >= 1, got {value}")
        self.state.sharding.count = value

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
