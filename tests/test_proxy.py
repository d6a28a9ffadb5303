"""The proxy client against the simulator: every submit code and error shape, auth, and images."""

from __future__ import annotations

import pytest

from bot.core.config import ProxySettings
from bot.core.errors import (
    BannedPrompt,
    ImageTooLarge,
    InvalidSubmit,
    ParentNotFound,
    ProxyAuthFailed,
    ProxyBadResponse,
    ProxyEndpointMissing,
    ProxyRateLimited,
    ProxySystemError,
    ProxyTimeout,
    ProxyUnreachable,
    QueueFull,
    QuotaExhausted,
    SubmitRefused,
)
from bot.core.models import Action, Status
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def test_imagine_submits_and_fetches_a_task(sim: ProxySim, proxy: ProxyClient):
    accepted = await proxy.submit_imagine("a cat", [PNG])
    assert accepted.task_id in sim.tasks and accepted.queue_ahead is None
    body = sim.last_request("/submit/imagine").json
    assert body == {"prompt": "a cat", "base64Array": [PNG]}
    assert sim.last_request("/submit/imagine").headers["mj-api-secret"] == PROXY_SECRET

    sim.advance(accepted.task_id)  # SUBMITTED -> IN_PROGRESS 10%
    task = await proxy.fetch_task(accepted.task_id)
    assert task is not None and task.id == accepted.task_id
    assert task.status is Status.IN_PROGRESS and task.progress == "10%"
    assert task.image_url == sim.preview_url(accepted.task_id, 1)


async def test_change_sends_action_index_and_reroll_index(sim: ProxySim, proxy: ProxyClient):
    parent = sim.add_task("a dog")
    sim.succeed(parent.id)
    up = await proxy.submit_change(parent.id, Action.UPSCALE, 2)
    assert sim.last_request("/submit/change").json == {"taskId": parent.id, "action": "UPSCALE", "index": 2}
    assert sim.tasks[up.task_id].action == "UPSCALE"
    await proxy.submit_change(parent.id, Action.REROLL, None)
    # new-api refuses a REROLL without an index; the others ignore it.
    assert sim.last_request("/submit/change").json == {"taskId": parent.id, "action": "REROLL", "index": 1}


@pytest.mark.parametrize(
    ("code", "error", "description"),
    [
        (3, ParentNotFound, "关联任务不存在或已失效"),
        (4, InvalidSubmit, "prompt不能为空"),
        (9, ProxySystemError, "系统异常"),
        (23, QueueFull, "队列已满，请稍后尝试"),
        (77, SubmitRefused, "something new"),
    ],
)
async def test_refusal_codes_map_to_errors(sim: ProxySim, proxy: ProxyClient, code, error, description):
    sim.fail_next("/submit/imagine", f"code:{code}", description=description)
    with pytest.raises(error) as caught:
        await proxy.submit_imagine("a cat")
    assert type(caught.value) is error and caught.value.code == code
    # The server's words reach the member: as the reason of a refusal we have no words for, else
    # as the detail under ours.
    said = caught.value.params.get("reason") if error is SubmitRefused else caught.value.detail
    assert said == description


async def test_banned_word_names_the_word(proxy: ProxyClient, sim: ProxySim):
    sim.banned_words = ["nsfwword"]
    with pytest.raises(BannedPrompt) as caught:
        await proxy.submit_imagine("a NSFWword cat")
    assert caught.value.params["banned_word"].lower() == "nsfwword"


async def test_queued_submit_reports_jobs_ahead(sim: ProxySim, proxy: ProxyClient):
    sim.max_running = 1
    await proxy.submit_imagine("first")
    second = await proxy.submit_imagine("second")
    third = await proxy.submit_imagine("third")
    assert second.queue_ahead == 0 and third.queue_ahead == 1


async def test_numeric_task_id_stays_a_string(sim: ProxySim, proxy: ProxyClient):
    sim.fail_next("/submit/imagine", "code:1", description="提交成功", result=1320098173412546)
    accepted = await proxy.submit_imagine("a cat")
    assert accepted.task_id == "1320098173412546"


async def test_new_api_error_body_on_http_400(sim: ProxySim, proxy: ProxyClient):
    sim.fail_next(
        "/submit/imagine", "status:400", body={"description": "quota_not_enough ", "type": "upstream_error", "code": 4}
    )
    with pytest.raises(QuotaExhausted) as caught:
        await proxy.submit_imagine("a cat")
    assert caught.value.detail == "quota_not_enough" and caught.value.code == 4


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("http500_spring", ProxyBadResponse),
        ("html502", ProxyBadResponse),
        ("empty200", ProxyBadResponse),
        ("malformed", ProxyBadResponse),
        ("unauthorized", ProxyAuthFailed),
        ("status:429", ProxyRateLimited),
    ],
)
async def test_error_shapes_become_typed_errors(sim: ProxySim, proxy: ProxyClient, kind, error):
    sim.fail_next("/submit/imagine", kind)
    with pytest.raises(error) as caught:
        await proxy.submit_imagine("a cat")
    assert PROXY_SECRET not in str(caught.value) and PROXY_SECRET not in str(caught.value.detail)


async def test_slow_proxy_times_out(sim: ProxySim):
    client = ProxyClient(ProxySettings(base_url=sim.base_url, secret=PROXY_SECRET, timeout_s=0.2))
    sim.fail_next("/submit/imagine", "delay:1")
    try:
        with pytest.raises(ProxyTimeout):
            await client.submit_imagine("a cat")
    finally:
        await client.aclose()


async def test_wrong_secret_is_an_auth_error_without_the_secret(sim: ProxySim):
    client = ProxyClient(ProxySettings(base_url=sim.base_url, secret="wrong-secret-123"))
    try:
        with pytest.raises(ProxyAuthFailed) as caught:
            await client.submit_imagine("a cat")
        assert "wrong-secret-123" not in str(caught.value) + repr(client)
    finally:
        await client.aclose()


async def test_unreachable_proxy(sim: ProxySim, proxy: ProxyClient):
    await sim.set_down(True)
    with pytest.raises(ProxyUnreachable):
        await proxy.submit_imagine("a cat")
    await sim.set_down(False)
    assert (await proxy.submit_imagine("a cat")).task_id


@pytest.mark.parametrize("style", ["mj-api-secret", "bearer", "authorization"])
async def test_auth_styles(sim: ProxySim, style):
    client = ProxyClient(ProxySettings(base_url=sim.base_url, secret="k", auth=style))
    sim.secret = None  # accept anything; we look at what was sent
    try:
        await client.list_tasks(["1"])
    finally:
        await client.aclose()
    headers = {k.lower(): v for k, v in sim.last_request("/task/list-by-condition").headers.items()}
    expected = {
        "mj-api-secret": ("mj-api-secret", "k"),
        "bearer": ("authorization", "Bearer k"),
        "authorization": ("authorization", "k"),
    }[style]
    assert headers.get(expected[0]) == expected[1]


async def test_unknown_task_and_list_by_condition(sim: ProxySim, proxy: ProxyClient):
    known = sim.add_task("x")
    assert await proxy.fetch_task("404404404") is None  # novicezk: 200 with an empty body
    tasks = await proxy.list_tasks([known.id, "404404404"])
    assert [t.id for t in tasks] == [known.id]
    assert await proxy.list_tasks([]) == []
    assert sim.count("/task/list-by-condition") == 1  # no request for an empty list


async def test_missing_list_endpoint_is_reported(sim: ProxySim, proxy: ProxyClient):
    sim.fail_next("/task/list-by-condition", "status:404", body="Not Found", content_type="text/plain")
    with pytest.raises(ProxyEndpointMissing):
        await proxy.list_tasks(["1"])


async def test_download_image_with_cap_and_no_secret_to_other_hosts(sim: ProxySim, proxy: ProxyClient):
    task = sim.add_task("x")
    sim.succeed(task.id)
    data, content_type = await proxy.download_image(sim.final_url(task.id), max_bytes=1_000_000)
    assert data == sim.image_bytes(task.id) and content_type == "image/png"
    with pytest.raises(ImageTooLarge):
        await proxy.download_image(sim.final_url(task.id), max_bytes=10)

    async with ProxySim() as cdn:  # another host standing in for a CDN
        other = cdn.add_task("y")
        cdn.succeed(other.id)
        data, _ = await proxy.download_image(cdn.final_url(other.id), max_bytes=1_000_000)
        assert data == cdn.image_bytes(other.id)
        sent = {k.lower() for k in cdn.last_request("/image/" + other.id + ".png").headers}
        assert "mj-api-secret" not in sent and "authorization" not in sent
