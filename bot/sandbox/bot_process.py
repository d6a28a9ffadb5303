"""The real bot (``python -m bot run``, unmodified) as a child process pointed at the Discord double
and the proxy simulator: its config file and its process. The end-to-end tests and ``mjbot demo``
both run it this way."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim

START_TIMEOUT_S = 30.0


def write_config(
    path: Path,
    dd: DiscordDouble,
    sim: ProxySim,
    db_path: Path,
    *,
    secret: str | None,
    auth: str = "mj-api-secret",
    proxy_mode: str = "",
    poll_interval_s: float = 0.05,
    deadline_s: float = 900,
    extra: str = "",
    max_running_per_user: int = 0,
    max_attachment_mb: float = 10,
    storage_url: str = "",
    guild_ids: list[int] | None = None,
) -> Path:
    """The bot's config.toml for a test; ``extra`` adds TOML sections (e.g. ``[access]``);
    ``storage_url`` a PostgreSQL database instead of the SQLite file."""
    path.write_text(
        f"""
[discord]
token = "{dd.bot_token}"
api_base = "{dd.api_base}"
gateway_url = "{dd.gateway_url}"
guild_ids = {guild_ids or [dd.guild_id]}

[proxy]
base_url = "{sim.base_url}"
secret = "{secret or ""}"
auth = "{auth}"
mode = "{proxy_mode}"
timeout_s = 2

[storage]
path = "{db_path}"
url = "{storage_url}"

[tracking]
poll_interval_s = {poll_interval_s}
deadline_s = {deadline_s}

[limits]
max_running_per_user = {max_running_per_user}
max_attachment_mb = {max_attachment_mb}
{extra}
""",
        encoding="utf-8",
    )
    return path


class BotProcess:
    """One run of the bot's command line; its output goes to ``log_path``."""

    def __init__(self, config_path: Path, log_path: Path, *, cwd: Path | None = None) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, dd: DiscordDouble) -> None:
        """Start and wait until it has logged in and registered its commands."""
        identified = dd.identify_count
        await self.spawn()
        assert self.process is not None
        logged_in = asyncio.ensure_future(
            dd.wait_for(
                lambda: dd.identify_count > identified and dd.gateway.live_sessions,
                timeout=START_TIMEOUT_S,
                what="the bot to log in",
            )
        )
        exited = asyncio.ensure_future(self.process.wait())  # one that dies before the double sees it
        try:
            await asyncio.wait({logged_in, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (logged_in, exited):
                waiting.cancel()
        if self._exited():
            raise RuntimeError(f"the bot exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            logged_in.result()
        except TimeoutError:
            raise TimeoutError(f"the bot did not log in within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}") from None

    async def spawn(self) -> None:
        """Start ``mjbot run`` without waiting for anything (several processes log in together)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--config",
                str(self.config_path),
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                env=env,
            )

    def _exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the bot and wait for it to exit; returns its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(f"the bot did not stop within {timeout}s:\n{self.log_tail()}") from None
        return self.process.returncode

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
