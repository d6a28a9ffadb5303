"""A refused /imagine gets an ephemeral answer for the member who asked, and nothing public."""

from __future__ import annotations

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.flavours import sim  # noqa: F401  (every scenario runs against each server)
from tests.e2e.harness import public_messages, wait_public


async def refused(dd: DiscordDouble, prompt: str = "a cat", **slash_options) -> str:
    member = dd.members[1]
    interaction = await dd.slash("imagine", {"prompt": prompt}, user=member, **slash_options)
    await dd.wait_for(
        lambda: interaction.original is not None and not interaction.original.current.loading,
        what="the ephemeral answer",
    )
    answer = interaction.original
    assert answer.ephemeral and interaction.user_id == member
    assert public_messages(dd) == []
    return answer.content


async def test_banned_word(bot, dd: DiscordDouble, sim: ProxySim):
    sim.banned_words = ["gore"]
    if sim.flavour == "trueai":  # trueai accepts the prompt and fails the task
        await dd.slash("imagine", {"prompt": "lots of gore"})
        message = await wait_public(dd, 1)
        sim.advance(next(iter(sim.tasks)))  # it fails once it starts
        await dd.wait_for(lambda: "(Failed: Banned prompt detected: gore)" in message.content, what="failure")
        return
    text = await refused(dd, "lots of gore")
    assert 'does not allow: "gore"' in text and "可能包含敏感词" in text


async def test_queue_full(bot, dd: DiscordDouble, sim: ProxySim):
    sim.max_running, sim.max_queue = 0, 0
    text = await refused(dd)
    assert "queue is full" in text and "队列已满" in text


async def test_proxy_down(bot, dd: DiscordDouble, sim: ProxySim):
    await sim.set_down(True)
    assert "unreachable" in await refused(dd)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("unauthorized", "rejected the bot's credentials"),
        ("html502", "could not read"),
        ("malformed", "could not read"),
        ("empty200", "could not read"),
        ("http500_spring", "could not read"),
        ("code:4", "rejected the request as invalid"),
        ("code:3", "no longer knows"),
        ("code:9", "internal error"),
        ("delay:2.5", "did not answer in time"),
    ],
)
async def test_other_refusals(bot, dd: DiscordDouble, sim: ProxySim, kind, expected):
    sim.fail_next("/submit/imagine", kind, description="来自服务器的说明")
    text = await refused(dd)
    assert expected in text
    if kind.startswith("code:"):
        assert "来自服务器的说明" in text  # the server's own words, as detail


async def test_attachment_that_is_not_an_image(bot, dd: DiscordDouble, sim: ProxySim):
    text = await refused(dd, attachments={"image": ("notes.txt", b"hello", "text/plain")})
    assert "not an image" in text
    assert sim.count("/submit/imagine") == 0


async def test_reference_image_is_sent_as_data_url(bot, dd: DiscordDouble, sim: ProxySim):
    png = sim.image_bytes(sim.add_task("seed").id)
    await dd.slash("imagine", {"prompt": "like this"}, attachments={"image": ("ref.png", png, "image/png")})
    await dd.wait_for(lambda: sim.count("/submit/imagine") == 1, what="the submit")
    import base64

    sent = sim.last_request("/submit/imagine").json["base64Array"]
    assert sent == ["data:image/png;base64," + base64.b64encode(png).decode()]


async def test_empty_prompt(bot, dd: DiscordDouble, sim: ProxySim):
    assert "prompt is empty" in await refused(dd, "   ")
    assert sim.count("/submit/imagine") == 0


async def test_wrong_secret(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    configure(secret="not-the-secret")
    await start_bot()
    assert "rejected the bot's credentials" in await refused(dd)


async def test_gateway_out_of_quota(bot, dd: DiscordDouble, sim: ProxySim):
    if sim.flavour != "newapi":
        pytest.skip("only the new-api gateway sells quota")
    sim.quota_exhausted = True
    assert "run out of credit" in await refused(dd)
