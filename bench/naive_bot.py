"""The naive way, for the benchmark: how most Midjourney Proxy bots in use today follow a job.

A small discord.py ``commands.Bot`` with ``/imagine prompt``. It defers, submits
``POST {proxy}/submit/imagine``, posts the job message in the channel with the bot token, and
starts **one asyncio task per job** that polls ``GET {proxy}/task/{id}/fetch`` every
``tracking.poll_interval_s`` and **edits the message on every change** it sees (content with the
progress, the preview as an embed; at the end it downloads the image and edits the message with it
attached). Nothing is stored: a restart forgets every job. No write budget of its own: discord.py's
rate-limit handling (it reads Discord's ``X-RateLimit-*`` headers and queues requests per bucket) is
all that paces its writes, as in those bots.

It reads the real bot's config file (``bot.core.config.load_settings``: ``[discord]``, ``[proxy]``,
``tracking.poll_interval_s``; other sections are ignored) and redirects discord.py the same way
(``bot.discord.app.point_discord_at``)::

    python -m bench.naive_bot --config config.toml [--adopt tasks.jsonl]

``--adopt FILE`` starts it already following existing tasks, since it has no database to resume
from (the benchmark uses it to measure polling and memory at 10 to 10,000 unfinished tasks). One
JSON object per line::

    {"task_id": "1732...", "channel_id": 123, "message_id": 456, "prompt": "a cat",
     "owner_id": 789, "status": "SUBMITTED", "progress": "0%", "image_url": null}

``status``/``progress``/``image_url`` are what the message shows already (so adopting does not
edit every message once); ``owner_id`` is optional.

For the benchmark's loop-lag row only, it measures its event loop as the real bot does
(``bot.ops.metrics.LoopLag``) and serves that alone at ``/metrics`` on ``[http] listen`` when set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
from aiohttp import web
from discord import app_commands
from discord.ext import commands
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from bot.core.config import Settings, load_settings
from bot.discord.app import point_discord_at
from bot.ops.metrics import LoopLag

log = logging.getLogger("naive")

ACCEPTED_CODES = (1, 21, 22)
FINISHED = ("SUCCESS", "FAILURE")


@dataclass
class Followed:
    """One job a polling task follows."""

    task_id: str
    channel_id: int
    message_id: int
    prompt: str
    owner_id: int | None
    last: tuple[Any, Any, Any] | None = None  # (status, progress, imageUrl) shown last

    def text(self, status: str | None = None) -> str:
        owner = f" - <@{self.owner_id}>" if self.owner_id else ""
        return f"**{self.prompt}**{owner}" + (f" ({status})" if status else "")


class NaiveBot(commands.Bot):
    def __init__(self, settings: Settings, adopt: list[Followed]) -> None:
        point_discord_at(settings.discord)
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(), help_command=None)
        self.settings = settings
        self.base_url = settings.proxy.base_url
        secret = settings.proxy.secret.get_secret_value()
        self.proxy_headers = {"mj-api-secret": secret} if secret else {}
        self.poll_interval_s = settings.tracking.poll_interval_s
        self.session: aiohttp.ClientSession | None = None
        self.pollers: set[asyncio.Task[None]] = set()
        self._adopt = adopt
        # Measurement for the benchmark (not part of the naive way): the loop's lag at /metrics.
        self.registry = CollectorRegistry()
        self.loop_lag = LoopLag(self.registry)
        self._metrics_runner: web.AppRunner | None = None

    async def _serve_metrics(self) -> None:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._metrics_runner = web.AppRunner(app, access_log=None)
        await self._metrics_runner.setup()
        host, port = self.settings.http.listen_address()
        await web.TCPSite(self._metrics_runner, host, port).start()

    async def setup_hook(self) -> None:
        self.loop_lag.start()
        if self.settings.http.listen:
            await self._serve_metrics()
        self.session = aiohttp.ClientSession(
            headers=self.proxy_headers, timeout=aiohttp.ClientTimeout(total=self.settings.proxy.timeout_s)
        )
        self.tree.add_command(imagine)
        for guild_id in self.settings.discord.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        if not self.settings.discord.guild_ids:
            await self.tree.sync()
        for job in self._adopt:
            self.follow(job)
        log.info("following %d adopted tasks", len(self._adopt))
        self._adopt = []

    def follow(self, job: Followed) -> None:
        poller = asyncio.create_task(self.poll(job), name=f"naive-poll-{job.task_id}")
        self.pollers.add(poller)
        poller.add_done_callback(self.pollers.discard)

    async def poll(self, job: Followed) -> None:
        """Fetch the task every poll interval; edit the message whenever what it shows changed."""
        assert self.session is not None
        message = self.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        while True:
            try:
                async with self.session.get(f"{self.base_url}/task/{job.task_id}/fetch") as response:
                    body = await response.text()
                task = json.loads(body) if response.status == 200 and body.strip() else None
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                log.warning("task %s: fetch failed (%s)", job.task_id, type(exc).__name__)
                task = None
            if isinstance(task, dict):
                state = (task.get("status"), task.get("progress"), task.get("imageUrl"))
                if state != job.last:
                    try:
                        if await self.show(job, message, task):
                            return
                        job.last = state
                    except (TimeoutError, discord.HTTPException, aiohttp.ClientError) as exc:
                        # Tried again at the next poll (the state still differs from what is shown).
                        log.warning("task %s: editing its message failed (%s)", job.task_id, exc)
            await asyncio.sleep(self.poll_interval_s)

    async def show(self, job: Followed, message: discord.PartialMessage, task: dict[str, Any]) -> bool:
        """Edit the message to show ``task``; True once the job is over."""
        status, progress, image_url = task.get("status"), task.get("progress"), task.get("imageUrl")
        if status == "SUCCESS" and image_url:
            assert self.session is not None
            async with self.session.get(image_url) as response:
                data = await response.read()
            await message.edit(
                content=job.text(),
                embed=None,
                attachments=[discord.File(io.BytesIO(data), filename=f"{job.task_id}.png")],
            )
            return True
        if status in FINISHED:
            await message.edit(content=job.text(f"Failed: {task.get('failReason') or 'unknown'}"), embed=None)
            return True
        embed = discord.Embed().set_image(url=image_url) if image_url else None
        await message.edit(content=job.text(progress or "Waiting to start"), embed=embed)
        return False

    async def close(self) -> None:
        for poller in list(self.pollers):
            poller.cancel()
        await asyncio.gather(*self.pollers, return_exceptions=True)
        await super().close()
        if self.session is not None:
            await self.session.close()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        await self.loop_lag.stop()


@app_commands.command(name="imagine", description="Create images from a prompt")
@app_commands.describe(prompt="What to imagine")
async def imagine(interaction: discord.Interaction, prompt: str) -> None:
    bot: NaiveBot = interaction.client  # type: ignore[assignment]
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert bot.session is not None
    try:
        async with bot.session.post(f"{bot.base_url}/submit/imagine", json={"prompt": prompt}) as response:
            data = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        await interaction.edit_original_response(content=f"The proxy did not answer ({type(exc).__name__}).")
        return
    if not isinstance(data, dict) or data.get("code") not in ACCEPTED_CODES or not data.get("result"):
        description = data.get("description") if isinstance(data, dict) else data
        await interaction.edit_original_response(content=f"Submit failed: {description}")
        return
    job = Followed(
        task_id=str(data["result"]),
        channel_id=interaction.channel_id or 0,
        message_id=0,
        prompt=prompt,
        owner_id=interaction.user.id,
    )
    channel = bot.get_partial_messageable(job.channel_id)
    message = await channel.send(job.text("Waiting to start"))
    job.message_id = message.id
    bot.follow(job)
    await interaction.edit_original_response(content=f"Submitted as task {job.task_id}.")


def read_adopt_file(path: Path) -> list[Followed]:
    jobs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        job = Followed(
            task_id=str(item["task_id"]),
            channel_id=int(item["channel_id"]),
            message_id=int(item["message_id"]),
            prompt=str(item.get("prompt") or ""),
            owner_id=item.get("owner_id"),
        )
        if "status" in item:
            job.last = (item.get("status"), item.get("progress"), item.get("image_url"))
        jobs.append(job)
    return jobs


async def serve(settings: Settings, adopt: list[Followed]) -> None:
    bot = NaiveBot(settings, adopt)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopping.set)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord.token.get_secret_value()))
        stopper = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            await bot.close()
        stopper.cancel()
        await runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naive_bot", description="The naive per-task polling bot (benchmark).")
    parser.add_argument("--config", required=True, help="the real bot's TOML config file")
    parser.add_argument("--adopt", help="JSON lines of tasks to follow from the start (see the module doc)")
    args = parser.parse_args(argv)
    settings = load_settings(Path(args.config))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("discord").setLevel(logging.WARNING)
    adopt = read_adopt_file(Path(args.adopt)) if args.adopt else []
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, adopt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
