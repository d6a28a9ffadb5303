"""Where the bot keeps what it needs after a restart: SQLite by default, or PostgreSQL for several
processes (versioned migrations on both, one source of SQL)."""

from bot.core.config import redacted_url
from bot.storage.backup import BackupInfo, backup_database
from bot.storage.database import Conflict, StorageError, StorageUnavailable
from bot.storage.schema import MIGRATIONS
from bot.storage.store import MemberLimits, Store

__all__ = [
    "MIGRATIONS",
    "BackupInfo",
    "Conflict",
    "MemberLimits",
    "StorageError",
    "StorageUnavailable",
    "Store",
    "backup_database",
    "redacted_url",
]
