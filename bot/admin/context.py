"""What every admin handler needs, and the one thing only the Discord layer can tell it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.access import AccessPolicy
from bot.core.config import Settings
from bot.core.errors import ProxyError
from bot.jobs import JobService
from bot.ops.http import Health
from bot.storage import Store


class MemberDirectory(Protocol):
    """Names and roles, from Discord (the Discord layer implements it)."""

    def member_name(self, guild_id: int, user_id: int) -> str | None:
        """A display name from the cache, or None: never a request (pages list many members)."""

    def guild_name(self, guild_id: int) -> str | None: ...

    async def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        """The member's role ids (for their allowance), or None if they are not in the server."""


class NoDirectory:
    """Without Discord (tests of the page alone): ids only, no roles."""

    def member_name(self, guild_id: int, user_id: int) -> str | None:
        return None

    def guild_name(self, guild_id: int) -> str | None:
        return None

    async def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        return frozenset()


@dataclass
class AdminContext:
    settings: Settings
    store: Store
    jobs: JobService
    health: Health
    directory: MemberDirectory
    policy: AccessPolicy
    clock: Callable[[], float] = time.time
    # The proxy's latency: (asked at, seconds, problem). Pages show the last answer and ask again in
    # the background at most every PING_EVERY_S, so a proxy that hangs never holds a page up.
    ping: tuple[float, float | None, str | None] = field(default=(0.0, None, None))
    _pinging: asyncio.Task[None] | None = field(default=None, repr=False)

    PING_EVERY_S = 10.0

    def proxy_latency(self) -> tuple[float | None, str | None]:
        """(seconds, None), (None, the problem), or (None, None) before the first answer."""
        asked_at, latency, problem = self.ping
        stale = not asked_at or time.monotonic() - asked_at >= self.PING_EVERY_S
        if stale and (self._pinging is None or self._pinging.done()):
            self._pinging = asyncio.create_task(self._ask_proxy(), name="mjbot-admin-ping")
        return latency, problem

    async def _ask_proxy(self) -> None:
        try:
            self.ping = (time.monotonic(), await self.jobs.proxy.ping(), None)
        except ProxyError as exc:
            self.ping = (time.monotonic(), None, str(exc)[:200] or type(exc).__name__)
