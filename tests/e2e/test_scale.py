"""Push delivery and the per-channel write budget with the real bot process."""

from __future__ import annotations

import socket

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.harness import public_messages, wait_final, wait_public


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_push_finishes_jobs_without_waiting_for_a_poll(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    port = free_port()
    # Polls every 30 s: only a push can bring the result sooner.
    configure(
        poll_interval_s=30,
        extra=f'[notify]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}/mj/notify"\n',
    )
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


async def test_fifty_jobs_in_one_channel_get_no_429(bot, dd: DiscordDouble, sim: ProxySim):
    """Discord allows 5 writes per 5 s in a channel: the bot queues its writes within that budget,
    coalesces progress, and puts new messages and final images first."""
    sim.max_running, sim.max_queue = 100, 100
    prompts = [f"fox number {n}" for n in range(50)]
    for prompt in prompts:
        await dd.slash("imagine", {"prompt": prompt})
    await sim.wait_for(lambda: len(sim.tasks) == 50, timeout=30)
    for task_id in list(sim.tasks):
        sim.advance(task_id)  # progress the bot may coalesce or skip
    for task_id in list(sim.tasks):
        sim.succeed(task_id)
    await dd.wait_for(
        lambda: sum(bool(m.current.attachments) for m in public_messages(dd)) == 50, timeout=240, what="50 final images"
    )
    assert dd.rate_limit_hits(dd.channel_id) == 0
    writes = dd.channel_writes(dd.channel_id)
    assert writes <= 50 * 3, writes  # post + final, and a progress edit only when the budget allows
    for message in public_messages(dd):
        assert message.current.attachments[0].data == sim.image_bytes(
            next(t for t in sim.tasks.values() if message.content.startswith(f"**{t.prompt}**")).id
        )
