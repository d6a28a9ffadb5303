"""The jobs service on a real SQLite file against the simulator, restartable at will: what the
rules tests and the real-servers tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.access import Requester
from bot.core.models import Phase
from bot.jobs import JobService
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store
from tests.conftest import FAST_WRITES, PROXY_SECRET, RecordingView, make_settings

OWNER, OTHER, ADMIN = 11, 12, 13
GUILD, CHANNEL, ROLE = 100, 200, 300


def who(user_id: int = OWNER, **kw) -> Requester:
    return Requester(
        user_id=user_id, guild_id=kw.pop("guild_id", GUILD), channel_id=kw.pop("channel_id", CHANNEL), **kw
    )


class Harness:
    """A service on a real database file, reopened at will (a restart)."""

    def __init__(self, sim: ProxySim, path: Path | str, **settings) -> None:
        self.now = 1_800_000_000.0
        self.settings = make_settings(sim, path, **settings)
        self.jobs: JobService | None = None

    async def start(self) -> tuple[JobService, RecordingView]:
        self.proxy, self.store = ProxyClient(self.settings.proxy), Store(self.settings.storage.database_url)
        await self.store.open()
        self.jobs, self.view = (
            JobService(self.settings, self.proxy, self.store, clock=lambda: self.now, **FAST_WRITES),
            RecordingView(),
        )
        await self.jobs.start(self.view)
        return self.jobs, self.view

    async def stop(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop()
            await self.proxy.aclose()
            await self.store.close()
            self.jobs = None


@pytest.fixture
async def harness(sim, tmp_path):
    made: list[Harness] = []

    async def make(**settings) -> tuple[Harness, JobService, RecordingView]:
        h = Harness(sim, tmp_path / f"db{len(made)}.sqlite3", **settings)
        made.append(h)
        jobs, view = await h.start()
        return h, jobs, view

    yield make
    for h in made:
        await h.stop()


AUTH_OF = {"newapi": "bearer", "trueai": "authorization"}  # each server's auth style


@pytest.fixture
async def served(tmp_path):
    """A service in front of a simulator of the given flavour (its own database, the flavour's auth
    style): ``await served("trueai", credits={...}, video=False)`` gives (sim, jobs, view, harness)."""
    made: list[tuple[ProxySim, Harness]] = []

    async def make(flavour: str, *, credits: dict | None = None, **options):
        sim = ProxySim(secret=PROXY_SECRET, flavour=flavour, **options)
        await sim.start()
        h = Harness(sim, tmp_path / f"{flavour}{len(made)}.sqlite3", credits=credits)
        h.settings.proxy.auth = AUTH_OF.get(flavour, "mj-api-secret")
        made.append((sim, h))
        jobs, view = await h.start()
        return sim, jobs, view, h

    yield make
    for sim, h in made:
        await h.stop()
        await sim.stop()


async def grid_of(jobs: JobService, view: RecordingView, sim: ProxySim, owner: int = OWNER):
    job = await jobs.imagine("a red fox", who(owner))
    sim.succeed(job.task_id)
    await view.wait_for(lambda: (s := view.last(job.task_id)) and s.display.phase is Phase.DONE)
    return job
