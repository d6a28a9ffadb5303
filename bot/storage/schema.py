"""The database's shape: the versioned migrations, and the jobs table's columns with how each is
written from a :class:`~bot.core.models.Job` and read back (the one list of them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bot.core.models import Action, Display, Job, MediaLink, MediaNote, Status, TaskButton

# Each entry upgrades the schema by one version; PRAGMA user_version records how far a file got.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE jobs (
        task_id        TEXT PRIMARY KEY,
        action         TEXT NOT NULL,
        prompt         TEXT NOT NULL,
        prompt_en      TEXT,
        owner_id       INTEGER NOT NULL,
        guild_id       INTEGER,
        channel_id     INTEGER NOT NULL,
        parent_task_id TEXT,
        parent_index   INTEGER,
        message_id     INTEGER,
        status         TEXT NOT NULL,
        progress       TEXT,
        queue_ahead    INTEGER,
        image_url      TEXT,
        fail_reason    TEXT,
        display        TEXT NOT NULL,   -- signature of what the message should show
        shown          TEXT,            -- signature of what it showed last (NULL: never posted)
        message_gone   INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        finished_at    REAL
    );
    CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE finished_at IS NULL;
    CREATE INDEX jobs_parent ON jobs (parent_task_id) WHERE parent_task_id IS NOT NULL;
    CREATE INDEX jobs_undelivered ON jobs (updated_at)
        WHERE message_gone = 0 AND (shown IS NULL OR shown <> display);
    """,
    # 2: crash safety. A submission is written before the proxy is asked (and found again through
    # its nonce, sent as the task's `state`, if the bot dies before storing the answer); a job
    # notes when its message started being posted (so a restart looks for it before posting again);
    # one job per button of a grid.
    """
    CREATE TABLE submissions (
        nonce          TEXT PRIMARY KEY,
        action         TEXT NOT NULL,
        prompt         TEXT NOT NULL,
        owner_id       INTEGER NOT NULL,
        guild_id       INTEGER,
        channel_id     INTEGER NOT NULL,
        parent_task_id TEXT,
        parent_index   INTEGER,
        created_at     REAL NOT NULL
    );
    CREATE UNIQUE INDEX submissions_one_per_button ON submissions (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL;
    ALTER TABLE jobs ADD COLUMN posting_at REAL;
    ALTER TABLE jobs ADD COLUMN nonce TEXT;
    CREATE UNIQUE INDEX jobs_one_per_button ON jobs (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL;
    CREATE INDEX jobs_owner ON jobs (owner_id, created_at);
    CREATE INDEX jobs_message ON jobs (message_id) WHERE message_id IS NOT NULL;
    """,
    # 3: values this install keeps for itself (the push receiver's secret token).
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: the server's own buttons on a task (trueai, new-api), and which of them made a job.
    """
    ALTER TABLE jobs ADD COLUMN buttons TEXT;          -- JSON list of {customId, label, emoji, style}
    ALTER TABLE jobs ADD COLUMN final_prompt TEXT;
    ALTER TABLE jobs ADD COLUMN parent_button INTEGER;
    CREATE UNIQUE INDEX jobs_one_per_server_button ON jobs (parent_task_id, parent_button)
        WHERE parent_button IS NOT NULL;
    ALTER TABLE submissions ADD COLUMN parent_button INTEGER;
    CREATE UNIQUE INDEX submissions_one_per_server_button ON submissions (parent_task_id, parent_button)
        WHERE parent_button IS NOT NULL;
    """,
    # 5: the language of the member who started a job: its public message speaks it.
    """
    ALTER TABLE jobs ADD COLUMN language TEXT;
    ALTER TABLE submissions ADD COLUMN language TEXT;
    """,
    # 6: housekeeping. Finished jobs past [storage] keep_days are deleted; their ids stay here so
    # /show can say "too old" rather than "unknown".
    """
    CREATE TABLE pruned (
        task_id   TEXT PRIMARY KEY,
        guild_id  INTEGER,
        pruned_at REAL NOT NULL
    );
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # 7: a server button is known by its position (its customId) alone. trueai's Upscale (Subtle) and
    # (Creative) both make UPSCALE 1, so one job per (action, index) applies only to jobs made
    # without a server button.
    """
    DROP INDEX jobs_one_per_button;
    CREATE UNIQUE INDEX jobs_one_per_button ON jobs (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL AND parent_button IS NULL;
    DROP INDEX submissions_one_per_button;
    CREATE UNIQUE INDEX submissions_one_per_button ON submissions (parent_task_id, action, parent_index)
        WHERE parent_task_id IS NOT NULL AND parent_button IS NULL;
    """,
    # 8: several processes over one database (PostgreSQL). Each live process says so in
    # cluster_members; each Discord shard is leased to one process at a time, which renews the lease
    # while it lives and serves that shard's guilds (their interactions and their jobs).
    """
    CREATE TABLE cluster_members (
        member     TEXT PRIMARY KEY,
        seen_at    REAL NOT NULL,
        started_at REAL NOT NULL
    );
    CREATE TABLE shard_leases (
        shard_id    INTEGER PRIMARY KEY,
        shard_count INTEGER NOT NULL,
        owner       TEXT,
        expires_at  REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_guild_unfinished ON jobs (guild_id) WHERE finished_at IS NULL;
    """,
    # 9: credits. The ledger is append-only (see bot/storage/ledger.py): a balance is the sum of a
    # member's rows in a server; entry_key makes each row happen once. Amounts are in 1/10000 of a
    # unit. A job finds its hold through its nonce.
    """
    CREATE TABLE ledger (
        entry_key  TEXT PRIMARY KEY,
        guild_id   INTEGER NOT NULL,   -- 0: a direct message
        member_id  INTEGER NOT NULL,
        kind       TEXT NOT NULL,      -- grant, refill, hold, settle, refund, adjust
        amount     INTEGER NOT NULL,   -- the change of the balance
        price      INTEGER,            -- hold, settle, refund: the job's price
        action     TEXT,               -- hold, settle, refund: the price list's name (mj_imagine)
        nonce      TEXT,               -- hold, settle, refund: the submission's nonce
        task_id    TEXT,               -- settle, refund: the proxy's task
        reason     TEXT,
        admin_id   INTEGER,            -- adjust: who did it
        created_at REAL NOT NULL
    );
    CREATE INDEX ledger_member ON ledger (guild_id, member_id, created_at);
    CREATE INDEX ledger_time ON ledger (created_at);
    CREATE INDEX ledger_nonce ON ledger (nonce) WHERE nonce IS NOT NULL;
    CREATE INDEX jobs_nonce ON jobs (nonce) WHERE nonce IS NOT NULL;
    """,
    # 10: videos and grids' single images (trueai's videoUrls / imageUrls), and what the bot did to
    # a result to post it (re-encoded to fit, linked, ...), so later edits say it too.
    """
    ALTER TABLE jobs ADD COLUMN videos TEXT;       -- JSON list of {url, thumbnail}
    ALTER TABLE jobs ADD COLUMN grid_images TEXT;  -- JSON list of 4 URLs
    ALTER TABLE jobs ADD COLUMN media_note TEXT;   -- JSON MediaNote
    """,
    # 11: each member's preferences in a server: /settings, /prefer suffix and options (JSON).
    """
    CREATE TABLE member_preferences (
        guild_id   INTEGER NOT NULL,
        member_id  INTEGER NOT NULL,
        data       TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (guild_id, member_id)
    );
    """,
    # 12: each job's timeline for the admin page: one row per change of its status or progress
    # (bot/storage/job_events.py), deleted with the job.
    """
    CREATE TABLE job_events (
        task_id  TEXT NOT NULL,
        at       REAL NOT NULL,
        status   TEXT NOT NULL,
        progress TEXT,
        detail   TEXT
    );
    CREATE INDEX job_events_task ON job_events (task_id, at);
    CREATE INDEX jobs_recent ON jobs (created_at);
    """,
]


def _same(value: Any) -> Any:
    return value


def _json_list(items: tuple[Any, ...]) -> str | None:
    return json.dumps(list(items), ensure_ascii=False) if items else None


def videos_of(text: str | None) -> tuple[MediaLink, ...]:
    links = json.loads(text) if text else []
    return tuple(link for link in map(MediaLink.from_json, links) if link is not None)


def buttons_of(text: str | None) -> tuple[TaskButton, ...]:
    if not text:
        return ()
    return tuple(b for b in map(TaskButton.from_json, json.loads(text)) if b is not None)


# The jobs table, one entry per column: how a Job's field is written to it, and how it is read back
# (None: written only; "display" is derived from the job). The one list of the columns the code
# knows; the migrations above create them.
JOB_COLUMNS: dict[str, tuple[Callable[[Job], Any], Callable[[Any], Any] | None]] = {
    "task_id": (lambda job: job.task_id, str),
    "action": (lambda job: job.action.value, Action),
    "prompt": (lambda job: job.prompt, _same),
    "prompt_en": (lambda job: job.prompt_en, _same),
    "owner_id": (lambda job: job.owner_id, _same),
    "guild_id": (lambda job: job.guild_id, _same),
    "channel_id": (lambda job: job.channel_id, _same),
    "parent_task_id": (lambda job: job.parent_task_id, _same),
    "parent_index": (lambda job: job.parent_index, _same),
    "message_id": (lambda job: job.message_id, _same),
    "status": (lambda job: job.status.value, Status.parse),
    "progress": (lambda job: job.progress, _same),
    "queue_ahead": (lambda job: job.queue_ahead, _same),
    "image_url": (lambda job: job.image_url, _same),
    "fail_reason": (lambda job: job.fail_reason, _same),
    "display": (lambda job: Display.of(job).signature(), None),
    "shown": (lambda job: job.shown, _same),
    "message_gone": (lambda job: int(job.message_gone), bool),
    "created_at": (lambda job: job.created_at, _same),
    "updated_at": (lambda job: job.updated_at or time.time(), _same),
    "finished_at": (lambda job: job.finished_at, _same),
    "posting_at": (lambda job: job.posting_at, _same),
    "nonce": (lambda job: job.nonce, _same),
    "buttons": (
        lambda job: json.dumps([b.to_json() for b in job.buttons], ensure_ascii=False) if job.buttons else None,
        buttons_of,
    ),
    "final_prompt": (lambda job: job.final_prompt, _same),
    "parent_button": (lambda job: job.parent_button, _same),
    "language": (lambda job: job.language, _same),
    "videos": (lambda job: _json_list(tuple(link.to_json() for link in job.videos)), videos_of),
    "grid_images": (lambda job: _json_list(job.grid_images), lambda text: tuple(json.loads(text)) if text else ()),
    "media_note": (lambda job: job.media_note.to_json() if job.media_note else None, MediaNote.from_json),
}
# How each column is written from a Job (an update computes only the columns it writes), and read.
COLUMN_OF: dict[str, Callable[[Job], Any]] = {name: write for name, (write, _) in JOB_COLUMNS.items()}
FIELD_OF: dict[str, Callable[[Any], Any]] = {name: read for name, (_, read) in JOB_COLUMNS.items() if read}
UPDATABLE = frozenset(COLUMN_OF) - {"task_id", "created_at"}


_UPDATE_SQL: dict[tuple[str, ...], str] = {}


def update_sql(names: tuple[str, ...]) -> str:
    sql = _UPDATE_SQL.get(names)
    if sql is None:
        assignments = ", ".join(f"{name} = ?" for name in names)
        sql = _UPDATE_SQL[names] = f"UPDATE jobs SET {assignments} WHERE task_id = ?"
    return sql


def row_of(job: Job) -> dict[str, Any]:
    return {name: column(job) for name, column in COLUMN_OF.items()}


def job_of(row: Any) -> Job:
    return Job(**{name: read(row[name]) for name, read in FIELD_OF.items()})
