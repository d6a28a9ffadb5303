"""What every admin handler needs, and the one thing only the Discord layer can tell it."""

from __future__ import annotations

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
    # The proxy's latency, asked at most every PING_EVERY_S however many pages poll.
    ping: tuple[float, float | None, str | None] = field(default=(0.0, None, None))

    PING_EVERY_S = 10.0

    async def proxy_latency(self) -> tuple[float | None, str | None]:
        """(seconds, None) or (None, the problem)."""
        asked_at, latency, problem = self.ping
        now = time.monotonic()
        if asked_at and now - asked_at < self.PING_EVERY_S:
            return latency, problem
        try:
            latency, problem = await self.jobs.proxy.ping(), None
        except ProxyError as exc:
            latency, problem = None, str(exc)[:200] or type(exc).__name__
        self.ping = (now, latency, problem)
        return latency, problem
