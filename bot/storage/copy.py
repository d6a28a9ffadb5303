"""Copying an install's data from one database to another: ``mjbot migrate-storage`` (a live SQLite
file into PostgreSQL) and ``mjbot backup`` of a PostgreSQL install (into an SQLite file, the one
backup format, which ``migrate-storage`` can load back)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.config import is_postgres_url
from bot.storage.backup import BackupInfo, backup_database
from bot.storage.database import Database, StorageError
from bot.storage.store import Store, insert_sql

# What an install's data is; anything else (shard leases, say) belongs to the running processes.
TABLES = ("jobs", "submissions", "meta", "pruned", "ledger", "member_preferences", "job_events")
_ROWS_PER_BATCH = 1000


@dataclass(frozen=True)
class CopyInfo:
    rows: dict[str, int]


async def copy_store(source: Store, target: Store) -> CopyInfo:
    """Every row of :data:`TABLES` from ``source`` into ``target``, which must be empty; both are
    open and at the same schema version. The rows are read in one consistent snapshot and written in
    one transaction: a failed copy leaves ``target`` empty."""
    if await target.schema_version() != await source.schema_version():
        raise StorageError("the two databases are at different schema versions")
    for table in TABLES:
        rows = await target.database.fetch(f"SELECT COUNT(*) FROM {table}")
        if int(rows[0][0]):
            what = f"{int(rows[0][0])} jobs" if table == "jobs" else f"rows in {table}"
            raise StorageError(f"{target.database.where} already holds {what}: copy only into an empty database")
    snapshot = await _snapshot(source.database)
    statements = []
    for table, rows in snapshot.items():
        if not rows:
            continue
        columns = list(rows[0].keys())
        sql = insert_sql(table, dict.fromkeys(columns))
        for start in range(0, len(rows), _ROWS_PER_BATCH):
            statements.append((sql, [tuple(row[c] for c in columns) for row in rows[start : start + _ROWS_PER_BATCH]]))
    if statements:
        await target.database.run(statements)
    return CopyInfo(rows={table: len(rows) for table, rows in snapshot.items()})


async def _snapshot(database: Database) -> dict[str, list[Any]]:
    async def read(tx: Any) -> dict[str, list[Any]]:
        if database.engine == "postgresql":
            await tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return {table: list(await tx.fetch(f"SELECT * FROM {table}")) for table in TABLES}

    return await database.transact(read)


async def migrate_storage(source_url: str, target_url: str) -> CopyInfo:
    """Copy the install at ``source_url`` into the empty database at ``target_url``. A live SQLite
    source is first copied with SQLite's online backup, so the bot may keep running meanwhile (what
    it writes after that moment is not copied: stop it before switching)."""
    with tempfile.TemporaryDirectory(prefix="mjbot-migrate-") as folder:
        if not is_postgres_url(source_url):
            snapshot = Path(folder) / "snapshot.sqlite3"
            await asyncio.to_thread(backup_database, source_url, snapshot)
            source_url = str(snapshot)
        async with _opened(source_url) as source, _opened(target_url) as target:
            return await copy_store(source, target)


async def backup_postgres(source_url: str, target: str | Path) -> BackupInfo:
    """A PostgreSQL install into a new SQLite file at ``target`` (replaced only once complete)."""
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with _opened(source_url, migrate=False) as source, _opened(str(partial)) as copy:
            info = await copy_store(source, copy)
            version = await copy.schema_version()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return BackupInfo(jobs=info.rows["jobs"], schema_version=version, size_bytes=target.stat().st_size)


@contextlib.asynccontextmanager
async def _opened(url: str, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    """``migrate=False`` for a live install: a newer mjbot's CLI must not upgrade the schema under
    the processes still running the older one (the copy then says the versions differ)."""
    store = Store(url)
    await store.open(migrate=migrate)
    try:
        yield store
    finally:
        await store.close()
