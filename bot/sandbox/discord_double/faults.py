"""What a test does to the double's traffic: injected faults and delays, and the channel write rate limit.

``Faults`` is mixed into ``DiscordDouble``; the rules it makes are in rules.py.
"""

from __future__ import annotations

import re
from typing import Any

from .ratelimit import ChannelWriteLimiter
from .rules import DelayRule, FaultRule
from .state import State


class Faults:
    """Mixed into ``DiscordDouble``."""

    state: State

    # ------------------------------------------------------- write rate limit

    @property
    def channel_write_limit(self) -> tuple[int, float] | None:
        """``(limit, per)`` of the per-channel message write rate limit, or None when off."""
        limiter = self.state.write_limiter
        return None if limiter is None else (limiter.limit, limiter.per)

    @channel_write_limit.setter
    def channel_write_limit(self, value: tuple[int, float] | None) -> None:
        """Change (or switch off with None) the limit; every channel's bucket starts empty."""
        self.state.write_limiter = None if value is None else ChannelWriteLimiter(*value)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        *,
        method: str | None = None,
        path_re: str | None = None,
        status: int = 429,
        times: int = 1,
        retry_after: float = 0.2,
        is_global: bool = False,
        body: dict[str, Any] | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` requests matching ``method`` and ``path_re`` with ``status``.

        ``path_re`` is searched in the API-relative path (e.g. "/channels/1/messages/2").
        Default bodies: 429 rate limit (with the headers discord.py needs to retry),
        403 Missing Permissions (50013), 404 Unknown Message (10008), 5xx server error.
        The returned rule's ``hits`` lists the requests it answered.
        """
        rule = FaultRule(
            status=status,
            method=method,
            path_re=re.compile(path_re) if path_re is not None else None,
            times=times,
            retry_after=retry_after,
            is_global=is_global,
            body=body,
        )
        self.state.faults.append(rule)
        return rule

    def delay_next(
        self, *, method: str | None = None, path_re: str | None = None, seconds: float, times: int = 1
    ) -> DelayRule:
        """Hold back the answer to the next ``times`` matching requests for ``seconds``.

        The request is processed and recorded at once (a message is created, its
        MESSAGE_CREATE sent, ``record.status`` set); only the HTTP answer waits, so a
        test can kill the client meanwhile: "message created, but the bot never learned
        its id".  Only requests that reach a route are held: not those answered by an
        injected fault, a 429 of the write rate limit or a 401.  The returned rule's
        ``hits`` lists the requests it held.
        """
        rule = DelayRule(
            seconds=seconds,
            method=method,
            path_re=re.compile(path_re) if path_re is not None else None,
            times=times,
        )
        self.state.delays.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every injected fault and delay."""
        self.state.faults.clear()
        self.state.delays.clear()
