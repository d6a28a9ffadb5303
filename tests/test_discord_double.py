"""Self-test of the Discord double (bot/sandbox/discord_double) with a real, unmodified discord.py client.

A tiny ``commands.Bot`` (not mjbot) with a slash command
``/echo text:str n:int file:Attachment(optional)`` and a persistent
``DynamicItem`` button proves that the double supports: login and on_ready,
command sync with options, deferred ephemeral replies edited later, public
posts with files and buttons, clicks reaching a DynamicItem, edits adding
attachments, replies, injected 429/404/403 answers, dropping the gateway and
RESUMing (with replay of missed events), attachment options, and a clean
shutdown.  A second command, ``/panel``, answers with the remaining callback
types: a message (4), an update of the clicked message (7), a modal (9) and a
"thinking" defer on a button replaced by its follow-up.  A third, ``/pick fruit``,
has autocomplete options: its suggestions answer ``dd.autocomplete`` (callback
type 8), and some typed text makes it answer what Discord refuses.

The rest covers the per-channel message write rate limit (headers, 429s, what
discord.py does with them), more channels, answers held back by
``delay_next``, Discord's payload rules, and uploads: the per-file limit of
each boost tier (``set_premium_tier``, GUILD_UPDATE), 10 attachments at most,
and the content type and size Discord gives images and videos.  Last, direct
messages: ``User.send``/``Member.send`` (Create DM, one channel per user),
closed DMs (403 50007), refused recipients, and a user writing to the bot.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from bot.sandbox.discord_double import (
    DiscordDouble,
    InteractionRecord,
    MessageRecord,
    WriteEvent,
    driver,
    is_unicode_emoji,
)

# The smallest valid PNG: enough to check bytes survive the round trip.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


class LikeButton(discord.ui.DynamicItem[discord.ui.Button], template=r"echo:like:(?P<count>\d+)"):
    """A persistent button: it must work from the custom_id alone, e.g. after a restart."""

    def __init__(self, count: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"Like {count}", style=discord.ButtonStyle.primary, custom_id=f"echo:like:{count}")
        )
        self.count = count

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> LikeButton:
        return cls(int(match["count"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send(f"liked {self.count} by {interaction.user.id}", ephemeral=True)


class AskModal(discord.ui.Modal, title="Ask"):
    question = discord.ui.TextInput(label="Question")


class PanelView(discord.ui.View):
    """A non-persistent view: discord.py routes its clicks by the message id of the response."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Think", custom_id="panel:think")
    async def think(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("thought")

    @discord.ui.button(label="Ask", custom_id="panel:ask")
    async def ask(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(AskModal())

    @discord.ui.button(label="Update", custom_id="panel:update")
    async def update(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="panel updated", view=None)


class EchoBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        # guild_ready_timeout: on_ready waits this long after the last GUILD_CREATE (default 2 s).
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.guild_id = guild_id
        self.ready = asyncio.Event()
        self.tree.add_command(echo, guild=discord.Object(guild_id))
        self.tree.add_command(panel, guild=discord.Object(guild_id))
        self.tree.add_command(pick, guild=discord.Object(guild_id))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(LikeButton)
        await self.tree.sync(guild=discord.Object(self.guild_id))
        await self.tree.sync()  # no global commands: exercises the global route with an empty list

    async def on_ready(self) -> None:
        self.ready.set()


@app_commands.command(description="Echo text n times")
@app_commands.describe(text="what to say", n="how many times", file="a file to post back")
async def echo(interaction: discord.Interaction, text: str, n: int, file: discord.Attachment | None = None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    if file is not None:
        data, filename = await file.read(), file.filename
    else:
        data, filename = PNG, "echo.png"
    await interaction.edit_original_response(content=f"echo: {text} x{n} ({len(data)} bytes)")
    view = discord.ui.View(timeout=None)
    view.add_item(LikeButton(n))
    await interaction.channel.send(" ".join([text] * n), file=discord.File(io.BytesIO(data), filename), view=view)


@app_commands.command(description="A panel of buttons")
async def panel(interaction: discord.Interaction) -> None:
    file = discord.File(io.BytesIO(b"notes"), "notes.txt")
    await interaction.response.send_message("panel", view=PanelView(), file=file)
    # discord.py registers the view only after the response arrives; this edit tells the test it may click.
    await interaction.edit_original_response(content="panel ready")


pick = app_commands.Group(name="pick", description="Pick things")
FRUITS = ["apple", "apricot", "banana", "cherry"]


@pick.command(name="fruit", description="Pick a fruit")
@app_commands.describe(fruit="which fruit", count="how many", note="a note")
async def pick_fruit(interaction: discord.Interaction, fruit: str, count: int = 1, note: str | None = None) -> None:
    await interaction.response.send_message(f"{count} {fruit}", ephemeral=True)


@pick_fruit.autocomplete("fruit")
async def fruit_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    if current == "many":  # one more than Discord takes
        return [app_commands.Choice(name=f"fruit {i}", value=f"fruit-{i}") for i in range(26)]
    if current == "long":  # a value one character too long
        return [app_commands.Choice(name="long", value="v" * 101)]
    note = interaction.namespace.note  # what the member typed in another option
    return [app_commands.Choice(name=f"{f} ({note})" if note else f, value=f) for f in FRUITS if f.startswith(current)]


@pick_fruit.autocomplete("count")
async def fruit_counts(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    typed = int(current) if current.isdigit() else 1  # an INTEGER being typed arrives as its text
    return [app_commands.Choice(name=f"{typed * k} fruits", value=typed * k) for k in (1, 10)]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def dd(request: pytest.FixtureRequest) -> AsyncIterator[DiscordDouble]:
    # Options come from ``double(...)`` (indirect parametrization); none: Discord's defaults.
    async with DiscordDouble(**getattr(request, "param", {})) as double:
        yield double


def double(**options):
    """Run a test against ``DiscordDouble(**options)``."""
    test_id = ",".join(f"{k}={v}" for k, v in options.items())
    return pytest.mark.parametrize("dd", [options], indirect=True, ids=[test_id])


@pytest.fixture
async def bot(dd: DiscordDouble, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EchoBot]:
    # Exactly what mjbot does to point discord.py somewhere else.
    monkeypatch.setattr(discord.http.Route, "BASE", dd.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(dd.gateway_url))
    client = EchoBot(dd.guild_id)
    runner = asyncio.create_task(client.start(dd.bot_token))
    ready = asyncio.create_task(client.ready.wait())
    try:
        # If start() fails (bad login, a 4xx during sync...), surface its error instead of a timeout.
        await asyncio.wait({runner, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()
        assert client.ready.is_set(), "the client did not get ready within 10 s"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await runner


async def run_echo(dd: DiscordDouble, **kwargs) -> tuple[InteractionRecord, MessageRecord]:
    """/echo, then wait for the ephemeral answer and the public post; returns (interaction, post)."""
    interaction = await dd.slash("echo", **kwargs)
    await dd.wait_for(lambda: interaction.original and not interaction.original.current.loading)

    def public_post() -> MessageRecord | None:
        posts = [m for m in dd.channel_messages(include_ephemeral=False) if m.origin == "bot" and m.id > interaction.id]
        return posts[0] if posts else None

    return interaction, await dd.wait_for(public_post)


async def download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.read()


# ------------------------------------------------------------------- tests


async def test_login_ready_and_command_sync(dd: DiscordDouble, bot: EchoBot) -> None:
    assert bot.user.id == dd.bot_id
    assert bot.application_id == dd.application_id
    guild = bot.get_guild(dd.guild_id)
    assert guild is not None
    assert {c.id for c in guild.text_channels} == set(dd.channel_ids)
    assert {r.id for r in guild.roles} == set(dd.role_ids)
    assert guild.member_count == len(dd.members) + 1  # default intents: discord.py caches no members
    assert dd.identify_count == 1

    assert dd.commands() == []  # the global sync
    assert [c["name"] for c in dd.commands(dd.guild_id)] == ["echo", "panel", "pick"]
    command = dd.command("echo", dd.guild_id)
    assert command["description"] == "Echo text n times" and command["guild_id"] == str(dd.guild_id)
    assert [(o["name"], o["type"], o.get("required", False)) for o in command["options"]] == [
        ("text", 3, True),
        ("n", 4, True),
        ("file", 11, False),
    ]
    assert dd.find_requests("PUT", rf"/applications/{dd.application_id}/guilds/{dd.guild_id}/commands$")


async def test_wrong_token_is_rejected(dd: DiscordDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", dd.api_base)
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()

    # The gateway refuses it too, with close code 4004.
    async with aiohttp.ClientSession() as session, session.ws_connect(dd.gateway_url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": "not-the-token", "intents": 0, "properties": {}}})
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4004


async def test_slash_defer_edit_and_public_post(dd: DiscordDouble, bot: EchoBot) -> None:
    interaction, post = await run_echo(dd, options={"text": "hi", "n": 2})

    # defer(ephemeral=True, thinking=True) -> type 5 with flags 64, then the placeholder is edited.
    assert interaction.response_type == 5 and interaction.ephemeral
    original = interaction.original
    assert original.origin == "interaction" and original.interaction_id == interaction.id
    assert original.first.loading and original.first.ephemeral
    assert original.current.content == f"echo: hi x2 ({len(PNG)} bytes)"
    assert original.ephemeral and not original.current.loading

    # The public post: content, a button, and the file, retrievable from the double.
    assert post.content == "hi hi" and not post.ephemeral
    assert post.current.custom_ids == ["echo:like:2"]
    (attachment,) = post.attachments
    assert attachment.filename == "echo.png" and attachment.content_type == "image/png"
    assert attachment.data == PNG and await download(attachment.url) == PNG
    (request,) = dd.find_requests("POST", rf"/channels/{dd.channel_id}/messages$")
    assert request.files[0].data == PNG and request.payload["attachments"][0]["filename"] == "echo.png"


async def test_click_reaches_dynamic_item(dd: DiscordDouble, bot: EchoBot) -> None:
    _, post = await run_echo(dd, options={"text": "yo", "n": 3})
    bob = dd.members[1]

    click = await dd.click(post.id, "echo:like:3", user=bob)
    followup = await dd.wait_for(lambda: click.followups and click.followups[0])

    assert click.response_type == 6  # response.defer() on a component
    assert followup.content == f"liked 3 by {bob}"
    assert followup.ephemeral and followup.interaction_id == click.id
    assert len(post.versions) == 1  # deferring the update did not touch the post


async def test_edit_with_new_attachment_and_reply(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    message = await channel.send("first", file=discord.File(io.BytesIO(PNG), "a.png"))
    await message.edit(
        content="second", attachments=[*message.attachments, discord.File(io.BytesIO(b"hello"), "b.txt")]
    )
    reply = await message.reply("a reply")

    record = dd.messages[message.id]
    assert [v.content for v in record.versions] == ["first", "second"]
    assert [a.filename for a in record.first.attachments] == ["a.png"]
    assert [(a.filename, a.data) for a in record.attachments] == [("a.png", PNG), ("b.txt", b"hello")]
    assert record.attachments[0].id == record.first.attachments[0].id  # kept, not re-uploaded
    assert record.current.via == "bot" and record.current.edited_timestamp is not None

    reply_record = dd.messages[reply.id]
    assert reply_record.reply_to == message.id and reply_record.type == 19
    assert reply.reference.message_id == message.id


async def test_injected_faults(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    message = await channel.send("original")

    # A 429 is retried by discord.py after retry_after, and the edit then succeeds.
    rule = dd.fail_next(method="PATCH", path_re=r"/channels/\d+/messages/\d+", status=429, times=1)
    await message.edit(content="after 429")
    assert len(rule.hits) == 1 and rule.remaining == 0
    edits = dd.find_requests("PATCH", rf"/messages/{message.id}$")
    assert [r.status for r in edits] == [429, 200]
    assert dd.messages[message.id].content == "after 429"

    # An injected 404 surfaces as NotFound with Discord's error code.
    dd.fail_next(method="PATCH", path_re=rf"/messages/{message.id}$", status=404)
    with pytest.raises(discord.NotFound) as not_found:
        await message.edit(content="lost")
    assert not_found.value.code == 10008

    # So does a message deleted by a user, for every later edit.
    await dd.delete_message(message.id)
    with pytest.raises(discord.NotFound):
        await message.edit(content="too late")
    assert dd.messages[message.id].deleted_by == "user"

    dd.fail_next(method="POST", path_re=r"/channels/\d+/messages$", status=403)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("nope")
    assert forbidden.value.code == 50013


async def test_resume_after_dropped_gateway(dd: DiscordDouble, bot: EchoBot) -> None:
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)

    await dd.drop_gateway()
    # Sent while the client is disconnected: buffered, then replayed after the RESUME.
    interaction, post = await run_echo(dd, options={"text": "again", "n": 1})
    await asyncio.wait_for(resumed.wait(), timeout=5)

    assert dd.resume_count == 1 and dd.identify_count == 1
    resume = next(f for f in dd.gateway_log if f.direction == "in" and f.op == 6)
    assert resume.d["token"] == dd.bot_token and resume.d["seq"] >= 2  # saw at least READY and GUILD_CREATE
    # The client resumed at READY's resume_gateway_url and got the missed interaction replayed there.
    resumed_on = next(c for c in dd.gateway_connections if c.id == resume.connection)
    assert resumed_on.path == "/gateway/resume"
    (delivery,) = [f for f in dd.gateway_log if f.t == "INTERACTION_CREATE" and f.d["id"] == str(interaction.id)]
    assert delivery.connection == resume.connection and delivery.s > resume.d["seq"]
    assert post.content == "again" and interaction.ephemeral


async def test_attachment_option_reaches_attachment_read(dd: DiscordDouble, bot: EchoBot) -> None:
    data = b"\x00\x01binary option payload\xff"
    interaction, post = await run_echo(
        dd, options={"text": "file", "n": 1}, attachments={"file": ("input.bin", data, "application/octet-stream")}
    )

    option = interaction.payload["data"]["options"][-1]
    assert option["type"] == 11
    assert interaction.payload["data"]["resolved"]["attachments"][option["value"]]["filename"] == "input.bin"
    assert interaction.original.content == f"echo: file x1 ({len(data)} bytes)"
    assert post.attachments[0].filename == "input.bin" and post.attachments[0].data == data


async def test_other_callback_types(dd: DiscordDouble, bot: EchoBot) -> None:
    command = await dd.slash("panel", user=dd.members[1])
    message = await dd.wait_for(
        lambda: command.original and command.original.content == "panel ready" and command.original
    )
    assert command.response_type == 4 and not command.ephemeral
    assert message.type == 20 and message.interaction_id == command.id and message.first.content == "panel"
    assert message.attachments[0].data == b"notes"
    assert message.current.custom_ids == ["panel:think", "panel:ask", "panel:update"]

    # A "thinking" defer on a button creates a new placeholder; the first follow-up replaces it.
    think = await dd.click(message.id, "panel:think")
    thought = await dd.wait_for(lambda: think.original_message_id != message.id and think.original)
    await dd.wait_for(lambda: thought.content == "thought")
    assert think.response_type == 5 and thought.first.loading and think.followups == []

    ask = await dd.click(message.id, "panel:ask")
    modal = await dd.wait_for(lambda: ask.modal)
    assert modal["title"] == "Ask" and ask.response_type == 9

    update = await dd.click(message.id, "panel:update")
    await dd.wait_for(lambda: message.content == "panel updated")
    assert update.response_type == 7
    assert message.current.components == [] and message.current.via == "interaction"
    assert message.attachments == message.first.attachments  # an update keeps what it does not mention


# ------------------------------------------------------------------ autocomplete


async def test_autocomplete_choices_arrive(dd: DiscordDouble, bot: EchoBot) -> None:
    typing = await dd.autocomplete("pick fruit", {"fruit": "ap", "note": "ripe"}, "fruit")
    choices = await dd.wait_for(lambda: typing.choices)
    assert choices == [{"name": "apple (ripe)", "value": "apple"}, {"name": "apricot (ripe)", "value": "apricot"}]
    assert typing.type == 4 and typing.response_type == 8 and typing.focused == "fruit" and typing.name == "pick fruit"
    assert typing.ack_s is not None and typing.acked_at >= typing.sent_at and dd.refusals == []
    # As Discord sends it: the subcommand nests the options typed so far, the one being typed focused.
    data = typing.payload["data"]
    assert data["name"] == "pick" and data["id"] == dd.command("pick", dd.guild_id)["id"] and "resolved" not in data
    assert data["options"] == [
        {
            "name": "fruit",
            "type": 1,
            "options": [
                {"name": "fruit", "type": 3, "value": "ap", "focused": True},
                {"name": "note", "type": 3, "value": "ripe"},
            ],
        }
    ]

    # No message, and the token is good for the choices only: no second answer, no follow-up.
    assert typing.original is None and dd.channel_messages() == []
    async with raw_session(dd) as raw:
        webhook = f"/api/v10/webhooks/{dd.application_id}/{typing.token}"
        async with raw.post(webhook, json={"content": "late"}) as response:
            assert response.status == 404 and (await response.json())["code"] == 10015
        callback = f"/api/v10/interactions/{typing.id}/{typing.token}/callback"
        async with raw.post(callback, json={"type": 8, "data": {"choices": []}}) as response:
            assert response.status == 400 and (await response.json())["code"] == 40060
    assert typing.choices == choices

    # An INTEGER option being typed goes as the text in the box; its choices are integers.
    counting = await dd.autocomplete("pick fruit", {"fruit": "apple", "count": "3"}, "count")
    assert await dd.wait_for(lambda: counting.choices) == [
        {"name": "3 fruits", "value": 3},
        {"name": "30 fruits", "value": 30},
    ]
    assert counting.payload["data"]["options"][0]["options"][1] == {
        "name": "count",
        "type": 4,
        "value": "3",
        "focused": True,
    }

    # A required option not filled yet, and the focused box still empty, are fine.
    empty = await dd.autocomplete("pick fruit", {}, "fruit")
    assert [c["value"] for c in await dd.wait_for(lambda: empty.choices)] == FRUITS
    assert empty.payload["data"]["options"][0]["options"] == [
        {"name": "fruit", "type": 3, "value": "", "focused": True}
    ]

    # Picking a suggestion then runs the command as usual.
    run = await dd.slash("pick fruit", {"fruit": "apple", "count": 3})
    assert (await dd.wait_for(lambda: run.original)).content == "3 apple"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("many", {"data.choices": "BASE_TYPE_MAX_LENGTH"}), ("long", {"data.choices.0.value": "BASE_TYPE_MAX_LENGTH"})],
    ids=["26 choices", "value of 101 characters"],
)
async def test_autocomplete_answer_refused(dd: DiscordDouble, bot: EchoBot, typed: str, expected: dict) -> None:
    typing = await dd.autocomplete("pick fruit", {"fruit": typed}, "fruit")
    refusal = await dd.wait_for(lambda: dd.refusals and dd.refusals[-1])
    assert refusal.path == f"/interactions/{typing.id}/{typing.token}/callback" and refusal.status == 400
    assert refusal.error_code == 50035 and refusal.form_error_codes == expected
    assert dd.refused_requests("POST", r"/callback$", code=50035) == [refusal]
    # Refused is not answered: nothing recorded on the interaction.
    assert typing.choices is None and not typing.acknowledged and typing.acked_at is None


async def test_autocomplete_needs_an_option_registered_with_it(dd: DiscordDouble, bot: EchoBot) -> None:
    with pytest.raises(ValueError, match="not registered with autocomplete"):
        await dd.autocomplete("pick fruit", {"note": "ri"}, "note")
    with pytest.raises(ValueError, match="no option"):
        await dd.autocomplete("pick fruit", {}, "colour")
    with pytest.raises(LookupError, match="not registered"):
        await dd.autocomplete("pluck", {}, "fruit")
    with pytest.raises(LookupError, match="needs a subcommand"):
        await dd.autocomplete("pick", {}, "fruit")
    with pytest.raises(ValueError, match="not registered with autocomplete"):
        await dd.autocomplete("echo", {"text": "h"}, "text")
    assert dd.interactions == {} and [f for f in dd.gateway_log if f.t == "INTERACTION_CREATE"] == []


# ---------------------------------------------------- channel write rate limit

# Most tests use a short window; one runs Discord's real 5 per 5 s.
FAST_LIMIT = (2, 0.5)


def windows(timeline: list[WriteEvent], per: float) -> list[int]:
    """How many writes the double let through in each of its fixed windows (one opens with the
    first write into an empty bucket and closes ``per`` seconds later), rebuilt from the timeline."""
    counts: list[int] = []
    start: float | None = None
    for event in timeline:
        if event.status == 429:
            continue
        if start is None or event.at >= start + per:
            start = event.at
            counts.append(0)
        counts[-1] += 1
    return counts


def raw_session(dd: DiscordDouble) -> aiohttp.ClientSession:
    """An HTTP client with the bot token that bypasses discord.py (no pre-emptive waiting, no retries)."""
    return aiohttp.ClientSession(base_url=dd.base_url, headers={"Authorization": f"Bot {dd.bot_token}"})


async def login(dd: DiscordDouble) -> discord.Client:
    """A discord.py client with fresh rate limit knowledge (like a restarted bot), REST only."""
    client = discord.Client(intents=discord.Intents.default())
    await client.login(dd.bot_token)
    return client


@double(channel_write_limit=FAST_LIMIT)
async def test_sends_over_the_limit_wait_for_the_next_window(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    started = time.monotonic()
    sent = await asyncio.gather(*(channel.send(f"m{i}") for i in range(6)))

    # Every send succeeded, in three windows of two: the client waited (or retried) in between.
    assert [dd.messages[m.id].content for m in sent] == [f"m{i}" for i in range(6)]
    limit, per = FAST_LIMIT
    timeline = dd.write_timeline(dd.channel_id)
    assert windows(timeline, per) == [2, 2, 2]
    assert time.monotonic() - started >= 2 * per
    assert dd.channel_writes(dd.channel_id) == 6
    assert len(timeline) == 6 + dd.rate_limit_hits(dd.channel_id)


async def test_discords_real_limit_is_per_channel(dd: DiscordDouble, bot: EchoBot) -> None:
    """Discord's 5 writes per 5 s, on by default: a sixth send waits for the window to close,
    while a send to another channel goes through at once."""
    assert dd.channel_write_limit == (5, 5.0)
    first, second = bot.get_channel(dd.channel_id), bot.get_channel(dd.second_channel_id)
    burst = [asyncio.create_task(first.send(f"m{i}")) for i in range(6)]
    await dd.wait_for(lambda: dd.channel_writes(dd.channel_id) == 5)

    started = time.monotonic()
    other = await second.send("elsewhere")
    assert time.monotonic() - started < 1.0  # not held back by the first channel's exhausted bucket
    assert dd.write_timeline(dd.second_channel_id)[0].status == 200 and dd.messages[other.id].content == "elsewhere"
    assert dd.channel_writes(dd.channel_id) == 5 and not all(t.done() for t in burst)  # the sixth still waits

    await asyncio.gather(*burst)
    timeline = dd.write_timeline(dd.channel_id)
    assert windows(timeline, 5.0) == [5, 1]
    accepted = [e.at for e in timeline if e.status != 429]
    assert accepted[5] - accepted[0] >= 5.0
    assert dd.rate_limit_hits(dd.second_channel_id) == 0


@double(channel_write_limit=FAST_LIMIT)
async def test_raw_burst_gets_discords_429(dd: DiscordDouble) -> None:
    path = f"/api/v10/channels/{dd.channel_id}/messages"
    async with raw_session(dd) as session:
        answers = []
        for i in range(3):
            async with session.post(path, json={"content": f"raw {i}"}) as response:
                answers.append((response.status, response.headers.copy(), await response.read()))
        # The same bucket for edits (and deletes) in that channel.
        message_id = dd.channel_messages()[0].id
        async with session.patch(f"{path}/{message_id}", json={"content": "edited"}) as response:
            answers.append((response.status, response.headers.copy(), await response.read()))
        # Neither reads, nor typing, nor a bad token count.
        async with session.get(path) as response:
            assert response.status == 200 and "X-RateLimit-Bucket" not in response.headers
        async with session.post(f"/api/v10/channels/{dd.channel_id}/typing") as response:
            assert response.status == 204
        async with session.post(path, json={"content": "x"}, headers={"Authorization": "Bot wrong"}) as response:
            assert response.status == 401 and "X-RateLimit-Bucket" not in response.headers
        # Another channel has its own bucket.
        async with session.post(f"/api/v10/channels/{dd.second_channel_id}/messages", json={"content": "b"}) as other:
            assert other.status == 200 and other.headers["X-RateLimit-Remaining"] == "1"
            other_bucket = other.headers["X-RateLimit-Bucket"]

    assert [status for status, _, _ in answers] == [200, 200, 429, 429]
    now = time.time()
    for (_, headers, _), remaining in zip(answers, ["1", "0", "0", "0"], strict=True):
        assert headers["X-RateLimit-Limit"] == "2"
        assert headers["X-RateLimit-Remaining"] == remaining
        reset_after = float(headers["X-RateLimit-Reset-After"])
        assert 0 < reset_after <= 0.5
        assert now - 0.5 < float(headers["X-RateLimit-Reset"]) <= now + 0.501
        assert headers["X-RateLimit-Bucket"] == answers[0][1]["X-RateLimit-Bucket"] == other_bucket  # stable
    for _, headers, body in answers[2:]:
        assert headers["Via"] == "1.1 google" and headers["X-RateLimit-Scope"] == "user"
        assert headers["Content-Type"] == "application/json"
        data = json.loads(body)
        assert data == {"message": "You are being rate limited.", "retry_after": data["retry_after"], "global": False}
        assert isinstance(data["retry_after"], float) and 0 < data["retry_after"] <= 0.5
        assert data["retry_after"] == float(headers["X-RateLimit-Reset-After"])

    # Refused writes did nothing, and are recorded.
    assert [m.content for m in dd.channel_messages()] == ["raw 0", "raw 1"]
    assert [(r.method, r.status) for r in dd.rate_limited] == [("POST", 429), ("PATCH", 429)]
    assert dd.rate_limit_hits(dd.channel_id) == 2 and dd.rate_limit_hits(dd.second_channel_id) == 0
    assert dd.rate_limit_hits() == 2
    assert dd.channel_writes(dd.channel_id) == 2 and dd.channel_writes() == 3
    assert [(e.method, e.status) for e in dd.write_timeline(dd.channel_id)] == [
        ("POST", 200),
        ("POST", 200),
        ("POST", 429),
        ("PATCH", 429),
    ]

    # Once the window closes, the bucket is full again.
    await asyncio.sleep(json.loads(answers[2][2])["retry_after"])
    async with raw_session(dd) as session, session.post(path, json={"content": "later"}) as response:
        assert response.status == 200 and response.headers["X-RateLimit-Remaining"] == "1"


@double(channel_write_limit=(5, 0.5))
async def test_discord_py_burst_of_sends_is_paced_without_429(dd: DiscordDouble, bot: EchoBot) -> None:
    """discord.py 2.7 reads the headers and waits before the bucket runs dry: 12 concurrent sends
    in one channel get no 429.  (The first goes alone; its answer says 4 remain, so 4 more go;
    then it sleeps Reset-After before the next five.)"""
    channel = bot.get_channel(dd.channel_id)
    await asyncio.gather(*(channel.send(f"burst {i}") for i in range(12)))
    assert windows(dd.write_timeline(dd.channel_id), 0.5) == [5, 5, 2]
    assert dd.rate_limit_hits() == 0 and dd.rate_limited == []


@double(channel_write_limit=(5, 0.5))
async def test_discord_py_gets_429_for_concurrent_sends_and_edits(dd: DiscordDouble, bot: EchoBot) -> None:
    """Until discord.py has seen that edits share the sends' bucket, it paces them separately:
    concurrent sends and edits in one channel overrun the window and get 429s, which it retries."""
    channel = bot.get_channel(dd.channel_id)
    message = await channel.send("first")  # discord.py now knows the sends' bucket: 4 left
    results = await asyncio.gather(
        *(channel.send(f"send {i}") if i % 2 else message.edit(content=f"edit {i}") for i in range(6))
    )
    assert len(results) == 6 and dd.messages[message.id].content.startswith("edit")
    assert dd.rate_limit_hits(dd.channel_id) >= 1
    assert all(r.status == 429 and r.write_channel_id == dd.channel_id for r in dd.rate_limited)
    assert max(windows(dd.write_timeline(dd.channel_id), 0.5)) <= 5


@double(channel_write_limit=FAST_LIMIT)
async def test_restarted_client_gets_429_in_an_exhausted_window(dd: DiscordDouble, bot: EchoBot) -> None:
    """A new process knows nothing of the bucket its predecessor emptied: its first write is refused."""
    channel = bot.get_channel(dd.channel_id)
    await channel.send("one")
    # Answered "0 remaining", this send returns only once discord.py has slept out the window:
    # the restarted client writes while it sleeps (like a bot killed there and started again).
    two = asyncio.create_task(channel.send("two"))
    await dd.wait_for(lambda: dd.channel_writes(dd.channel_id) == 2)

    restarted = await login(dd)
    try:
        message = await restarted.get_partial_messageable(dd.channel_id).send("three")
    finally:
        await restarted.close()
    await two
    assert dd.messages[message.id].content == "three"
    assert [e.status for e in dd.write_timeline(dd.channel_id)] == [200, 200, 429, 200]
    assert dd.rate_limit_hits(dd.channel_id) == 1


@double(channel_write_limit=(1, 5.0))
async def test_interaction_callbacks_and_webhooks_are_not_counted(dd: DiscordDouble, bot: EchoBot) -> None:
    # /echo: a deferral callback, an edit through the interaction webhook, then one channel.send.
    interaction, post = await run_echo(dd, options={"text": "hi", "n": 1})
    assert interaction.original.content.startswith("echo: hi")
    assert [(e.method, e.path, e.status) for e in dd.write_timeline(dd.channel_id)] == [
        ("POST", f"/channels/{dd.channel_id}/messages", 200)
    ]
    assert dd.rate_limit_hits() == 0
    webhook_edit = dd.find_requests("PATCH", r"^/webhooks/")[0]
    assert webhook_edit.write_channel_id is None


@double(channel_write_limit=None)
async def test_limit_can_be_disabled(dd: DiscordDouble, bot: EchoBot) -> None:
    assert dd.channel_write_limit is None
    path = f"/api/v10/channels/{dd.channel_id}/messages"
    async with raw_session(dd) as session:
        for i in range(8):
            async with session.post(path, json={"content": f"m{i}"}) as response:
                assert response.status == 200 and "X-RateLimit-Remaining" not in response.headers
    started = time.monotonic()
    await asyncio.gather(*(bot.get_channel(dd.channel_id).send(f"d{i}") for i in range(8)))
    assert time.monotonic() - started < 1.0  # no waiting either
    assert dd.channel_writes(dd.channel_id) == 16  # still counted, for the timeline
    assert dd.rate_limited == [] and dd.rate_limit_hits() == 0

    # It can be switched on (or changed) on a running double.
    dd.channel_write_limit = (1, 5.0)
    async with raw_session(dd) as session:
        statuses = []
        for _ in range(2):
            async with session.post(path, json={"content": "again"}) as response:
                statuses.append(response.status)
    assert statuses == [200, 429]


@double(text_channels=20)
async def test_more_channels(dd: DiscordDouble, bot: EchoBot) -> None:
    assert len(dd.channel_ids) == 20 and len(set(dd.channel_ids)) == 20
    assert dd.channel_ids[:2] == [dd.channel_id, dd.second_channel_id]
    guild = bot.get_guild(dd.guild_id)
    assert [c.id for c in guild.text_channels] == dd.channel_ids
    assert [c.name for c in guild.text_channels][:3] == ["general", "second", "channel-3"]
    last = bot.get_channel(dd.channel_ids[-1])
    message = await last.send("in the last channel")
    assert dd.channel_messages(dd.channel_ids[-1])[0].id == message.id
    assert dd.channel_writes(dd.channel_ids[-1]) == 1 and dd.channel_writes(dd.channel_id) == 0


# ------------------------------------------------------------- late answers


async def test_delay_next_holds_the_answer_of_a_recorded_message(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    rule = dd.delay_next(method="POST", path_re=rf"/channels/{dd.channel_id}/messages$", seconds=5.0)
    send = asyncio.create_task(channel.send("created but unanswered"))

    # The message exists (and its request has its status) while the client still waits for the answer.
    message = await dd.wait_for(lambda: dd.channel_messages() and dd.channel_messages()[-1])
    assert message.content == "created but unanswered"
    (request,) = rule.hits
    assert request.status == 200 and request.delay is rule and rule.remaining == 0
    await asyncio.sleep(0.2)
    assert not send.done()

    # What a killed bot sees: never the answer, so never the id.
    send.cancel()
    with pytest.raises(asyncio.CancelledError):
        await send

    # times=1: the next send is answered at once; a short delay is simply a slow answer.
    started = time.monotonic()
    await channel.send("prompt")
    assert time.monotonic() - started < 1.0
    dd.delay_next(method="PATCH", seconds=0.3)
    started = time.monotonic()
    edited = await (await channel.send("to edit")).edit(content="edited late")
    assert time.monotonic() - started >= 0.3
    assert dd.messages[edited.id].content == "edited late"


# ------------------------------------------- Discord's payload rules (400 / 50035)
#
# Every rule: one payload just within Discord's limit (accepted) and one just over (refused
# 400 Invalid Form Body, nothing stored or changed), sent over HTTP to every endpoint that
# creates or edits a message.  The bot is not involved: the tests answer interactions
# themselves, with a raw HTTP client, so the double sees exactly the payload under test.


def button(custom_id: str | None = "probe:b", **extra) -> dict:
    component = {"type": 2, "style": 1, "label": "B", **extra}
    if custom_id is not None:
        component["custom_id"] = custom_id
    return component


def row(*components: dict) -> dict:
    return {"type": 1, "components": list(components)}


def buttons(n: int, prefix: str = "probe") -> list[dict]:
    return [button(f"{prefix}:{i}") for i in range(n)]


def select(custom_id: str = "probe:s", **extra) -> dict:
    return {"type": 3, "custom_id": custom_id, "options": [{"label": "One", "value": "1"}], **extra}


def embed(**fields) -> dict:
    return {"type": "rich", **fields}


# (rule, payload within the limit, payload just over it, {path: code} of the refusal)
MESSAGE_RULES = [
    ("content 2000", {"content": "x" * 2000}, {"content": "x" * 2001}, {"content": "BASE_TYPE_MAX_LENGTH"}),
    (
        "button label 80",
        {"components": [row(button(label="L" * 80))]},
        {"components": [row(button(label="L" * 81))]},
        {"components.0.components.0.label": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "button custom_id 100",
        {"components": [row(button("c" * 100))]},
        {"components": [row(button("c" * 101))]},
        {"components.0.components.0.custom_id": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "button custom_id not empty",
        {"components": [row(button("c"))]},
        {"components": [row(button(""))]},
        {"components.0.components.0.custom_id": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "button custom_id required unless a link",
        {"components": [row(button(None, style=5, url="https://example.com"))]},
        {"components": [row(button(None))]},
        {"components.0.components.0.custom_id": "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED"},
    ),
    (
        "select custom_id 100",
        {"components": [row(select("s" * 100))]},
        {"components": [row(select("s" * 101))]},
        {"components.0.components.0.custom_id": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "custom_ids unique",
        {"components": [row(button("a"), button("b"))]},
        {"components": [row(button("a"), button("a"))]},
        {"components.0.components.1.custom_id": "COMPONENT_CUSTOM_ID_DUPLICATED"},
    ),
    (
        "5 action rows",
        {"components": [row(button(f"r{i}")) for i in range(5)]},
        {"components": [row(button(f"r{i}")) for i in range(6)]},
        {"components": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "5 buttons in a row",
        {"components": [row(*buttons(5))]},
        {"components": [row(*buttons(6))]},
        {"components.0.components": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "no empty row",
        {"content": "c", "components": [row(button())]},
        {"content": "c", "components": [row()]},
        {"components.0.components": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "a select fills its row",
        {"components": [row(select()), row(button())]},
        {"components": [row(select(), button())]},
        {"components.0.components": "COMPONENT_LAYOUT_WIDTH_EXCEEDED"},
    ),
    (
        "button emoji: a name that is no Unicode emoji",
        {"components": [row(button(emoji={"name": "🔄"}), button("probe:c", emoji={"name": "1️⃣"}))]},
        {"components": [row(button(emoji={"name": "upscale_1"}))]},
        {"components.0.components.0.emoji.name": "BUTTON_COMPONENT_INVALID_EMOJI"},
    ),
    (
        "button emoji: an empty name",
        {"components": [row(button(emoji={"id": "123456789012345678", "name": "upscale_1"}))]},
        {"components": [row(button(emoji={"name": ""}))]},
        {"components.0.components.0.emoji.name": "BUTTON_COMPONENT_INVALID_EMOJI"},
    ),
    (
        "select option emoji",
        {"components": [row(select(options=[{"label": "A", "value": "a", "emoji": {"name": "✏️", "id": None}}]))]},
        {"components": [row(select(options=[{"label": "A", "value": "a", "emoji": {"name": "pencil", "id": None}}]))]},
        {"components.0.components.0.options.0.emoji.name": "BUTTON_COMPONENT_INVALID_EMOJI"},
    ),
    (
        "embed title 256",
        {"embeds": [embed(title="t" * 256)]},
        {"embeds": [embed(title="t" * 257)]},
        {"embeds.0.title": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "embed description 4096",
        {"embeds": [embed(description="d" * 4096)]},
        {"embeds": [embed(description="d" * 4097)]},
        {"embeds.0.description": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "10 embeds",
        {"embeds": [embed(title=f"e{i}") for i in range(10)]},
        {"embeds": [embed(title=f"e{i}") for i in range(11)]},
        {"embeds": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "embeds' text 6000 in all",
        {"embeds": [embed(description="d" * 4000), embed(title="t" * 200, description="d" * 1800)]},
        {"embeds": [embed(description="d" * 4000), embed(title="t" * 200, description="d" * 1801)]},
        {"embeds": "MAX_EMBED_SIZE_EXCEEDED"},
    ),
]


# Files of a multipart request: (filename, bytes), sent as files[0], files[1]...
Uploads = Sequence[tuple[str, bytes]]


class Endpoint:
    """One way to create or edit a message over HTTP, prepared on a fresh double."""

    def __init__(self, dd: DiscordDouble, session: aiohttp.ClientSession) -> None:
        self.dd, self.session = dd, session
        self.prefix = ""  # what Discord puts before the paths in "errors": "data." for callbacks

    async def prepare(self) -> None: ...

    async def send(self, payload: dict, files: Uploads = ()) -> tuple[int, dict | None]: ...

    async def request(self, method: str, path: str, json_body: dict, files: Uploads = ()) -> tuple[int, dict | None]:
        """JSON, or multipart with ``files`` as files[0], files[1]... (discord.py's shape) if there are any."""
        body: dict[str, object] = {"json": json_body}
        if files:
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(json_body), content_type="application/json")
            for index, (filename, data) in enumerate(files):
                form.add_field(f"files[{index}]", data, filename=filename, content_type="application/octet-stream")
            body = {"data": form}
        async with self.session.request(method, f"/api/v10{path}", **body) as response:
            answer = await response.json() if response.content_type == "application/json" else None
            return response.status, answer

    async def post_message(self, payload: dict) -> dict:
        status, body = await self.request("POST", f"/channels/{self.dd.channel_id}/messages", payload)
        assert status == 200, body
        return body

    def interaction(self, name: str = "probe") -> InteractionRecord:
        return driver.slash_interaction(
            self.dd.state,
            name,
            {},
            {},
            user_id=self.dd.member_id,
            channel_id=self.dd.channel_id,
            locale="en-US",
            app_permissions=None,
        )

    async def callback(
        self, interaction: InteractionRecord, body: dict, files: Uploads = ()
    ) -> tuple[int, dict | None]:
        return await self.request("POST", f"/interactions/{interaction.id}/{interaction.token}/callback", body, files)

    def webhook(self, interaction: InteractionRecord) -> str:
        return f"/webhooks/{self.dd.application_id}/{interaction.token}"


class ChannelPost(Endpoint):
    async def send(self, payload, files=()):
        return await self.request("POST", f"/channels/{self.dd.channel_id}/messages", payload, files)


class ChannelPatch(Endpoint):
    async def prepare(self):
        self.message_id = (await self.post_message({"content": "base"}))["id"]

    async def send(self, payload, files=()):
        return await self.request("PATCH", f"/channels/{self.dd.channel_id}/messages/{self.message_id}", payload, files)


class CallbackMessage(Endpoint):
    """Interaction callback type 4; a refused callback leaves the interaction unanswered."""

    async def prepare(self):
        self.prefix = "data."
        self.slash = self.interaction()

    async def send(self, payload, files=()):
        return await self.callback(self.slash, {"type": 4, "data": payload}, files)


class CallbackUpdate(Endpoint):
    """Interaction callback type 7 on a button click: edits the clicked message."""

    async def prepare(self):
        self.prefix = "data."
        posted = await self.post_message({"content": "base", "components": [row(button("probe:click"))]})
        self.click = driver.component_interaction(
            self.dd.state,
            self.dd.messages[int(posted["id"])],
            "probe:click",
            None,
            user_id=self.dd.member_id,
            locale="en-US",
            app_permissions=None,
        )

    async def send(self, payload, files=()):
        return await self.callback(self.click, {"type": 7, "data": payload}, files)


class FollowupPost(Endpoint):
    async def prepare(self):
        self.slash = self.interaction()
        assert (await self.callback(self.slash, {"type": 4, "data": {"content": "base"}}))[0] == 204

    async def send(self, payload, files=()):
        return await self.request("POST", f"{self.webhook(self.slash)}?wait=true", payload, files)


class WebhookPatchOriginal(FollowupPost):
    async def send(self, payload, files=()):
        return await self.request("PATCH", f"{self.webhook(self.slash)}/messages/@original", payload, files)


class WebhookPatchFollowup(FollowupPost):
    async def prepare(self):
        await super().prepare()
        status, body = await self.request("POST", f"{self.webhook(self.slash)}?wait=true", {"content": "follow"})
        assert status == 200
        self.message_id = body["id"]

    async def send(self, payload, files=()):
        return await self.request("PATCH", f"{self.webhook(self.slash)}/messages/{self.message_id}", payload, files)


ENDPOINTS = [
    ChannelPost,
    ChannelPatch,
    CallbackMessage,
    CallbackUpdate,
    FollowupPost,
    WebhookPatchOriginal,
    WebhookPatchFollowup,
]

PROBE_COMMAND = {"name": "probe", "description": "answered by the test itself", "type": 1}


@pytest.fixture
async def raw(dd: DiscordDouble) -> AsyncIterator[aiohttp.ClientSession]:
    """A bot-token HTTP client, with /probe registered so the test can make interactions."""
    async with raw_session(dd) as session:
        path = f"/api/v10/applications/{dd.application_id}/guilds/{dd.guild_id}/commands"
        async with session.put(path, json=[PROBE_COMMAND]) as response:
            assert response.status == 200
        yield session


def world(dd: DiscordDouble) -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        {m.id: (len(m.versions), m.deleted) for m in dd.messages.values()},
        {i.id: len(i.callbacks) for i in dd.interactions.values()},
        len(dd.state.files),
    )


def assert_refused(dd: DiscordDouble, status: int, body: dict | None, expected: dict[str, str], prefix: str) -> None:
    assert status == 400, body
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    expected = {prefix + path: code for path, code in expected.items()}
    refusal = dd.refusals[-1]
    assert refusal.status == 400 and refusal.refused and refusal.error == body and refusal.error_code == 50035
    assert refusal.form_error_codes == expected
    # The nested shape: errors -> path parts -> {"_errors": [{"code", "message"}]}.
    for path, code in expected.items():
        node = body["errors"]
        for part in path.split("."):
            node = node[part]
        assert [e["code"] for e in node["_errors"]] == [code] and node["_errors"][0]["message"]


@double(channel_write_limit=None)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.__name__)
@pytest.mark.parametrize(("rule", "within", "over", "expected"), MESSAGE_RULES, ids=[r[0] for r in MESSAGE_RULES])
async def test_message_rules(dd: DiscordDouble, raw, endpoint, rule, within, over, expected) -> None:
    target = endpoint(dd, raw)
    await target.prepare()
    before = world(dd)

    status, body = await target.send(over)
    assert_refused(dd, status, body, expected, target.prefix)
    assert world(dd) == before, "a refused request changed something"
    assert len(dd.refusals) == 1

    # Refused is not answered: the very same target accepts the payload within the limit.
    status, body = await target.send(within)
    assert status in (200, 204), body
    assert world(dd) != before and len(dd.refusals) == 1


# (rule, modal within the limit, modal just over it, {path: code} under "data")
def text_input(**extra) -> dict:
    return {"type": 4, "custom_id": "probe:q", "style": 1, "label": "Question", **extra}


def modal(*rows: dict, **extra) -> dict:
    return {"custom_id": "probe:modal", "title": "Ask", "components": list(rows) or [row(text_input())], **extra}


MODAL_RULES = [
    ("title 45", modal(title="t" * 45), modal(title="t" * 46), {"title": "BASE_TYPE_MAX_LENGTH"}),
    ("custom_id 100", modal(custom_id="m" * 100), modal(custom_id="m" * 101), {"custom_id": "BASE_TYPE_BAD_LENGTH"}),
    ("custom_id not empty", modal(custom_id="m"), modal(custom_id=""), {"custom_id": "BASE_TYPE_BAD_LENGTH"}),
    (
        "text input label 45",
        modal(row(text_input(label="l" * 45))),
        modal(row(text_input(label="l" * 46))),
        {"components.0.components.0.label": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "text input custom_id 100",
        modal(row(text_input(custom_id="i" * 100))),
        modal(row(text_input(custom_id="i" * 101))),
        {"components.0.components.0.custom_id": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "prefilled value up to max_length",
        modal(row(text_input(max_length=10, value="v" * 10))),
        modal(row(text_input(max_length=10, value="v" * 11))),
        {"components.0.components.0.value": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "prefilled value up to 4000",
        modal(row(text_input(value="v" * 4000))),
        modal(row(text_input(value="v" * 4001))),
        {"components.0.components.0.value": "BASE_TYPE_MAX_LENGTH"},
    ),
    (
        "5 rows",
        modal(*(row(text_input(custom_id=f"q{i}")) for i in range(5))),
        modal(*(row(text_input(custom_id=f"q{i}")) for i in range(6))),
        {"components": "BASE_TYPE_BAD_LENGTH"},
    ),
    ("at least 1 row", modal(row(text_input())), {**modal(), "components": []}, {"components": "BASE_TYPE_BAD_LENGTH"}),
]


@pytest.mark.parametrize(("rule", "within", "over", "expected"), MODAL_RULES, ids=[r[0] for r in MODAL_RULES])
async def test_modal_rules(dd: DiscordDouble, raw, rule, within, over, expected) -> None:
    target = Endpoint(dd, raw)
    slash = target.interaction()
    status, body = await target.callback(slash, {"type": 9, "data": over})
    assert_refused(dd, status, body, expected, "data.")
    assert slash.callbacks == [] and slash.modal is None  # not acknowledged: the bot may still answer

    status, body = await target.callback(slash, {"type": 9, "data": within})
    assert status == 204, body
    assert slash.response_type == 9 and slash.modal == within and len(dd.refusals) == 1


AUTOCOMPLETE_PROBE = {
    "name": "probe-ac",
    "description": "autocompleted by the test itself",
    "options": [
        {"type": 3, "name": "text", "description": "a string", "autocomplete": True, "max_length": 3},
        {"type": 4, "name": "whole", "description": "an integer", "autocomplete": True, "min_value": 10},
        {"type": 10, "name": "real", "description": "a number", "autocomplete": True},
        {"type": 4, "name": "size", "description": "filled, not autocompleted", "max_value": 5},
    ],
}


def choices(*values, **extra) -> dict:
    return {"choices": [{"name": f"choice {i}", "value": value, **extra} for i, value in enumerate(values)]}


# (rule, focused option, choices within the limit, just over it, {path: code} under "data")
AUTOCOMPLETE_RULES = [
    ("25 choices", "text", choices(*"v" * 25), choices(*"v" * 26), {"choices": "BASE_TYPE_MAX_LENGTH"}),
    ("choices required", "text", {"choices": []}, {}, {"choices": "BASE_TYPE_REQUIRED"}),
    (
        "name 100",
        "text",
        {"choices": [{"name": "n" * 100, "value": "v"}]},
        {"choices": [{"name": "n" * 101, "value": "v"}]},
        {"choices.0.name": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "name not empty",
        "text",
        {"choices": [{"name": "n", "value": "v"}]},
        {"choices": [{"name": "", "value": "v"}]},
        {"choices.0.name": "BASE_TYPE_BAD_LENGTH"},
    ),
    (
        "name_localizations 100",
        "text",
        choices("v", name_localizations={"fr": "n" * 100, "de": None}),
        choices("v", name_localizations={"fr": "n" * 101}),
        {"choices.0.name_localizations.fr": "BASE_TYPE_BAD_LENGTH"},
    ),
    ("string value 100", "text", choices("v" * 100), choices("v" * 101), {"choices.0.value": "BASE_TYPE_MAX_LENGTH"}),
    ("string value is a string", "text", choices("1"), choices(1), {"choices.0.value": "BASE_TYPE_STRING"}),
    ("value required", "text", choices(""), {"choices": [{"name": "n"}]}, {"choices.0.value": "BASE_TYPE_REQUIRED"}),
    ("integer value", "whole", choices(3, "4"), choices("three"), {"choices.0.value": "NUMBER_TYPE_COERCE"}),
    ("integer not fractional", "whole", choices(3.0), choices(3.5), {"choices.0.value": "NUMBER_TYPE_COERCE"}),
    ("integer 2^53 - 1", "whole", choices(2**53 - 1), choices(2**53), {"choices.0.value": "NUMBER_TYPE_MAX"}),
    ("number value", "real", choices(2.5, -(2**53)), choices(True), {"choices.0.value": "NUMBER_TYPE_COERCE"}),
]


@pytest.fixture
async def raw_ac(dd: DiscordDouble, raw) -> aiohttp.ClientSession:
    """``raw`` with /probe-ac registered too."""
    path = f"/api/v10/applications/{dd.application_id}/guilds/{dd.guild_id}/commands"
    async with raw.put(path, json=[PROBE_COMMAND, AUTOCOMPLETE_PROBE]) as response:
        assert response.status == 200
    return raw


def typing_in(dd: DiscordDouble, focused: str, options: dict | None = None) -> InteractionRecord:
    """An autocomplete of /probe-ac built as ``dd.autocomplete`` does, but sent to nobody."""
    return driver.autocomplete_interaction(
        dd.state,
        "probe-ac",
        options or {},
        focused,
        user_id=dd.member_id,
        channel_id=dd.channel_id,
        locale="en-US",
    )


@pytest.mark.parametrize(
    ("rule", "focused", "within", "over", "expected"), AUTOCOMPLETE_RULES, ids=[r[0] for r in AUTOCOMPLETE_RULES]
)
async def test_autocomplete_rules(dd: DiscordDouble, raw_ac, rule, focused, within, over, expected) -> None:
    target = Endpoint(dd, raw_ac)
    typing = typing_in(dd, focused)
    status, body = await target.callback(typing, {"type": 8, "data": over})
    assert_refused(dd, status, body, expected, "data.")
    assert typing.callbacks == [] and typing.choices is None

    status, body = await target.callback(typing, {"type": 8, "data": within})
    assert status == 204, body
    assert typing.choices == within["choices"] and typing.acked_at is not None and len(dd.refusals) == 1


async def test_autocomplete_values_are_partial(dd: DiscordDouble, raw_ac) -> None:
    # What is typed is not checked the way a submitted command is (max_length 3, min_value 10)...
    typing = typing_in(dd, "whole", {"text": "too long", "whole": 1})
    assert typing.payload["type"] == 4 and typing.payload["data"]["options"] == [
        {"name": "text", "type": 3, "value": "too long"},
        {"name": "whole", "type": 4, "value": "1", "focused": True},
    ]
    # ...but a filled option that is not a string passed the client's checks, as in ``slash``.
    with pytest.raises(ValueError, match="max_value"):
        typing_in(dd, "text", {"text": "a", "size": 6})
    assert typing_in(dd, "text", {"size": 5}).payload["data"]["options"] == [
        {"name": "size", "type": 4, "value": 5},
        {"name": "text", "type": 3, "value": "", "focused": True},  # focused on an empty box
    ]


async def test_autocomplete_takes_only_choices(dd: DiscordDouble, raw_ac) -> None:
    target = Endpoint(dd, raw_ac)
    typing = typing_in(dd, "text")
    status, body = await target.callback(typing, {"type": 4, "data": {"content": "a message"}})
    assert status == 400 and dd.refusals[-1].form_error_codes == {"type": "INTERACTION_RESPONSE_TYPE_INVALID"}
    slash = target.interaction()
    status, body = await target.callback(slash, {"type": 8, "data": choices("v")})
    assert status == 400 and dd.refusals[-1].form_error_codes == {"type": "INTERACTION_RESPONSE_TYPE_INVALID"}
    assert typing.callbacks == slash.callbacks == []

    status, body = await target.request(
        "POST", f"/interactions/{typing.id}/{typing.token}/callback?with_response=true", {"type": 8, "data": choices()}
    )
    assert status == 200 and body == {"interaction": {"id": str(typing.id), "type": 4}, "resource": {"type": 8}}
    assert typing.choices == [] and typing.original is None


@double(interaction_ack_timeout=0.2)
async def test_autocomplete_answered_late_is_unknown(dd: DiscordDouble, raw_ac) -> None:
    typing = typing_in(dd, "text")
    await asyncio.sleep(0.3)
    status, body = await Endpoint(dd, raw_ac).callback(typing, {"type": 8, "data": choices("v")})
    assert status == 404 and body["code"] == 10062 and typing.choices is None


@double(channel_write_limit=None)
async def test_every_invalid_field_is_reported_at_once(dd: DiscordDouble, raw) -> None:
    payload = {
        "content": "x" * 2001,
        "components": [
            row(button(label="L" * 81, emoji={"name": "upscale_1"}), button("probe:b2", emoji={"name": "🪄"}))
        ],
        "embeds": [embed(title="t" * 257)],
    }
    status, body = await Endpoint(dd, raw).request("POST", f"/channels/{dd.channel_id}/messages", payload)
    assert status == 400
    assert body == {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {
            "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]},
            "embeds": {"0": {"title": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}},
            "components": {"0": {"components": {"0": {
                "label": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 80 or fewer in length."}]},
                "emoji": {"name": {"_errors": [{"code": "BUTTON_COMPONENT_INVALID_EMOJI", "message": "Invalid emoji"}]}},
            }}}},
        },
    }  # fmt: skip
    (refusal,) = dd.refusals
    assert [tuple(e) for e in refusal.form_errors] == [
        ("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."),
        ("embeds.0.title", "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."),
        ("components.0.components.0.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."),
        ("components.0.components.0.emoji.name", "BUTTON_COMPONENT_INVALID_EMOJI", "Invalid emoji"),
    ]
    assert dd.refused_requests("POST", r"/messages$") == [refusal]
    assert dd.refused_requests(code=50035) == dd.refused_requests(code="BUTTON_COMPONENT_INVALID_EMOJI") == [refusal]
    assert dd.refused_requests(code="COMPONENT_CUSTOM_ID_DUPLICATED") == [] and dd.channel_messages() == []
    assert dd.state.files == {}


@double(channel_write_limit=None)
async def test_refused_multipart_stores_no_file(dd: DiscordDouble, raw) -> None:
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps({"content": "x" * 2001, "attachments": [{"id": 0, "filename": "a.png"}]}))
    form.add_field("files[0]", PNG, filename="a.png", content_type="image/png")
    async with raw.post(f"/api/v10/channels/{dd.channel_id}/messages", data=form) as response:
        assert response.status == 400
    assert dd.state.files == {} and dd.messages == {}
    assert dd.refusals[0].files[0].data == PNG  # the refused request is still recorded whole


async def test_discord_py_raises_http_exception_400_50035(dd: DiscordDouble, bot: EchoBot) -> None:
    """discord.py does not retry a 400: it raises HTTPException with Discord's code and the fields."""
    channel = bot.get_channel(dd.channel_id)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("x" * 2001)
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "In content: Must be 2000 or fewer in length." in refused.value.text
    assert dd.channel_messages() == []

    message = await channel.send("kept")
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="U1", emoji="upscale_1", custom_id="probe:u1"))
    with pytest.raises(discord.HTTPException) as refused:
        await message.edit(content="changed", view=view)
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "components.0.components.0.emoji.name: Invalid emoji" in refused.value.text
    record = dd.messages[message.id]
    assert len(record.versions) == 1 and record.content == "kept"
    assert [(r.method, r.status) for r in dd.refusals] == [("POST", 400), ("PATCH", 400)]

    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="U1", emoji="🔄", custom_id="probe:u1"))
    await message.edit(content="changed", view=view)
    assert record.content == "changed" and record.current.buttons[0]["emoji"]["name"] == "🔄"


async def test_injected_faults_are_not_refusals(dd: DiscordDouble, raw) -> None:
    dd.fail_next(method="POST", status=400, body={"message": "custom", "code": 50035, "errors": {}})
    async with raw.post(f"/api/v10/channels/{dd.channel_id}/messages", json={"content": "x"}) as response:
        assert response.status == 400
    assert dd.refusals == [] and dd.requests[-1].error == {"message": "custom", "code": 50035, "errors": {}}


# ------------------------------------------------- uploads: size per boost tier, count, media
#
# Discord checks the upload limit per file, not per request
# (https://discord.com/developers/docs/reference#uploading-files): 10 MiB, 50 MiB at boost
# tier 2, 100 MiB at tier 3; a file over it is answered 413 Request entity too large (40005).
# A message has at most 10 attachments.

MiB = 1024 * 1024


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(width: int, height: int, size: int = 0) -> bytes:
    """An MP4 of one ``width`` x ``height`` track (ftyp, moov > trak > tkhd), padded to ``size`` with mdat."""
    tkhd = box(b"tkhd", bytes(76) + struct.pack(">II", width << 16, height << 16))  # version 0
    head = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41") + box(b"moov", box(b"trak", tkhd))
    return head + box(b"mdat", bytes(max(0, size - len(head) - 8)))


def webp(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


async def set_tier(dd: DiscordDouble, bot: EchoBot, tier: int) -> discord.Guild:
    """Boost the main guild to ``tier``; returns discord.py's guild once its GUILD_UPDATE arrived."""
    updated = bot.wait_for("guild_update", check=lambda before, after: after.id == dd.guild_id, timeout=5)
    await dd.set_premium_tier(dd.guild_id, tier)
    _, guild = await updated
    return guild


@double(channel_write_limit=None)
async def test_upload_limit_follows_the_boost_tier(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    guild = bot.get_guild(dd.guild_id)
    assert guild.premium_tier == 0 and guild.filesize_limit == dd.upload_limit() == 10 * MiB
    twelve, sixty = mp4(1280, 720, 12 * MiB), mp4(1920, 1080, 60 * MiB)

    async def refused(data: bytes) -> None:
        with pytest.raises(discord.HTTPException) as error:
            await channel.send("too big", file=discord.File(io.BytesIO(data), "clip.mp4"))
        assert error.value.status == 413 and error.value.code == 40005
        assert "Request entity too large" in error.value.text

    await refused(twelve)
    assert (await set_tier(dd, bot, 1)).filesize_limit == 10 * MiB  # tier 1 adds no upload room
    await refused(twelve)

    guild = await set_tier(dd, bot, 2)
    assert guild.premium_tier == 2 and guild.premium_subscription_count == 7
    assert guild.filesize_limit == dd.upload_limit() == 50 * MiB and dd.premium_tier() == 2
    sent = await channel.send("twelve", file=discord.File(io.BytesIO(twelve), "clip.mp4"))
    await refused(sixty)

    assert (await set_tier(dd, bot, 3)).filesize_limit == dd.upload_limit() == 100 * MiB
    sent_60 = await channel.send("sixty", file=discord.File(io.BytesIO(sixty), "big.mp4"))

    # What the double stored, and what discord.py was answered.
    assert [m.content for m in dd.channel_messages()] == ["twelve", "sixty"]
    (stored,) = dd.messages[sent.id].attachments
    assert (stored.filename, stored.content_type, stored.size) == ("clip.mp4", "video/mp4", 12 * MiB)
    assert stored.data == twelve and (stored.width, stored.height) == (1280, 720) and stored.is_video
    (stored_60,) = dd.messages[sent_60.id].attachments
    assert stored_60.data == sixty and stored_60.content_type == "video/mp4"
    assert (sent_60.attachments[0].size, sent_60.attachments[0].content_type) == (60 * MiB, "video/mp4")
    assert (sent_60.attachments[0].width, sent_60.attachments[0].height) == (1920, 1080)
    refusals = [r for r in dd.find_requests("POST", r"/messages$") if r.status == 413]
    assert len(refusals) == 3 and all(r.error_code == 40005 for r in refusals)
    assert dd.refusals == []  # 413 is not a 400 refusal

    # The tier is the guild's own: another guild keeps 10 MiB; interactions say which limit applies.
    other = await dd.add_guild()
    assert dd.upload_limit(other) == 10 * MiB and dd.premium_tier(other) == 0
    here = driver.slash_interaction(
        dd.state, "echo", {"text": "t", "n": 1}, {}, user_id=dd.member_id, channel_id=dd.channel_id,
        locale="en-US", app_permissions=None,
    )  # fmt: skip
    assert here.payload["attachment_size_limit"] == 100 * MiB

    await set_tier(dd, bot, 0)  # boosts run out
    await refused(twelve)
    with pytest.raises(ValueError):
        await dd.set_premium_tier(dd.guild_id, 4)


@double(channel_write_limit=None)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.__name__)
async def test_every_upload_endpoint_applies_the_guilds_limit(dd: DiscordDouble, raw, endpoint) -> None:
    target = endpoint(dd, raw)
    await target.prepare()
    assert target.interaction().payload["attachment_size_limit"] == 10 * MiB
    before = world(dd)
    clip = mp4(640, 480, 12 * MiB)
    payload = {"content": "clip", "attachments": [{"id": 0, "filename": "clip.mp4"}]}

    status, body = await target.send(payload, [("clip.mp4", clip)])
    assert (status, body) == (413, {"message": "Request entity too large", "code": 40005})
    assert world(dd) == before, "a refused upload changed something"

    await dd.set_premium_tier(dd.guild_id, 2)
    assert target.interaction().payload["attachment_size_limit"] == 50 * MiB
    status, body = await target.send(payload, [("clip.mp4", clip)])
    assert status in (200, 204), body
    (message,) = [m for m in dd.messages.values() if m.content == "clip"]
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == ("clip.mp4", "video/mp4", clip)
    assert await download(attachment.url) == clip


@double(channel_write_limit=None)
async def test_the_limit_is_per_file_not_per_request(dd: DiscordDouble, raw) -> None:
    target = ChannelPost(dd, raw)
    files = [("a.png", bytes(6 * MiB)), ("b.png", bytes(6 * MiB))]
    status, body = await target.send({"content": "twelve in two"}, files)
    assert status == 200, body
    assert [a["size"] for a in body["attachments"]] == [6 * MiB, 6 * MiB]

    status, _ = await target.send({"content": "at the limit"}, [("c.bin", bytes(10 * MiB))])
    assert status == 200
    status, body = await target.send({"content": "one byte over"}, [("d.bin", bytes(10 * MiB + 1))])
    assert status == 413 and body["code"] == 40005

    # At tier 3 a file may have 100 MiB (the double's HTTP server takes requests that big).
    await dd.set_premium_tier(dd.guild_id, 3)
    status, body = await target.send({"content": "the most"}, [("e.bin", bytes(100 * MiB))])
    assert status == 200, body
    assert [m.content for m in dd.channel_messages()] == ["twelve in two", "at the limit", "the most"]


@double(channel_write_limit=None)
async def test_more_than_10_attachments_are_refused(dd: DiscordDouble, raw) -> None:
    target = ChannelPost(dd, raw)
    eleven = [(f"f{i}.png", PNG) for i in range(11)]
    listed = [{"id": i, "filename": name} for i, (name, _) in enumerate(eleven)]

    # discord.py's shape (an attachments array): 400 Invalid Form Body on "attachments".
    status, body = await target.send({"content": "many", "attachments": listed}, eleven)
    assert_refused(dd, status, body, {"attachments": "BASE_TYPE_MAX_LENGTH"}, "")
    # An interaction callback is refused the same way, under "data".
    callback = CallbackMessage(dd, raw)
    await callback.prepare()
    status, body = await callback.send({"content": "many", "attachments": listed}, eleven)
    assert_refused(dd, status, body, {"attachments": "BASE_TYPE_MAX_LENGTH"}, "data.")
    assert callback.slash.callbacks == []
    # Files alone: Discord's 30015.
    status, body = await target.send({"content": "many"}, eleven)
    assert (status, body["code"]) == (400, 30015) and dd.refusals[-1].error_code == 30015
    assert dd.messages == {} and dd.state.files == {}

    status, body = await target.send({"content": "ten", "attachments": listed[:10]}, eleven[:10])
    assert status == 200 and len(body["attachments"]) == 10
    # An edit adding an 11th (no attachments array: the upload is appended) is refused too.
    status, body = await Endpoint(dd, raw).request(
        "PATCH", f"/channels/{dd.channel_id}/messages/{body['id']}", {"content": "eleven"}, eleven[:1]
    )
    assert (status, body["code"]) == (400, 30015)
    (message,) = dd.messages.values()
    assert len(message.versions) == 1 and len(message.attachments) == 10


async def test_attachments_get_discords_content_type_and_size(dd: DiscordDouble, bot: EchoBot) -> None:
    channel = bot.get_channel(dd.channel_id)
    uploads = {
        "clip.mp4": mp4(1920, 1080),
        "still.webp": webp(512, 256),
        "photo.jpg": jpeg(800, 600),
        "anim.gif": gif(64, 32),
        "grid.png": PNG,
        "notes.txt": b"hello",
        "no-extension": PNG,  # Discord reads the bytes when the name says nothing
    }
    files = [discord.File(io.BytesIO(data), name) for name, data in uploads.items()]
    sent = await channel.send("media", files=files)

    expected = [
        ("clip.mp4", "video/mp4", 1920, 1080),
        ("still.webp", "image/webp", 512, 256),
        ("photo.jpg", "image/jpeg", 800, 600),
        ("anim.gif", "image/gif", 64, 32),
        ("grid.png", "image/png", 1, 1),
        ("notes.txt", "text/plain; charset=utf-8", None, None),
        ("no-extension", "image/png", 1, 1),
    ]
    record = dd.messages[sent.id]
    assert [(a.filename, a.content_type, a.width, a.height) for a in record.attachments] == expected
    assert [(a.filename, a.content_type, a.width, a.height) for a in sent.attachments] == expected
    for attachment in record.attachments:  # the bytes, from the record and from the attachment's url
        assert attachment.data == uploads[attachment.filename]
        assert await download(attachment.url) == attachment.data
    assert record.current.attachment("clip.mp4").is_video and record.current.attachment("still.webp").is_image
    assert await sent.attachments[0].read() == uploads["clip.mp4"]


VALID_EMOJI = [
    "🔄",
    "⬅️",
    "🪄",
    "🔍",
    "1️⃣",
    "1⃣",
    "#️⃣",
    "❌",
    "✏️",
    "🎬",
    "✅",
    "☑️",
    "⭐",
    "▶️",
    "↩️",
    "©️",
    "™️",
    "👍🏽",
    "🇫🇷",
    "🏳️‍🌈",
    "👨🏽‍💻",
    "❤️‍🔥",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
]
INVALID_EMOJI = [
    "upscale_1",
    "",
    " ",
    "x",
    "1",
    "#",
    "_",
    ":x:",
    "🔄🔄",
    "🔄 ",
    " 🔄",
    "x❌",
    "\ufe0f",
    "\u200d",
    "🔄\u200d",
    "\u200d🔄",
    "🇫",
    "🏻",
    "1\ufe0f",
    "^",
    "`",
    "🔄_1",
]


@pytest.mark.parametrize("name", VALID_EMOJI)
def test_unicode_emoji_accepted(name: str) -> None:
    assert is_unicode_emoji(name)


@pytest.mark.parametrize("name", INVALID_EMOJI)
def test_not_unicode_emoji_refused(name: str) -> None:
    assert not is_unicode_emoji(name)


# ------------------------------------------------------------ direct messages
#
# ``User.send()`` / ``Member.send()`` open the DM with Create DM (POST /users/@me/channels,
# https://discord.com/developers/docs/resources/user#create-dm), which answers the DM channel object
# (type 1, ``recipients``: https://discord.com/developers/docs/resources/channel#channel-object-example-dm-channel),
# the same one every time, then post in it as in a guild channel, without a guild.


def dm_events(dd: DiscordDouble, channel_id: int) -> list[dict]:
    """The MESSAGE_CREATE events the double sent for a channel."""
    return [
        f.d
        for f in dd.gateway_log
        if f.direction == "out" and f.t == "MESSAGE_CREATE" and f.d["channel_id"] == str(channel_id)
    ]


async def test_user_send_arrives_in_direct_messages(dd: DiscordDouble, bot: EchoBot) -> None:
    alice, bob = dd.members
    user = await bot.fetch_user(alice)  # not cached (no members intent): GET /users/{id}
    assert (user.id, user.name) == (alice, "alice")
    assert dd.find_requests("GET", rf"^/users/{alice}$")
    assert dd.direct_messages(alice) == [] and dd.dm_channel_id(alice) is None

    sent = await user.send("hi")
    assert isinstance(sent.channel, discord.DMChannel) and sent.guild is None
    assert sent.channel.recipient.id == alice
    (record,) = dd.direct_messages(alice)
    assert (record.id, record.content, record.origin, record.author_id) == (sent.id, "hi", "bot", dd.bot_id)
    assert record.channel_id == dd.dm_channel_id(alice) == sent.channel.id
    assert dd.direct_messages(bob) == [] and dd.channel_messages() == []  # nothing in the guild
    (opened,) = dd.find_requests("POST", r"^/users/@me/channels$")
    assert opened.status == 200 and int(opened.payload["recipient_id"]) == alice

    # The bot's session gets its own DM as Discord sends it: no guild, no member.
    (event,) = await dd.wait_for(lambda: dm_events(dd, sent.channel.id))
    assert "guild_id" not in event and "member" not in event and event["channel_type"] == 1
    assert event["content"] == "hi" and event["author"]["id"] == str(dd.bot_id)

    # Member.send, with an embed and a file; a test can wait for it.
    member = await bot.get_guild(dd.guild_id).fetch_member(bob)
    arrived = asyncio.create_task(dd.wait_for(lambda: dd.direct_messages(bob)))
    embed = discord.Embed(title="Result", description="done").set_image(url="attachment://result.png")
    await member.send("for bob", embed=embed, file=discord.File(io.BytesIO(PNG), "result.png"))
    (for_bob,) = await arrived
    assert for_bob.content == "for bob" and for_bob.channel_id == dd.dm_channel_id(bob) != dd.dm_channel_id(alice)
    (attachment,) = for_bob.attachments
    assert (attachment.filename, attachment.data, attachment.content_type) == ("result.png", PNG, "image/png")
    assert for_bob.current.embeds[0]["image"]["url"] == attachment.url
    assert await download(attachment.url) == PNG

    # The bot edits and deletes its own DMs like any message.
    await sent.edit(content="hi again")
    assert [v.content for v in dd.messages[sent.id].versions] == ["hi", "hi again"]
    await sent.delete()
    assert dd.direct_messages(alice) == [] and dd.direct_messages(alice, include_deleted=True)[0].deleted


async def test_the_dm_channel_is_reused(dd: DiscordDouble, bot: EchoBot) -> None:
    alice = dd.member_id
    user = await bot.fetch_user(alice)
    first = await user.send("one")
    second = await user.send("two")
    assert first.channel.id == second.channel.id == dd.dm_channel_id(alice)
    assert len(dd.find_requests("POST", r"^/users/@me/channels$")) == 1  # discord.py keeps the channel

    # Create DM answers the existing channel, as Discord documents; another client gets it too.
    async with raw_session(dd) as session:
        for recipient in (alice, str(alice)):  # discord.py sends the id as a number; strings pass too
            async with session.post("/api/v10/users/@me/channels", json={"recipient_id": recipient}) as response:
                assert response.status == 200
                channel = await response.json()
            assert channel == {
                "id": str(first.channel.id),
                "type": 1,
                "last_message_id": str(second.id),
                "flags": 0,
                "recipients": [channel["recipients"][0]],
            }
            assert channel["recipients"][0]["id"] == str(alice) and channel["recipients"][0]["username"] == "alice"
        async with session.get(f"/api/v10/channels/{first.channel.id}") as response:
            assert (await response.json())["recipients"][0]["id"] == str(alice)
    other = await login(dd)
    try:
        assert (await (await other.fetch_user(alice)).create_dm()).id == first.channel.id
    finally:
        await other.close()
    assert [m.content for m in dd.direct_messages(alice)] == ["one", "two"]  # newest last
    assert len(dd.state.dm_channels) == 1
    # History reads the DM like a channel.
    assert [m.content async for m in first.channel.history()] == ["two", "one"]


async def test_closed_dms_are_forbidden(dd: DiscordDouble, bot: EchoBot) -> None:
    alice, bob = dd.members
    user = await bot.fetch_user(alice)
    dd.close_dms(alice)
    assert dd.dms_closed(alice) and not dd.dms_closed(bob)
    with pytest.raises(discord.Forbidden) as error:
        await user.send("you will not see this")
    assert (error.value.status, error.value.code) == (403, 50007)
    assert error.value.text == "Cannot send messages to this user"
    # The DM opened (Discord refuses the message, not the channel); nothing was sent in it.
    assert dd.dm_channel_id(alice) is not None and dd.direct_messages(alice) == []
    assert dd.messages == {} and dd.refusals == []  # a 403 is not a 400 refusal
    (refused,) = dd.find_requests("POST", rf"^/channels/{dd.dm_channel_id(alice)}/messages$")
    assert refused.status == 403 and refused.error_code == 50007
    await (await bot.fetch_user(bob)).send("bob still gets DMs")
    assert [m.content for m in dd.direct_messages(bob)] == ["bob still gets DMs"]

    dd.open_dms(alice)
    await user.send("welcome back")
    assert [m.content for m in dd.direct_messages(alice)] == ["welcome back"]
    with pytest.raises(KeyError):
        dd.close_dms(12345)


async def test_unknown_recipient_is_refused(dd: DiscordDouble, bot: EchoBot) -> None:
    unknown = dd.state.new_id()  # a snowflake, but nobody's
    with pytest.raises(discord.NotFound) as not_found:
        await bot.fetch_user(unknown)
    assert not_found.value.code == 10013  # Unknown User
    with pytest.raises(discord.HTTPException) as invalid:
        await bot.http.start_private_message(unknown)
    assert (invalid.value.status, invalid.value.code, invalid.value.text) == (400, 50033, "Invalid Recipient(s)")
    # The bot cannot DM itself (discord.py's ClientUser has no send; the raw call shows Discord's answer).
    with pytest.raises(discord.HTTPException) as itself:
        await bot.http.start_private_message(dd.bot_id)
    assert (itself.value.status, itself.value.code) == (400, 50007)

    async with raw_session(dd) as session:
        for body, code in [({}, "BASE_TYPE_REQUIRED"), ({"recipient_id": "alice"}, "NUMBER_TYPE_COERCE")]:
            async with session.post("/api/v10/users/@me/channels", json=body) as response:
                answer = await response.json()
            assert (response.status, answer["code"]) == (400, 50035)
            assert dd.refusals[-1].form_error_codes == {"recipient_id": code}
    assert [r.error_code for r in dd.refusals] == [50033, 50007, 50035, 50035]
    assert dd.state.dm_channels == {} and dd.messages == {}
    assert dd.direct_messages(unknown) == [] and dd.dm_channel_id(unknown) is None


@double(channel_write_limit=None)
async def test_dms_take_files_up_to_10_mib_whatever_the_guilds_tier(dd: DiscordDouble, raw) -> None:
    await dd.set_premium_tier(dd.guild_id, 3)  # a guild's boosts do not reach its members' DMs
    status, channel = await Endpoint(dd, raw).request("POST", "/users/@me/channels", {"recipient_id": dd.member_id})
    assert status == 200 and channel["type"] == 1
    dm = Endpoint(dd, raw)
    path = f"/channels/{channel['id']}/messages"

    status, body = await dm.request("POST", path, {"content": "at the limit"}, [("a.bin", bytes(10 * MiB))])
    assert status == 200 and "guild_id" not in body and body["attachments"][0]["size"] == 10 * MiB
    status, body = await dm.request("POST", path, {"content": "one byte over"}, [("b.bin", bytes(10 * MiB + 1))])
    assert (status, body) == (413, {"message": "Request entity too large", "code": 40005})
    # Discord's message rules hold in DMs too.
    status, body = await dm.request("POST", path, {"content": "x" * 2001})
    assert (status, body["code"]) == (400, 50035) and dd.refusals[-1].form_error_codes == {
        "content": "BASE_TYPE_MAX_LENGTH"
    }
    status, body = await dm.request("POST", path, {"content": ""})
    assert (status, body["code"]) == (400, 50006)
    assert [m.content for m in dd.direct_messages(dd.member_id)] == ["at the limit"]


async def test_a_user_dms_the_bot(dd: DiscordDouble, bot: EchoBot) -> None:
    bob = dd.members[1]
    received = asyncio.create_task(bot.wait_for("message", check=lambda m: m.guild is None, timeout=5))
    sent = await dd.send_user_dm("hello bot", user=bob)
    message = await received
    # Content arrives without the MESSAGE_CONTENT intent: DMs with the app are exempt.
    assert (message.id, message.content, message.author.id) == (sent.id, "hello bot", bob)
    assert message.channel.id == dd.dm_channel_id(bob) == sent.channel_id

    reply = await message.channel.send("hello bob")
    assert [(m.content, m.origin) for m in dd.direct_messages(bob)] == [("hello bot", "user"), ("hello bob", "bot")]
    assert reply.channel.id == dd.dm_channel_id(bob)
    # Nobody manages messages in a DM: the bot cannot delete bob's.
    with pytest.raises(discord.Forbidden) as error:
        await message.delete()
    assert error.value.code == 50003
    with pytest.raises(ValueError):
        await dd.send_user_message("not in that DM", user=dd.member_id, channel=dd.dm_channel_id(bob))
