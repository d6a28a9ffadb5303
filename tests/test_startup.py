"""Starting while Discord cannot be reached: ``mjbot run`` says why in one line per attempt, keeps
retrying with back-off, stops cleanly on SIGTERM/SIGINT, and exits with one clear line only for what
retrying cannot fix (a refused token, missing privileged intents).

Real processes and sockets: the bot is ``python -m bot run`` against the Discord double and the
proxy simulator on loopback. Every wait is on a condition (a log line, a request the double saw,
the process's exit), bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 30.0
STOP_S = 10.0
RETRY_MAX_S = "0.3"  # MJBOT_DISCORD_RETRY_MAX_S: the back-off's cap, short for the tests
UNRESOLVABLE = "http://mjbot-no-such-host.invalid:1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(
    path: Path,
    *,
    discord_url: str,
    token: str,
    db_path: Path,
    guild_id: int = 1,
    proxy_url: str = "http://127.0.0.1:1/mj",
) -> Path:
    gateway = discord_url.replace("http://", "ws://", 1) + "/gateway"
    path.write_text(
        f"""
[discord]
token = "{token}"
api_base = "{discord_url}/api/v10"
gateway_url = "{gateway}"
guild_ids = [{guild_id}]

[proxy]
base_url = "{proxy_url}"
secret = "{PROXY_SECRET}"
timeout_s = 2

[storage]
path = "{db_path}"
""",
        encoding="utf-8",
    )
    return path


class BotRun:
    """``python -m bot run --config PATH``; its output (stderr and stdout) is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, **env: str) -> BotRun:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**clean, "MJBOT_DISCORD_RETRY_MAX_S": RETRY_MAX_S, **env},
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            async with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        await self.process.wait()
        async with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None

    async def wait_lines(self, pattern: str, count: int = 1, timeout: float = WAIT_S) -> list[str]:
        """The first ``count`` lines matching ``pattern`` (a regex), once there are that many."""
        regex = re.compile(pattern)

        def matching() -> list[str]:
            return [line for line in self.lines if regex.search(line)]

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: len(matching()) >= count or self._reader.done())
        except TimeoutError:
            raise AssertionError(f"no {count} line(s) matching {pattern!r} within {timeout}s:\n{self.output}") from None
        found = matching()
        assert len(found) >= count, (
            f"the bot exited ({self.process.returncode}) before {count} line(s) matching {pattern!r}:\n{self.output}"
        )
        return found[:count]

    async def wait_exit(self, timeout: float = WAIT_S) -> int:
        try:
            async with asyncio.timeout(timeout):
                await self._reader  # all output read, then the process reaped
        except TimeoutError:
            raise AssertionError(f"the bot did not exit within {timeout}s:\n{self.output}") from None
        assert self.process.returncode is not None
        return self.process.returncode

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_S) -> int:
        if not self.exited:
            self.process.send_signal(sig)
        return await self.wait_exit(timeout)

    async def kill(self) -> None:
        if not self.exited:
            self.process.kill()
        await self.process.wait()
        self._reader.cancel()


@pytest.fixture
async def runs():
    """Bots started by a test; any still running at the end is killed."""
    started: list[BotRun] = []
    yield started
    for run in started:
        await run.kill()


def assert_clean(output: str, token: str) -> None:
    assert "Traceback" not in output, output
    assert "Unclosed" not in output, output  # no leaked aiohttp session or connector
    assert token not in output, output


async def test_waits_for_discord_then_logs_in(tmp_path: Path, sim: ProxySim, runs: list[BotRun]):
    """Nothing listens where Discord should be: the bot says so and retries; once the Discord double
    is up (answering the first login with a 503, then normally) the bot logs in, sets up once, and
    connects to the gateway."""
    port = free_port()
    dd = DiscordDouble(port=port)
    config = write_config(
        tmp_path / "config.toml",
        discord_url=f"http://127.0.0.1:{port}",
        token=dd.bot_token,
        db_path=tmp_path / "mjbot.sqlite3",
        guild_id=dd.guild_id,
        proxy_url=sim.base_url,
    )
    bot = await BotRun.start(config)
    runs.append(bot)

    refused = await bot.wait_lines(
        r"cannot reach Discord: connection refused by 127\.0\.0\.1:\d+; retrying in [\d.]+ s", count=2
    )
    assert f"127.0.0.1:{port}" in refused[0]
    assert not bot.exited

    unavailable = dd.fail_next(method="GET", path_re=r"^/users/@me$", status=503)
    async with dd:
        await bot.wait_lines(r"cannot reach Discord: Discord answered 503; retrying in [\d.]+ s")
        await dd.wait_for(
            lambda: dd.identify_count >= 1 and dd.gateway.live_sessions,
            timeout=WAIT_S,
            what="the bot to identify on the gateway",
        )
        await bot.wait_lines(r"logged in to Discord after \d+ failed attempts")
        await bot.wait_lines(r"logged in as ")
        assert len(unavailable.hits) == 1
        assert len(dd.find_requests("GET", r"^/users/@me$")) == 2  # the 503, then the login
        assert dd.commands(dd.guild_id), "setup_hook registered the commands"
        assert dd.identify_count == 1
        assert await bot.stop() == 0
    output = bot.output
    assert_clean(output, dd.bot_token)
    assert len(re.findall(r"synced \d+ commands to guild", output)) == 1, output  # setup_hook ran once
    assert "shutting down" in output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_unresolvable_host_retries_until_stopped(tmp_path: Path, runs: list[BotRun], sig: int):
    token = "mjbot-test-token-never-printed-7c1e"
    config = write_config(
        tmp_path / "config.toml", discord_url=UNRESOLVABLE, token=token, db_path=tmp_path / "mjbot.sqlite3"
    )
    bot = await BotRun.start(config)
    runs.append(bot)

    lines = await bot.wait_lines(
        r"cannot reach Discord: DNS lookup failed for mjbot-no-such-host\.invalid; "
        r"retrying in [\d.]+ s",
        count=3,
    )
    assert all(line.count("\n") == 0 for line in lines)
    assert not bot.exited
    loop = asyncio.get_running_loop()
    signalled = loop.time()
    assert await bot.stop(sig) == 0
    assert loop.time() - signalled < 5.0
    assert "shutting down" in bot.output
    assert_clean(bot.output, token)


async def test_default_backoff_grows(tmp_path: Path, runs: list[BotRun]):
    """Without the override: about 2 s, then about 4 s (each shortened by at most a quarter)."""
    token = "mjbot-test-token-never-printed-2b9d"
    config = write_config(
        tmp_path / "config.toml", discord_url=UNRESOLVABLE, token=token, db_path=tmp_path / "mjbot.sqlite3"
    )
    bot = await BotRun.start(config, MJBOT_DISCORD_RETRY_MAX_S="")
    runs.append(bot)
    lines = await bot.wait_lines(r"cannot reach Discord: DNS lookup failed", count=2, timeout=WAIT_S)
    delays = [float(re.search(r"retrying in ([\d.]+) s", line).group(1)) for line in lines]
    assert 1.5 <= delays[0] <= 2.0 and 3.0 <= delays[1] <= 4.0, lines
    assert await bot.stop() == 0
    assert_clean(bot.output, token)


async def test_refused_token_exits_with_one_line(tmp_path: Path, runs: list[BotRun]):
    token = "not-the-bot-token-0f9e8d7c"
    async with DiscordDouble() as dd:
        config = write_config(
            tmp_path / "config.toml",
            discord_url=dd.base_url,
            token=token,
            db_path=tmp_path / "mjbot.sqlite3",
            guild_id=dd.guild_id,
        )
        bot = await BotRun.start(config)
        runs.append(bot)
        code = await bot.wait_exit()
        assert [r.status for r in dd.find_requests("GET", r"^/users/@me$")] == [401]
        assert dd.identify_count == 0
    assert code == 1, bot.output
    refused = [line for line in bot.lines if "Discord refused the bot token" in line]
    assert len(refused) == 1, bot.output
    assert "check [discord] token" in refused[0]
    assert bot.lines[-1] == refused[0]  # the last word is why it stopped
    assert "cannot reach Discord" not in bot.output  # not retried
    assert_clean(bot.output, token)


async def test_missing_privileged_intents_exit_with_one_line(tmp_path: Path, sim: ProxySim, runs: list[BotRun]):
    """The gateway closes with 4014 (Disallowed intents): say where to enable them, exit 1."""
    async with DiscordDouble() as dd:
        config = write_config(
            tmp_path / "config.toml",
            discord_url=dd.base_url,
            token=dd.bot_token,
            db_path=tmp_path / "mjbot.sqlite3",
            guild_id=dd.guild_id,
            proxy_url=sim.base_url,
        )
        bot = await BotRun.start(config)
        runs.append(bot)
        await dd.wait_for(
            lambda: bot.exited or (dd.identify_count >= 1 and dd.gateway.live_sessions),
            timeout=WAIT_S,
            what="the bot to identify on the gateway",
        )
        await bot.wait_lines(r"logged in as ")
        await dd.drop_gateway(code=4014)
        code = await bot.wait_exit()
    assert code == 1, bot.output
    assert "Privileged Gateway Intents" in bot.lines[-1] and "Developer Portal" in bot.lines[-1], bot.output
    assert_clean(bot.output, dd.bot_token)
