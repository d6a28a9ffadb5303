"""The Bot: wires settings, proxy client, store, jobs service and the Discord layer together."""

from __future__ import annotations

import gc
import logging

import discord
import yarl
from discord.ext import commands

from bot.admin import AdminSite
from bot.core.config import DiscordSettings, Settings
from bot.core.events import Fanout, JobEvents
from bot.core.i18n import DEFAULT_LANGUAGE
from bot.discord.directory import DiscordDirectory
from bot.discord.translator import CatalogueTranslator
from bot.discord.ui.buttons import JobButton, StaleButton
from bot.discord.ui.delivery import DiscordJobView
from bot.discord.ui.interactions import MjCommandTree
from bot.jobs import JobService
from bot.ops import logs
from bot.ops.alerts import AlertMonitor
from bot.ops.housekeeping import Housekeeper
from bot.ops.http import Health, OpsEndpoints, OpsServer, tracker_stale_after
from bot.ops.metrics import Metrics
from bot.ops.notify import TOKEN_KEY, NotifyReceiver, new_token
from bot.ops.spend_alert import SpendAlert
from bot.proxy.client import ProxyClient
from bot.storage import Store

log = logging.getLogger(__name__)


def point_discord_at(settings: DiscordSettings) -> None:
    """Send discord.py's REST calls (interaction webhooks included) and gateway connection where the
    settings say: a REST or gateway proxy, or a local Discord double in tests.

    Both are class attributes in discord.py, so this is process-wide. A plain (unsharded) client
    never asks GET /gateway/bot; it connects to DEFAULT_GATEWAY.
    """
    discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def gateway_intents() -> discord.Intents:
    """What the bot listens to on the gateway: the defaults without message events. The bot reads
    no messages (slash commands, buttons and reactions are its input), and every edit of its own
    comes back as a MESSAGE_UPDATE that discord.py would parse into a Message: about a tenth of its
    CPU per task update."""
    intents = discord.Intents.default()
    intents.guild_messages = False
    intents.dm_messages = False
    return intents


class MjBot(commands.Bot):
    def __init__(self, settings: Settings, *, commands_only: bool = False, **options: object) -> None:
        """``commands_only``: log in and declare the commands, nothing else (``mjbot sync-commands``)."""
        point_discord_at(settings.discord)
        logs.add_settings_secrets(settings)
        # The bot never joins voice; the "voice will NOT be supported" warnings would only alarm.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        self.metrics = Metrics()
        super().__init__(
            command_prefix=commands.when_mentioned,
            tree_cls=MjCommandTree,  # one error path for every command
            intents=gateway_intents(),
            help_command=None,
            # Mentions are opted into per message (the job's owner only).
            allowed_mentions=discord.AllowedMentions.none(),
            http_trace=self.metrics.discord_trace(),  # Discord write latency and 429s
            **options,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.commands_only = commands_only
        self.store = Store(settings.storage.database_url)
        self.proxy = ProxyClient(settings.proxy)
        self.proxy.on_request = self.metrics.proxy_request
        self.health = Health(stale_after_s=tracker_stale_after(settings))
        self.alerts: AlertMonitor | None = None
        observers: list[JobEvents] = [self.metrics, self.health, logs.TaskContext()]
        if settings.alerts.channel_id:
            self.alerts = AlertMonitor(
                settings.alerts,
                post=self._post_alert,
                probe=self.proxy.ping,
                language=settings.bot.language or DEFAULT_LANGUAGE,
            )
            observers.append(self.alerts)
        self.spend_alert: SpendAlert | None = None
        credits = settings.credits
        if credits.enabled and credits.daily_alert and self.alerts is not None:
            self.spend_alert = SpendAlert(
                credits.daily_alert, credits.unit, self.store.credits, self.alerts, speaks=self.speaks_for_all
            )
            observers.append(self.spend_alert)
        elif credits.enabled and credits.daily_alert:
            log.warning("[credits] daily_alert is set but [alerts] channel_id is not: no spend alert will be posted")
        self.jobs = JobService(settings, self.proxy, self.store, events=Fanout(*observers))
        self.housekeeper = Housekeeper(self.store, settings.storage.keep_days)
        self.notify: NotifyReceiver | None = None
        self.ops_server: OpsServer | None = None

    def __repr__(self) -> str:
        return f"<MjBot proxy={self.settings.proxy.base_url!r}>"

    async def setup_hook(self) -> None:
        if self.commands_only:
            await self.load_commands()
            return
        self.metrics.loop_lag.start()  # mjbot_event_loop_lag_seconds on /metrics
        await self.store.open()
        await self.before_jobs_start()
        await self.housekeeper.prune()  # before any member can ask for an old job
        for job in await self.store.unfinished_jobs():
            logs.remember(job)  # log lines about resumed tasks name their guild, channel and user
        await self.load_commands()
        if self.settings.discord.sync_commands:
            await self.sync_commands()
        else:
            log.info(
                "command sync is off ([discord] sync_commands = false); "
                "run `mjbot sync-commands` after adding or upgrading the bot"
            )
        endpoints = OpsEndpoints(self.health, self.metrics)
        own_server = bool(self.settings.http.listen)
        if self.settings.notify.enabled:
            token = await self.store.meta_value(TOKEN_KEY, new_token)
            logs.add_secret(token)
            self.notify = NotifyReceiver(
                self.settings.notify, self.jobs, token, extra_routes=None if own_server else endpoints.add_routes
            )
            await self.notify.start()
            self.jobs.notify_hook = self.notify.hook_url
        if own_server:
            admin_routes = None
            if self.settings.admin_page.enabled:
                site = AdminSite(
                    self.settings,
                    self.store,
                    self.jobs,
                    self.health,
                    directory=DiscordDirectory(self),
                    client_id=lambda: self.application_id or 0,
                )
                await site.start()
                admin_routes = site.add_routes
            self.ops_server = OpsServer(self.settings.http.listen_address(), endpoints, also=admin_routes)
            await self.ops_server.start()
        await self.jobs.start(
            DiscordJobView(
                self,
                language=self.settings.bot.language or None,
                server_buttons_ok=self.settings.proxy.api != "change",
                can_cancel=lambda: self.jobs.controls.can_cancel,
            )
        )
        self.housekeeper.start()
        if self.alerts is not None:
            self.alerts.start()
        if self.spend_alert is not None:
            self.spend_alert.start()
        # What start-up made (modules, commands, settings) lives as long as the process: keep it out
        # of every collection, and collect the young generation less often. The tracker makes
        # many short-lived objects per update; collections were 7-8% of its CPU.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)

    async def before_jobs_start(self) -> None:
        """The store is open, nothing is tracked yet (the sharded bot decides its shards here)."""

    async def before_store_close(self) -> None:
        """Jobs are stopped, the store still open."""

    async def load_commands(self) -> None:
        self.add_dynamic_items(JobButton, StaleButton)
        from bot.discord.cogs import admin, animate, credits, describe, history, imagine, member

        await self.tree.set_translator(CatalogueTranslator())
        for cog in (imagine, describe, animate, history, member, admin):
            await cog.setup(self)
        if self.settings.credits.enabled:
            await credits.setup(self)

    async def sync_commands(self, guild_ids: list[int] | None = None) -> list[str]:
        """Register the commands with Discord: in ``guild_ids`` (default: ``[discord] guild_ids``),
        or globally when there are none. Returns what was done, one line per sync."""
        guild_ids = self.settings.discord.guild_ids if guild_ids is None else guild_ids
        done = []
        if not guild_ids:
            synced = await self.tree.sync()
            done.append(f"synced {len(synced)} global commands")
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            done.append(f"synced {len(synced)} commands to guild {guild_id}")
        for line in done:
            log.info("%s", line)
        return done

    async def close(self) -> None:
        # Stop tracking first so nothing writes to a closed database or a closed HTTP session.
        if self.alerts is not None:
            await self.alerts.stop()
        if self.spend_alert is not None:
            await self.spend_alert.stop()
        await self.housekeeper.stop()
        if self.ops_server is not None:
            await self.ops_server.stop()
        if self.notify is not None:
            await self.notify.stop()
        await self.jobs.stop()
        await super().close()
        await self.proxy.aclose()
        await self.before_store_close()
        await self.store.close()
        await self.metrics.loop_lag.stop()

    def speaks_for_all(self) -> bool:
        """Whether this process posts what concerns every process (alerts): the only one, here."""
        return True

    async def _post_alert(self, text: str) -> None:
        channel = self.get_partial_messageable(self.settings.alerts.channel_id)
        await channel.send(text, allowed_mentions=discord.AllowedMentions.none())

    # The gateway's state, for /healthz and the mjbot_gateway_connected gauge.
    async def on_connect(self) -> None:
        self._gateway(True)

    async def on_resumed(self) -> None:
        self._gateway(True)

    async def on_disconnect(self) -> None:
        self._gateway(False)

    def _gateway(self, connected: bool) -> None:
        if connected != self.health.gateway_connected:
            log.info("Discord gateway %s", "connected" if connected else "disconnected")
        self.health.gateway(connected)
        self.metrics.gateway_connected.set(1 if connected else 0)

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s) in %d guilds", self.user, self.user.id if self.user else "?", len(self.guilds))
