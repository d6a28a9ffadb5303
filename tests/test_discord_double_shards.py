"""Self-test of the Discord double's gateway sharding with real, unmodified discord.py clients.

A bot may run as several processes, each with some shards
(``AutoShardedBot(shard_count=N, shard_ids=[...])``).  The double shards like
Discord: ``GET /gateway/bot`` recommends a count, IDENTIFY's ``shard`` is
checked (4010 Invalid shard, 4011 Sharding required), READY and GUILD_CREATE
carry only the shard's guilds, and every guild event or interaction goes only
to the sessions whose shard owns the guild (``(guild_id >> 22) % num_shards``)
- nobody's, if no live session does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from bot.sandbox.discord_double import (
    INVALID_SHARD,
    SHARDING_REQUIRED,
    DiscordDouble,
    InteractionRecord,
    guild_id_on_shard,
    shard_of,
)

INTENT_GUILD_MESSAGES = 1 << 9


@app_commands.command(description="Say which client answered")
async def where(interaction: discord.Interaction) -> None:
    await interaction.response.send_message(f"answered by {interaction.client.label}")


class ShardBot(commands.AutoShardedBot):
    """An AutoShardedBot with a global /where; ``shard_count`` None asks ``GET /gateway/bot``."""

    def __init__(self, label: str, **options: Any) -> None:
        # guild_ready_timeout: on_ready waits this long after a shard's last GUILD_CREATE (default 2 s).
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.1, **options)
        self.label = label
        self.ready = asyncio.Event()
        self.shard_events: dict[tuple[str, int], asyncio.Event] = {}
        self.tree.add_command(where)

    def shard_event(self, event: str, shard_id: int) -> asyncio.Event:
        """Set when shard ``shard_id`` gets ``event`` ("ready" or "resumed")."""
        return self.shard_events.setdefault((event, shard_id), asyncio.Event())

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before every IDENTIFY but the first (max_concurrency 1);
        # the double does not enforce that rate, so the test does not wait.
        return None

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_shard_ready(self, shard_id: int) -> None:
        self.shard_event("ready", shard_id).set()

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.shard_event("resumed", shard_id).set()


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch):
    """Point discord.py at a double, as mjbot does."""

    def point(dd: DiscordDouble) -> None:
        monkeypatch.setattr(discord.http.Route, "BASE", dd.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(dd.gateway_url))

    return point


@contextlib.asynccontextmanager
async def running(dd: DiscordDouble, client: ShardBot) -> AsyncIterator[ShardBot]:
    """Start ``client`` and wait for its on_ready (all its shards ready); close it afterwards."""
    runner = asyncio.create_task(client.start(dd.bot_token))
    ready = asyncio.create_task(client.ready.wait())
    try:
        # If start() fails, surface its error instead of a timeout.
        await asyncio.wait({runner, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()
        assert client.ready.is_set(), f"{client.label} did not get ready within 10 s"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await runner


async def answered_by(dd: DiscordDouble, interaction: InteractionRecord) -> str:
    await dd.wait_for(lambda: interaction.original, what=f"an answer to interaction {interaction.id}")
    return interaction.original.content.removeprefix("answered by ")


def frames_out(dd: DiscordDouble, event: str) -> list:
    return [f for f in dd.gateway_log if f.direction == "out" and f.t == event]


async def identify_raw(dd: DiscordDouble, shard: Any = None, *, intents: int = 0) -> tuple[int | None, dict | None]:
    """IDENTIFY on a bare websocket; returns (close code, None) if refused, else (None, READY's data)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(dd.gateway_url) as ws:
        assert (await ws.receive_json())["op"] == 10
        data: dict[str, Any] = {"token": dd.bot_token, "intents": intents, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await ws.send_json({"op": 2, "d": data})
        message = await ws.receive()
        if message.type is aiohttp.WSMsgType.CLOSE:
            return ws.close_code, None
        frame = message.json()
        assert frame["t"] == "READY"
        return None, frame["d"]


# ------------------------------------------------------------------- tests


def test_guild_ids_on_shard_land_there() -> None:
    for count in (1, 2, 3, 16):
        for shard in range(count):
            ids = [guild_id_on_shard(shard, count, n) for n in range(5)]
            assert [shard_of(i, count) for i in ids] == [shard] * 5
            assert len(set(ids)) == 5 and ids == sorted(ids)
    assert guild_id_on_shard(1, 2, 3) == guild_id_on_shard(1, 2, 3)  # the same on every run
    assert shard_of(None, 4) == 0  # DMs go to shard 0
    with pytest.raises(ValueError):
        guild_id_on_shard(2, 2)


async def test_gateway_bot_recommends_the_configured_count() -> None:
    async with DiscordDouble(shard_count=3, max_concurrency=2, session_start_limit=50) as dd:
        headers = {"Authorization": f"Bot {dd.bot_token}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def gateway_bot() -> dict:
                async with session.get(f"{dd.api_base}/gateway/bot") as response:
                    assert response.status == 200
                    return await response.json()

            before = await gateway_bot()
            assert before["url"] == dd.gateway_url and before["shards"] == 3
            assert before["session_start_limit"] == {
                "total": 50,
                "remaining": 50,
                "reset_after": 24 * 3600 * 1000,
                "max_concurrency": 2,
            }
            assert (await identify_raw(dd, [0, 3]))[0] is None
            after = (await gateway_bot())["session_start_limit"]
            assert after["remaining"] == 49 and 0 < after["reset_after"] <= 24 * 3600 * 1000

            dd.shard_count = 4  # Discord recommends more shards as a bot grows
            assert (await gateway_bot())["shards"] == 4


async def test_two_shards_of_one_client_each_get_their_own_guilds(point_at) -> None:
    async with DiscordDouble(shard_count=2, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_1 = await dd.add_guild(guild_id_on_shard(1, 2))
        also_on_0 = await dd.add_guild(guild_id_on_shard(0, 2, 1))
        point_at(dd)
        async with running(dd, ShardBot("solo")) as bot:  # no shard_count: it asks GET /gateway/bot
            assert bot.shard_count == 2 and set(bot.shards) == {0, 1}
            assert {g.id: g.shard_id for g in bot.guilds} == {dd.guild_id: 0, on_1: 1, also_on_0: 0}
            assert dd.live_shards == [(0, 2), (1, 2)]

            # On the wire: each session's READY and GUILD_CREATEs carry only its shard's guilds.
            expected = {0: {dd.guild_id, also_on_0}, 1: {on_1}}
            for ready in frames_out(dd, "READY"):
                shard_id, count = ready.d["shard"]
                assert count == 2
                assert {int(g["id"]) for g in ready.d["guilds"]} == expected[shard_id]
                created = {int(f.d["id"]) for f in frames_out(dd, "GUILD_CREATE") if f.connection == ready.connection}
                assert created == expected[shard_id]

            # An interaction reaches the session of its guild's shard only.
            sessions = {s.shard_id: s.id for s in dd.sessions}
            for guild_id, shard_id in ((on_1, 1), (also_on_0, 0)):
                interaction = await dd.slash("where", guild=guild_id)
                assert interaction.delivered_to == [sessions[shard_id]]
                assert interaction.guild_id == guild_id
                assert await answered_by(dd, interaction) == "solo"
            assert dd.undelivered_interactions == []


async def test_processes_with_one_shard_each_get_only_their_guilds(point_at) -> None:
    async with DiscordDouble(shard_count=2, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_0, on_1 = dd.guild_id, await dd.add_guild(guild_id_on_shard(1, 2))
        point_at(dd)
        first = ShardBot("first", shard_count=2, shard_ids=[0])
        second = ShardBot("second", shard_count=2, shard_ids=[1])
        async with running(dd, first), running(dd, second):
            assert [g.id for g in first.guilds] == [on_0] and [g.id for g in second.guilds] == [on_1]
            assert dd.live_shards == [(0, 2), (1, 2)]

            assert await answered_by(dd, await dd.slash("where", guild=on_0)) == "first"
            assert await answered_by(dd, await dd.slash("where", guild=on_1)) == "second"

            # Other guild events too: a member's message reaches only its guild's shard.
            connection_of = {s.shard_id: s.connection_id for s in dd.sessions}
            for guild_id, shard_id in ((on_0, 0), (on_1, 1)):
                message = await dd.send_user_message("hello", guild=guild_id)
                (delivery,) = [f for f in frames_out(dd, "MESSAGE_CREATE") if f.d["id"] == str(message.id)]
                assert delivery.connection == connection_of[shard_id]

            # The second process stops: nobody owns shard 1 any more, so its interactions are lost.
            await second.close()
            await dd.wait_for(lambda: dd.live_shards == [(0, 2)])
            lost = await dd.slash("where", guild=on_1)
            assert not lost.delivered and dd.undelivered_interactions == [lost]
            assert lost.sent_at is not None and not lost.acknowledged
            assert await answered_by(dd, await dd.slash("where", guild=on_0)) == "first"


async def test_a_shard_launched_later_receives_its_guilds_interactions(point_at) -> None:
    async with DiscordDouble(shard_count=2, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_1 = await dd.add_guild(guild_id_on_shard(1, 2))
        point_at(dd)
        async with running(dd, ShardBot("grower", shard_count=2, shard_ids=[0])) as bot:
            assert bot.get_guild(on_1) is None
            before = await dd.slash("where", guild=on_1)
            assert not before.delivered

            await bot.launch_shard(yarl.URL(dd.gateway_url), 1)
            await asyncio.wait_for(bot.shard_event("ready", 1).wait(), timeout=10)
            assert dd.live_shards == [(0, 2), (1, 2)]
            assert bot.get_guild(on_1) is not None

            after = await dd.slash("where", guild=on_1)
            (new_session,) = [s.id for s in dd.sessions if s.shard == (1, 2)]
            assert after.delivered_to == [new_session]
            assert await answered_by(dd, after) == "grower"
            assert dd.undelivered_interactions == [before]  # a lost interaction is not redelivered


async def test_dropped_shard_resumes_with_its_shard(point_at) -> None:
    async with DiscordDouble(shard_count=2, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_1 = await dd.add_guild(guild_id_on_shard(1, 2))
        point_at(dd)
        async with running(dd, ShardBot("resumer")) as bot:
            before = {s.shard_id: s for s in dd.sessions}

            assert await dd.drop_gateway(shard=1) == 1
            # Sent while shard 1 is disconnected: buffered for its session, replayed on RESUME.
            interaction = await dd.slash("where", guild=on_1)
            assert interaction.delivered_to == [before[1].id]
            await asyncio.wait_for(bot.shard_event("resumed", 1).wait(), timeout=10)
            assert await answered_by(dd, interaction) == "resumer"

            after = {s.shard_id: s for s in dd.sessions}
            assert after[1].id == before[1].id and after[1].shard == (1, 2) and after[1].connected
            assert after[1].connection_id != before[1].connection_id
            assert after[0] == before[0]  # shard 0 was not touched
            assert dd.resume_count == 1 and dd.identify_count == 2


async def test_ended_shard_session_loses_events_until_it_identifies_again(point_at) -> None:
    async with DiscordDouble(shard_count=2, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_1 = await dd.add_guild(guild_id_on_shard(1, 2))
        point_at(dd)
        async with running(dd, ShardBot("reidentifier")) as bot:
            old = next(s.id for s in dd.sessions if s.shard_id == 1)
            dd.gateway.accepting = False  # an outage, so the client cannot start a new session yet
            assert await dd.drop_gateway(shard=1, resumable=False) == 1
            assert dd.live_shards == [(0, 2)]
            assert not (await dd.slash("where", guild=on_1)).delivered

            bot.shard_event("ready", 1).clear()
            dd.gateway.accepting = True
            await asyncio.wait_for(bot.shard_event("ready", 1).wait(), timeout=30)
            assert dd.live_shards == [(0, 2), (1, 2)] and old not in {s.id for s in dd.sessions if s.live}
            assert await answered_by(dd, await dd.slash("where", guild=on_1)) == "reidentifier"


async def test_invalid_shard_closes_with_4010(point_at) -> None:
    async with DiscordDouble(shard_count=2) as dd:
        point_at(dd)
        client = ShardBot("out of range", shard_count=2, shard_ids=[2])
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.start(dd.bot_token), timeout=10)
        assert closed.value.code == INVALID_SHARD
        assert dd.sessions == [] and dd.live_shards == []

        for shard in ([-1, 2], [0, 0], [1], [0, "2"], "0,2", [True, 2]):
            assert await identify_raw(dd, shard) == (INVALID_SHARD, None), shard


@pytest.mark.parametrize(
    ("options", "shard", "refused"),
    [
        ({"shard_count": 2}, None, True),  # sharding required: no shard at all
        ({"shard_count": 2}, [0, 1], True),  # one shard would still hold every guild
        ({"shard_count": 2, "require_sharding": False}, None, False),  # only recommended
        ({"shard_count": 2}, [0, 3], False),  # more shards than recommended is fine
        ({}, None, False),  # a small bot need not shard
        ({"require_sharding": True}, [0, 1], False),
    ],
)
async def test_sharding_required_closes_with_4011(options: dict, shard: Any, refused: bool) -> None:
    async with DiscordDouble(**options) as dd:
        code, ready = await identify_raw(dd, shard)
        if refused:
            assert code == SHARDING_REQUIRED and ready is None
        else:
            assert code is None and ready is not None
            assert ready.get("shard") == shard  # READY echoes the shard only if IDENTIFY had one


async def test_unsharded_session_gets_every_guild_and_one_shard_may_have_two_sessions() -> None:
    async with DiscordDouble(shard_count=2, require_sharding=False, guild_id=guild_id_on_shard(0, 2)) as dd:
        on_1 = await dd.add_guild(guild_id_on_shard(1, 2))
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            sockets = []
            for shard in (None, [1, 2], [1, 2], [0, 2]):
                ws = await stack.enter_async_context(session.ws_connect(dd.gateway_url))
                await ws.receive_json()  # HELLO
                data = {"token": dd.bot_token, "intents": INTENT_GUILD_MESSAGES, "properties": {}}
                await ws.send_json({"op": 2, "d": data if shard is None else {**data, "shard": shard}})
                sockets.append(ws)
            await dd.wait_for(lambda: len(dd.sessions) == 4)
            unsharded, first_1, second_1, shard_0 = (s.connection_id for s in dd.sessions)

            ready_guilds = {f.connection: {g["id"] for g in f.d["guilds"]} for f in frames_out(dd, "READY")}
            assert ready_guilds[unsharded] == {str(dd.guild_id), str(on_1)}
            assert ready_guilds[first_1] == ready_guilds[second_1] == {str(on_1)}

            message = await dd.send_user_message("to shard 1", guild=on_1)
            got = {f.connection for f in frames_out(dd, "MESSAGE_CREATE") if f.d["id"] == str(message.id)}
            assert got == {unsharded, first_1, second_1}

            # Events without a guild (DMs) go to shard 0 only (and to unsharded sessions).
            sent = await dd.gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": str(dd.member_id)})
            assert {s.connection.id for s in sent if s.connection} == {unsharded, shard_0}
