"""The command line refuses bad configuration with a clear message and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def test_missing_config_file(tmp_path):
    result = run_cli("run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "not found" in result.stderr and "config.example.toml" in result.stderr


def test_config_from_env_var_path_and_empty_token(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[proxy]\nsecret = "top-secret-value"\n', encoding="utf-8")
    result = run_cli("run", env={"MJBOT_CONFIG": str(path)})
    assert result.returncode == 2
    assert "discord.token is empty" in result.stderr
    assert "top-secret-value" not in result.stderr + result.stdout


def test_invalid_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[tracking]\npoll_interval_s = "often"\n', encoding="utf-8")
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2 and "tracking.poll_interval_s" in result.stderr


def test_an_unreachable_database_url_is_named_without_its_password(tmp_path):
    from tests.pg_server import free_port

    url = f"postgresql://mjbot:very-secret-pw@127.0.0.1:{free_port()}/mj"
    env = {"MJBOT_DISCORD__TOKEN": "x.y.z-abcdefghijkl", "MJBOT_STORAGE__URL": url}
    config = tmp_path / "c.toml"
    config.write_text("", encoding="utf-8")
    run = run_cli("run", "--config", str(config), env=env)
    assert run.returncode == 1
    assert "cannot start: PostgreSQL at postgresql://mjbot:***@127.0.0.1" in run.stderr
    assert "unreachable" in run.stderr and "very-secret-pw" not in run.stdout + run.stderr
    check = run_cli("check-config", "--config", str(config), env=env)
    line = next(line for line in check.stdout.splitlines() if line.split()[1:2] == ["database"])
    assert line.startswith("FAIL") and "unreachable" in line and "mjbot:***@" in line
    assert "very-secret-pw" not in check.stdout + check.stderr


def test_shard_options_are_checked_before_anything_starts(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[discord]\ntoken = "x.y.z-abcdefghijkl"\n', encoding="utf-8")
    outside = run_cli("run", "--config", str(config), "--shard-count", "4", "--shard-ids", "3,4")
    assert outside.returncode == 2 and "shard_ids [4] are outside 0..3" in outside.stderr
    words = run_cli("run", "--config", str(config), "--shard-count", "4", "--shard-ids", "one")
    assert words.returncode == 2 and "--shard-ids takes shard numbers like 0,1" in words.stderr


def test_migrate_storage_and_backup_on_the_command_line(tmp_path, pg_dsn):
    import asyncio

    from bot.storage import Store
    from tests.test_store import make_job

    async def seed() -> None:
        store = Store(tmp_path / "live.sqlite3")
        await store.open()
        for n in range(3):
            await store.insert_job(make_job(str(100 + n)))
        await store.close()

    asyncio.run(seed())
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "live.sqlite3"}"\n', encoding="utf-8")
    moved = run_cli("migrate-storage", "--config", str(config), "--to", pg_dsn)
    assert moved.returncode == 0, moved.stderr
    assert "3 jobs" in moved.stdout and "mjbot:***@" in moved.stdout and "s3cret-pw" not in moved.stdout
    again = run_cli("migrate-storage", "--config", str(config), "--to", pg_dsn)
    assert again.returncode == 1 and "already holds 3 jobs" in again.stderr and "s3cret-pw" not in again.stderr
    backup = run_cli("backup", str(tmp_path / "b.sqlite3"), "--config", str(config), env={"MJBOT_STORAGE__URL": pg_dsn})
    assert backup.returncode == 0, backup.stderr
    assert "3 jobs" in backup.stdout and "s3cret-pw" not in backup.stdout
