"""Each member's preferences in a server (settings, suffix, options; see ``bot.core.preferences``),
and their recent prompts for the prompt box's suggestions. A change is read, checked and written in
one transaction under the member's lock, so two processes cannot together pass the option limit."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.core.preferences import Preferences
from bot.storage.database import Database, Transaction

UPSERT = (
    "INSERT INTO member_preferences (guild_id, member_id, data, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (guild_id, member_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)


class PreferenceBook:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, guild_id: int, member_id: int) -> Preferences:
        rows = await self.database.fetch(
            "SELECT data FROM member_preferences WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
        )
        return Preferences.from_json(rows[0][0]) if rows else Preferences()

    async def change(self, guild_id: int, member_id: int, change: Callable[[Preferences], Preferences]) -> Preferences:
        """Apply ``change`` to the member's stored preferences (it may raise to refuse) and store
        the result; returns it."""

        async def work(tx: Transaction) -> Preferences:
            await tx.lock(member_id)
            rows = await tx.fetch(
                "SELECT data FROM member_preferences WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
            )
            changed = change(Preferences.from_json(rows[0][0]) if rows else Preferences())
            await tx.execute(UPSERT, (guild_id, member_id, changed.to_json(), time.time()))
            return changed

        return await self.database.transact(work)

    async def recent_prompts(self, guild_id: int, member_id: int, *, limit: int = 25) -> list[str]:
        """The member's latest distinct prompts here, newest first (from their jobs)."""
        rows = await self.database.fetch(
            "SELECT prompt, MAX(created_at) AS latest FROM jobs WHERE owner_id = ? AND guild_id = ? AND prompt <> ''"
            " GROUP BY prompt ORDER BY latest DESC LIMIT ?",
            (member_id, guild_id, limit),
        )
        return [str(row[0]) for row in rows]
