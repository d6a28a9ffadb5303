"""``mjbot check-config``: the configuration, then each thing it points at, checked for real.

One line per check, ``ok`` or ``FAIL`` and why. Secrets are never printed: a wrong one is named by
its key (``proxy.secret``), and every line goes through the log's secret mask as well.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from aiohttp import web

from bot.core.config import DiscordSettings, NotifySettings, ProxySettings, Settings, StorageSettings
from bot.core.errors import ConfigError, ProxyAuthFailed, ProxyEndpointMissing, ProxyError
from bot.proxy.client import ProxyClient
from bot.storage import StorageError, Store

HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<9} {self.detail}"


async def run_checks(settings: Settings) -> AsyncIterator[Check]:
    """Each check as it finishes (a slow one does not hold back the lines before it)."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False) as http:
        discord = await check_discord(settings.discord, http)
        yield discord
        if settings.alerts.channel_id:
            yield await check_alert_channel(settings.discord, settings.alerts.channel_id, http, discord.ok)
        yield await check_proxy(settings.proxy)
        yield await check_database(settings.storage)
        if settings.notify.listen or settings.notify.public_url:
            yield await check_notify(settings.notify, http)


def _bot_auth(settings: DiscordSettings) -> dict[str, str]:
    return {"Authorization": f"Bot {settings.token.get_secret_value()}"}


async def check_discord(settings: DiscordSettings, http: httpx.AsyncClient) -> Check:
    """The token logs in: REST ``users/@me``, as discord.py's login does."""
    if not settings.token.get_secret_value():
        return Check("discord", False, "discord.token is empty: set it in the config file or MJBOT_DISCORD__TOKEN")
    try:
        response = await http.get(f"{settings.api_base}/users/@me", headers=_bot_auth(settings))
    except httpx.HTTPError as exc:
        return Check("discord", False, f"cannot reach {settings.api_base}: {type(exc).__name__}")
    if response.status_code == 401:
        return Check("discord", False, "Discord rejected the token (discord.token): reset it in the Developer Portal")
    if response.status_code != 200:
        return Check("discord", False, f"{settings.api_base}/users/@me answered HTTP {response.status_code}")
    try:
        user = response.json()
        return Check("discord", True, f"logged in as {user['username']} ({user['id']})")
    except (ValueError, KeyError, TypeError):
        return Check("discord", False, f"{settings.api_base}/users/@me did not answer with a user")


async def check_alert_channel(
    settings: DiscordSettings, channel_id: int, http: httpx.AsyncClient, token_ok: bool
) -> Check:
    """The bot can see the alerts channel."""
    if not token_ok:
        return Check("alerts", False, f"channel {channel_id} not checked: the token does not log in")
    try:
        response = await http.get(f"{settings.api_base}/channels/{channel_id}", headers=_bot_auth(settings))
    except httpx.HTTPError as exc:
        return Check("alerts", False, f"cannot reach {settings.api_base}: {type(exc).__name__}")
    if response.status_code != 200:
        return Check(
            "alerts",
            False,
            f"the bot cannot see channel {channel_id} (HTTP {response.status_code}): "
            "check alerts.channel_id and the bot's permissions there",
        )
    try:
        name = response.json().get("name") or channel_id
    except (ValueError, AttributeError):
        name = channel_id
    return Check("alerts", True, f"alerts go to #{name} ({channel_id})")


async def check_proxy(settings: ProxySettings) -> Check:
    """The proxy answers an authenticated request with the configured secret."""
    url = settings.api_base_url
    client = ProxyClient(settings)
    try:
        try:
            latency = await client.ping()
            return Check("proxy", True, f"{url} answers ({latency * 1000:.0f} ms, auth {settings.auth})")
        except ProxyEndpointMissing:
            # Older servers lack list-by-condition; the bot then fetches tasks one by one.
            try:
                await client.recent_tasks()
            except ProxyEndpointMissing:
                return Check(
                    "proxy",
                    False,
                    f"no Midjourney Proxy API at {url} (HTTP 404): "
                    "proxy.base_url must be the API's base, ending in /mj",
                )
            return Check("proxy", True, f"{url} answers (without list-by-condition: tasks are fetched one by one)")
    except ProxyAuthFailed as exc:
        if not settings.secret.get_secret_value():
            return Check("proxy", False, f"the proxy wants a secret and proxy.secret is empty ({exc})")
        return Check("proxy", False, f"the proxy rejected the secret (proxy.secret, sent as {settings.auth}): {exc}")
    except ProxyError as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        return Check("proxy", False, f"{url}: {exc}{detail}")
    finally:
        await client.aclose()


async def check_database(settings: StorageSettings) -> Check:
    """The database opens and migrates to this bot's schema (SQLite file or PostgreSQL server)."""
    where = settings.where
    postgres = bool(settings.url.get_secret_value())
    existed = postgres or settings.path == ":memory:" or Path(settings.path).exists()
    try:
        store = Store(settings.database_url)
        await store.open()
    except ConfigError as exc:
        return Check("database", False, str(exc))
    except (sqlite3.Error, OSError, StorageError) as exc:
        return Check("database", False, f"cannot open {where}: {exc}")
    try:
        version = await store.schema_version()
        total, unfinished = await store.count_jobs()
    except (sqlite3.Error, OSError, StorageError) as exc:
        return Check("database", False, f"cannot read {where}: {exc}")
    finally:
        await store.close()
    created = "" if existed else ", created"
    engine = "PostgreSQL " if postgres else ""
    return Check(
        "database", True, f"{engine}{where} (schema version {version}{created}, {total} jobs, {unfinished} unfinished)"
    )


async def check_notify(settings: NotifySettings, http: httpx.AsyncClient) -> Check:
    """The push URL reaches the receiver: a receiver is started at ``notify.listen`` for a moment with
    a random probe token, and the probe is POSTed to ``public_url`` (through the reverse proxy, if
    any). If the port is taken, the running bot holds it: then any answer from its receiver will do
    (it says 404 to a token it does not know)."""
    if not settings.enabled:
        return Check("notify", False, "set both notify.listen and notify.public_url, or neither")
    try:
        host, port = settings.listen_address()
    except ConfigError as exc:
        return Check("notify", False, str(exc))
    probe = secrets.token_urlsafe(16)
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        if request.match_info["token"] == probe:
            arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(f"{urlsplit(settings.public_url).path.rstrip('/')}/{{token}}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
            listening = True
        except OSError:
            listening = False
        try:
            response = await http.post(f"{settings.public_url}/{probe}", json={"id": "mjbot-check-config"})
        except httpx.HTTPError as exc:
            return Check("notify", False, f"cannot reach notify.public_url {settings.public_url}: {type(exc).__name__}")
    finally:
        await runner.cleanup()
    if not listening:
        if response.status_code == 404:
            return Check(
                "notify",
                True,
                f"{settings.public_url} answers; {settings.listen} is in use (by the running bot, presumably)",
            )
        return Check(
            "notify",
            False,
            f"{settings.listen} is in use by something else and "
            f"{settings.public_url} answered HTTP {response.status_code}",
        )
    if arrived.is_set():
        return Check("notify", True, f"{settings.public_url} reaches the receiver at {settings.listen}")
    return Check(
        "notify",
        False,
        f"{settings.public_url} answered HTTP {response.status_code}, but the request did "
        f"not reach notify.listen {settings.listen}: check the reverse proxy",
    )
