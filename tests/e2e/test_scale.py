"""Push delivery and the per-channel write budget with the real bot process."""

from __future__ import annotations

import socket

from tests.discord_double import DiscordDouble
from tests.e2e.test_imagine_flow import public_messages, wait_final, wait_public
from tests.proxy_sim import ProxySim


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_push_finishes_jobs_without_waiting_for_a_poll(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    port = free_port()
    # Polls every 30 s: only a push can bring the result sooner.
    configure(poll_interval_s=30, extra=f'[notify]\nlisten = "127.0.0.1:{port}"\n'
                                        f'public_url = "http://127.0.0.1:{port}/mj/notify"\n')
    bot = await start_bot()
    await dd.slash("imagine", {"prompt": "pushed fox"})
    message = await wait_public(dd, 1)
    task_id = next(iter(sim.tasks))
    assert sim.tasks[task_id].notify_hook.startswith(f"http://127.0.0.1:{port}/mj/notify/")
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="10% by push")
    sim.succeed(task_id)
    await wait_final(dd, message, timeout=5)
    assert all(d.http_status == 200 for d in sim.deliveries)
    token = sim.tasks[task_id].notify_hook.rsplit("/", 1)[1]
    assert token not in bot.log_text()
