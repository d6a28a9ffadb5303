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
import signal
import sqlite3
import sys

from bot import logs
from bot.config import Settings, host_port, load_settings, resolve_config_path
from bot.errors import ConfigError

log = logging.getLogger("bot")


async def serve(settings: Settings) -> None:
    from bot.app import MjBot

    bot = MjBot(settings)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(signum, stopping.set)

    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord.token.get_secret_value()))
        stopper = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("shutting down")
            await bot.close()
            # discord.py may be sleeping before a reconnect (Discord unreachable): don't wait it out.
            runner.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner  # re-raises a login failure or a crash


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings, or None after saying on stderr why they cannot be had."""
    path, named = resolve_config_path(args.config)
    try:
        settings = load_settings(path, required=named)
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return None
    logs.add_secret(settings.discord.token.get_secret_value())
    logs.add_secret(settings.proxy.secret.get_secret_value())
    return settings


def _need_token(settings: Settings) -> bool:
    if settings.discord.token.get_secret_value():
        return True
    print("mjbot: discord.token is empty: set it in the config file or MJBOT_DISCORD__TOKEN.", file=sys.stderr)
    return False


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None or not _need_token(settings):
        return 2
    logs.setup_logging(settings.logging.format, settings.logging.level)
    import discord

    try:
        asyncio.run(serve(settings))
    except discord.LoginFailure:
        log.error("Discord rejected the token (discord.token): check it in the Developer Portal.")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.checks import Check, run_checks

    logs.setup_logging("text", "ERROR")  # the checks speak for themselves
    path, named = resolve_config_path(args.config)
    try:
        settings = load_settings(path, required=named)
    except ConfigError as exc:
        print(Check("config", False, str(exc)).line())
        return 1
    logs.add_secret(settings.discord.token.get_secret_value())
    logs.add_secret(settings.proxy.secret.get_secret_value())
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
        from bot.app import MjBot

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


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.store import backup_database

    settings = _settings(args)
    if settings is None:
        return 2
    source = settings.storage.path
    try:
        info = backup_database(source, args.path)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"mjbot: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {source} to {args.path}: {info.jobs} jobs, schema version {info.schema_version}, "
          f"{info.size_bytes / 1024:.0f} KiB")
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

    command("run", cmd_run, "run the bot")
    command("check-config", cmd_check_config,
            "validate the config, then check the Discord token, the proxy, the database and the push URL")
    sync = command("sync-commands", cmd_sync_commands,
                   "register the slash commands with Discord (for [discord] sync_commands = false)")
    sync.add_argument("--guild", type=int, action="append", metavar="ID",
                      help="only in this server (repeatable); default: [discord] guild_ids, or globally")
    backup = command("backup", cmd_backup, "copy the live database (SQLite online backup) to PATH")
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    health = command("healthcheck", cmd_healthcheck, "ask the running bot's /healthz; exit 0 if healthy")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
