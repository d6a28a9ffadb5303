"""Gateway sharding as Discord does it (https://discord.com/developers/docs/events/gateway#sharding).

A session that IDENTIFYs with ``shard: [shard_id, num_shards]`` gets only the
guilds with ``(guild_id >> 22) % num_shards == shard_id``, and events without a
guild (DMs) only on shard 0.  Each session's own ``num_shards`` decides, so
sessions with different counts may overlap or leave guilds out; Discord allows
that (and two sessions on the same shard) while a bot re-shards.  A session
without ``shard`` is shard [0, 1]: it gets everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .world import DISCORD_EPOCH_MS

# Close codes
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011

# Ids made by ``guild_id_on_shard`` carry a fixed timestamp (2024-01-01) so that a test gets the
# same ids on every run, far from the ids ``State.new_id`` hands out (the current time).
_CHOSEN_IDS_FROM_MS = 1704067200000 - DISCORD_EPOCH_MS
SESSION_START_WINDOW_MS = 24 * 3600 * 1000


def shard_of(guild_id: int | None, num_shards: int) -> int:
    """The shard that gets ``guild_id``'s events; DMs (no guild) go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % num_shards


def guild_id_on_shard(shard_id: int, num_shards: int, n: int = 0) -> int:
    """The ``n``-th (0, 1, ...) of a fixed series of snowflakes that land on ``shard_id`` of ``num_shards``."""
    if not 0 <= shard_id < num_shards or n < 0:
        raise ValueError(f"no shard {shard_id} of {num_shards} (or a negative n={n})")
    first = _CHOSEN_IDS_FROM_MS + (shard_id - _CHOSEN_IDS_FROM_MS) % num_shards
    ms = first + n * num_shards
    return (ms << 22) | (1 << 17)  # worker bits like State.new_id's; they do not move the shard


class ShardRefused(Exception):
    """IDENTIFY's shard is refused: the gateway closes with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Sharding:
    """What the double recommends (``GET /gateway/bot``) and demands (IDENTIFY) about shards.

    ``count`` is the recommended number of shards.  When ``required`` (by default: when ``count``
    is over 1) a session with fewer shards would handle too many guilds, and is refused with 4011
    as Discord refuses a bot that must shard.  ``session_start_total`` is the daily IDENTIFY budget
    reported in ``session_start_limit`` (reported, not enforced: Discord resets the token when it is
    spent), ``max_concurrency`` how many shards may IDENTIFY at once (reported, not enforced).
    """

    count: int = 1
    required: bool | None = None
    max_concurrency: int = 1
    session_start_total: int = 1000
    starts: list[float] = field(default_factory=list)  # time.monotonic() of every accepted IDENTIFY

    def __post_init__(self) -> None:
        if self.count < 1 or self.max_concurrency < 1:
            raise ValueError(f"shard_count and max_concurrency must be >= 1, got {self.count}, {self.max_concurrency}")

    @property
    def sharding_required(self) -> bool:
        return self.count > 1 if self.required is None else self.required

    def check(self, shard: Any) -> tuple[int, int] | None:
        """IDENTIFY's ``shard`` as ``(shard_id, num_shards)`` (None if absent), or ``ShardRefused``."""
        if shard is None:
            if self.sharding_required:
                raise ShardRefused(SHARDING_REQUIRED, "Sharding required.")
            return None
        valid = (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
            and 0 <= shard[0] < shard[1]
        )
        if not valid:
            raise ShardRefused(INVALID_SHARD, "Invalid shard.")
        if self.sharding_required and shard[1] < self.count:
            raise ShardRefused(SHARDING_REQUIRED, "Sharding required.")  # each shard would hold too many guilds
        return shard[0], shard[1]

    def session_start_limit(self, now: float | None = None) -> dict[str, int]:
        """``session_start_limit`` of ``GET /gateway/bot``: the budget left in the current 24 h window."""
        now = time.monotonic() if now is None else now
        window = [t for t in self.starts if (now - t) * 1000 < SESSION_START_WINDOW_MS]
        reset_after = SESSION_START_WINDOW_MS - int((now - window[0]) * 1000) if window else SESSION_START_WINDOW_MS
        return {
            "total": self.session_start_total,
            "remaining": max(0, self.session_start_total - len(window)),
            "reset_after": reset_after,
            "max_concurrency": self.max_concurrency,
        }


@dataclass(frozen=True)
class SessionInfo:
    """A gateway session as a test sees it (``DiscordDouble.sessions``)."""

    id: str
    shard: tuple[int, int] | None  # what IDENTIFY asked for; None: unsharded (it gets every guild)
    live: bool  # not ended (a client closing with 1000/1001, INVALID_SESSION...): resumable
    connected: bool  # has a connection now; a live session without one buffers events for its RESUME
    connection_id: int | None

    @property
    def shard_id(self) -> int:
        return 0 if self.shard is None else self.shard[0]
