"""Runs the real bot (``python -m bot run``) as a child process against the Discord double and the
proxy simulator, both on loopback in the test's own event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.discord_double import DiscordDouble
from tests.discord_double.records import MessageRecord
from tests.proxy_sim import ProxySim

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
# The buttons under a finished grid: the bot's own U1-U4, 🔄, V1-V4, and ❌.
GRID_LABELS = [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4", "❌"]]


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

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, dd: DiscordDouble) -> None:
        """Start and wait until it has logged in and registered its commands."""
        identified = dd.identify_count
        await self.spawn()
        await dd.wait_for(
            lambda: self._exited() or (dd.identify_count > identified and dd.gateway.live_sessions),
            timeout=START_TIMEOUT_S,
            what="the bot to log in",
        )
        if self._exited():
            raise RuntimeError(f"the bot exited with {self.process.returncode}:\n{self.log_tail()}")

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
                cwd=ROOT,
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


# --- helpers the scenarios share -------------------------------------------------------------------

PNG_TYPE = "image/png"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def eventually(predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "a condition") -> Any:
    """Wait until ``predicate()`` (sync or async) is truthy, checking it every 20 ms: for state
    that only a request can read (an HTTP endpoint, the bot's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def public_messages(dd: DiscordDouble) -> list[MessageRecord]:
    """What everyone in the channel sees from the bot: job messages (posted as a command's
    follow-up, or by the bot itself for replies and after restarts)."""
    return [
        m
        for m in dd.channel_messages(dd.channel_id)
        if not m.ephemeral and m.origin in ("bot", "interaction") and not m.current.loading
    ]


def button_rows(message: MessageRecord) -> list[list[str]]:
    return [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in message.current.components]


def custom_id(message: MessageRecord, label: str) -> str:
    for row in message.current.components:
        for button in row["components"]:
            if (button.get("label") or button["emoji"]["name"]) == label:
                return button["custom_id"]
    raise LookupError(label)


def task_for(sim: ProxySim, prompt: str) -> str:
    """The simulator's task for ``prompt``."""
    return next(t.id for t in sim.tasks.values() if t.prompt == prompt)


async def wait_public(dd: DiscordDouble, count: int) -> MessageRecord:
    await dd.wait_for(lambda: len(public_messages(dd)) >= count, what=f"{count} public messages")
    return public_messages(dd)[count - 1]


async def wait_final(dd: DiscordDouble, message: MessageRecord, timeout: float = 10.0) -> MessageRecord:
    await dd.wait_for(
        lambda: message.current.attachments and "(" not in message.content.rsplit("-", 1)[-1],
        timeout=timeout,
        what=f"message {message.id} to show its final image",
    )
    return message


async def imagine_grid(dd: DiscordDouble, sim: ProxySim, prompt: str = "a red fox") -> tuple[str, MessageRecord]:
    await dd.slash("imagine", {"prompt": prompt})
    message = await wait_public(dd, len(public_messages(dd)) + 1)
    task_id = next(t for t in reversed(sim.tasks) if sim.tasks[t].prompt == prompt)
    sim.succeed(task_id)
    return task_id, await wait_final(dd, message)


async def answer_to(dd: DiscordDouble, interaction) -> str:
    """The ephemeral text a slash command or click was answered with."""
    await dd.wait_for(
        lambda: (
            (interaction.original and interaction.original.ephemeral and not interaction.original.current.loading)
            or interaction.followups
        ),
        what="an ephemeral answer",
    )
    message = interaction.followups[0] if interaction.followups else interaction.original
    assert message.ephemeral
    return message.content


def picture(sim: ProxySim) -> bytes:
    return sim.image_bytes(sim.add_task("a picture to attach").id)


def alerts(dd: DiscordDouble) -> list[str]:
    return [message.content for message in dd.channel_messages(dd.second_channel_id)]


async def upscaled(dd: DiscordDouble, sim: ProxySim):
    _, grid = await imagine_grid(dd, sim, "a lighthouse")
    await dd.click(grid.id, custom_id(grid, "U1"))
    upscale = await wait_public(dd, 2)
    up_task = next(t.id for t in sim.tasks.values() if t.action == "UPSCALE")
    sim.succeed(up_task)
    await wait_final(dd, upscale)
    return up_task, upscale
