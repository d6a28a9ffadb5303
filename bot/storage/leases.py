"""Shard leases in the database: which process serves which Discord shard, decided by the database so
that two processes never serve the same shard, and a dead one's shards are taken over."""

from __future__ import annotations

from bot.storage.database import Database, StorageError


class ShardLeases:
    def __init__(self, database: Database, member: str, shard_count: int) -> None:
        self.database = database
        self.member = member  # this process's name in the cluster
        self.shard_count = shard_count

    async def prepare(self, now: float) -> None:
        """One row per shard; refuse a database whose leases were made for another shard count
        (two processes disagreeing on the count would both serve some guilds)."""
        rows = await self.database.fetch("SELECT DISTINCT shard_count FROM shard_leases")
        counts = {int(row[0]) for row in rows}
        if counts - {self.shard_count}:
            live = await self.database.fetch(
                "SELECT COUNT(*) FROM shard_leases "
                "WHERE owner IS NOT NULL AND owner <> ? AND shard_count <> ? AND expires_at > ?",
                (self.member, self.shard_count, now),
            )
            if int(live[0][0]):
                raise StorageError(
                    f"other processes run with a shard count of {sorted(counts - {self.shard_count})}, "
                    f"this one with {self.shard_count}: give every process the same count"
                )
            await self.database.run([("DELETE FROM shard_leases WHERE shard_count <> ?", [(self.shard_count,)])])
        await self.database.run(
            [
                (
                    "INSERT INTO shard_leases (shard_id, shard_count, owner, expires_at) VALUES (?, ?, NULL, 0) "
                    "ON CONFLICT (shard_id) DO NOTHING",
                    [(shard, self.shard_count) for shard in range(self.shard_count)],
                )
            ]
        )

    async def heartbeat(self, now: float, started_at: float) -> None:
        await self.database.run(
            [
                (
                    "INSERT INTO cluster_members (member, seen_at, started_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (member) DO UPDATE SET seen_at = excluded.seen_at",
                    [(self.member, now, started_at)],
                )
            ]
        )

    async def live_members(self, now: float, ttl_s: float) -> int:
        rows = await self.database.fetch("SELECT COUNT(*) FROM cluster_members WHERE seen_at > ?", (now - ttl_s,))
        return max(1, int(rows[0][0]))

    async def renew(self, now: float, ttl_s: float) -> set[int]:
        """Extend this process's leases (even one that ran out while the database was away, as long
        as no other process took it meanwhile); the shards it still holds."""
        await self.database.run(
            [("UPDATE shard_leases SET expires_at = ? WHERE owner = ?", [(now + ttl_s, self.member)])]
        )
        return await self.held()

    async def held(self) -> set[int]:
        rows = await self.database.fetch("SELECT shard_id FROM shard_leases WHERE owner = ?", (self.member,))
        return {int(row[0]) for row in rows}

    async def free(self, now: float) -> list[int]:
        rows = await self.database.fetch(
            "SELECT shard_id FROM shard_leases WHERE owner IS NULL OR expires_at <= ? ORDER BY shard_id", (now,)
        )
        return [int(row[0]) for row in rows]

    async def owners(self) -> dict[int, str | None]:
        rows = await self.database.fetch("SELECT shard_id, owner FROM shard_leases ORDER BY shard_id")
        return {int(row[0]): row[1] for row in rows}

    async def claim(self, shard: int, now: float, ttl_s: float) -> bool:
        """Take ``shard`` if it is free, its owner's lease ran out, or it is already ours. One
        statement, so of two processes claiming it together exactly one gets it."""
        counts = await self.database.run(
            [
                (
                    "UPDATE shard_leases SET owner = ?, expires_at = ? "
                    "WHERE shard_id = ? AND (owner IS NULL OR expires_at <= ? OR owner = ?)",
                    [(self.member, now + ttl_s, shard, now, self.member)],
                )
            ]
        )
        return counts[0] == 1

    async def release_shards(self, shards: set[int]) -> None:
        """Give back ``shards`` (taken, but this process could not start serving them)."""
        await self.database.run(
            [
                (
                    "UPDATE shard_leases SET owner = NULL, expires_at = 0 WHERE owner = ? AND shard_id = ?",
                    [(self.member, shard) for shard in sorted(shards)],
                )
            ]
        )

    async def release(self) -> None:
        """Give every lease back (a clean stop): the others take the shards over at once."""
        await self.database.run(
            [
                ("UPDATE shard_leases SET owner = NULL, expires_at = 0 WHERE owner = ?", [(self.member,)]),
                ("DELETE FROM cluster_members WHERE member = ?", [(self.member,)]),
            ]
        )
