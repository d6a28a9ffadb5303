"""The PostgreSQL test server itself: passwords, stop and start on the same port, a database per test."""

from __future__ import annotations

import asyncpg
import pytest

from tests.pg_server import PASSWORD, USER, PgServer


async def test_connects_with_the_password(pg_dsn: str) -> None:
    assert f"{USER}:{PASSWORD}@127.0.0.1:" in pg_dsn
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == USER
        assert await conn.fetchval("SHOW fsync") == "off"
        assert int(await conn.fetchval("SHOW max_connections")) >= 200
        # A fresh database: nothing in it but the catalogues.
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


async def test_a_wrong_password_is_refused(pg_server: PgServer, pg_dsn: str) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg_server.dsn(pg_dsn.rsplit("/", 1)[1], password="wrong-pw"))


async def test_stopped_server_refuses_then_restarts_on_the_same_port_with_the_data(
    pg_server: PgServer, pg_dsn: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    port = pg_server.port

    pg_server.stop()
    assert not pg_server.running
    # The open connection was cut by the fast shutdown, and new ones are refused.
    with pytest.raises((asyncpg.PostgresConnectionError, ConnectionError, OSError)):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    with pytest.raises(OSError):  # ConnectionRefusedError: nobody listens on the port
        await asyncpg.connect(pg_dsn, timeout=5)

    pg_server.start()
    assert pg_server.running and pg_server.port == port
    conn = await asyncpg.connect(pg_dsn)  # the same DSN: same port, same database
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
    finally:
        await conn.close()


async def test_each_test_database_is_separate(pg_server: PgServer, pg_dsn: str) -> None:
    other = pg_server.create_database()
    try:
        assert pg_server.dsn(other) != pg_dsn
        a, b = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_server.dsn(other))
        try:
            await a.execute("CREATE TABLE only_in_a (v int)")
            assert await b.fetchval("SELECT to_regclass('only_in_a')") is None
            assert await a.fetchval("SELECT to_regclass('only_in_a')::text") == "only_in_a"
        finally:
            await a.close()
            await b.close()
    finally:
        pg_server.drop_database(other)
    assert pg_server.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{other}'").strip() == "0"


async def test_leftovers_of_an_earlier_test_are_gone(pg_dsn: str) -> None:
    # Runs after the tests above made tables: this test's database is a new, empty one.
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('kept')") is None
        assert await conn.fetchval("SELECT to_regclass('only_in_a')") is None
    finally:
        await conn.close()


def test_restart_keeps_port_and_a_second_server_gets_its_own(pg_server: PgServer) -> None:
    port, data_dir = pg_server.port, pg_server.data_dir
    pg_server.restart()
    assert (pg_server.port, pg_server.data_dir, pg_server.running) == (port, data_dir, True)
    with PgServer() as second:
        assert second.port != port and second.data_dir != data_dir
        assert second.psql("SELECT 1").strip() == "1"
        base = second.base_dir
    assert not second.running and base is not None and not base.exists()
