"""What the admin page reads: counts for its overview, jobs by filter, a job's timeline, members with
their balances. Read-only; the credits it grants go through ``CreditBook.adjust``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.storage.database import Database
from bot.storage.job_events import JobEvent, event_of
from bot.storage.schema import job_of

MAX_ROWS = 100
UNFINISHED = "UNFINISHED"  # a status filter: every job not finished yet


@dataclass(frozen=True)
class JobFilter:
    member_id: int | None = None
    guild_id: int | None = None
    status: str | None = None
    action: str | None = None
    before: tuple[float, str] | None = None  # (created_at, task_id) of the last row shown: the next page
    limit: int = 50


@dataclass(frozen=True)
class ActionCount:
    action: str
    jobs: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class MemberRow:
    guild_id: int
    member_id: int
    balance: int  # the ledger's sum (this period's refill shows once the member is looked at)
    jobs_since: int
    running: int
    last_at: float


class AdminQueries:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def unfinished_by_status(self) -> dict[str, int]:
        rows = await self.database.fetch("SELECT status, COUNT(*) FROM jobs WHERE finished_at IS NULL GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    async def jobs_by_action(self, since: float) -> list[ActionCount]:
        rows = await self.database.fetch(
            "SELECT action, COUNT(*), SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status IN ('FAILURE', 'CANCEL') THEN 1 ELSE 0 END) "
            "FROM jobs WHERE created_at >= ? GROUP BY action ORDER BY 2 DESC, 1",
            (since,),
        )
        return [ActionCount(str(a), int(n), int(ok or 0), int(bad or 0)) for a, n, ok, bad in rows]

    async def failures_by_reason(self, since: float, *, top: int = 10) -> list[tuple[str, int]]:
        rows = await self.database.fetch(
            "SELECT COALESCE(fail_reason, ''), COUNT(*) FROM jobs "
            "WHERE status IN ('FAILURE', 'CANCEL') AND finished_at >= ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
            (since, top),
        )
        return [(str(reason), int(count)) for reason, count in rows]

    async def find_jobs(self, wanted: JobFilter) -> list[Any]:
        """Jobs matching ``wanted``, newest first (``Job`` objects, without their used buttons)."""
        where, params = _job_where(wanted)
        rows = await self.database.fetch(
            f"SELECT * FROM jobs {where} ORDER BY created_at DESC, task_id DESC LIMIT ?",
            (*params, min(max(wanted.limit, 1), MAX_ROWS)),
        )
        return [job_of(row) for row in rows]

    async def events(self, task_id: str) -> list[JobEvent]:
        rows = await self.database.fetch(
            "SELECT at, status, progress, detail FROM job_events WHERE task_id = ? ORDER BY at", (task_id,)
        )
        return [event_of(row) for row in rows]

    async def members(
        self, since: float, *, guild_id: int | None = None, member_id: int | None = None, limit: int = 50
    ) -> list[MemberRow]:
        """Everyone with a job or a ledger row, most recently active first: balance (in 1/10000
        units), jobs created since ``since`` and unfinished jobs, per server."""
        ledger_where, jobs_where, ledger_params, jobs_params = [], [], [], []
        if guild_id is not None:
            ledger_where.append("guild_id = ?"), ledger_params.append(guild_id)
            jobs_where.append("COALESCE(guild_id, 0) = ?"), jobs_params.append(guild_id)
        if member_id is not None:
            ledger_where.append("member_id = ?"), ledger_params.append(member_id)
            jobs_where.append("owner_id = ?"), jobs_params.append(member_id)
        rows = await self.database.fetch(
            "SELECT guild_id, member_id, SUM(balance), SUM(made), SUM(running), MAX(last_at) FROM ("
            "SELECT guild_id, member_id, SUM(amount) AS balance, 0 AS made, 0 AS running, MAX(created_at) AS last_at "
            f"FROM ledger {_where(ledger_where)} GROUP BY guild_id, member_id "
            "UNION ALL "
            "SELECT COALESCE(guild_id, 0), owner_id, 0, "
            "SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), SUM(CASE WHEN finished_at IS NULL THEN 1 ELSE 0 END), "
            f"MAX(created_at) FROM jobs {_where(jobs_where)} GROUP BY COALESCE(guild_id, 0), owner_id"
            ") AS seen GROUP BY guild_id, member_id ORDER BY 6 DESC, 1, 2 LIMIT ?",
            (*ledger_params, since, *jobs_params, min(max(limit, 1), MAX_ROWS)),
        )
        return [
            MemberRow(int(g), int(m), int(balance or 0), int(made or 0), int(running or 0), float(last or 0))
            for g, m, balance, made, running, last in rows
        ]


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def _job_where(wanted: JobFilter) -> tuple[str, tuple[Any, ...]]:
    conditions: list[str] = []
    params: list[Any] = []
    for sql, value in (
        ("owner_id = ?", wanted.member_id),
        ("COALESCE(guild_id, 0) = ?", wanted.guild_id),
        ("action = ?", wanted.action),
    ):
        if value is not None:
            conditions.append(sql)
            params.append(value)
    if wanted.before is not None:  # after the last row shown, in the page's order
        conditions.append("(created_at < ? OR (created_at = ? AND task_id < ?))")
        params += [wanted.before[0], wanted.before[0], wanted.before[1]]
    if wanted.status == UNFINISHED:  # submitted, queued, in progress or waiting for a modal
        conditions.append("finished_at IS NULL")
    elif wanted.status is not None:
        conditions.append("status = ?")
        params.append(wanted.status)
    return _where(conditions), tuple(params)
