"""The real bot against the simulator's real-shaped trueai and new-api, through the Discord double,
which refuses what Discord refuses (issue: what the real servers send). Each scenario names the
server source file whose behaviour it meets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.flavours import GatewaySim
from tests.e2e.harness import (
    PNG_TYPE,
    alerts,
    answer_to,
    custom_id,
    eventually,
    free_port,
    imagine_grid,
    picture,
    public_messages,
    upscaled,
    wait_final,
    wait_public,
)


@pytest.fixture(params=["trueai"])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[ProxySim]:
    """trueai unless a test asks for another flavour with ``@pytest.mark.parametrize("sim", [...], indirect=True)``."""
    flavour, options = (request.param, {}) if isinstance(request.param, str) else request.param
    server = (
        GatewaySim(secret=PROXY_SECRET, flavour=flavour, **options)
        if flavour == "newapi"
        else ProxySim(secret=PROXY_SECRET, flavour=flavour, **options)
    )
    async with server:
        yield server


async def ephemeral_answer(dd: DiscordDouble, interaction) -> str:
    return await answer_to(dd, interaction)


async def test_trueai_upscale_with_custom_emoji_reaches_discord(bot, dd: DiscordDouble, sim: ProxySim):
    """trueai CustomComponentModel.cs: Upscale (Subtle)/(Creative) carry "upscale_1", which Discord
    refuses as an emoji; the final message must still be accepted, with each button working once."""
    up_task, upscale = await upscaled(dd, sim)
    assert not dd.refusals, [r.form_errors for r in dd.refusals]
    labels = [b.get("label") for row in upscale.current.components for b in row["components"]]
    assert "Upscale (Subtle)" in labels and "Upscale (Creative)" in labels
    await dd.click(upscale.id, custom_id(upscale, "Upscale (Subtle)"))
    await wait_public(dd, 3)
    await dd.click(upscale.id, custom_id(upscale, "Upscale (Creative)"))  # same action and index
    await wait_public(dd, 4)
    assert sim.count("/submit/action") == 3
    again = await dd.click(upscale.id, custom_id(upscale, "Upscale (Creative)"))
    assert "already used" in await ephemeral_answer(dd, again)
    assert sim.count("/submit/action") == 3 and not dd.refusals


async def test_trueai_refusal_on_http_200_is_shown_in_its_words(bot, dd: DiscordDouble, sim: ProxySim):
    """trueai CustomLogicExceptionFilterAttribute.cs: {"success": false, "code": -1, "message"}."""
    _, upscale = await upscaled(dd, sim)
    sim.fail_next("/submit/action", "logic", description="并发数已达上限")
    click = await dd.click(upscale.id, custom_id(upscale, "Vary (Strong)"))
    assert "并发数已达上限" in await ephemeral_answer(dd, click)
    assert len(public_messages(dd)) == 2


async def test_forged_push_with_the_real_token_posts_nothing(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    """novicezk/trueai echo notifyHook in properties: the token is readable by any caller of the
    proxy, so a push is confirmed with the proxy before anything is shown."""
    port = free_port()
    configure(
        poll_interval_s=30,
        extra=f'[notify]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}/mj/notify"\n',
    )
    await start_bot()
    await dd.slash("imagine", {"prompt": "a fox"})
    message = await wait_public(dd, 1)
    task = next(iter(sim.tasks.values()))
    hook = (await sim_task_json(sim, task.id))["properties"]["notifyHook"]  # what anyone can read
    forged = task.to_json() | {"status": "SUCCESS", "progress": "100%", "imageUrl": sim.final_url(task.id)}
    asked = sim.count("/task/list-by-condition")
    async with httpx.AsyncClient() as client:
        assert (await client.post(hook, json=forged)).status_code == 200
    await sim.wait_for(lambda: sim.count("/task/list-by-condition") > asked)  # the bot asked the proxy
    sim.advance(task.id)  # the real next step arrives by push, and is shown at once
    await dd.wait_for(lambda: "10%" in message.content, what="the confirmed progress")
    assert not message.current.attachments and "SUCCESS" not in message.content
    sim.succeed(task.id)
    await wait_final(dd, message)


async def sim_task_json(sim: ProxySim, task_id: str) -> dict:
    headers = {"Authorization": PROXY_SECRET} if sim.flavour == "trueai" else {"mj-api-secret": PROXY_SECRET}
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as client:
        return (await client.get(f"/task/{task_id}/fetch")).json()


@pytest.mark.parametrize("sim", [("newapi", {"max_running": 1})], indirect=True)
async def test_new_api_queue_position_is_shown(bot, dd: DiscordDouble, sim: ProxySim):
    """new-api relay/relay-mj.go: 22 becomes 1, the position stays in properties.numberOfQueues."""
    for prompt in ("runs", "waits first", "waits second"):
        await dd.slash("imagine", {"prompt": prompt})
    third = await wait_public(dd, 3)
    await dd.wait_for(lambda: "Queued: 1 ahead" in third.content, what="the queue position")


@pytest.mark.parametrize("sim", ["newapi"], indirect=True)
async def test_new_api_preview_costs_one_edit_per_change(bot, dd: DiscordDouble, sim: ProxySim):
    """new-api relay/relay-mj.go: the preview is /mj/image/{id}?rand=<ns>, new on every read."""
    await dd.slash("imagine", {"prompt": "a fox"})
    message = await wait_public(dd, 1)
    task = next(iter(sim.tasks))
    sim.advance(task)
    await dd.wait_for(lambda: "10%" in message.content, what="progress")
    edits = len(message.versions)
    reads = sim.count("/task/list-by-condition")
    await sim.wait_for(lambda: sim.count("/task/list-by-condition") >= reads + 10)  # ten polls later
    assert len(message.versions) == edits


@pytest.mark.parametrize("sim", ["newapi"], indirect=True)
async def test_new_api_lost_answer_ends_and_the_button_works_again(bot, dd: DiscordDouble, sim: ProxySim):
    """new-api router/web-router.go: GET /mj/task/list is the web page, so a submit whose answer was
    lost cannot be looked up: the member is told when to retry, and then the button works."""
    _, grid = await imagine_grid(dd, sim, "a harbour")
    sim.fail_next("/submit/change", "delay:2.5")  # past the bot's 2 s timeout
    first = await dd.click(grid.id, custom_id(grid, "U2"))
    assert "did not answer in time" in await ephemeral_answer(dd, first)
    busy = await dd.click(grid.id, custom_id(grid, "U2"))
    assert "just pressed" in await ephemeral_answer(dd, busy)
    # Given up once the timeout and grace have passed (about 12 s), never "busy" for good.
    await eventually(lambda: "could not be confirmed" in bot.log_text(), timeout=30, what="the give-up")
    count = len(public_messages(dd))
    await dd.click(grid.id, custom_id(grid, "U2"))
    await wait_public(dd, count + 1)


@pytest.mark.parametrize("sim", [("newapi", {"denied_models": {"mj_blend"}})], indirect=True)
async def test_new_api_key_without_the_model_says_the_server_cannot(
    start_bot, configure, dd: DiscordDouble, sim: ProxySim
):
    """new-api: 403 {"error": {"message": "该令牌无权访问模型 mj_blend"}} is the key's permission."""
    configure(extra=f"[alerts]\nchannel_id = {dd.second_channel_id}\n")
    await start_bot()
    images = {f"image{n}": (f"{n}.png", picture(sim), PNG_TYPE) for n in (1, 2)}
    interaction = await dd.slash("blend", {"dimensions": "SQUARE"}, attachments=images)
    assert "can't do that" in await answer_to(dd, interaction)
    await dd.wait_for(lambda: any("mj_blend" in text for text in alerts(dd)), what="the admins' alert")


async def test_long_proxy_text_is_bounded(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    """A ban word and a failReason of any length: the refusal and the alert still reach Discord."""
    configure(extra=f"[alerts]\nchannel_id = {dd.second_channel_id}\nfailure_run = 1\n")
    await start_bot()
    sim.fail_next("/submit/imagine", "code:24", properties={"bannedWord": "狼" * 3000})
    interaction = await dd.slash("imagine", {"prompt": "a wolf"})
    await dd.wait_for(
        lambda: interaction.original is not None and not interaction.original.current.loading, what="the refusal"
    )
    assert "does not allow" in interaction.original.content and "…" in interaction.original.content
    await dd.slash("imagine", {"prompt": "a fox"})
    message = await wait_public(dd, 1)
    sim.fail(next(iter(sim.tasks)), "账号异常 " * 800)
    await dd.wait_for(lambda: "Failed" in message.content, what="the failure")
    await dd.wait_for(lambda: alerts(dd), what="the alert")
    assert len(message.content) <= 2000 and len(alerts(dd)[0]) <= 2000 and "…" in alerts(dd)[0]
    assert not dd.refusals
