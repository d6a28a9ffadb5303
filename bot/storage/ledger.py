"""The credits ledger: append-only, one row per change of a member's balance in a server (grant,
refill, hold, settle, refund, adjust). A balance is the sum of its rows, never stored apart.

Each row has an ``entry_key`` that makes it happen once, whatever crashes, retries or processes
there are: ``hold:<nonce>`` and ``end:<nonce>`` (the settle or the refund: one of them, once) for a
job, ``refill:<guild>:<member>:<period>:<start>`` for a refill, ``start:<guild>:<member>`` for a
new member's starting balance. Rows are only ever inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bot.core.credits import Allowance, format_amount, next_period_start, period_start, periods_between
from bot.core.errors import NotEnoughCredits, TakeTooMuch
from bot.core.models import Status, Submission
from bot.storage.database import Statement, Transaction

GRANT, REFILL, HOLD, SETTLE, REFUND, ADJUST = "grant", "refill", "hold", "settle", "refund", "adjust"
MAX_REASON = 200


@dataclass(frozen=True)
class Charge:
    """What a submission costs, held with it in one transaction, and what the member is allowed."""

    action: str  # the price list's name, e.g. "mj_imagine"
    price: int
    allowance: Allowance | None = None
    starting_balance: int = 0
    overdraft: bool = False  # an admin: never refused for credits (their jobs are still recorded)
    unit: str = "credits"


@dataclass(frozen=True)
class Entry:
    entry_key: str
    guild_id: int
    member_id: int
    kind: str
    amount: int
    price: int | None
    action: str | None
    nonce: str | None
    task_id: str | None
    reason: str | None
    admin_id: int | None
    created_at: float


COLUMNS = tuple(Entry.__dataclass_fields__)
INSERT_SQL = (
    f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (entry_key) DO NOTHING"
)
# Entries made at the same moment, in the order they happen: top-ups, then the charge, then its end.
_RANK = "CASE kind WHEN 'grant' THEN 0 WHEN 'refill' THEN 1 WHEN 'adjust' THEN 2 WHEN 'hold' THEN 3 ELSE 4 END"
ORDER_SQL = f"created_at, {_RANK}, entry_key"
NEWEST_FIRST_SQL = f"created_at DESC, {_RANK} DESC, entry_key DESC"
BALANCE_SQL = "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE guild_id = ? AND member_id = ?"


def _row(entry: Entry) -> tuple[Any, ...]:
    return tuple(getattr(entry, name) for name in COLUMNS)


def entry_of(row: Any) -> Entry:
    return Entry(**{name: row[name] for name in COLUMNS})


def _end_sql(amount: str) -> str:
    """The settle or refund of a hold, copied from the hold's row; nothing when there is no hold
    (credits were off), nothing a second time (the one ``end:`` key)."""
    return (
        f"INSERT INTO ledger ({', '.join(COLUMNS)}) "
        f"SELECT CAST(? AS TEXT), guild_id, member_id, CAST(? AS TEXT), {amount}, price, action, nonce, "
        "CAST(? AS TEXT), CAST(? AS TEXT), NULL, CAST(? AS DOUBLE PRECISION) "
        "FROM ledger WHERE entry_key = ? ON CONFLICT (entry_key) DO NOTHING"
    )


SETTLE_SQL = _end_sql("0")
REFUND_SQL = _end_sql("-amount")
# A submission that never became a job: refunded, unless a job holds its nonce (the job's end
# settles or refunds it instead).
REFUND_UNUSED_SQL = REFUND_SQL.replace(
    " ON CONFLICT", " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.nonce = ledger.nonce) ON CONFLICT"
)


def end_statements(jobs: Sequence[Any], now: float | None = None) -> list[Statement]:
    """For jobs that just finished (``Job``\\ s with a nonce): a settle for each success, a refund
    for each failure or cancellation, in the transaction that writes the final state; dated when the
    job was last updated (``now`` when given)."""
    settles, refunds = [], []
    for job in jobs:
        if not job.nonce or not job.status.finished:
            continue
        reason = f"{job.status.value}: {job.fail_reason}" if job.fail_reason else job.status.value
        success = job.status is Status.SUCCESS
        when = now if now is not None else job.updated_at
        (settles if success else refunds).append(
            (
                f"end:{job.nonce}",
                SETTLE if success else REFUND,
                job.task_id,
                reason[:MAX_REASON],
                when,
                f"hold:{job.nonce}",
            )
        )
    return [(sql, rows) for sql, rows in ((SETTLE_SQL, settles), (REFUND_SQL, refunds)) if rows]


def refund_unused(nonce: str, reason: str, now: float) -> Statement:
    return (REFUND_UNUSED_SQL, [(f"end:{nonce}", REFUND, None, reason[:MAX_REASON], now, f"hold:{nonce}")])


# Holds whose job finished, or that belong to nothing any more, without an end (a safety net: the
# ends are written with the final state, so there should be none).
MISSED_SETTLES_SQL = (
    "SELECT ledger.nonce, jobs.task_id, jobs.status, jobs.fail_reason, jobs.finished_at FROM ledger "
    "JOIN jobs ON jobs.nonce = ledger.nonce "
    "WHERE ledger.kind = 'hold' AND jobs.finished_at IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM ledger AS ends WHERE ends.entry_key = 'end:' || ledger.nonce)"
)
ORPHAN_HOLDS_SQL = (
    "SELECT nonce FROM ledger WHERE kind = 'hold' "
    "AND NOT EXISTS (SELECT 1 FROM ledger AS ends WHERE ends.entry_key = 'end:' || ledger.nonce) "
    "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.nonce = ledger.nonce) "
    "AND NOT EXISTS (SELECT 1 FROM submissions WHERE submissions.nonce = ledger.nonce)"
)


async def balance(tx: Transaction, guild_id: int, member_id: int) -> int:
    rows = await tx.fetch(BALANCE_SQL, (guild_id, member_id))
    return int(rows[0][0])


async def top_up(
    tx: Transaction, guild_id: int, member_id: int, allowance: Allowance | None, starting: int, now: float
) -> None:
    """A new member's starting balance, and this period's refill of their allowance: each once (the
    caller holds the member's lock)."""
    if starting > 0 and not await tx.fetch(
        "SELECT 1 FROM ledger WHERE guild_id = ? AND member_id = ? LIMIT 1", (guild_id, member_id)
    ):
        await _insert(tx, Entry(f"start:{guild_id}:{member_id}", guild_id, member_id, GRANT, starting,
                                None, None, None, None, "starting balance", None, now))  # fmt: skip
    if allowance is None:
        return
    start = period_start(allowance.every, now)
    key = f"refill:{guild_id}:{member_id}:{allowance.every}:{int(start)}"
    if await tx.fetch("SELECT 1 FROM ledger WHERE entry_key = ?", (key,)):
        return
    last = await tx.fetch(
        "SELECT MAX(created_at) FROM ledger WHERE guild_id = ? AND member_id = ? AND kind = 'refill'",
        (guild_id, member_id),
    )
    # Periods missed while the member was away add up, to the cap.
    periods = 1 if last[0][0] is None else max(1, periods_between(allowance.every, float(last[0][0]), now))
    amount = max(0, min(allowance.amount * periods, allowance.cap - await balance(tx, guild_id, member_id)))
    day = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d")
    # Written even when nothing is added (the balance is at the cap): the period's refill is done.
    await _insert(tx, Entry(key, guild_id, member_id, REFILL, amount, None, None, None, None,
                            f"{allowance.every} from {day}, role {allowance.role_id}", None, now))  # fmt: skip


async def hold(tx: Transaction, submission: Submission, charge: Charge, now: float) -> NotEnoughCredits | None:
    """Take the job's price from the member's balance before the proxy is asked. When the balance
    does not cover it, nothing is held and the refusal is returned: the caller commits what
    :func:`top_up` wrote all the same (a refill refused with the submit would never add up)."""
    guild_id, member_id = submission.guild_id or 0, submission.owner_id
    await top_up(tx, guild_id, member_id, charge.allowance, charge.starting_balance, now)
    have = await balance(tx, guild_id, member_id)
    if have < charge.price and not charge.overdraft:
        refill_at = next_period_start(charge.allowance.every, now) if charge.allowance else 0
        return NotEnoughCredits(
            f"user {member_id} has {format_amount(have)}, {charge.action} costs {format_amount(charge.price)}",
            price=format_amount(charge.price),
            balance=format_amount(have),
            unit=charge.unit,
            refill_at=int(refill_at),
            refill=format_amount(charge.allowance.amount) if charge.allowance else "",
        )
    await _insert(tx, Entry(f"hold:{submission.nonce}", guild_id, member_id, HOLD, -charge.price, charge.price,
                            charge.action, submission.nonce, None, submission.action, None, now))  # fmt: skip
    return None


async def adjust(
    tx: Transaction,
    key: str,
    guild_id: int,
    member_id: int,
    amount: int,
    *,
    reason: str,
    admin_id: int,
    now: float,
    allowance: Allowance | None,
    starting: int,
) -> int:
    """An admin gives (``amount`` > 0) or takes credits as the entry ``key``; returns the new
    balance. Taking more than the member has raises :class:`TakeTooMuch`. Run again with the same
    key (a retry after a COMMIT that went through), it changes nothing."""
    await tx.lock(member_id)
    if await tx.fetch("SELECT 1 FROM ledger WHERE entry_key = ?", (key,)):
        return await balance(tx, guild_id, member_id)
    await top_up(tx, guild_id, member_id, allowance, starting, now)
    have = await balance(tx, guild_id, member_id)
    if have + amount < 0:
        raise TakeTooMuch(
            f"take {format_amount(-amount)} from user {member_id}, who has {format_amount(have)}",
            amount=format_amount(-amount),
            balance=format_amount(have),
        )
    await _insert(tx, Entry(key, guild_id, member_id, ADJUST, amount, None, None, None,
                            None, reason[:MAX_REASON], admin_id, now))  # fmt: skip
    return have + amount


async def _insert(tx: Transaction, entry: Entry) -> None:
    await tx.execute(INSERT_SQL, _row(entry))
