"""The demo's three parts, started and stopped together: the simulator in time mode, the Discord
double, and the real bot as a child process over a throwaway SQLite file; and the faults the page's
buttons cause."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.sandbox.bot_process import BotProcess, write_config
from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim

log = logging.getLogger(__name__)

FLAVOURS = ("trueai", "novicezk", "newapi")
SECRET = "mjbot-demo-secret"  # the simulator's and the bot's shared secret: both live only here
AUTH = {"trueai": "authorization", "newapi": "bearer", "novicezk": "mj-api-secret"}
PROXY_DOWN_S = 10.0
BANNED_CODE = "code:24"  # novicezk's answer to a banned word: 可能包含敏感词


class Demo:
    def __init__(self, folder: Path, *, flavour: str = "trueai", step_s: float = 2.0) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}")
        self.folder = folder
        self.flavour = flavour
        self.sim = ProxySim(secret=SECRET, flavour=flavour, mode="time", step_s=step_s, jitter=0.2)
        self.dd = DiscordDouble()
        self.bot: BotProcess | None = None
        self.restarts = 0
        self.notes: list[str] = []  # what the fault buttons did, newest last, for the page
        self._up_again: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sim.start()
        await self.dd.start()
        alice, _ = self.dd.members
        write_config(
            self.config_path,
            self.dd,
            self.sim,
            self.folder / "mjbot.sqlite3",
            secret=SECRET,
            auth=AUTH[self.flavour],
            poll_interval_s=0.5,
            extra=f"[access]\nadmin_user_ids = [{alice}]\n",
        )
        await self._start_bot()

    @property
    def config_path(self) -> Path:
        return self.folder / "config.toml"

    async def _start_bot(self) -> None:
        self.bot = BotProcess(self.config_path, self.folder / "bot.log")
        await self.bot.start(self.dd)

    async def stop(self) -> None:
        if self._up_again is not None:
            self._up_again.cancel()
        if self.bot is not None:
            try:
                await self.bot.stop()
            except AssertionError as exc:  # it did not stop in time and was killed
                log.warning("%s", exc)
        await self.dd.stop()
        await self.sim.stop()

    # --- the fault buttons ---------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.notes = [*self.notes[-4:], text]

    async def proxy_down(self, seconds: float = PROXY_DOWN_S) -> None:
        """The proxy refuses connections for ``seconds``; its tasks go on meanwhile."""
        await self.sim.set_down(True)
        self.note(f"The proxy is down for {seconds:.0f} s.")

        async def back() -> None:
            await asyncio.sleep(seconds)  # the outage itself
            await self.sim.set_down(False)
            self.note("The proxy is back.")

        self._up_again = asyncio.create_task(back(), name="demo-proxy-back")

    def ban_next_submit(self) -> None:
        self.sim.fail_next("/submit/imagine", BANNED_CODE)
        self.note("The next /imagine will be refused for a banned word.")

    async def drop_gateway(self) -> None:
        await self.dd.drop_gateway()
        self.note("Discord's gateway dropped the bot; it resumes.")

    async def restart_bot(self) -> None:
        """SIGKILL, then a fresh process on the same database: what a crash and a restart do."""
        if self.bot is not None:
            await self.bot.kill()
        self.note("The bot was killed; starting it again…")
        await self._start_bot()
        self.restarts += 1
        self.note("The bot is back.")
