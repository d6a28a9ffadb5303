"""One of the processes of the two-process credits test (``tests/test_credits.py``): a jobs service
over a shared PostgreSQL database, against the simulator, that fires ``count`` concurrent imagines by
one member when told "go" on stdin, and prints what became of them as JSON.

    python -m tests.credits_worker POSTGRES_URL PROXY_BASE_URL COUNT
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.core.access import Requester
from bot.core.config import Settings
from bot.core.errors import NotEnoughCredits
from bot.core.models import Job
from bot.jobs import JobService
from bot.proxy.client import ProxyClient
from bot.storage import Store
from tests.conftest import PROXY_SECRET, RecordingView

MEMBER = Requester(user_id=11, guild_id=100, channel_id=200)
CREDITS = {"enabled": True, "starting_balance": 1, "prices": {"mj_imagine": 0.1}}


async def main(url: str, proxy_url: str, count: int) -> dict[str, object]:
    settings = Settings(
        proxy={"base_url": proxy_url, "secret": PROXY_SECRET, "timeout_s": 10},
        storage={"url": url},
        limits={"max_running_per_user": 0},
        credits=CREDITS,
    )
    store = Store(url)
    await store.open()
    proxy = ProxyClient(settings.proxy)
    jobs = JobService(settings, proxy, store)
    await jobs.start(RecordingView())
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        results = await asyncio.gather(
            *(jobs.imagine(f"fox {n}", MEMBER) for n in range(count)), return_exceptions=True
        )
    finally:
        await jobs.stop()
        await proxy.aclose()
        await store.close()
    return {
        "submitted": sum(isinstance(r, Job) for r in results),
        "refused": sum(isinstance(r, NotEnoughCredits) for r in results),
        "other": [repr(r) for r in results if not isinstance(r, (Job, NotEnoughCredits))],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))), flush=True)
