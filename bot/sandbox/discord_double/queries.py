"""What a test reads from the double's records: requests, refusals, writes, messages, DMs, commands, sessions.

``Queries`` is mixed into ``DiscordDouble``; every answer is computed from the
records at the time of the call.
"""

from __future__ import annotations

import re
from typing import Any

from .gateway import Gateway
from .records import InteractionRecord, MessageRecord, RequestRecord, WriteEvent
from .shards import SessionInfo
from .state import State


class Queries:
    """Mixed into ``DiscordDouble``."""

    state: State
    gateway: Gateway
    channel_id: int

    @property
    def rate_limited(self) -> list[RequestRecord]:
        """Every request the channel write rate limit answered 429, in order.

        Injected 429s (``fail_next``) are not here: see their rule's ``hits``.
        """
        return self.state.rate_limited

    @property
    def refusals(self) -> list[RequestRecord]:
        """Every request the double refused with 400 by one of Discord's rules, in order.

        Mostly 50035 Invalid Form Body (content over 2000, a bad emoji, too many rows...: see
        validation.py), also 50006 empty message, 40060 already acknowledged...  Each record has
        ``status`` 400, ``error`` (the JSON body sent), ``error_code`` and ``form_errors``
        (``FormError(path, code, message)``).  A refused request changed nothing.  Injected
        faults (``fail_next``) are not refusals.
        """
        return self.state.refusals

    def refused_requests(
        self, method: str | None = None, path_re: str | None = None, *, code: str | int | None = None
    ) -> list[RequestRecord]:
        """``refusals`` filtered by method, path (re.search) and error ``code``: Discord's JSON code
        (50035) or a form error code name ("BASE_TYPE_MAX_LENGTH", "BUTTON_COMPONENT_INVALID_EMOJI")."""
        return [
            r
            for r in self.state.refusals
            if (method is None or r.method == method.upper())
            and (path_re is None or re.search(path_re, r.path))
            and (
                code is None
                or (r.error_code == code if isinstance(code, int) else any(e.code == code for e in r.form_errors))
            )
        ]

    def rate_limit_hits(self, channel_id: int | None = None) -> int:
        """How many 429s the write rate limit sent for ``channel_id`` (None: all channels)."""
        return sum(1 for r in self.state.rate_limited if channel_id is None or r.write_channel_id == channel_id)

    def channel_writes(self, channel_id: int | None = None) -> int:
        """Message writes the rate limit let through in ``channel_id`` (None: all channels).

        Counted whatever the route then answered (a PATCH of a deleted message still
        counts, as on Discord); 429s are not writes (see ``rate_limit_hits``).  Counted
        with the limit off too.
        """
        return sum(
            1
            for r in self.state.requests
            if r.write_channel_id is not None
            and not r.rate_limited
            and (channel_id is None or r.write_channel_id == channel_id)
        )

    def write_timeline(self, channel_id: int | None = None) -> list[WriteEvent]:
        """Message writes in ``channel_id`` (None: all channels) in arrival order, 429s included.

        Each is ``(at, method, path, status)``: ``at`` is ``time.monotonic()`` when the rate limit
        counted it; ``status`` 429 means refused by the limit, None not answered yet.  Recorded
        with the limit off too.
        """
        return [
            WriteEvent(r.at, r.method, r.path, r.status)
            for r in self.state.requests
            if r.write_channel_id is not None and (channel_id is None or r.write_channel_id == channel_id)
        ]

    def find_requests(self, method: str | None = None, path_re: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.state.requests
            if (method is None or r.method == method.upper()) and (path_re is None or re.search(path_re, r.path))
        ]

    def channel_messages(
        self, channel_id: int | None = None, *, include_deleted: bool = False, include_ephemeral: bool = True
    ) -> list[MessageRecord]:
        """Messages of a channel (default: the main one), oldest first."""
        channel_id = self.channel_id if channel_id is None else channel_id
        return sorted(
            (
                m
                for m in self.state.messages.values()
                if m.channel_id == channel_id
                and (include_deleted or not m.deleted)
                and (include_ephemeral or not m.ephemeral)
            ),
            key=lambda m: m.id,
        )

    def dm_channel_id(self, user_id: int) -> int | None:
        """The id of the bot's DM with ``user_id`` (what ``POST /users/@me/channels`` answered), None if
        the bot never opened one."""
        dm = self.state.dm_channel_of(user_id)
        return None if dm is None else dm.id

    def direct_messages(self, user_id: int, *, include_deleted: bool = False) -> list[MessageRecord]:
        """Messages of the DM between the bot and ``user_id``, oldest first (newest last): what the bot
        sent the user (``origin`` "bot"), and what the user sent the bot (``send_user_dm``, "user").
        Empty if no DM was opened; sends refused (DMs closed: 403 50007) left nothing here."""
        channel_id = self.dm_channel_id(user_id)
        return [] if channel_id is None else self.channel_messages(channel_id, include_deleted=include_deleted)

    def dms_closed(self, user_id: int) -> bool:
        """Whether ``user_id`` accepts no DM from the bot (``close_dms``)."""
        return user_id in self.state.closed_dms

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The registered commands as Discord stores them: global ones, or a guild's."""
        return self.state.commands.get(guild_id, [])

    def command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        for command in self.commands(guild_id):
            if command["name"] == name:
                return command
        raise KeyError(f"no command {name!r} registered {'globally' if guild_id is None else f'in guild {guild_id}'}")

    @property
    def identify_count(self) -> int:
        return sum(1 for f in self.state.gateway_log if f.direction == "in" and f.op == 2)

    @property
    def resume_count(self) -> int:
        """RESUMEs the double accepted (answered with RESUMED)."""
        return sum(1 for f in self.state.gateway_log if f.direction == "out" and f.t == "RESUMED")

    # ---------------------------------------------------------------- shards

    @property
    def sessions(self) -> list[SessionInfo]:
        """Every gateway session IDENTIFY started, oldest first, as it is now (see ``SessionInfo``)."""
        return [
            SessionInfo(
                id=s.id,
                shard=s.shard,
                live=not s.invalidated,
                connected=s.connection is not None,
                connection_id=None if s.connection is None else s.connection.id,
            )
            for s in self.gateway.sessions.values()
        ]

    @property
    def live_shards(self) -> list[tuple[int, int]]:
        """``(shard_id, num_shards)`` of every live session, sorted, repeated if two sessions share one;
        an unsharded session is (0, 1), as Discord counts it."""
        return sorted(s.shard or (0, 1) for s in self.gateway.live_sessions)

    @property
    def undelivered_interactions(self) -> list[InteractionRecord]:
        """Interactions no live session got, because none owned their guild's shard.

        On Discord such an interaction times out in the user's client; here its record has
        ``delivered`` False and no callback will ever come.
        """
        return list(self.state.undelivered)
