"""The Bot: wires settings, proxy client, store, jobs service and the Discord layer together."""

from __future__ import annotations

import logging

import discord
import yarl
from discord.ext import commands

from bot.config import DiscordSettings, Settings
from bot.jobs import JobService
from bot.notify import TOKEN_KEY, NotifyReceiver, new_token
from bot.proxy import ProxyClient
from bot.store import Store
from bot.translator import CatalogueTranslator
from bot.ui.buttons import JobButton, StaleButton
from bot.ui.delivery import DiscordJobView

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


class MjBot(commands.Bot):
    def __init__(self, settings: Settings, **options: object) -> None:
        point_discord_at(settings.discord)
        # The bot never joins voice; the "voice will NOT be supported" warnings would only alarm.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            help_command=None,
            # Mentions are opted into per message (the job's owner only).
            allowed_mentions=discord.AllowedMentions.none(),
            **options,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.store = Store(settings.storage.path)
        self.proxy = ProxyClient(settings.proxy)
        self.jobs = JobService(settings, self.proxy, self.store)
        self.notify: NotifyReceiver | None = None

    def __repr__(self) -> str:
        return f"<MjBot proxy={self.settings.proxy.base_url!r}>"

    async def setup_hook(self) -> None:
        await self.store.open()
        self.add_dynamic_items(JobButton, StaleButton)
        from bot.cogs import admin, describe, imagine, jobs

        await self.tree.set_translator(CatalogueTranslator())
        for cog in (imagine, describe, jobs, admin):
            await cog.setup(self)
        await self.sync_commands()
        if self.settings.notify.enabled:
            token = await self.store.meta_value(TOKEN_KEY, new_token)
            self.notify = NotifyReceiver(self.settings.notify, self.jobs, token)
            await self.notify.start()
            self.jobs.notify_hook = self.notify.hook_url
        await self.jobs.start(DiscordJobView(self, language=self.settings.bot.language or None,
                                             server_buttons_ok=self.settings.proxy.api != "change"))

    async def sync_commands(self) -> None:
        guild_ids = self.settings.discord.guild_ids
        if not guild_ids:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild_id)

    async def close(self) -> None:
        # Stop tracking first so nothing writes to a closed database or a closed HTTP session.
        if self.notify is not None:
            await self.notify.stop()
        await self.jobs.stop()
        await super().close()
        await self.proxy.aclose()
        await self.store.close()

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s) in %d guilds", self.user, self.user.id if self.user else "?",
                 len(self.guilds))
