"""The storage commands of the CLI: ``mjbot backup`` and ``mjbot migrate-storage``."""

from __future__ import annotations

import asyncio
import sqlite3
import sys

from bot.core.config import Settings, url_password
from bot.core.errors import ConfigError
from bot.ops import logs


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
