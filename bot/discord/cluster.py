"""The bot as one of several processes: it serves the Discord shards it leases (``jobs.shards``), tracks
only their guilds' jobs, passes pushes for other processes' tasks on through PostgreSQL NOTIFY, and
takes a dead process's shards over, launching them on its own gateway connection."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

import discord
from discord.ext import commands

from bot.core.config import Settings
from bot.discord.app import MjBot
from bot.jobs.shards import ShardKeeper
from bot.storage.connect import open_database
from bot.storage.leases import ShardLeases

log = logging.getLogger(__name__)

PUSH_CHANNEL = "mjbot_push"  # NOTIFY channel: task ids pushed to a process that does not track them


def make_bot(settings: Settings, **options: object) -> MjBot:
    """The bot these settings ask for: sharded when ``[cluster] shard_count`` is set."""
    if settings.cluster.sharded:
        return ShardedMjBot(settings, **options)
    return MjBot(settings, **options)


class ShardedMjBot(MjBot, commands.AutoShardedBot):
    def __init__(self, settings: Settings, **options: object) -> None:
        cluster = settings.cluster
        # discord.py launches self.shard_ids; they are known once the leases are (before_jobs_start).
        super().__init__(settings, shard_count=cluster.shard_count, shard_ids=[], **options)
        self.member = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        # The leases on connections of their own: a renewal must not queue behind a busy tick's
        # writes, or a process under load would let its leases run out while alive.
        # And they do not wait long for a database that is away: the next round tries again.
        self._lease_db = open_database(settings.storage.database_url, connections=2, patience_s=cluster.lease_renew_s)
        self.keeper = ShardKeeper(
            ShardLeases(self._lease_db, self.member, cluster.shard_count),
            static_shards=cluster.shard_ids,
            ttl_s=cluster.lease_ttl_s,
            renew_s=cluster.lease_renew_s,
            on_gained=self._gained,
            on_lost=self._lost,
        )
        self._launched = False  # the gateway connections were opened (launch_shards ran)
        self._have_shards = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._launching: set[asyncio.Task[None]] = set()
        self.lease_lost = False

    def __repr__(self) -> str:
        return f"<ShardedMjBot member={self.member!r} shards={sorted(self.keeper.owned)}>"

    async def before_jobs_start(self) -> None:
        await self._lease_db.open()
        owned = await self.keeper.start()
        if owned:
            self._have_shards.set()
        else:
            log.info("every shard is served by another process: standing by to take one over")
            await self._have_shards.wait()
            owned = set(self.keeper.owned)
        self.shard_ids = sorted(owned)
        self.jobs.serve_shards(self.keeper.shard_count, owned)
        database = self.store.database
        if database.engine == "postgresql":
            self._listener = database.listen(PUSH_CHANNEL, self.jobs.signal_forwarded_push)  # type: ignore[attr-defined]
            self.jobs.forward_push = lambda task_id: database.notify(PUSH_CHANNEL, task_id)  # type: ignore[attr-defined]

    async def launch_shards(self) -> None:
        await super().launch_shards()
        self._launched = True

    async def _gained(self, gained: set[int]) -> None:
        """Shards of a process that died (or a first share for a process standing by): their jobs
        are tracked from now on, and their gateway connections opened in the background (discord.py
        waits 5 s between two identifies; the lease loop must not wait with it)."""
        if not self._have_shards.is_set():
            self._have_shards.set()  # before_jobs_start goes on with them
            return
        await self.jobs.adopt_shards(self.keeper.shard_count, set(self.keeper.owned), gained)
        self.shard_ids = sorted({*(self.shard_ids or ()), *gained})
        self._connection.shard_ids = self.shard_ids
        if self._launched:
            task = asyncio.create_task(self._launch(sorted(gained)), name="mjbot-launch-shards")
            self._launching.add(task)
            task.add_done_callback(self._launching.discard)

    async def _launch(self, shard_ids: list[int]) -> None:
        for shard_id in shard_ids:
            await self.launch_shard(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, shard_id)

    def _lost(self, lost: set[int]) -> None:
        """Another process serves a shard of ours (this one stalled past its lease): stop at once
        rather than answer that shard's members twice; the supervisor starts the process again."""
        self.lease_lost = True
        asyncio.get_running_loop().create_task(self.close(), name="mjbot-close-lease-lost")

    def speaks_for_all(self) -> bool:
        # Every process watches the proxy; one speaks, or the channel would get each alert twice.
        return 0 in self.keeper.owned

    async def _post_alert(self, text: str) -> None:
        if self.speaks_for_all():
            await super()._post_alert(text)
        else:
            log.info("alert left to the process serving shard 0: %s", text)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        for task in list(self._launching):
            task.cancel()
        await super().close()

    async def before_store_close(self) -> None:
        # After the jobs stopped: the process taking these shards over finds every write done.
        await self.keeper.stop()
        await self._lease_db.close()
