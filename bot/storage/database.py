"""What the store asks of a database engine, whichever it is (SQLite, PostgreSQL).

The SQL is written once, in the dialect both engines share, with ``?`` placeholders; an engine
translates what it must (PostgreSQL: ``$1``… and ``IS NOT DISTINCT FROM``; migration column types).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bot.core.errors import ConfigError, MjBotError

# One statement of a batch, with the rows it runs for (``executemany`` when there are several).
Statement = tuple[str, Sequence[tuple[Any, ...]]]


class StorageError(MjBotError):
    """The database could not do what was asked."""


class Conflict(StorageError):
    """A write broke a uniqueness rule (one job per button, one submission per button)."""


class StorageUnavailable(StorageError):
    """The database server could not be reached, even after waiting for it."""


class Transaction(Protocol):
    """The statements of one interactive transaction (see :meth:`Database.transact`)."""

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int: ...

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    async def lock(self, key: int) -> None:
        """Serialise this transaction with every other one that locks ``key`` (until it ends)."""


class Database(Protocol):
    """An open connection (or pool) to one database."""

    engine: str  # "sqlite" or "postgresql"
    where: str  # a name for logs and messages, with no password in it

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run(self, statements: Sequence[Statement]) -> list[int]:
        """Run ``statements`` as one transaction; the row counts of each."""

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows (by index or by column name) of one query."""

    async def fetch_then(
        self,
        sql: str,
        params: tuple[Any, ...],
        then: Callable[[list[Any]], Sequence[tuple[str, tuple[Any, ...]]]],
    ) -> tuple[list[Any], list[Any]]:
        """Rows of ``sql``, and the rows of the follow-up queries ``then(rows)`` asks for."""

    async def transact(self, work: Callable[[Transaction], Awaitable[Any]]) -> Any:
        """Run ``work`` in one transaction (committed when it returns, rolled back when it raises).
        ``work`` may be called again if the server went away in the middle."""

    async def schema_version(self) -> int: ...

    async def migrate(self, migrations: Sequence[str]) -> None:
        """Bring the schema up to ``len(migrations)``; refuse one newer than that."""

    async def tables(self) -> list[str]: ...


_PLACEHOLDER = re.compile(r"(\bIS\s+)?\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2…``; ``IS ?`` (SQLite's null-safe equality) as
    ``IS NOT DISTINCT FROM $n``. The project's SQL has no ``?`` inside string literals."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"IS NOT DISTINCT FROM ${count}" if match.group(1) else f"${count}"

    return _PLACEHOLDER.sub(number, sql)


_TYPES = ((re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))


def postgres_ddl(script: str) -> str:
    """A migration as PostgreSQL wants it: Discord ids overflow its 32-bit INTEGER, and its REAL
    is single precision (timestamps would lose their seconds)."""
    for pattern, replacement in _TYPES:
        script = pattern.sub(replacement, script)
    return script


def newer_schema(where: str, version: int, known: int) -> ConfigError:
    # Written by a newer mjbot: this code would misread it, and could damage it by writing.
    return ConfigError(
        f"the database {where} has schema version {version}, newer than this mjbot knows ({known}): "
        f"run the newer mjbot, or restore a backup made by this version"
    )
