"""Where the bot keeps what it needs after a restart: SQLite (WAL, versioned migrations)."""

from bot.storage.backup import BackupInfo, backup_database
from bot.storage.schema import MIGRATIONS
from bot.storage.store import Store

__all__ = ["MIGRATIONS", "BackupInfo", "Store", "backup_database"]
