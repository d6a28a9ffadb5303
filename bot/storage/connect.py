"""The engine for a ``[storage] url``."""

from __future__ import annotations

from bot.core.config import is_postgres_url, redacted_url
from bot.storage.database import Database, StorageError
from bot.storage.postgres import PostgresDatabase
from bot.storage.sqlite import SqliteDatabase


def open_database(url: str, *, connections: int = 10, patience_s: float = 60.0) -> Database:
    """``postgresql://…`` (a pool of up to ``connections``, statements tried again for up to
    ``patience_s`` while the server is away) or an SQLite file path (``:memory:`` too); not
    connected yet."""
    if is_postgres_url(url):
        return PostgresDatabase(url, pool_size=connections, patience_s=patience_s)
    if "://" in url:
        raise StorageError(f"[storage] url: {redacted_url(url)!r} is neither an SQLite path nor postgresql://…")
    return SqliteDatabase(url)
