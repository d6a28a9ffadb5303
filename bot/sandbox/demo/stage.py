"""The demo's three parts, started and stopped together: the simulator in time mode, the Discord
double, and the real bot as a child process over a throwaway SQLite file; and the faults the page's
buttons cause."""

from __future__ import annotations

import asyncio
import logging
import time
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
ACK_WINDOW_S = 3.0  # Discord's: an interaction not answered in time "did not respond"


class Demo:
    def __init__(self, folder: Path, *, flavour: str = "trueai", step_s: float = 2.0) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}")
        self.folder = folder
        self.flavour = flavour
        self.sim = ProxySim(secret=SECRET, flavour=flavour, mode="time", step_s=step_s, jitter=0.2)
        self.dd = DiscordDouble(interaction_ack_timeout=ACK_WINDOW_S)
        self.bot: BotProcess | None = None
        self.bot_up = False  # logged in and serving; false while it starts or restarts
        self.notes: list[str] = []  # what the fault buttons did, newest last, for the page
        self._restarting = asyncio.Lock()
        self._restart: asyncio.Task[None] | None = None
        self._up_at = 0.0  # when the proxy comes back (monotonic); 0: it is up
        self._up_again: asyncio.Task[None] | None = None

    async def start_world(self) -> None:
        """The simulator and the double, and the bot's config: what the page needs to show."""
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

    async def start_bot(self) -> None:
        # Run from the demo's own folder: a ./bot package wherever the user typed the command must
        # not be what `python -m bot` finds.
        self.bot = BotProcess(self.config_path, self.folder / "bot.log", cwd=self.folder)
        await self.bot.start(self.dd)
        self.bot_up = True

    @property
    def config_path(self) -> Path:
        return self.folder / "config.toml"

    async def stop(self) -> None:
        for task in (self._up_again, self._restart):
            if task is not None:
                task.cancel()
        if self.bot is not None and self.bot.process is not None:
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
        """The proxy refuses connections for ``seconds`` (from the last press); its tasks go on."""
        self._up_at = time.monotonic() + seconds
        await self.sim.set_down(True)
        self.note(f"The proxy is down for {seconds:.0f} s.")
        if self._up_again is None or self._up_again.done():
            self._up_again = asyncio.create_task(self._bring_proxy_back(), name="demo-proxy-back")

    async def _bring_proxy_back(self) -> None:
        while (left := self._up_at - time.monotonic()) > 0:
            await asyncio.sleep(left)  # the outage itself (a later press moves its end)
        try:
            await self.sim.set_down(False)
        except OSError as exc:
            self.note(f"The proxy cannot come back: {exc}")
            return
        self._up_at = 0.0
        self.note("The proxy is back.")

    def ban_next_submit(self) -> None:
        self.sim.fail_next("/submit/imagine", BANNED_CODE)
        self.note("The next /imagine (only that one) will be refused for a banned word.")

    async def drop_gateway(self) -> None:
        await self.dd.drop_gateway()
        self.note("Discord's gateway dropped the bot; it resumes.")

    def restart_bot(self) -> None:
        """SIGKILL, then a fresh process on the same database, in the background: what a crash and
        a restart do. A press while one is under way changes nothing."""
        if self._restarting.locked():
            self.note("The bot is already restarting.")
            return
        self._restart = asyncio.create_task(self._kill_and_start(), name="demo-restart")

    async def _kill_and_start(self) -> None:
        async with self._restarting:
            self.bot_up = False
            if self.bot is not None:
                await self.bot.kill()
            # The killed process's gateway session would hold (and lose) every event meant for the
            # new one: end it, as Discord does once a session's connection is gone for good.
            await self.dd.gateway.drop(resumable=False)
            self.note("The bot was killed; starting it again…")
            try:
                await self.start_bot()
            except (RuntimeError, TimeoutError) as exc:
                self.note(f"The bot did not come back: {str(exc).splitlines()[0][:200]}")
                log.error("the demo's bot did not restart: %s", exc)
                return
            self.note("The bot is back.")
