"""Settings: one class per config-file section, loaded from a TOML file and the environment.

Environment variables win over the file: ``MJBOT_<SECTION>__<KEY>``, e.g. ``MJBOT_DISCORD__TOKEN``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_PATH_ENV = "MJBOT_CONFIG"


class _Section(BaseModel):
    # Unknown keys are a typo the admin wants to hear about, not silently ignore.
    model_config = ConfigDict(extra="forbid")


# A base URL without its trailing slash, so paths can be appended to it.
BaseUrl = Annotated[str, AfterValidator(lambda value: value.rstrip("/"))]


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base: BaseUrl = "https://discord.com/api/v10"
    gateway_url: str = ""
    guild_ids: list[int] = Field(default_factory=list)


class ProxySettings(_Section):
    base_url: BaseUrl = "http://127.0.0.1:8080/mj"
    secret: SecretStr = SecretStr("")
    auth: Literal["mj-api-secret", "bearer", "authorization"] = "mj-api-secret"
    timeout_s: float = Field(default=30, gt=0)
    # How buttons are submitted: "auto" learns it from the server (task buttons, a 404 on
    # /submit/change); "change" = /submit/change (novicezk); "action" = /submit/action (trueai).
    api: Literal["auto", "change", "action"] = "auto"
    # trueai's speed modes: "" = the account's default, or "fast" / "relax" / "turbo"
    # (requests go to /mj-<mode>/mj/...).
    mode: Literal["", "fast", "relax", "turbo"] = ""

    @property
    def api_base_url(self) -> str:
        """The base URL requests go to, with the speed mode's prefix when one is set."""
        if self.mode and self.base_url.endswith("/mj"):
            return f"{self.base_url[:-3]}/mj-{self.mode}/mj"
        return self.base_url


class StorageSettings(_Section):
    path: str = "mjbot.sqlite3"


class TrackingSettings(_Section):
    poll_interval_s: float = Field(default=3.0, gt=0)
    deadline_s: float = Field(default=900, gt=0)


class AccessSettings(_Section):
    admin_user_ids: list[int] = Field(default_factory=list)
    allowed_guild_ids: list[int] = Field(default_factory=list)
    allowed_channel_ids: list[int] = Field(default_factory=list)
    allowed_role_ids: list[int] = Field(default_factory=list)
    buttons: Literal["owner", "anyone"] = "owner"
    banned_words: list[str] = Field(default_factory=list)


class LimitsSettings(_Section):
    max_running_per_user: int = Field(default=3, ge=0)  # 0 = unlimited
    max_jobs_per_user_per_day: int = Field(default=0, ge=0)  # 0 = unlimited
    max_attachment_mb: float = Field(default=10, gt=0)


class BotSettings(_Section):
    # "" = each member's own Discord language (zh-CN -> Chinese, anything else -> English);
    # "en" or "zh-CN" = always that one.
    language: Literal["", "en", "zh-CN"] = ""


class NotifySettings(_Section):
    # Both empty = push off (the bot polls only). listen: where the receiver binds;
    # public_url: how the proxy reaches it (the bot appends a secret token to it).
    listen: str = ""
    public_url: BaseUrl = ""

    @property
    def enabled(self) -> bool:
        return bool(self.listen and self.public_url)

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"notify.listen must be host:port, not {self.listen!r}")
        return host.strip("[]"), int(port)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MJBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    bot: BotSettings = Field(default_factory=BotSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Order is priority: explicit arguments, then env, then the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def resolve_config_path(cli_path: str | None) -> tuple[Path, bool]:
    """The config file to read, and whether the admin named it (then it must exist)."""
    if cli_path:
        return Path(cli_path), True
    if os.environ.get(CONFIG_PATH_ENV):
        return Path(os.environ[CONFIG_PATH_ENV]), True
    return DEFAULT_CONFIG_PATH, False


def load_settings(path: Path | None = None, *, required: bool = True) -> Settings:
    """Load settings from ``path`` (TOML) and the environment.

    A missing file is an error when the admin named it; the default ``config.toml`` may be absent
    when everything comes from the environment.
    """
    if path is not None and not path.is_file():
        if required:
            raise ConfigError(
                f"Config file {str(path)!r} not found. Copy config.example.toml to it and fill it in."
            )
        path = None

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    source = str(path) if path else "the environment"
    try:
        return _FromFile()
    except ValidationError as exc:
        # Name each bad key without echoing its value: the value may be a secret.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid configuration in {source}: {problems}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
