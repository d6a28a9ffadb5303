"""The push receiver on a real socket, fed by the simulator's notifyHook deliveries."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.core.access import Requester
from bot.core.config import NotifySettings
from bot.core.models import Phase, Status
from bot.jobs import JobService
from bot.ops.notify import NotifyReceiver, new_token
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store
from tests.conftest import FAST_WRITES, RecordingView, make_settings

MEMBER = Requester(user_id=1, guild_id=2, channel_id=3)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Pushed:
    def __init__(self, jobs: JobService, view: RecordingView, receiver: NotifyReceiver) -> None:
        self.jobs, self.view, self.receiver = jobs, view, receiver


@pytest.fixture
async def pushed(sim: ProxySim, tmp_path) -> AsyncIterator[Pushed]:
    """A service whose tasks get pushes; its own polls are rare (every 2 s for pushed tasks)."""
    port = free_port()
    settings = make_settings(sim, tmp_path / "db.sqlite3", poll_interval_s=0.2)
    notify = NotifySettings(listen=f"127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}/mj/notify")
    proxy, store = ProxyClient(settings.proxy), Store(settings.storage.path)
    await store.open()
    jobs, view = JobService(settings, proxy, store, **FAST_WRITES), RecordingView()
    receiver = NotifyReceiver(notify, jobs, await store.meta_value("notify_token", new_token))
    await receiver.start()
    jobs.notify_hook = receiver.hook_url
    await jobs.start(view)
    yield Pushed(jobs, view, receiver)
    await jobs.stop()
    await receiver.stop()
    await proxy.aclose()
    await store.close()


async def test_submits_carry_the_hook_and_pushes_are_applied(pushed: Pushed, sim: ProxySim):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    hook = sim.last_request("/submit/imagine").json["notifyHook"]
    assert hook == pushed.receiver.hook_url and hook.startswith("http://127.0.0.1:")
    await sim.wait_deliveries()
    await pushed.jobs.wait_ticks(1)  # the task now counts as pushed: polled rarely from here on
    polls = sim.count("/task/list-by-condition")
    for _ in range(3):
        sim.advance(job.task_id)
        await sim.wait_deliveries()
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.progress == "80%")
    sim.succeed(job.task_id)
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.phase is Phase.DONE)
    # The pushes did the work: one confirming request per push (4), at most one safety poll.
    assert sim.count("/task/list-by-condition") - polls <= 5
    assert pushed.receiver.received >= 5


async def test_unknown_token_is_refused_and_not_logged(pushed: Pushed, sim: ProxySim, caplog):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    base = pushed.receiver.hook_url.rsplit("/", 1)[0]
    forged = "forged-token-abcdef"
    body = sim.tasks[job.task_id].to_json() | {"status": "SUCCESS", "progress": "100%"}
    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{base}/{forged}", json=body)
            elsewhere = await client.post(f"{base}", json=body)
    assert answer.status_code == 404 and elsewhere.status_code in (404, 405)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert "unknown token" in ours
    assert forged not in ours and pushed.receiver.hook_url.rsplit("/", 1)[1] not in ours
    assert (await pushed.jobs.store.get_job(job.task_id)).status is Status.SUBMITTED


async def test_malformed_push_is_refused(pushed: Pushed):
    async with httpx.AsyncClient() as client:
        answer = await client.post(pushed.receiver.hook_url, content=b"<html>oops</html>")
    assert answer.status_code == 400


async def test_duplicate_pushes_change_nothing(pushed: Pushed, sim: ProxySim):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    await sim.wait_deliveries()
    sim.duplicate_next_deliveries(3)
    sim.advance(job.task_id)
    await sim.wait_deliveries()
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.progress == "10%")
    shows = len(pushed.view.of(job.task_id))
    sim.advance(job.task_id)
    await sim.wait_deliveries()
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.progress == "40%")
    assert len(pushed.view.of(job.task_id)) == shows + 1  # one edit per state, not per delivery


async def test_out_of_order_pushes_change_nothing(pushed: Pushed, sim: ProxySim):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    await sim.wait_deliveries()
    sim.reorder_deliveries(True)
    for _ in range(3):
        sim.advance(job.task_id)
    sim.succeed(job.task_id)
    await sim.flush_deliveries()  # SUCCESS arrives first, then 80%, 40%, 10%
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.phase is Phase.DONE)
    stored = await pushed.jobs.store.get_job(job.task_id)
    assert stored.status is Status.SUCCESS and stored.progress == "100%"
    assert all(s.display.phase is not Phase.RUNNING for s in pushed.view.of(job.task_id))


async def test_lost_push_is_recovered_by_polling(pushed: Pushed, sim: ProxySim):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    await sim.wait_deliveries()
    sim.drop_next_deliveries(1, task_id=job.task_id)
    sim.succeed(job.task_id)
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.phase is Phase.DONE, timeout=10)
    assert any(d.error == "dropped" for d in sim.deliveries)


async def test_late_progress_does_not_move_a_job_backwards(pushed: Pushed, sim: ProxySim):
    job = await pushed.jobs.imagine("a fox", MEMBER)
    await sim.wait_deliveries()
    sim.reorder_deliveries(True)
    for _ in range(3):
        sim.advance(job.task_id)
    await sim.flush_deliveries()  # 80% arrives first, then 40% and 10%
    await pushed.view.wait_for(lambda: pushed.view.last(job.task_id).display.progress == "80%")
    await sim.wait_deliveries()
    assert [s.display.progress for s in pushed.view.of(job.task_id)] == [None, "80%"]
    assert (await pushed.jobs.store.get_job(job.task_id)).progress == "80%"


async def test_a_forged_push_with_the_real_token_changes_nothing(pushed: Pushed, sim: ProxySim):
    """The push URL, token included, is in every task's properties.notifyHook, which anyone who can
    call the proxy can read: a push is confirmed with the proxy before anything is shown."""
    job = await pushed.jobs.imagine("a fox", MEMBER)
    await sim.wait_deliveries()
    confirmations = sim.count("/task/list-by-condition")
    forged = sim.tasks[job.task_id].to_json() | {
        "status": "SUCCESS",
        "progress": "100%",
        "imageUrl": "https://evil.example/anything.png",
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(pushed.receiver.hook_url, json=forged)
    assert answer.status_code == 200  # taken as a signal...
    await sim.wait_for(lambda: sim.count("/task/list-by-condition") > confirmations)  # ...and checked
    await pushed.jobs.wait_ticks(1)
    stored = await pushed.jobs.store.get_job(job.task_id)
    assert stored.status is Status.SUBMITTED and stored.image_url is None
    assert all(s.display.phase is not Phase.DONE for s in pushed.view.of(job.task_id))


async def test_pushes_arriving_together_are_confirmed_with_one_request(pushed: Pushed, sim: ProxySim):
    jobs = [await pushed.jobs.imagine(f"fox {n}", MEMBER) for n in range(sim.max_running)]
    await sim.wait_deliveries()
    for job in jobs:  # a first step: its pushes make the tasks count as pushed (polled every 2 s)
        sim.advance(job.task_id)
    await sim.wait_for(lambda: all(j.task_id in pushed.jobs._pushed for j in jobs))
    await sim.wait_deliveries()
    before = sim.count("/task/list-by-condition")
    # The first confirmation is slow: pushes arriving meanwhile wait for one request together.
    sim.fail_next("/task/list-by-condition", "delay:0.3")
    for job in jobs:
        sim.advance(job.task_id)
    await sim.wait_deliveries()
    await pushed.view.wait_for(lambda: all(pushed.view.last(j.task_id).display.progress == "40%" for j in jobs))
    confirmations = [r for r in sim.requests if r.path.endswith("/task/list-by-condition")][before:]
    assert len(confirmations) < len(jobs)  # batched, not one per push
    assert max(len(r.json["ids"]) for r in confirmations) > 1
