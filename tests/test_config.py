"""Settings: TOML file, env overrides with MJBOT_ and __ nesting, clear errors, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import load_settings, resolve_config_path
from bot.core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_documented_defaults():
    settings = load_settings(EXAMPLE)
    assert settings.discord.api_base == "https://discord.com/api/v10"
    assert settings.discord.gateway_url == ""
    assert settings.discord.guild_ids == []
    assert settings.proxy.base_url == "http://127.0.0.1:8080/mj"
    assert settings.proxy.auth == "mj-api-secret"
    assert settings.proxy.timeout_s == 30
    assert settings.storage.path == "mjbot.sqlite3"
    assert settings.tracking.poll_interval_s == 3.0
    assert settings.tracking.deadline_s == 900
    assert settings.discord.sync_commands is True
    assert settings.storage.keep_days == 30
    assert settings.logging.format == "text" and settings.logging.level == "INFO"
    assert settings.http.listen == ""
    assert settings.alerts.channel_id == 0
    assert settings.alerts.proxy_down_s == 300
    assert settings.alerts.failure_run == 5
    # Every key the settings know is documented in the example.
    documented = EXAMPLE.read_text(encoding="utf-8")
    for section, model in settings:
        for key in type(model).model_fields:
            assert f"\n{key} = " in documented, f"{section}.{key} is not in config.example.toml"


def test_file_values_and_env_overrides(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        """
[discord]
token = "file-token"
guild_ids = [111, 222]
[proxy]
base_url = "http://proxy.local:9000/mj/"
secret = "file-secret"
auth = "bearer"
[tracking]
poll_interval_s = 1.5
""",
    )
    monkeypatch.setenv("MJBOT_PROXY__SECRET", "env-secret")
    monkeypatch.setenv("MJBOT_TRACKING__DEADLINE_S", "60")
    settings = load_settings(path)
    assert settings.discord.token.get_secret_value() == "file-token"
    assert settings.discord.guild_ids == [111, 222]
    assert settings.proxy.base_url == "http://proxy.local:9000/mj"  # trailing slash dropped
    assert settings.proxy.secret.get_secret_value() == "env-secret"  # env wins
    assert settings.proxy.auth == "bearer"
    assert settings.tracking.poll_interval_s == 1.5
    assert settings.tracking.deadline_s == 60


def test_secrets_do_not_show_in_repr(tmp_path):
    path = write(tmp_path, '[discord]\ntoken = "tok-123456"\n[proxy]\nsecret = "sec-abcdef"\n')
    settings = load_settings(path)
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "tok-123456" not in shown and "sec-abcdef" not in shown


def test_unknown_key_and_wrong_type_are_named_without_values(tmp_path):
    with pytest.raises(ConfigError) as unknown:
        load_settings(write(tmp_path, '[proxy]\nbase_ur = "x"\n'))
    assert "proxy.base_ur" in str(unknown.value)
    with pytest.raises(ConfigError) as wrong:
        load_settings(write(tmp_path, '[proxy]\nauth = "basic-sec-xyz"\n'))
    assert "proxy.auth" in str(wrong.value) and "basic-sec-xyz" not in str(wrong.value)


def test_missing_named_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[proxy\n"))
    # The default path may be absent when everything comes from the environment.
    assert load_settings(tmp_path / "absent.toml", required=False).proxy.auth == "mj-api-secret"


def test_config_path_resolution(monkeypatch):
    monkeypatch.delenv("MJBOT_CONFIG", raising=False)
    assert resolve_config_path(None) == (Path("config.toml"), False)
    assert resolve_config_path("x.toml") == (Path("x.toml"), True)
    monkeypatch.setenv("MJBOT_CONFIG", "/etc/mjbot.toml")
    assert resolve_config_path(None) == (Path("/etc/mjbot.toml"), True)


def test_bad_keys_are_named_with_their_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MJBOT_LOGGING__FORMAT", raising=False)
    path = write(
        tmp_path,
        """# mjbot
[proxy]
base_ur = "http://x"

[logging]
format = "yaml"
level = "debug"
[alerts]
failure_run = "many"
""",
    )
    with pytest.raises(ConfigError) as bad:
        load_settings(path)
    problems = bad.value.params["problems"]
    assert "proxy.base_ur (line 3): unknown key" in problems
    assert any(p.startswith("logging.format (line 6): ") for p in problems)
    assert any(p.startswith("alerts.failure_run (line 9): ") for p in problems)
    assert len(problems) == 3  # "debug" is read as DEBUG
    monkeypatch.setenv("MJBOT_LOGGING__FORMAT", "xml")
    with pytest.raises(ConfigError) as from_env:
        load_settings(write(tmp_path, "[logging]\nlevel = 'INFO'\n"))
    assert "logging.format (from MJBOT_LOGGING__FORMAT)" in str(from_env.value)


def test_listen_addresses_must_be_host_and_port(tmp_path):
    settings = load_settings(write(tmp_path, '[http]\nlisten = "0.0.0.0:8081"\n[notify]\nlisten = "8081"\n'))
    assert settings.http.listen_address() == ("0.0.0.0", 8081)
    with pytest.raises(ConfigError, match="notify.listen must be host:port"):
        settings.notify.listen_address()
