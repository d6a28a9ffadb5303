"""Self-test of the Discord double (tests/discord_double) with a real, unmodified discord.py client.

A tiny ``commands.Bot`` (not mjbot) with a slash command
``/echo text:str n:int file:Attachment(optional)`` and a persistent
``DynamicItem`` button proves that the double supports: login and on_ready,
command sync with options, deferred ephemeral replies edited later, public
posts with files and buttons, clicks reaching a DynamicItem, edits adding
attachments, replies, injected 429/404/403 answers, dropping the gateway and
RESUMing (with replay of missed events), attachment options, and a clean
shutdown.  A second command, ``/panel``, answers with the remaining callback
types: a message (4), an update of the clicked message (7), a modal (9) and a
"thinking" defer on a button replaced by its follow-up.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from tests.discord_double import DiscordDouble, InteractionRecord, MessageRecord

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


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def dd() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        yield double


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
    assert [c["name"] for c in dd.commands(dd.guild_id)] == ["echo", "panel"]
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
