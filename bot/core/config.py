"""Settings: one class per config-file section, loaded from a TOML file and the environment.

Environment variables win over the file: ``MJBOT_<SECTION>__<KEY>``, e.g. ``MJBOT_DISCORD__TOKEN``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.core.admin_settings import DEFAULT_LISTEN, AdminPageSettings
from bot.core.credits import CreditsSettings
from bot.core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_PATH_ENV = "MJBOT_CONFIG"


class _Section(BaseModel):
    # Unknown keys are a typo the admin wants to hear about, not silently ignore.
    model_config = ConfigDict(extra="forbid")


# A base URL without its trailing slash, so paths can be appended to it.
BaseUrl = Annotated[str, AfterValidator(lambda value: value.rstrip("/"))]


def host_port(value: str, key: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8081`` for IPv6) as a pair; a clear error naming ``key`` otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{key} must be host:port, not {value!r}")
    return host.strip("[]"), int(port)


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base: BaseUrl = "https://discord.com/api/v10"
    gateway_url: str = ""
    guild_ids: list[int] = Field(default_factory=list)
    # False: commands are registered only by `mjbot sync-commands` (saves a sync at every start).
    sync_commands: bool = True


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
    # Hosts the bot downloads task images from ("cdn.discordapp.com", "*.midjourney.com"). Empty:
    # any public host. Private and loopback addresses are refused unless listed here, or the
    # proxy's own host.
    media_hosts: list[str] = Field(default_factory=list)
    # Hosts whose links do not expire: a result too large for a server's uploads is linked only when
    # it lives on one of these (Discord's CDN links expire within a day, a proxy's may any time).
    lasting_media_hosts: list[str] = Field(default_factory=lambda: ["cdn.midjourney.com"])
    # The speed modes the server takes per job ("fast", "relax", "turbo": trueai's /mj-<mode>/mj
    # paths), which /settings then offers members. Empty: none (novicezk has no such paths, and
    # new-api strips them, so a mode there would change nothing).
    speeds: list[Literal["fast", "relax", "turbo"]] = Field(default_factory=list)

    @property
    def api_base_url(self) -> str:
        """The base URL requests go to, with the speed mode's prefix when one is set."""
        if self.mode and self.base_url.endswith("/mj"):
            return f"{self.base_url[:-3]}/mj-{self.mode}/mj"
        return self.base_url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """(``scheme://``, the user info, the rest from its ``@``) of a database URL; the user info runs
    to the last ``@`` before the path, so a password with an unencoded ``/``, ``#``, ``?`` or ``@``
    is still found whole."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    at = rest.rfind("@")
    if at < 0:
        return None
    return scheme + sep, rest[:at], rest[at:]


def redacted_url(url: str) -> str:
    """A database URL without its password (in the user info or a ``password=`` parameter), for
    logs and messages."""
    if not is_postgres_url(url):
        return url
    parts = _userinfo(url)
    if parts is not None and ":" in parts[1]:
        url = f"{parts[0]}{parts[1].split(':', 1)[0]}:***{parts[2]}"
    return _QUERY_PASSWORD.sub(r"\1***", url)


def url_password(url: str) -> str | None:
    if not is_postgres_url(url):
        return None
    parts = _userinfo(url)
    if parts is not None and ":" in parts[1]:
        return parts[1].split(":", 1)[1]
    match = re.search(r"[?&]password=([^&]*)", url, re.IGNORECASE)
    return match.group(1) if match else None


class StorageSettings(_Section):
    path: str = "mjbot.sqlite3"
    # postgresql://user:password@host:port/db for several bot processes over one database; empty:
    # the SQLite file at ``path``. A secret: it usually carries the password.
    url: SecretStr = SecretStr("")
    # Finished jobs older than this many days are deleted (their messages stay); 0 = keep forever.
    keep_days: float = Field(default=30, ge=0)

    @property
    def database_url(self) -> str:
        """Where the store connects: ``url`` when set, else the SQLite file at ``path``."""
        return self.url.get_secret_value() or self.path

    @property
    def where(self) -> str:
        """The database, named for logs and messages: no password in it."""
        return redacted_url(self.database_url)


class ClusterSettings(_Section):
    # Discord shards in all; 0: no sharding (one process serves every guild).
    shard_count: int = Field(default=0, ge=0)
    # The shards this process serves. Empty: the processes lease the shards through the database,
    # share them, and take over a dead process's shards (the way to run several processes).
    shard_ids: list[int] = Field(default_factory=list)
    # A process that has not renewed its leases for this long is taken for dead.
    lease_ttl_s: float = Field(default=20, gt=0)
    lease_renew_s: float = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _shards_in_range(self) -> ClusterSettings:
        outside = [shard for shard in self.shard_ids if not 0 <= shard < max(self.shard_count, 1)]
        if self.shard_ids and not self.shard_count:
            raise ValueError("shard_ids needs shard_count")
        if outside:
            raise ValueError(f"shard_ids {outside} are outside 0..{self.shard_count - 1}")
        if self.lease_renew_s * 2 > self.lease_ttl_s:
            raise ValueError("lease_renew_s must be at most half of lease_ttl_s")
        return self

    @property
    def sharded(self) -> bool:
        return self.shard_count > 0


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


class MediaSettings(_Section):
    # Re-encoding a result over a server's upload limit runs in worker processes, off the bot's
    # event loop: how many at once, each one's memory cap, and how long one may take.
    reencode_processes: int = Field(default=2, ge=1, le=16)
    reencode_memory_mb: int = Field(default=1024, ge=256)
    reencode_timeout_s: float = Field(default=60, gt=0)


_VERSION_NAME = re.compile(r"(?:niji )?[1-9](?:\.[0-9]{1,2})?")


class BotSettings(_Section):
    # "" = each member's own Discord language (zh-CN -> Chinese, anything else -> English);
    # "en" or "zh-CN" = always that one.
    language: Literal["", "en", "zh-CN"] = ""
    # The versions /settings offers members (the ones your Midjourney account takes): "7", "6.1",
    # "niji 6"... A member's choice is added to their prompts as --v 7 / --niji 6.
    versions: list[str] = Field(default_factory=lambda: ["7", "6.1", "niji 6"])

    @field_validator("versions")
    @classmethod
    def _versions(cls, versions: list[str]) -> list[str]:
        # A Discord menu takes 25 options ("default" is one); each becomes --v 7 or --niji 6.
        if len(versions) > 24 or len(set(versions)) != len(versions):
            raise ValueError("at most 24 versions, each once")
        for version in versions:
            if not _VERSION_NAME.fullmatch(version):
                raise ValueError(f"{version!r} is not a version like 7, 6.1 or niji 6")
        return versions


class NotifySettings(_Section):
    # Both empty = push off (the bot polls only). listen: where the receiver binds;
    # public_url: how the proxy reaches it (the bot appends a secret token to it).
    listen: str = ""
    public_url: BaseUrl = ""

    @property
    def enabled(self) -> bool:
        return bool(self.listen and self.public_url)

    def listen_address(self) -> tuple[str, int]:
        return host_port(self.listen, "notify.listen")


class LoggingSettings(_Section):
    # "text": one readable line per event; "json": one JSON object per line, for log collectors.
    format: Literal["text", "json"] = "text"
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),
    ] = "INFO"


class HttpSettings(_Section):
    # Where /healthz and /metrics (and /admin) listen (host:port). Empty = on the push receiver when
    # it runs, else nowhere; 127.0.0.1:8081 when the admin page is on.
    listen: str = ""

    def listen_address(self) -> tuple[str, int]:
        return host_port(self.listen, "http.listen")


class AlertsSettings(_Section):
    # The channel where the bot tells admins about outages; 0 = no alerts.
    channel_id: int = Field(default=0, ge=0)
    # Seconds the proxy must fail before an alert is posted.
    proxy_down_s: float = Field(default=300, gt=0)
    # This many tasks in a row failing for the same reason make an alert.
    failure_run: int = Field(default=5, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MJBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    credits: CreditsSettings = Field(default_factory=CreditsSettings)
    admin_page: AdminPageSettings = Field(default_factory=AdminPageSettings)

    @model_validator(mode="after")
    def _admin_page_has_a_server(self) -> Settings:
        # The page lives on the ops server, never on the push receiver (which faces the proxy).
        if self.admin_page.enabled and not self.http.listen:
            self.http.listen = DEFAULT_LISTEN
        return self

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
            raise ConfigError(f"Config file {str(path)!r} not found. Copy config.example.toml to it and fill it in.")
        path = None

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    source = str(path) if path else "the environment"
    try:
        return _FromFile()
    except ValidationError as exc:
        lines = _key_lines(path.read_text(encoding="utf-8")) if path else {}
        problems = [_problem(err, lines) for err in exc.errors()]
        raise ConfigError(f"Invalid configuration in {source}: {'; '.join(problems)}", problems=problems) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def _problem(err: dict, lines: dict[tuple[str, ...], int]) -> str:
    """One bad key, named with where it came from (the file's line, or the environment variable that
    overrides it), without echoing its value: the value may be a secret."""
    loc = tuple(str(part) for part in err["loc"])
    name = ".".join(loc)
    message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    env_name = "MJBOT_" + "__".join(part.upper() for part in loc[:2])
    if any(key.upper() == env_name for key in os.environ):
        return f"{name} (from {env_name}): {message}"
    for length in range(len(loc), 0, -1):
        if loc[:length] in lines:
            return f"{name} (line {lines[loc[:length]]}): {message}"
    return f"{name}: {message}"


_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(r'^\s*([A-Za-z0-9_."\'-]+?)\s*=')


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a TOML file starts: ``("proxy", "auth") -> 12``. tomllib keeps no
    positions; the bot's config is flat tables of keys, which a line scan reads reliably."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE.match(line):
            table = _dotted(header.group(1))
            found.setdefault(table, number)
        elif assignment := _ASSIGNMENT.match(line):
            found.setdefault(table + _dotted(assignment.group(1)), number)
    return found


def _dotted(name: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in name.split("."))
