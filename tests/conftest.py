"""Shared fixtures: a proxy simulator on loopback, settings pointing at it, a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core.config import (
    AccessSettings,
    DiscordSettings,
    LimitsSettings,
    ProxySettings,
    Settings,
    StorageSettings,
    TrackingSettings,
    is_postgres_url,
)
from bot.core.credits import CreditsSettings
from bot.core.errors import DeliveryError, DeliveryForbidden, MessageGone
from bot.core.models import Display, ImageFile, Job, MediaNote
from bot.jobs import JobService
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store

# The restartable service harness and its fixture, for the rules and real-servers tests.
pytest_plugins = ["tests.service_harness", "tests.pg_server"]

PROXY_SECRET = "sim-secret-7f3a9c"
# Service tests check behaviour, not Discord's pace: no channel write budget to wait on.
FAST_WRITES = {"writes_per_window": 10_000, "write_window_s": 1.0}


@pytest.fixture
async def sim() -> AsyncIterator[ProxySim]:
    async with ProxySim(secret=PROXY_SECRET) as server:
        yield server


def make_settings(
    sim: ProxySim,
    db_path: Path,
    *,
    access: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    credits: dict[str, Any] | None = None,
    **tracking: Any,
) -> Settings:
    """Settings for tests: fast polling, and no per-user limits unless a test sets them. ``db_path``
    may be a PostgreSQL URL."""
    where = str(db_path)
    return Settings(
        discord=DiscordSettings(token="discord-token-not-real"),
        proxy=ProxySettings(base_url=sim.base_url, secret=PROXY_SECRET, timeout_s=2),
        storage=StorageSettings(url=where) if is_postgres_url(where) else StorageSettings(path=where),
        credits=CreditsSettings(**(credits or {})),
        tracking=TrackingSettings(**{"poll_interval_s": 0.02, "deadline_s": 900, **tracking}),
        access=AccessSettings(**(access or {})),
        limits=LimitsSettings(**{"max_running_per_user": 0, **(limits or {})}),
    )


@pytest.fixture
def settings(sim: ProxySim, tmp_path: Path) -> Settings:
    return make_settings(sim, tmp_path / "mjbot.sqlite3")


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[ProxyClient]:
    client = ProxyClient(settings.proxy)
    yield client
    await client.aclose()


@dataclass
class Shown:
    task_id: str
    message_id: int
    display: Display
    files: tuple[ImageFile, ...]
    reply_to: int | None
    created: bool
    note: MediaNote | None = None

    @property
    def image(self) -> ImageFile | None:
        return self.files[0] if self.files else None


class RecordingView:
    """The jobs service's view, in memory: records every show and hands out message ids."""

    def __init__(self) -> None:
        self.shown: list[Shown] = []
        self.gone: set[int] = set()
        self.forbidden = False
        self.posted: dict[int, str] = {}  # message id -> task id, as a channel's history would tell
        self.lose_next_answer = False  # post the message, then fail as if the answer never came
        self.limit = 10 * 1024 * 1024  # Discord's upload limit per file, without boosts
        self._next_id = 900_000_000_000_000_000
        self._changed = asyncio.Condition()

    def lane(self, job: Job, origin: object | None = None) -> int:
        return job.channel_id

    def upload_limit(self, job: Job) -> int:
        return self.limit

    async def show(
        self,
        job: Job,
        display: Display,
        *,
        files: Sequence[ImageFile] = (),
        reply_to: int | None,
        origin: object | None = None,
    ) -> int:
        assert all(len(file.data) <= self.limit for file in files), "delivery must fit the upload limit"
        if self.forbidden:
            raise DeliveryForbidden("no send permission", permission="Send Messages")
        if job.message_id in self.gone:
            raise MessageGone(f"message {job.message_id} deleted")
        created = job.message_id is None
        if created:
            self._next_id += 1
            self.posted[self._next_id] = job.task_id
            if self.lose_next_answer:
                self.lose_next_answer = False
                raise DeliveryError("connection reset after posting")
        message_id = job.message_id or self._next_id
        async with self._changed:
            self.shown.append(Shown(job.task_id, message_id, display, tuple(files), reply_to, created, job.media_note))
            self._changed.notify_all()
        return message_id

    async def posted_files(self, job: Job) -> tuple[ImageFile, ...]:
        """What the job's message carries: the files of its last show that attached any."""
        if job.message_id in self.gone:
            return ()
        return next((s.files for s in reversed(self.of(job.task_id)) if s.files), ())

    async def find_posted(self, job: Job) -> list[int]:
        return sorted((m for m, t in self.posted.items() if t == job.task_id), reverse=True)

    def of(self, task_id: str) -> list[Shown]:
        return [s for s in self.shown if s.task_id == task_id]

    def last(self, task_id: str) -> Shown | None:
        shown = self.of(task_id)
        return shown[-1] if shown else None

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        return predicate()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    db = Store(settings.storage.path)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
async def service(
    settings: Settings, proxy: ProxyClient, store: Store
) -> AsyncIterator[tuple[JobService, RecordingView]]:
    jobs = JobService(settings, proxy, store, **FAST_WRITES)
    view = RecordingView()
    await jobs.start(view)
    yield jobs, view
    await jobs.stop()
