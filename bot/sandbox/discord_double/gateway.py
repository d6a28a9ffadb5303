"""The gateway half of the double: a websocket speaking Discord's gateway protocol (JSON text frames).

A *session* (what IDENTIFY creates and RESUME continues) outlives its
websocket *connection*: every dispatch gets the session's next sequence
number and is kept, so a client that lost its connection can RESUME and get
the events it missed replayed before RESUMED.

A session may be one shard of the bot (IDENTIFY's ``shard``, see shards.py): it
then gets only its shard's guilds in READY and GUILD_CREATE, and only their
events.  RESUME continues a session, shard included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .messages import INTENT_MESSAGE_CONTENT
from .records import GatewayConnection, GatewayFrame
from .shards import ShardRefused, shard_of
from .state import State

log = logging.getLogger(__name__)

# Opcodes
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE_UPDATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_GUILD_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

# Close codes
UNKNOWN_OPCODE, NOT_AUTHENTICATED, AUTHENTICATION_FAILED, ALREADY_AUTHENTICATED = 4001, 4003, 4004, 4005


@dataclass(eq=False)
class Connection:
    id: int
    ws: web.WebSocketResponse
    request: web.Request
    session: Session | None = None

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, like a network failure."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass(eq=False)
class Session:
    id: str
    intents: int
    connection: Connection | None
    shard: tuple[int, int] | None = None  # (shard_id, num_shards) from IDENTIFY; None: unsharded
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for replay on RESUME
    invalidated: bool = False
    # Serialises sequence numbering, sending and replay so the client sees seqs in order.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def shard_id(self) -> int:
        return 0 if self.shard is None else self.shard[0]

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of ``guild_id`` (None: events without a guild, DMs)."""
        return self.shard is None or shard_of(guild_id, self.shard[1]) == self.shard[0]


class Gateway:
    def __init__(self, state: State, *, heartbeat_interval: float):
        self.state = state
        self.heartbeat_interval = heartbeat_interval
        self.ack_heartbeats = True  # a test may turn this off to simulate a zombie connection
        # A test may turn this off to keep a dropped client out (an outage): connection attempts get
        # HTTP 503 instead of the websocket, and the client keeps retrying with its back-off.
        self.accepting = True
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self._next_connection_id = 0

    # ------------------------------------------------------------- public

    @property
    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if not s.invalidated]

    async def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        intent: int | None = None,
        content_gated: bool = False,
        *,
        guild_id: int | None = None,
    ) -> list[Session]:
        """Send an event to every live session that owns its guild and subscribed to ``intent``.

        The guild is ``guild_id``, else the event's ``guild_id`` field; an event without
        one goes to shard 0 only, as Discord sends DMs.  ``content_gated`` events lose
        their content for sessions without the MESSAGE_CONTENT intent, as Discord does
        for other users' messages.  Returns the sessions it went to (a session waiting
        for its RESUME counts: it gets the event replayed).
        """
        if guild_id is None and data.get("guild_id") is not None:
            guild_id = int(data["guild_id"])
        sent: list[Session] = []
        for session in self.live_sessions:
            if not session.owns(guild_id) or (intent is not None and not session.intents & intent):
                continue
            payload = data
            if content_gated and not session.intents & INTENT_MESSAGE_CONTENT:
                payload = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
            await self.send_dispatch(session, event, payload)
            sent.append(session)
        return sent

    async def send_dispatch(self, session: Session, event: str, data: dict[str, Any]) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.sent.append(frame)
            if session.connection is not None:
                # If the connection died under us the frame stays in `sent` for a RESUME.
                await self._send(session.connection, frame)

    async def drop(self, code: int | None = None, *, shard: int | None = None, resumable: bool = True) -> int:
        """Break the connection of every live session (of shard ``shard`` only, if given).

        ``code=None`` cuts the TCP connection (no close frame); otherwise the
        socket is closed with that close code.  The sessions stay resumable
        unless ``resumable`` is false: then they end, as when Discord times a
        session out, and the client's RESUME gets INVALID_SESSION.  Returns how
        many connections were broken (plus sessions ended while disconnected).
        """
        dropped = 0
        for session in self.live_sessions:
            if shard is not None and session.shard_id != shard:
                continue
            async with session.lock:
                # Detach first: anything dispatched from now on waits for the RESUME (or is lost).
                connection, session.connection = session.connection, None
                session.invalidated = not resumable
            if connection is None:
                dropped += not resumable
                continue
            connection.session = None
            if code is None:
                connection.abort()
            else:
                await connection.ws.close(code=code, message=b"dropped by the discord double")
            dropped += 1
        return dropped

    async def close_all(self) -> None:
        for connection in list(self.connections):
            await connection.ws.close(code=1001, message=b"discord double shutting down")

    # ---------------------------------------------------------- websocket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.accepting:
            return web.Response(status=503, text="gateway unavailable (discord double)")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._next_connection_id += 1
        connection = Connection(self._next_connection_id, ws, request)
        self.connections.add(connection)
        self.state.gateway_connections.append(
            GatewayConnection(connection.id, request.path, dict(request.query), time.monotonic())
        )
        try:
            await self._send(
                connection, {"op": HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}}
            )
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    break  # the client never sends binary frames; ERROR means the socket died
                await self._receive(connection, json.loads(message.data))
        finally:
            self.connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                # A client closing with 1000/1001 ends its session, as on Discord.
                if ws.close_code in (1000, 1001):
                    session.invalidated = True
        return ws

    async def _send(self, connection: Connection, frame: dict[str, Any]) -> None:
        self._log("out", connection, frame)
        try:
            await connection.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError) as error:
            log.debug("discord double: could not send to connection %s: %s", connection.id, error)
        await self.state.notify()

    def _log(self, direction: str, connection: Connection, frame: dict[str, Any]) -> None:
        self.state.gateway_log.append(
            GatewayFrame(
                direction,
                connection.id,
                frame.get("op", -1),
                frame.get("t"),
                frame.get("s"),
                frame.get("d"),
                time.monotonic(),
            )
        )

    async def _receive(self, connection: Connection, frame: dict[str, Any]) -> None:
        self._log("in", connection, frame)
        await self.state.notify()
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            if self.ack_heartbeats:
                await self._send(connection, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(connection, data or {})
        elif op == RESUME:
            await self._resume(connection, data or {})
        elif connection.session is None:
            await connection.ws.close(code=NOT_AUTHENTICATED, message=b"Not authenticated.")
        elif op == REQUEST_GUILD_MEMBERS:
            await self._send_member_chunk(connection.session, data or {})
        elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE):
            pass  # recorded in the log; nothing to answer
        else:
            await connection.ws.close(code=UNKNOWN_OPCODE, message=b"Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.state.token

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            await connection.ws.close(code=ALREADY_AUTHENTICATED, message=b"Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            await connection.ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        state = self.state
        try:
            shard = state.sharding.check(data.get("shard"))
        except ShardRefused as refused:
            await connection.ws.close(code=refused.code, message=refused.reason.encode())
            return
        state.sharding.starts.append(time.monotonic())
        session = Session(
            id=secrets.token_hex(16), intents=int(data.get("intents") or 0), connection=connection, shard=shard
        )
        self.sessions[session.id] = session
        connection.session = session
        guilds = [guild for guild in state.guilds.values() if session.owns(guild.id)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**state.bot.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": state.resume_gateway_url,
            "application": {"id": str(state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ["discord-double"],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        await self.send_dispatch(session, "READY", ready)
        # Right after READY, as Discord does: the client's on_ready waits for them.
        for guild in guilds:
            await self.send_dispatch(session, "GUILD_CREATE", guild.to_payload())

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(data.get("session_id") or "")
        if session is None or session.invalidated or not self._token_ok(data.get("token")):
            # d=false: not resumable, the client must IDENTIFY again.
            await self._send(connection, {"op": INVALID_SESSION, "d": False})
            return
        last_seen = int(data.get("seq") or 0)
        async with session.lock:
            old = session.connection
            if old is not None and old is not connection:
                old.session = None
                old.abort()
            for frame in session.sent:
                if frame["s"] > last_seen:
                    await self._send(connection, frame)
            session.connection = connection
            connection.session = session
        await self.send_dispatch(session, "RESUMED", {"_trace": ["discord-double"]})

    async def _send_member_chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild = self.state.guilds.get(int(data.get("guild_id") or 0))
        if guild is None or not session.owns(guild.id):
            return  # not a guild of this shard: Discord answers nothing
        query = (data.get("query") or "").lower()
        wanted = {int(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        members = [
            guild.member_payload(uid)
            for uid, member in guild.members.items()
            if (not wanted or uid in wanted) and member.user.username.lower().startswith(query)
        ]
        if limit:
            members = members[:limit]
        chunk = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(u) for u in wanted - set(guild.members)],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
