"""The storage commands of the CLI: ``mjbot backup``, ``mjbot migrate-storage`` and ``mjbot spend-report``."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from bot.core.config import Settings, url_password
from bot.core.errors import ConfigError
from bot.ops import logs
from bot.ops.spend_report import spend_report


def backup(settings: Settings | None, path: str) -> int:
    """``mjbot backup PATH``."""
    from bot.storage import StorageError, backup_database
    from bot.storage.copy import backup_postgres

    if settings is None:
        return 2
    storage = settings.storage
    try:
        if storage.url.get_secret_value():
            info = asyncio.run(backup_postgres(storage.database_url, path))
        else:
            info = backup_database(storage.path, path)
    except (OSError, ValueError, sqlite3.Error, StorageError, ConfigError) as exc:
        print(f"mjbot: backup of {storage.where} failed: {logs.redact(str(exc))}", file=sys.stderr)
        return 1
    print(
        f"backed up {storage.where} to {path}: {info.jobs} jobs, schema version {info.schema_version}, "
        f"{info.size_bytes / 1024:.0f} KiB"
    )
    return 0


def migrate(settings: Settings | None, to: str) -> int:
    """``mjbot migrate-storage --to URL``."""
    from bot.storage import StorageError, redacted_url
    from bot.storage.copy import migrate_storage

    if settings is None:
        return 2
    source, target = settings.storage.database_url, to
    if source == target:
        print("mjbot: --to names the database the bot already uses", file=sys.stderr)
        return 2
    logs.add_secret(url_password(target))
    try:
        info = asyncio.run(migrate_storage(source, target))
    except (OSError, ValueError, sqlite3.Error, StorageError, ConfigError) as exc:
        print(
            f"mjbot: could not copy {settings.storage.where} to {redacted_url(target)}: {logs.redact(str(exc))}",
            file=sys.stderr,
        )
        return 1
    rows = ", ".join(f"{count} {table}" for table, count in info.rows.items())
    print(f"copied {settings.storage.where} to {redacted_url(target)}: {rows}")
    print("now set [storage] url (or MJBOT_STORAGE__URL) to the new database and restart the bot")
    return 0


def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[Any], Settings | None]
) -> None:
    """Declare the storage commands with the CLI's ``command`` helper."""
    backup_cmd = command(
        "backup",
        lambda args: backup(settings_of(args), args.path),
        "copy the live database to the SQLite file PATH (SQLite online backup, or PostgreSQL)",
    )
    backup_cmd.add_argument("path", metavar="PATH", help="the backup file to write")
    migrate_cmd = command(
        "migrate-storage",
        lambda args: migrate(settings_of(args), args.to),
        "copy this install's database into another, empty one (e.g. PostgreSQL)",
    )
    migrate_cmd.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host/db, or a path")
    report = command(
        "spend-report",
        lambda args: spend_report(settings_of(args), args.since, args.until, args.format, args.output),
        "the credits ledger's entries from a date (UTC), for accounting",
    )
    report.add_argument("--since", required=True, metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    report.add_argument("--until", metavar="DATE", help="up to (not including) this day; default: now")
    report.add_argument("--format", choices=("csv", "json"), default="csv", help="default csv")
    report.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
