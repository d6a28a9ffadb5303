"""Each job's timeline (migration 12): a row whenever its status or progress changes, written in the
same transaction as the change, so the admin page shows when a job was submitted, how it
progressed and how it ended."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.models import Job

# Only for a job that exists: an update of a job deleted meanwhile must leave no orphan row.
_INSERT = (
    "INSERT INTO job_events (task_id, at, status, progress, detail) "
    "SELECT CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT) "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE task_id = ?)"
)
PRUNE_SQL = (
    "DELETE FROM job_events WHERE task_id IN "
    "(SELECT task_id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?)"
)
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class JobEvent:
    at: float
    status: str
    progress: str | None
    detail: str | None


def statements(updates: Sequence[tuple[Job, Iterable[str]]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The rows for the updates that change a job's status or progress."""
    rows = []
    for job, fields in updates:
        if {"status", "progress"} & set(fields):
            detail = (job.fail_reason or "")[:_DETAIL_CHARS] or None
            at = job.updated_at or time.time()
            rows.append((job.task_id, at, job.status.value, job.progress, detail, job.task_id))
    return [(_INSERT, rows)] if rows else []


def event_of(row: Any) -> JobEvent:
    return JobEvent(float(row["at"]), str(row["status"]), row["progress"], row["detail"])
