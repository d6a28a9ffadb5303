"""Fixtures for the end-to-end tests: the double, the simulator, and the bot as a child process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.flavours import AUTH
from tests.e2e.harness import BotProcess, write_config


@pytest.fixture
async def dd() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        yield double


@pytest.fixture
def bot_config() -> dict:
    """Extra settings for the bot under test: override in a test module, or parametrize indirectly."""
    return {}


@pytest.fixture
def config_path(tmp_path: Path, dd: DiscordDouble, sim: ProxySim, bot_config: dict) -> Path:
    options = {"secret": PROXY_SECRET, "auth": AUTH.get(sim.flavour, "mj-api-secret"), **bot_config}
    return write_config(tmp_path / "config.toml", dd, sim, tmp_path / "mjbot.sqlite3", **options)


@pytest.fixture
def configure(tmp_path: Path, dd: DiscordDouble, sim: ProxySim, config_path: Path) -> Callable[..., Path]:
    """Rewrite the bot's config before ``start_bot``: ``configure(extra="[access]\n...")``."""

    def rewrite(**options) -> Path:
        return write_config(
            config_path,
            dd,
            sim,
            tmp_path / "mjbot.sqlite3",
            **{"secret": PROXY_SECRET, "auth": AUTH.get(sim.flavour, "mj-api-secret"), **options},
        )

    return rewrite


@pytest.fixture
async def start_bot(
    tmp_path: Path, dd: DiscordDouble, config_path: Path
) -> AsyncIterator[Callable[[], Awaitable[BotProcess]]]:
    """Start a bot process (call again after stopping one: the same config and database)."""
    started: list[BotProcess] = []

    async def start() -> BotProcess:
        process = BotProcess(config_path, tmp_path / "bot.log")
        started.append(process)
        await process.start(dd)
        return process

    yield start
    for process in started:
        await process.stop()
    if started:
        # Shown by pytest only when the test failed.
        print("---- bot log ----\n" + started[-1].log_tail(120))


@pytest.fixture
async def bot(start_bot) -> BotProcess:
    return await start_bot()
