"""Command line: ``mjbot run [--config PATH]`` (also ``python -m bot run``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from bot.config import Settings, load_settings, resolve_config_path
from bot.errors import ConfigError

log = logging.getLogger("bot")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # discord.py is chatty at INFO; its warnings and errors are what an admin needs.
    logging.getLogger("discord").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


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
        stopper.cancel()
        await runner  # re-raises a login failure or a crash


def cmd_run(args: argparse.Namespace) -> int:
    path, named = resolve_config_path(args.config)
    try:
        settings = load_settings(path, required=named)
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return 2
    if not settings.discord.token.get_secret_value():
        print("mjbot: discord.token is empty: set it in the config file or MJBOT_DISCORD__TOKEN.", file=sys.stderr)
        return 2
    setup_logging()
    import discord

    try:
        asyncio.run(serve(settings))
    except discord.LoginFailure:
        log.error("Discord rejected the token (discord.token): check it in the Developer Portal.")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjbot", description="Discord front end for a Midjourney Proxy.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot")
    run.add_argument("--config", help="TOML config file (default: config.toml, or $MJBOT_CONFIG)")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
