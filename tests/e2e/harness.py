"""Runs the real bot (``python -m bot run``) as a child process against the Discord double and the
proxy simulator, both on loopback in the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.sandbox.bot_process import START_TIMEOUT_S, BotProcess, write_config  # noqa: F401  (the tests' names)
from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.discord_double.records import MessageRecord
from bot.sandbox.proxy_sim import ProxySim

ROOT = Path(__file__).resolve().parents[2]
# The buttons under a finished grid: the bot's own U1-U4, 🔄, V1-V4, and ❌.
GRID_LABELS = [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4", "❌"]]


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
