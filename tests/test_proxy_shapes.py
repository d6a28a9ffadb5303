"""The proxy client meets what the real servers send, not only the friendly shapes.

Each body here is the shape the named server source file produces (see
../shared/docs/mj-proxy-contract.md, "What the servers really send"); the simulator serves it
over real HTTP.
"""

from __future__ import annotations

import pytest

from bot.core.config import ProxySettings
from bot.core.errors import (
    BannedPrompt,
    InvalidSubmit,
    ProxyActionNotAllowed,
    ProxyAuthFailed,
    ProxyEndpointMissing,
    SubmitRefused,
)
from bot.core.i18n import error_text
from bot.core.text import MAX_CONTENT
from bot.proxy.client import ProxyClient
from bot.proxy.media_guard import MediaGuard, MediaRefused
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET

INDEX_HTML = (
    '<!doctype html><html lang="zh"><head><title>New API</title></head><body><div id="root"></div></body></html>'
)


async def test_a_web_page_on_http_200_is_no_such_endpoint(sim: ProxySim, proxy: ProxyClient):
    """new-api router/web-router.go: any route it does not relay answers 200 with index.html."""
    sim.fail_next("/task/list", "status:200", body=INDEX_HTML, content_type="text/html")
    with pytest.raises(ProxyEndpointMissing):
        await proxy.recent_tasks()
    # Without a content type too: the body alone says it is a page.
    sim.fail_next("/task/list", "status:200", body="\n  <!DOCTYPE html><html></html>", content_type="text/plain")
    with pytest.raises(ProxyEndpointMissing):
        await proxy.recent_tasks()


async def test_trueai_logic_refusal_on_http_200_shows_the_servers_words(sim: ProxySim, proxy: ProxyClient):
    """trueai CustomLogicExceptionFilterAttribute.cs / Result.cs: {"success": false, "code": -1, "message"}."""
    body = {"success": False, "code": -1, "message": "并发数已达上限", "data": None, "timestamp": 1764160000000}
    sim.fail_next("/submit/imagine", "status:200", body=body)
    with pytest.raises(SubmitRefused) as caught:
        await proxy.submit_imagine("a cat")
    assert "并发数已达上限" in error_text(caught.value, "en")
    assert "并发数已达上限" in error_text(caught.value, "zh-CN")


async def test_new_api_refusal_before_relaying_is_a_refusal_in_its_words(sim: ProxySim, proxy: ProxyClient):
    """new-api middleware/distributor.go: a customId it cannot convert is refused as an error object."""
    body = {
        "error": {
            "message": "无效的请求，unknown_action:MJ::JOB::animate_high::1::abc::SOLO (request id: 2025)",
            "type": "new_api_error",
            "code": "",
        }
    }
    sim.fail_next("/submit/action", "status:400", body=body)
    with pytest.raises(SubmitRefused) as caught:
        await proxy.submit_action("1", "MJ::JOB::animate_high::1::abc::SOLO")
    assert "unknown_action" in error_text(caught.value) and "could not read" not in error_text(caught.value)


async def test_new_api_relay_error_with_a_word_for_a_code_is_a_refusal(sim: ProxySim, proxy: ProxyClient):
    """new-api relay/relay-mj.go: an error object on HTTP 400 whose code may not be a number."""
    body = {
        "description": "unsupported customId: MJ::JOB::animate_high::1::abc::SOLO",
        "type": "upstream_error",
        "code": "convert_request_failed",
    }
    sim.fail_next("/submit/action", "status:400", body=body)
    with pytest.raises(SubmitRefused) as caught:
        await proxy.submit_action("1", "MJ::JOB::animate_high::1::abc::SOLO")
    assert "unsupported customId" in error_text(caught.value)
    body = {"description": "request_convert_failed", "type": "upstream_error", "code": 4}
    sim.fail_next("/submit/action", "status:400", body=body)
    with pytest.raises(InvalidSubmit) as caught:
        await proxy.submit_action("1", "MJ::PicReader::1")
    assert "request_convert_failed" in error_text(caught.value)


async def test_a_key_without_the_model_is_not_wrong_credentials(sim: ProxySim, proxy: ProxyClient):
    """new-api middleware: 403 {"error": {"message": "该令牌无权访问模型 mj_blend"}} is the key's permission."""
    body = {"error": {"message": "该令牌无权访问模型 mj_blend", "type": "new_api_error"}}
    sim.fail_next("/submit/blend", "status:403", body=body)
    with pytest.raises(ProxyActionNotAllowed) as caught:
        await proxy.submit_blend(["data:image/png;base64,AA==", "data:image/png;base64,AA=="], "SQUARE")
    assert caught.value.params["model"] == "mj_blend"
    assert "can't do that" in error_text(caught.value)
    sim.fail_next("/submit/blend", "status:403", body={"error": {"message": "无效的令牌", "type": "new_api_error"}})
    with pytest.raises(ProxyAuthFailed):  # a bad key is still a credentials problem
        await proxy.submit_blend(["data:image/png;base64,AA==", "data:image/png;base64,AA=="], "SQUARE")


@pytest.mark.parametrize(
    ("properties", "description", "ahead"),
    [
        ({"numberOfQueues": 3}, "提交成功", 3),  # new-api relay-mj.go: 22 became 1, the count stays
        ({}, "排队中，前面还有2个任务", 2),  # novicezk's words for the position
        ({}, "提交成功", None),
    ],
)
async def test_queue_position_is_read_whatever_the_code(
    sim: ProxySim, proxy: ProxyClient, properties, description, ahead
):
    sim.fail_next("/submit/imagine", "code:1", description=description, properties=properties, result="1234")
    accepted = await proxy.submit_imagine("a cat")
    assert accepted.task_id == "1234" and accepted.queue_ahead == ahead


async def test_a_long_banned_word_still_fits_in_a_discord_message(sim: ProxySim, proxy: ProxyClient):
    sim.fail_next("/submit/imagine", "code:24", properties={"bannedWord": "x" * 5000}, description="敏感词" * 900)
    with pytest.raises(BannedPrompt) as caught:
        await proxy.submit_imagine("a cat")
    for language in ("en", "zh-CN"):
        text = error_text(caught.value, language)
        assert len(text) <= MAX_CONTENT and "…" in text


# --- what the bot downloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://cdn.example.com/a.png",
        "http://169.254.169.254/latest/meta-data/",  # link-local: a cloud metadata service
        "http://10.0.0.1/a.png",  # private
        "http://192.168.1.1/a.png",
        "http://[::1]:8080/a.png",  # loopback, but not where the proxy is
        "http://127.0.0.2:8080/a.png",
        "not a url",
    ],
)
async def test_images_are_not_fetched_from_addresses_the_bot_should_not_reach(sim: ProxySim, proxy: ProxyClient, url):
    # The guard decides before any connection is made, so nothing is sent to these addresses.
    with pytest.raises(MediaRefused):
        await proxy.download_image(url, max_bytes=1024)


async def test_the_proxys_own_host_and_listed_hosts_are_fetched(sim: ProxySim, proxy: ProxyClient):
    task = sim.add_task("a cat", started=True)
    sim.succeed(task.id)
    data, _ = await proxy.download_image(sim.final_url(task.id), max_bytes=10_000_000)
    assert data == sim.image_bytes(task.id)  # loopback, but the proxy lives there
    guard = MediaGuard("http://proxy.internal:8080/mj", ["cdn.discordapp.com", "*.midjourney.com", "10.1.2.3"])
    await guard.check("https://cdn.midjourney.com/a.png")  # listed: no lookup needed
    await guard.check("http://10.1.2.3/a.png")  # an admin listed a private address
    await guard.check("http://proxy.internal:8080/mj/image/1")  # the proxy's own host
    with pytest.raises(MediaRefused):
        await guard.check("https://example.com/a.png")  # not listed


async def test_a_host_that_resolves_to_a_private_address_is_refused(sim: ProxySim):
    # "localhost" resolves to loopback; with the proxy elsewhere, it is not an image host.
    proxy = ProxyClient(ProxySettings(base_url="http://192.0.2.10:9/mj", secret=PROXY_SECRET))
    try:
        with pytest.raises(MediaRefused, match="non-public"):
            await proxy.download_image(f"http://localhost:{sim.port}/mj/image/x.png", max_bytes=1024)
    finally:
        await proxy.aclose()
    assert not sim.requests  # refused before connecting
