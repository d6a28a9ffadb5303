"""Which Discord shards this process serves, leased through the database (see ``storage.leases``).

Every process heartbeats; each claims free shards up to its fair share (the shard count over the live
processes) and renews its leases. A process that dies stops renewing: once its leases run out, the
others claim its shards, and with them its guilds' unfinished jobs. A process that finds a lease of
its own taken (it stalled past the lease) stops, rather than serve a shard another process serves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.core.background import wait_event
from bot.core.errors import ConfigError
from bot.storage.leases import ShardLeases

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another process holds a shard this one was serving."""


class ShardKeeper:
    def __init__(
        self,
        leases: ShardLeases,
        *,
        static_shards: Sequence[int] = (),
        ttl_s: float = 20.0,
        renew_s: float = 5.0,
        on_gained: Callable[[set[int]], Awaitable[None]] | None = None,
        on_lost: Callable[[set[int]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.leases = leases
        self.static = sorted(set(static_shards))
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.on_gained = on_gained
        self.on_lost = on_lost
        self._clock = clock
        self.started_at = clock()
        self.owned: set[int] = set()
        self.rounds = 0  # renewals done (for tests and tools)
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def shard_count(self) -> int:
        return self.leases.shard_count

    async def start(self) -> set[int]:
        """Claim this process's first shards; the loop that keeps them runs from then on."""
        await self.leases.prepare(self._clock())
        await self.leases.heartbeat(self._clock(), self.started_at)
        if self.static:
            await self._claim_static()
        else:
            # Processes started together see each other before claiming, so they share the shards.
            await wait_event(self._stopping, self.renew_s)
            await self._claim_share()
        self._loop = asyncio.create_task(self._keep(), name="mjbot-shard-leases")
        return set(self.owned)

    async def stop(self) -> None:
        self._stopping.set()
        if self._loop is not None:
            self._loop.cancel()
            try:
                await self._loop
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping regardless
                pass
        try:
            await self.leases.release()
        except Exception as exc:  # noqa: BLE001 - the leases run out by themselves
            log.warning("could not release shard leases (%s); they expire in %.0f s", exc, self.ttl_s)
        self.owned.clear()

    async def _claim_static(self) -> None:
        now = self._clock()
        taken = [shard for shard in self.static if not await self.leases.claim(shard, now, self.ttl_s)]
        if taken:
            owners = await self.leases.owners()
            which = ", ".join(f"shard {shard} (process {owners.get(shard)})" for shard in taken)
            raise ConfigError(
                f"{which} already served by another live process: give each process its own shards "
                f"(--shard-ids), or leave them out to share the shards through leases"
            )
        self.owned = set(self.static)
        log.info("serving shards %s of %d (fixed)", sorted(self.owned), self.shard_count)

    async def _claim_share(self) -> set[int]:
        live = await self.leases.live_members(self._clock(), self.ttl_s)
        share = math.ceil(self.shard_count / live)
        gained: set[int] = set()
        # The clock is read at each step: a step may have waited for the database.
        for shard in await self.leases.free(self._clock()):
            if len(self.owned) + len(gained) >= share:
                break
            if shard in self.owned:
                continue  # ours, its renewal late (the database was away): renewed, not gained
            if await self.leases.claim(shard, self._clock(), self.ttl_s):
                gained.add(shard)
        if gained:
            self.owned |= gained
            log.info(
                "serving shards %s of %d (took %s; %d live processes)",
                sorted(self.owned),
                self.shard_count,
                sorted(gained),
                live,
            )
        return gained

    async def _keep(self) -> None:
        while not await wait_event(self._stopping, self.renew_s):
            try:
                await self._renew_once()
                self.rounds += 1
            except LeaseLost:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be back at the next round
                log.warning("renewing shard leases failed: %s", exc)

    async def _renew_once(self) -> None:
        await self.leases.heartbeat(self._clock(), self.started_at)
        held = await self.leases.renew(self._clock(), self.ttl_s)
        lost = self.owned - held
        if lost:
            log.error("shards %s are now served by another process: this one stops", sorted(lost))
            self.owned -= lost
            if self.on_lost is not None:
                self.on_lost(lost)
            raise LeaseLost(sorted(lost))
        if self.static:
            return
        gained = await self._claim_share()
        if gained and self.on_gained is not None:
            try:
                await self.on_gained(gained)
            except Exception:
                # Not served after all: give them back, so this process or another takes them again.
                log.exception("taking over shards %s failed; giving them back", sorted(gained))
                self.owned -= gained
                await self.leases.release_shards(gained)
