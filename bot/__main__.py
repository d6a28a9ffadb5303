"""Command line: ``mjbot <command>`` (also ``python -m bot <command>``).

- ``run``: run the bot.
- ``check-config``: validate the configuration and check what it points at, one line per check.
- ``sync-commands [--guild ID]``: register the slash commands (for ``[discord] sync_commands = false``).
- ``backup PATH``: a consistent copy of the live database.
- ``healthcheck``: ask the running bot's ``/healthz`` (the Docker image's healthcheck).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from bot.core.config import Settings, host_port, load_settings, resolve_config_path
from bot.core.errors import ConfigError
from bot.ops import logs, storage_cli
from bot.sandbox.demo import cli as demo_cli
from bot.storage import StorageError

if TYPE_CHECKING:
    from discord.ext import commands

log = logging.getLogger("bot")


# While Discord cannot be reached at start-up (no network yet, DNS, a refused or timed out connection,
# TLS, Discord answering 5xx) the login is retried: RETRY_FIRST_S, doubling up to RETRY_MAX_S, each
# wait shortened by up to a quarter at random so a fleet restarted together does not retry in step.
# RETRY_MAX_S can be lowered with MJBOT_DISCORD_RETRY_MAX_S (the tests do).
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
RETRY_MAX_ENV = "MJBOT_DISCORD_RETRY_MAX_S"

TOKEN_REFUSED = (
    "Discord refused the bot token: check [discord] token (or MJBOT_DISCORD__TOKEN); "
    "if it was reset, copy the new one from the Developer Portal (Bot → Reset Token)"
)
# discord.Intents flag → its switch in the Developer Portal (Bot → Privileged Gateway Intents).
PRIVILEGED_INTENTS = {
    "members": "Server Members Intent",
    "presences": "Presence Intent",
    "message_content": "Message Content Intent",
}


class StartupFailed(Exception):
    """What retrying cannot fix; the message is the one line to log."""


def retry_max_s() -> float:
    raw = os.environ.get(RETRY_MAX_ENV, "").strip()
    try:
        value = float(raw) if raw else RETRY_MAX_S
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        log.warning("%s=%r is not a positive number of seconds; using %g", RETRY_MAX_ENV, raw, RETRY_MAX_S)
        return RETRY_MAX_S
    return value


def retry_delay(failures: int, cap: float) -> float:
    """The wait after the ``failures``-th failed attempt in a row (1, 2, ...)."""
    nominal = min(cap, RETRY_FIRST_S * 2 ** min(failures - 1, 32))
    return nominal * random.uniform(0.75, 1.0)


def why_unreachable(exc: BaseException) -> str | None:
    """Why Discord could not be reached, briefly, when waiting may fix it; None otherwise."""
    import ssl

    import aiohttp
    import discord

    if isinstance(exc, discord.DiscordServerError):
        return f"Discord answered {exc.status}"
    if isinstance(exc, discord.HTTPException):
        return None  # a 4xx: Discord was reached and said no
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause, where = exc.os_error, f"{exc.host}:{exc.port}"
        if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {exc.host}"
        if isinstance(exc, aiohttp.ClientSSLError) or isinstance(cause, ssl.SSLError):
            detail = getattr(cause, "reason", None) or getattr(cause, "verify_message", None)
            return f"TLS error with {where}" + (f" ({detail})" if detail else "")
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, TimeoutError):
            return f"timed out connecting to {where}"
        return f"cannot connect to {where} ({cause.strerror or type(cause).__name__})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, TimeoutError):  # asyncio's and aiohttp's timeouts alike
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before Discord answered"
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return f"network error ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    return None


def _seconds(delay: float) -> str:
    return f"{delay:.0f}" if delay >= 10 else f"{delay:.1f}".removesuffix(".0")


async def log_in(bot: commands.Bot, token: str) -> None:
    """``bot.login(token)``, retried with back-off while Discord cannot be reached.

    Only failures before ``setup_hook`` are retried: discord.py's ``login()`` calls it last, once
    ``/users/@me`` and the application have been fetched (``bot.application`` is set just before), so
    a retried login never runs it twice. A failure inside ``setup_hook`` is not retried here.
    """
    import discord

    cap = retry_max_s()
    failures = 0
    while True:
        try:
            await bot.login(token)
        except discord.LoginFailure:
            raise StartupFailed(TOKEN_REFUSED) from None
        except Exception as exc:
            why = why_unreachable(exc)
            if bot.application is not None:
                if why is None:
                    raise  # setup_hook failed: a bug or a local problem, with its traceback
                raise StartupFailed(f"cannot reach Discord while starting up: {why}") from exc
            if why is None:
                if isinstance(exc, discord.HTTPException):  # e.g. a 404: api_base is not Discord's API
                    detail = " ".join((exc.text or "no detail").split())[:200]
                    raise StartupFailed(
                        f"Discord answered HTTP {exc.status} to the login ({detail}): check [discord] api_base"
                    ) from None
                raise
            failures += 1
            delay = retry_delay(failures, cap)
            log.warning("cannot reach Discord: %s; retrying in %s s", why, _seconds(delay))
        else:
            if failures:
                log.info("logged in to Discord after %d failed attempt%s", failures, "s" * (failures > 1))
            return
        # Each login opens a new HTTP session (static_login) on the client's connector: close this
        # one, and with it the connector, and let the next login make both afresh (nothing leaks).
        # (MjBot passes no connector= of its own; discord.py makes one when it has none.)
        await bot.http.close()
        bot.http.connector = discord.utils.MISSING
        await asyncio.sleep(delay)


async def start(bot: commands.Bot, token: str) -> None:
    """``bot.start(token)``: the login retried while Discord is unreachable, then the gateway (which
    discord.py reconnects by itself)."""
    import discord

    await log_in(bot, token)
    try:
        await bot.connect(reconnect=True)
    except discord.PrivilegedIntentsRequired:
        wanted = [name for flag, name in PRIVILEGED_INTENTS.items() if getattr(bot.intents, flag)]
        which = ", ".join(wanted) if wanted else "the privileged intents it asks for"
        raise StartupFailed(
            f"Discord refused the gateway connection: the bot asks for privileged intents that are not "
            f"enabled for it: enable {which} in the Developer Portal (your application → Bot → "
            "Privileged Gateway Intents)"
        ) from None
    except discord.ConnectionClosed as exc:
        if exc.code == 4004:  # Authentication failed
            raise StartupFailed(TOKEN_REFUSED) from None
        raise


async def serve(settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT (0) or a failure retrying cannot fix (logged, 1)."""
    from bot.discord.cluster import make_bot

    bot = make_bot(settings)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(signum, stopping.set)

    try:
        async with bot:
            # The database first: an unreachable or too new one is said at once, not after the login.
            await bot.store.open()
            runner = asyncio.create_task(start(bot, settings.discord.token.get_secret_value()))
            stopper = asyncio.create_task(stopping.wait())
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                log.info("shutting down")
                await bot.close()
                # Waiting to retry the login, or discord.py sleeping before a reconnect: don't wait it out.
                runner.cancel()
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner  # re-raises a failure to start or a crash
    except StartupFailed as exc:  # logged once the bot is closed: the last line says why it stopped
        log.error("%s", exc)
        return 1
    except (StorageError, ConfigError) as exc:  # the database cannot be opened, or is too new
        log.error("cannot start: %s", exc)
        return 1
    return 1 if getattr(bot, "lease_lost", False) else 0


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings, or None after saying on stderr why they cannot be had."""
    path, named = resolve_config_path(args.config)
    try:
        settings = load_settings(path, required=named)
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return None
    logs.add_settings_secrets(settings)
    return settings


def _need_token(settings: Settings) -> bool:
    if settings.discord.token.get_secret_value():
        return True
    print("mjbot: discord.token is empty: set it in the config file or MJBOT_DISCORD__TOKEN.", file=sys.stderr)
    return False


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run``, on uvloop where it is installed (Linux, macOS): the same asyncio API with
    its I/O in C, about a sixth less CPU per task update in the benchmark."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None or not _need_token(settings):
        return 2
    if args.shard_count is not None or args.shard_ids is not None:
        settings = _with_shards(settings, args.shard_count, args.shard_ids)
        if settings is None:
            return 2
    logs.setup_logging(settings.logging.format, settings.logging.level)
    try:
        return run_loop(serve(settings))
    except KeyboardInterrupt:
        return 0


def _with_shards(settings: Settings, count: int | None, ids: str | None) -> Settings | None:
    """``run --shard-count/--shard-ids`` over the config file's [cluster]; None after saying why not."""
    from pydantic import ValidationError

    cluster = settings.cluster.model_dump()
    if count is not None:
        cluster["shard_count"] = count
    if ids is not None:
        try:
            cluster["shard_ids"] = [int(part) for part in ids.split(",") if part.strip()]
        except ValueError:
            print(f"mjbot: --shard-ids takes shard numbers like 0,1, not {ids!r}", file=sys.stderr)
            return None
    try:
        return settings.model_copy(update={"cluster": type(settings.cluster).model_validate(cluster)})
    except ValidationError as exc:
        reasons = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        print(f"mjbot: {reasons}", file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.ops.checks import Check, run_checks

    logs.setup_logging("text", "ERROR")  # the checks speak for themselves
    path, named = resolve_config_path(args.config)
    try:
        settings = load_settings(path, required=named)
    except ConfigError as exc:
        print(Check("config", False, str(exc)).line())
        return 1
    logs.add_settings_secrets(settings)
    source = f"{path} and the environment" if path.is_file() else "the environment (no config file)"
    print(Check("config", True, f"{source}: valid").line(), flush=True)

    async def check_all() -> bool:
        all_ok = True
        async for check in run_checks(settings):
            print(logs.redact(check.line()), flush=True)
            all_ok = all_ok and check.ok
        return all_ok

    return 0 if asyncio.run(check_all()) else 1


def cmd_sync_commands(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None or not _need_token(settings):
        return 2
    logs.setup_logging(settings.logging.format, "WARNING")
    import discord

    async def sync() -> list[str]:
        from bot.discord.app import MjBot

        bot = MjBot(settings, commands_only=True)
        async with bot:
            await bot.login(settings.discord.token.get_secret_value())
            return await bot.sync_commands(args.guild)

    try:
        lines = asyncio.run(sync())
    except discord.LoginFailure:
        print("mjbot: Discord rejected the token (discord.token): check it in the Developer Portal.", file=sys.stderr)
        return 1
    except discord.HTTPException as exc:
        print(f"mjbot: Discord refused the sync: HTTP {exc.status} (code {exc.code}) {exc.text}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    import httpx

    settings = _settings(args)
    if settings is None:
        return 2
    listen = settings.http.listen or (settings.notify.listen if settings.notify.enabled else "")
    if not listen:
        print("mjbot: no /healthz to ask: set [http] listen (or run the push receiver)", file=sys.stderr)
        return 2
    try:
        host, port = host_port(listen, "http.listen" if settings.http.listen else "notify.listen")
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return 2
    # A server on every interface is asked on loopback.
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    try:
        response = httpx.get(url, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"unhealthy: cannot reach {url}: {type(exc).__name__}")
        return 1
    print(response.text.strip())
    return 0 if response.status_code == 200 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjbot", description="Discord front end for a Midjourney Proxy.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--config", help="TOML config file (default: config.toml, or $MJBOT_CONFIG)")
        sub.set_defaults(func=func)
        return sub

    run = command("run", cmd_run, "run the bot")
    run.add_argument("--shard-count", type=int, metavar="N", help="Discord shards in all (over [cluster] shard_count)")
    run.add_argument(
        "--shard-ids",
        metavar="IDS",
        help="the shards this process serves, e.g. 0,1 (default: leased through the database, shared)",
    )
    command(
        "check-config",
        cmd_check_config,
        "validate the config, then check the Discord token, the proxy, the database and the push URL",
    )
    sync = command(
        "sync-commands",
        cmd_sync_commands,
        "register the slash commands with Discord (for [discord] sync_commands = false)",
    )
    sync.add_argument(
        "--guild",
        type=int,
        action="append",
        metavar="ID",
        help="only in this server (repeatable); default: [discord] guild_ids, or globally",
    )
    storage_cli.add_commands(command, _settings)
    health = command("healthcheck", cmd_healthcheck, "ask the running bot's /healthz; exit 0 if healthy")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    demo_cli.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
