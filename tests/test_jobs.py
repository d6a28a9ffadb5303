"""The jobs service end to end against the proxy simulator, with an in-memory view and a real
SQLite file: submit, track, change, failures, deadline, and resume in a new service instance."""

from __future__ import annotations

import pytest

from bot.core.access import Requester
from bot.core.errors import (
    BannedPrompt,
    DeliveryForbidden,
    EmptyPrompt,
    JobNotFound,
    JobNotReady,
    ProxyUnreachable,
    QueueFull,
)
from bot.core.models import Action, ImageFile, Phase, Status, parse_local_reason
from bot.jobs import VANISHED_AFTER_MISSES, JobService
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store
from tests.conftest import FAST_WRITES, RecordingView, make_settings

USER, CHANNEL, GUILD = 11, 22, 33


def member(user_id: int = USER, **kw) -> Requester:
    return Requester(
        user_id=user_id, guild_id=kw.pop("guild_id", GUILD), channel_id=kw.pop("channel_id", CHANNEL), **kw
    )


async def imagine(jobs: JobService, prompt: str = "a red fox", who: Requester | None = None, **kw):
    return await jobs.imagine(prompt, who or member(), **kw)


async def finish_grid(jobs: JobService, view: RecordingView, sim: ProxySim):
    job = await imagine(jobs)
    sim.succeed(job.task_id)
    await view.wait_for(lambda: (s := view.last(job.task_id)) and s.display.phase is Phase.DONE)
    return await jobs.store.get_job(job.task_id)


async def test_imagine_is_stored_and_posted_before_returning(service, sim):
    jobs, view = service
    job = await imagine(jobs, "  a   red fox ")
    assert job.prompt == "a red fox"  # whitespace folded
    stored = await jobs.store.get_job(job.task_id)
    assert stored.status is Status.SUBMITTED and stored.owner_id == USER and stored.channel_id == CHANNEL
    first = view.of(job.task_id)
    assert len(first) == 1 and first[0].created and first[0].display.phase is Phase.WAITING
    assert stored.message_id == first[0].message_id


async def test_progress_then_final_image(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    sim.advance(job.task_id)  # 10% with a preview
    await view.wait_for(lambda: (s := view.last(job.task_id)) and s.display.progress == "10%")
    running = view.last(job.task_id)
    assert running.display.phase is Phase.RUNNING and running.display.image_url == sim.preview_url(job.task_id, 1)
    assert not running.created  # the same message, edited

    sim.succeed(job.task_id)
    await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.DONE)
    done = view.last(job.task_id)
    assert done.image is not None and done.image.data == sim.image_bytes(job.task_id)
    assert done.message_id == running.message_id
    stored = await jobs.store.get_job(job.task_id)
    assert stored.status is Status.SUCCESS and stored.finished_at is not None
    assert stored.shows_final and job.task_id not in jobs.tracked_ids


async def test_unchanged_state_is_not_shown_again(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    await jobs.wait_ticks(3)
    assert len(view.of(job.task_id)) == 1  # still SUBMITTED: no edits


async def test_queued_job_shows_jobs_ahead(service, sim):
    jobs, view = service
    sim.max_running = 1
    await imagine(jobs, "first")
    await imagine(jobs, "second")
    third = await imagine(jobs, "third")
    shown = view.last(third.task_id)
    assert shown.display.phase is Phase.QUEUED and shown.display.queue_ahead == 1


async def test_upscale_replies_to_the_grid_and_marks_the_button(service, sim):
    jobs, view = service
    grid = await finish_grid(jobs, view, sim)
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 2, member())
    body = sim.last_request("/submit/change").json
    assert body == {"taskId": grid.task_id, "action": "UPSCALE", "index": 2, "state": upscale.nonce}
    assert upscale.nonce.startswith("mjbot:")
    first = view.of(upscale.task_id)[0]
    assert first.created and first.reply_to == grid.message_id
    assert (upscale.owner_id, upscale.parent_task_id, upscale.parent_index) == (USER, grid.task_id, 2)
    # The grid is edited (not re-uploaded) to show U2 as used.
    await view.wait_for(lambda: view.last(grid.task_id).display.used_buttons == (("UPSCALE", 2),))
    assert view.last(grid.task_id).image is None and not view.last(grid.task_id).created

    sim.succeed(upscale.task_id)
    await view.wait_for(lambda: view.last(upscale.task_id).display.phase is Phase.DONE)
    assert view.last(upscale.task_id).image.data == sim.image_bytes(upscale.task_id)


async def test_reroll_and_variation_make_new_grids(service, sim):
    jobs, view = service
    grid = await finish_grid(jobs, view, sim)
    reroll = await jobs.change(grid.task_id, Action.REROLL, 0, member())
    assert sim.last_request("/submit/change").json["index"] == 1
    variation = await jobs.change(grid.task_id, Action.VARIATION, 3, member())
    for job in (reroll, variation):
        sim.succeed(job.task_id)
    await view.wait_for(lambda: all(view.last(j.task_id).display.phase is Phase.DONE for j in (reroll, variation)))
    assert (await jobs.store.get_job(variation.task_id)).action.makes_grid


async def test_change_refused_for_unknown_or_unfinished_parent(service, sim):
    jobs, _ = service
    with pytest.raises(JobNotFound):
        await jobs.change("123", Action.UPSCALE, 1, member())
    job = await imagine(jobs)
    with pytest.raises(JobNotReady):
        await jobs.change(job.task_id, Action.UPSCALE, 1, member())
    assert sim.count("/submit/change") == 0


async def test_failure_shows_reason(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    sim.fail(job.task_id, "任务超时")
    await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.FAILED)
    assert view.last(job.task_id).display.fail_reason == "任务超时"
    assert job.task_id not in jobs.tracked_ids


async def test_refused_submit_stores_and_shows_nothing(service, sim):
    jobs, view = service
    sim.banned_words = ["gore"]
    with pytest.raises(BannedPrompt):
        await imagine(jobs, "much gore")
    sim.fail_next("/submit/imagine", "code:23", description="队列已满")
    with pytest.raises(QueueFull):
        await imagine(jobs)
    with pytest.raises(EmptyPrompt):
        await imagine(jobs, "   ")
    await sim.set_down(True)
    with pytest.raises(ProxyUnreachable):
        await imagine(jobs)
    assert view.shown == [] and await jobs.store.unfinished_jobs() == []


async def test_reference_image_goes_as_data_url(service, sim):
    jobs, _ = service
    await imagine(jobs, image=ImageFile("ref.png", b"\x89PNG fake", "image/png"))
    assert sim.last_request("/submit/imagine").json["base64Array"] == ["data:image/png;base64,iVBORyBmYWtl"]


async def test_deadline_fails_a_stuck_task(sim, tmp_path):
    now = [1000.0]
    settings = make_settings(sim, tmp_path / "db.sqlite3", deadline_s=60)
    proxy, store = ProxyClient(settings.proxy), Store(settings.storage.path)
    await store.open()
    jobs, view = JobService(settings, proxy, store, clock=lambda: now[0], **FAST_WRITES), RecordingView()
    await jobs.start(view)
    try:
        job = await imagine(jobs)
        await jobs.wait_ticks(2)
        assert view.last(job.task_id).display.phase is Phase.WAITING
        now[0] += 61
        await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.FAILED)
        reason = parse_local_reason(view.last(job.task_id).display.fail_reason)
        assert reason == ("fail.deadline", {"duration": "60 s"})
    finally:
        await jobs.stop()
        await proxy.aclose()
        await store.close()


async def test_vanished_task_is_failed_after_repeated_misses(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    sim.forget(job.task_id)
    await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.FAILED)
    assert "lost" in view.last(job.task_id).display.fail_reason
    assert sim.count(f"/task/{job.task_id}/fetch") >= VANISHED_AFTER_MISSES


async def test_falls_back_to_fetch_without_list_by_condition(service, sim):
    jobs, view = service
    sim.fail_next("/task/list-by-condition", "status:404", times=None, body="Not Found", content_type="text/plain")
    job = await imagine(jobs)
    sim.succeed(job.task_id)
    await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.DONE)
    assert sim.count(f"/task/{job.task_id}/fetch") >= 1


async def test_tracking_survives_proxy_outage(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    await sim.set_down(True)
    await jobs.wait_ticks(2)  # ticks fail and back off; the loop keeps going
    await sim.set_down(False)
    sim.succeed(job.task_id)
    await view.wait_for(lambda: view.last(job.task_id).display.phase is Phase.DONE, timeout=10)


async def test_one_list_request_per_tick_for_many_tasks(service, sim):
    jobs, _ = service
    sim.max_running, sim.max_queue = 100, 100
    for n in range(25):
        await imagine(jobs, f"fox {n}")
    await jobs.wait_ticks(1)
    before = sim.count("/task/list-by-condition")
    await jobs.wait_ticks(3)
    assert sim.count("/task/list-by-condition") - before in (3, 4)
    assert len(sim.last_request("/task/list-by-condition").json["ids"]) == 25


async def test_deleted_message_stops_edits(service, sim):
    jobs, view = service
    job = await imagine(jobs)
    view.gone.add(view.last(job.task_id).message_id)
    sim.advance(job.task_id)
    await jobs.wait_ticks(2)
    sim.succeed(job.task_id)
    await jobs.wait_ticks(2)
    assert len(view.of(job.task_id)) == 1
    assert (await jobs.store.get_job(job.task_id)).message_gone


async def test_missing_permission_is_raised_but_task_is_kept(service, sim):
    jobs, view = service
    view.forbidden = True
    with pytest.raises(DeliveryForbidden):
        await imagine(jobs)
    assert len(await jobs.store.unfinished_jobs()) == 1


async def test_new_service_resumes_same_message_and_buttons(sim, tmp_path):
    settings = make_settings(sim, tmp_path / "db.sqlite3")

    async def open_service() -> tuple[JobService, RecordingView, ProxyClient, Store]:
        proxy, store = ProxyClient(settings.proxy), Store(settings.storage.path)
        await store.open()
        jobs, view = JobService(settings, proxy, store, **FAST_WRITES), RecordingView()
        await jobs.start(view)
        return jobs, view, proxy, store

    async def close(jobs, proxy, store):
        await jobs.stop()
        await proxy.aclose()
        await store.close()

    jobs, view, proxy, store = await open_service()
    grid = await finish_grid(jobs, view, sim)
    running = await imagine(jobs, "a slow fox")
    sim.advance(running.task_id)
    await view.wait_for(lambda: view.last(running.task_id).display.phase is Phase.RUNNING)
    message_id = view.last(running.task_id).message_id
    await close(jobs, proxy, store)

    sim.succeed(running.task_id)  # finishes while no bot runs
    jobs, view, proxy, store = await open_service()
    try:
        await view.wait_for(lambda: (s := view.last(running.task_id)) and s.display.phase is Phase.DONE)
        done = view.last(running.task_id)
        assert done.message_id == message_id and not done.created  # the same message, not a new one
        assert done.image.data == sim.image_bytes(running.task_id)
        # A button on the grid posted by the old instance still works.
        upscale = await jobs.change(grid.task_id, Action.UPSCALE, 1, member())
        assert view.of(upscale.task_id)[0].reply_to == grid.message_id
    finally:
        await close(jobs, proxy, store)


async def test_crash_before_final_edit_is_repaired_at_start(sim, tmp_path):
    """The final state reached SQLite but the process died before editing Discord."""
    settings = make_settings(sim, tmp_path / "db.sqlite3")
    proxy, store = ProxyClient(settings.proxy), Store(settings.storage.path)
    await store.open()
    jobs = JobService(settings, proxy, store, **FAST_WRITES)
    view = RecordingView()
    await jobs.start(view)
    job = await imagine(jobs)
    await jobs.stop()
    sim.succeed(job.task_id)
    stored = await store.get_job(job.task_id)
    # What the tracker writes first, without the delivery that would follow it:
    await store.update_job(
        stored.with_changes(status=Status.SUCCESS, image_url=sim.final_url(job.task_id), finished_at=2.0),
        ["status", "image_url", "finished_at"],
    )
    jobs2, view2 = JobService(settings, proxy, store, **FAST_WRITES), RecordingView()
    await jobs2.start(view2)
    try:
        await view2.wait_for(lambda: view2.last(job.task_id) is not None)
        assert view2.last(job.task_id).display.phase is Phase.DONE and not view2.last(job.task_id).created
    finally:
        await jobs2.stop()
        await proxy.aclose()
        await store.close()
