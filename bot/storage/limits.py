"""A member's limits as the database checks them: their unfinished jobs and their submissions under
way count, in every process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.errors import DailyLimitReached, TooManyRunning
from bot.storage.database import Transaction


@dataclass(frozen=True)
class MemberLimits:
    """What a member may still start, checked by the database as their submission is written (so
    two processes serving the same member cannot both let one more through)."""

    max_running: int = 0  # 0: no limit
    max_per_day: int = 0
    day_start: float = 0.0


RUNNING_SQL = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE owner_id = ? AND finished_at IS NULL)"
    " + (SELECT COUNT(*) FROM submissions WHERE owner_id = ?)"
)
TODAY_SQL = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE owner_id = ? AND created_at >= ?)"
    " + (SELECT COUNT(*) FROM submissions WHERE owner_id = ? AND created_at >= ?)"
)


async def scalar(tx: Transaction, sql: str, params: tuple[Any, ...]) -> int:
    rows = await tx.fetch(sql, params)
    return int(rows[0][0])


async def check_limits(tx: Transaction, owner: int, limits: MemberLimits) -> None:
    """Raise :class:`TooManyRunning` or :class:`DailyLimitReached` when ``owner`` is at a limit (the
    caller holds the member's lock)."""
    if limits.max_running:
        running = await scalar(tx, RUNNING_SQL, (owner, owner))
        if running >= limits.max_running:
            raise TooManyRunning(f"user {owner} has {running} jobs running", limit=limits.max_running)
    if limits.max_per_day:
        today = await scalar(tx, TODAY_SQL, (owner, limits.day_start, owner, limits.day_start))
        if today >= limits.max_per_day:
            raise DailyLimitReached(f"user {owner} started {today} jobs today", limit=limits.max_per_day)
