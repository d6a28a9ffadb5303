"""PostgreSQL over asyncpg, for several bot processes sharing one database.

The store's SQL is translated (``?`` to ``$n``) once per statement text and cached. When the server
goes away (restart, failover, a network blip), a statement is tried again until it is back, for up
to ``patience_s``: the bot's writes wait rather than being lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from bot.core.background import wait_event
from bot.core.config import redacted_url
from bot.storage.database import (
    Conflict,
    Statement,
    StorageUnavailable,
    newer_schema,
    numbered,
    postgres_ddl,
)

log = logging.getLogger(__name__)

# Serialises migrations between processes starting together (an arbitrary constant of ours).
_MIGRATION_LOCK = 0x6D6A626F74  # "mjbot"

# Errors that mean "the server is not there right now", worth waiting out.
_GONE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionFailureError,
)


class PostgresDatabase:
    engine = "postgresql"

    def __init__(self, url: str, *, patience_s: float = 60.0, pool_size: int = 10) -> None:
        self._url = url
        self.where = redacted_url(url)
        self.patience_s = patience_s
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._sql: dict[str, str] = {}
        self._down_since: float | None = None  # when the server went away (None: it is there)

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.where!r})"

    @property
    def url(self) -> str:
        """The URL with its password: for the listener's own connection, never for logs."""
        return self._url

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url, min_size=1, max_size=self._pool_size, command_timeout=60, timeout=10
            )
        except asyncpg.InvalidPasswordError:
            raise StorageUnavailable(f"PostgreSQL at {self.where} refused the password") from None
        except ValueError:  # asyncpg could not parse it; its message may quote the password
            raise StorageUnavailable(
                f"[storage] url {self.where} is not a valid PostgreSQL URL: percent-encode the special "
                f"characters of the password (/ becomes %2F, @ becomes %40…)"
            ) from None
        except asyncpg.InvalidCatalogNameError:
            raise StorageUnavailable(f"PostgreSQL at {self.where}: no such database") from None
        except (TimeoutError, *_GONE) as exc:
            raise StorageUnavailable(
                f"PostgreSQL at {self.where} is unreachable: {type(exc).__name__}: {exc}"
            ) from None

    async def notify(self, channel: str, payload: str) -> None:
        """Wake the processes listening on ``channel`` (PostgreSQL NOTIFY; payloads under 8,000 bytes)."""
        await self._patiently(lambda: self.pool.execute("SELECT pg_notify($1, $2)", channel, payload), "notify")

    def listen(self, channel: str, callback: Callable[[str], None]) -> asyncio.Task[None]:
        """Call ``callback(payload)`` for every NOTIFY on ``channel``, on a connection of its own that
        is opened again whenever it is lost; cancel the task to stop."""
        return asyncio.create_task(self._listen(channel, callback), name=f"mjbot-listen-{channel}")

    async def _listen(self, channel: str, callback: Callable[[str], None]) -> None:
        delay = 0.1
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._url, timeout=10)
            except (*_GONE, TimeoutError) as exc:
                if delay == 0.1:
                    log.warning("listening on %s at %s: cannot connect (%s); trying again", channel, self.where, exc)
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            try:
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(channel, lambda _c, _pid, _channel, payload: callback(payload))
                # A server that vanishes without closing the socket: asked every few seconds.
                while not await wait_event(lost, 5.0) and not connection.is_closed():
                    await connection.fetchval("SELECT 1", timeout=5)
                log.warning("listening on %s at %s: connection lost; reconnecting", channel, self.where)
            except (*_GONE, TimeoutError) as exc:
                log.warning("listening on %s at %s failed (%s); reconnecting", channel, self.where, exc)
            finally:
                if not connection.is_closed():
                    connection.terminate()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, *_GONE):
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    def _pg(self, sql: str) -> str:
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = numbered(sql)
        return translated

    async def _patiently(self, work: Callable[[], Awaitable[Any]], what: str) -> Any:
        """``work()``, tried again while the server is away, for up to ``patience_s``."""
        deadline = time.monotonic() + self.patience_s
        delay = 0.1
        while True:
            try:
                result = await work()
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(str(exc)) from exc
            except _GONE as exc:
                self._outage(exc)
                if time.monotonic() + delay > deadline:
                    raise StorageUnavailable(f"PostgreSQL at {self.where} is unreachable ({what}): {exc}") from None
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
                delay = min(delay * 2, 2.0)
            else:
                if self._down_since is not None:
                    log.warning(
                        "PostgreSQL at %s is back after %.1f s", self.where, time.monotonic() - self._down_since
                    )
                    self._down_since = None
                return result

    def _outage(self, exc: BaseException) -> None:
        """Said once when the server goes away (every caller waits for it meanwhile), not per try."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("PostgreSQL at %s is unreachable (%s); waiting for it", self.where, exc)

    async def run(self, statements: Sequence[Statement]) -> list[int]:
        async def attempt() -> list[int]:
            counts = []
            async with self.pool.acquire() as connection, connection.transaction():
                for sql, rows in statements:
                    if len(rows) == 1:
                        counts.append(_count(await connection.execute(self._pg(sql), *rows[0])))
                    else:
                        await connection.executemany(self._pg(sql), rows)
                        counts.append(-1)
            return counts

        return await self._patiently(attempt, "write")

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return await self._patiently(lambda: self.pool.fetch(self._pg(sql), *params), "read")

    async def fetch_then(
        self,
        sql: str,
        params: tuple[Any, ...],
        then: Callable[[list[Any]], Sequence[tuple[str, tuple[Any, ...]]]],
    ) -> tuple[list[Any], list[Any]]:
        async def attempt() -> tuple[list[Any], list[Any]]:
            async with self.pool.acquire() as connection:
                rows = await connection.fetch(self._pg(sql), *params)
                more = [row for query, args in then(rows) for row in await connection.fetch(self._pg(query), *args)]
            return rows, more

        return await self._patiently(attempt, "read")

    async def transact(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        async def attempt() -> Any:
            async with self.pool.acquire() as connection, connection.transaction():
                return await work(_PostgresTransaction(connection, self._pg))

        return await self._patiently(attempt, "transaction")

    async def schema_version(self) -> int:
        rows = await self.fetch("SELECT to_regclass('mjbot_schema') IS NOT NULL")
        if not rows[0][0]:
            return 0
        rows = await self.fetch("SELECT version FROM mjbot_schema")
        return int(rows[0][0]) if rows else 0

    async def migrate(self, migrations: Sequence[str]) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            # Two processes starting at once: the second waits here, then finds nothing to do.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute("CREATE TABLE IF NOT EXISTS mjbot_schema (version BIGINT NOT NULL)")
            version = await connection.fetchval("SELECT version FROM mjbot_schema")
            if version is None:
                await connection.execute("INSERT INTO mjbot_schema (version) VALUES (0)")
                version = 0
            if version > len(migrations):
                raise newer_schema(self.where, version, len(migrations))
            for target, script in enumerate(migrations[version:], start=version + 1):
                log.info("migrating database %s to version %d", self.where, target)
                await connection.execute(postgres_ddl(script))
                await connection.execute("UPDATE mjbot_schema SET version = $1", target)

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        return [row[0] for row in rows]


class _PostgresTransaction:
    def __init__(self, connection: asyncpg.Connection, translate: Callable[[str], str]) -> None:
        self._connection = connection
        self._pg = translate

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return _count(await self._connection.execute(self._pg(sql), *params))

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return await self._connection.fetch(self._pg(sql), *params)

    async def lock(self, key: int) -> None:
        await self._connection.execute("SELECT pg_advisory_xact_lock($1)", key)


def _count(status: str) -> int:
    """The row count in a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
