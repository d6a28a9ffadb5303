"""Reading the credits ledger (a member's account, what jobs cost, who spent what) and the changes
admins make. The holds, settles and refunds are written with the jobs (see ``store`` and ``ledger``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import bot.storage.ledger as ledger
from bot.core.credits import Allowance, next_period_start
from bot.core.models import Status
from bot.storage.database import Database, Transaction
from bot.storage.ledger import Entry, entry_of

log = logging.getLogger(__name__)

_IDS_PER_QUERY = 500


@dataclass(frozen=True)
class Account:
    balance: int
    allowance: Allowance | None
    next_refill: float | None
    entries: list[Entry]  # newest first


@dataclass(frozen=True)
class Cost:
    price: int
    state: str  # "held" (running), "settle" (charged) or "refund"


@dataclass(frozen=True)
class SpendLine:
    key: str | int  # an action's price name, or a member's id
    jobs: int
    total: int


@dataclass(frozen=True)
class Spend:
    by_action: list[SpendLine]
    top_members: list[SpendLine]
    refunded: SpendLine
    held: SpendLine  # jobs still running


class CreditBook:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def account(
        self, guild_id: int, member_id: int, *, allowance: Allowance | None, starting: int, now: float, last: int = 10
    ) -> Account:
        """The member's balance (with this period's refill and a new member's starting balance
        granted first), their allowance, when it refills next, and their ``last`` entries."""

        async def read(tx: Transaction) -> Account:
            await tx.lock(member_id)
            await ledger.top_up(tx, guild_id, member_id, allowance, starting, now)
            rows = await tx.fetch(
                f"SELECT * FROM ledger WHERE guild_id = ? AND member_id = ? ORDER BY {ledger.NEWEST_FIRST_SQL} LIMIT ?",
                (guild_id, member_id, last),
            )
            return Account(
                balance=await ledger.balance(tx, guild_id, member_id),
                allowance=allowance,
                next_refill=next_period_start(allowance.every, now) if allowance else None,
                entries=[entry_of(row) for row in rows],
            )

        return await self.database.transact(read)

    async def view(
        self, guild_id: int, member_id: int, *, allowance: Allowance | None, now: float, last: int
    ) -> Account:
        """The member's account as the ledger has it, writing nothing (the admin page looks without
        granting a starting balance or a refill, which only the member's own use should do)."""
        balance = await self.database.fetch(ledger.BALANCE_SQL, (guild_id, member_id))
        rows = await self.database.fetch(
            f"SELECT * FROM ledger WHERE guild_id = ? AND member_id = ? ORDER BY {ledger.NEWEST_FIRST_SQL} LIMIT ?",
            (guild_id, member_id, last),
        )
        return Account(
            balance=int(balance[0][0]),
            allowance=allowance,
            next_refill=next_period_start(allowance.every, now) if allowance else None,
            entries=[entry_of(row) for row in rows],
        )

    async def adjust(
        self,
        guild_id: int,
        member_id: int,
        amount: int,
        *,
        reason: str,
        admin_id: int,
        allowance: Allowance | None,
        starting: int,
        now: float | None = None,
        key: str | None = None,
    ) -> int:
        """An admin's ``give`` (amount > 0) or ``take``: one ``adjust`` row. Returns the new balance.
        The same ``key`` twice (a form sent twice) makes one row."""
        when = time.time() if now is None else now
        key = key or f"adjust:{uuid.uuid4().hex}"  # made once: a retried transaction must not add a second row
        return await self.database.transact(
            lambda tx: ledger.adjust(
                tx,
                key,
                guild_id,
                member_id,
                amount,
                reason=reason,
                admin_id=admin_id,
                now=when,
                allowance=allowance,
                starting=starting,
            )
        )

    async def costs(self, nonces: Sequence[str]) -> dict[str, Cost]:
        """What each job (by its submission's nonce) costs, and whether it is charged yet."""
        found: dict[str, Cost] = {}
        wanted = [nonce for nonce in nonces if nonce]
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            chunk = wanted[start : start + _IDS_PER_QUERY]
            rows = await self.database.fetch(
                f"SELECT nonce, kind, price FROM ledger WHERE nonce IN ({', '.join('?' for _ in chunk)})", tuple(chunk)
            )
            for nonce, kind, price in rows:
                if kind == ledger.HOLD:
                    found.setdefault(nonce, Cost(int(price), "held"))
                else:
                    found[nonce] = Cost(int(price), kind)
        return found

    async def spend(self, guild_id: int | None, since: float, *, top: int = 10) -> Spend:
        """What was charged since ``since`` (in ``guild_id``, or everywhere): by action, the members
        who spent most, what was refunded, and what is held by jobs still running."""
        where, params = "created_at >= ?", (since,)
        if guild_id is not None:
            where, params = where + " AND guild_id = ?", (since, guild_id)
        by_action = await self.database.fetch(
            f"SELECT action, COUNT(*), SUM(price) FROM ledger WHERE kind = 'settle' AND {where} "
            "GROUP BY action ORDER BY 3 DESC, 1",
            params,
        )
        members = await self.database.fetch(
            f"SELECT member_id, COUNT(*), SUM(price) FROM ledger WHERE kind = 'settle' AND {where} "
            "GROUP BY member_id ORDER BY 3 DESC, 1 LIMIT ?",
            (*params, top),
        )
        totals = await self.database.fetch(
            f"SELECT kind, COUNT(*), COALESCE(SUM(price), 0) FROM ledger WHERE kind IN ('refund', 'hold') AND {where} "
            "GROUP BY kind",
            params,
        )
        counts = {kind: (int(n), int(total)) for kind, n, total in totals}
        refunded = counts.get(ledger.REFUND, (0, 0))
        held_rows = await self.database.fetch(
            f"SELECT COUNT(*), COALESCE(SUM(price), 0) FROM ledger WHERE kind = 'hold' AND {where} "
            "AND NOT EXISTS (SELECT 1 FROM ledger AS ends WHERE ends.entry_key = 'end:' || ledger.nonce)",
            params,
        )
        return Spend(
            by_action=[SpendLine(str(a), int(n), int(t)) for a, n, t in by_action],
            top_members=[SpendLine(int(m), int(n), int(t)) for m, n, t in members],
            refunded=SpendLine("refund", *refunded),
            held=SpendLine("held", int(held_rows[0][0]), int(held_rows[0][1])),
        )

    async def spent_since(self, since: float) -> int:
        """Everything charged (settled) since ``since``, in every server."""
        rows = await self.database.fetch(
            "SELECT COALESCE(SUM(price), 0) FROM ledger WHERE kind = 'settle' AND created_at >= ?", (since,)
        )
        return int(rows[0][0])

    async def entries(self, since: float, until: float | None = None) -> list[Entry]:
        """Every entry from ``since`` (to ``until``), oldest first: for accounting."""
        sql, params = "SELECT * FROM ledger WHERE created_at >= ?", (since,)
        if until is not None:
            sql, params = sql + " AND created_at < ?", (since, until)
        return [entry_of(row) for row in await self.database.fetch(f"{sql} ORDER BY {ledger.ORDER_SQL}", params)]

    async def claim(self, key: str) -> bool:
        """True for the first process to claim ``key`` (e.g. today's spend alert), false after."""
        mine = uuid.uuid4().hex  # ours if it is what the row holds (a retried insert still counts)
        await self.database.run(
            [("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [(key, mine)])]
        )
        rows = await self.database.fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return bool(rows) and rows[0][0] == mine

    async def reconcile(self, now: float | None = None) -> int:
        """Settle or refund holds whose end is missing: a finished job's (its end is written with its
        final state, so this finds none unless something went wrong), or a hold whose submission and
        job are both gone. Idempotent; returns how many were ended."""
        when = time.time() if now is None else now
        missed = await self.database.fetch(ledger.MISSED_SETTLES_SQL)
        orphans = await self.database.fetch(ledger.ORPHAN_HOLDS_SQL)
        statements = []
        for nonce, task_id, status, reason, finished_at in missed:
            # Dated when the job finished, as it would have been.
            statements += ledger.end_statements([_Ended(nonce, task_id, Status.parse(status), reason, finished_at)])
        for (nonce,) in orphans:
            statements.append(ledger.refund_unused(nonce, "lost: no job or submission", when))
        if statements:
            log.warning("credits: %d holds had no settle or refund; ended them now", len(missed) + len(orphans))
            await self.database.run(statements)
        return len(missed) + len(orphans)


@dataclass(frozen=True)
class _Ended:
    nonce: str
    task_id: str
    status: Status
    fail_reason: str | None
    updated_at: float
