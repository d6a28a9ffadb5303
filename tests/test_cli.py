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
