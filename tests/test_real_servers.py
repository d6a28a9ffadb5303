"""The jobs service against what the real servers send (the simulator's trueai and new-api flavours
follow their source; see ../shared/docs/mj-proxy-contract.md, "What the servers really send")."""

from __future__ import annotations

import pytest

from bot.core.errors import (
    ButtonAlreadyUsed,
    ButtonBusy,
    SubmitRefused,
    SubmitUnconfirmed,
)
from bot.core.i18n import error_text
from bot.core.models import Action, Phase
from bot.jobs import SUBMISSION_GIVE_UP_S
from bot.sandbox.proxy_sim import NEWAPI_INDEX_HTML as INDEX_HTML
from bot.sandbox.proxy_sim import ProxySim
from tests.service_harness import Harness, grid_of, who


@pytest.fixture
async def served(tmp_path):
    """A service in front of a simulator of the given flavour: (simulator, service, view), and its
    restartable harness when asked for (``harness=True``)."""
    made = []

    async def make(flavour: str, *, harness: bool = False, **options):
        secret = "sim-secret-7f3a9c"
        sim = ProxySim(secret=secret, flavour=flavour, **options)
        await sim.start()
        h = Harness(sim, tmp_path / f"{flavour}{len(made)}.sqlite3")
        if flavour == "newapi":
            h.settings.proxy.auth = "bearer"
        elif flavour == "trueai":
            h.settings.proxy.auth = "authorization"
        made.append((sim, h))
        jobs, view = await h.start()
        return (sim, jobs, view, h) if harness else (sim, jobs, view)

    yield make
    for sim, h in made:
        await h.stop()
        await sim.stop()


async def upscale_of(sim: ProxySim, jobs, view):
    grid = await grid_of(jobs, view, sim)
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    sim.succeed(upscale.task_id)
    await view.wait_for(lambda: (s := view.last(upscale.task_id)) and s.display.phase is Phase.DONE)
    return await jobs.store.get_job(upscale.task_id)


def position_of(job, label: str) -> int:
    return next(n for n, b in enumerate(job.buttons) if b.label == label)


# --- trueai ---------------------------------------------------------------------------------------


async def test_buttons_that_share_an_action_and_index_each_submit_once(served):
    """trueai Models/CustomComponentModel.cs: Upscale (Subtle) and (Creative) both upscale image 1."""
    sim, jobs, view = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    subtle, creative = position_of(upscale, "Upscale (Subtle)"), position_of(upscale, "Upscale (Creative)")
    first = await jobs.press(upscale.task_id, subtle, who())
    second = await jobs.press(upscale.task_id, creative, who())  # not "already used"
    assert first.task_id != second.task_id
    strong, soft = position_of(upscale, "Vary (Strong)"), position_of(upscale, "Vary (Subtle)")
    await jobs.press(upscale.task_id, strong, who())
    await jobs.press(upscale.task_id, soft, who())
    for position in (subtle, creative, strong, soft):  # and each of them exactly once
        with pytest.raises(ButtonAlreadyUsed):
            await jobs.press(upscale.task_id, position, who())
    assert sim.count("/submit/action") == 1 + 4  # the U1, then the four presses
    refreshed = await jobs.store.get_job(upscale.task_id)
    assert {("button", p) for p in (subtle, creative, strong, soft)} <= refreshed.used_buttons


async def test_a_refusal_on_http_200_shows_the_servers_reason(served):
    """trueai CustomLogicExceptionFilterAttribute.cs: {"success": false, "code": -1, "message": ...}."""
    sim, jobs, view = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    sim.fail_next("/submit/action", "logic", description="并发数已达上限")
    with pytest.raises(Exception) as caught:
        await jobs.press(upscale.task_id, position_of(upscale, "Vary (Strong)"), who())
    assert "并发数已达上限" in error_text(caught.value)
    await jobs.press(upscale.task_id, position_of(upscale, "Vary (Strong)"), who())  # free again


# --- new-api --------------------------------------------------------------------------------------


async def test_one_edit_per_change_although_the_preview_url_changes_on_every_read(served):
    """new-api relay/relay-mj.go: /mj/image/{id}?rand=<ns> on every read until SUCCESS."""
    sim, jobs, view = await served("newapi")
    job = await jobs.imagine("a fox", who())
    sim.advance(job.task_id)
    sim.gateway_poll()
    await view.wait_for(lambda: (s := view.last(job.task_id)) and s.display.phase is Phase.RUNNING)
    edits = len(view.of(job.task_id))
    await jobs.wait_ticks(5)  # five more polls of an unchanged task, each with a new ?rand=
    assert len(view.of(job.task_id)) == edits


async def test_queue_position_shows_although_new_api_says_code_1(served):
    """new-api relay/relay-mj.go: 22 becomes 1; properties.numberOfQueues keeps the position."""
    sim, jobs, view = await served("newapi", max_running=1)
    await jobs.imagine("runs", who())
    await jobs.imagine("waits first", who())
    queued = await jobs.imagine("waits second", who())
    assert queued.queue_ahead == 1
    await view.wait_for(lambda: (s := view.last(queued.task_id)) and s.display.phase is Phase.QUEUED)


async def test_a_submission_new_api_cannot_confirm_ends_and_frees_its_button(harness, sim):
    """new-api router/web-router.go: GET /mj/task/list is its web page, so a lost answer cannot be
    looked up; the submission ends, the member was told when, and the button works again."""
    h, jobs, view = await harness()
    grid = await grid_of(jobs, view, sim)
    sim.fail_next("/task/list", "status:200", body=INDEX_HTML, content_type="text/html", times=None)
    sim.fail_next("/submit/change", "delay:2.5")  # past the client's 2 s timeout
    with pytest.raises(SubmitUnconfirmed) as caught:
        await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    assert "10 min" in error_text(caught.value)
    with pytest.raises(ButtonBusy):  # still being looked for
        await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    h.now += 60
    await jobs.wait_ticks(2)
    assert await jobs.store.submissions(before=float("inf")) == []
    again = await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    assert again.parent_task_id == grid.task_id


async def test_a_submission_is_given_up_when_the_list_keeps_failing(harness, sim):
    h, jobs, view = await harness()
    grid = await grid_of(jobs, view, sim)
    sim.fail_next("/task/list", "html502", times=None)
    sim.fail_next("/submit/change", "delay:2.5")
    with pytest.raises(SubmitUnconfirmed):
        await jobs.change(grid.task_id, Action.VARIATION, 2, who())
    h.now += 60
    await jobs.wait_ticks(2)
    assert len(await jobs.store.submissions(before=float("inf"))) == 1  # still looked for
    h.now += SUBMISSION_GIVE_UP_S
    await jobs.wait_ticks(2)
    assert await jobs.store.submissions(before=float("inf")) == []


async def test_a_custom_id_new_api_cannot_convert_is_refused_in_its_words(served):
    """new-api middleware/distributor.go: video_virtual_upscale, PicReader, BOOKMARK are refused
    with an error object before relaying: a refusal in the server's words, not an unreadable answer."""
    sim, jobs, view = await served("newapi", upstream="trueai")
    grid = await jobs.imagine("a fox", who())
    sim.succeed(grid.task_id)
    sim.gateway_poll()
    await view.wait_for(lambda: (s := view.last(grid.task_id)) and s.display.phase is Phase.DONE)
    with pytest.raises(SubmitRefused) as caught:
        await jobs.proxy.submit_action(grid.task_id, "MJ::BOOKMARK::abc")
    assert "unknown_action" in error_text(caught.value)
