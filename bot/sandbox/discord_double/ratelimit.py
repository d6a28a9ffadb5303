"""Discord's per-channel rate limit on message writes, enforced like Discord's buckets.

Every POST/PATCH/DELETE on ``/channels/{id}/messages[/{mid}]`` made with the
bot token counts against its channel's bucket: a fixed window that opens with
the first write into an empty bucket and closes ``per`` seconds later, allowing
``limit`` writes.  Each counted answer carries Discord's ``X-RateLimit-*``
headers so discord.py can wait pre-emptively; a write over the limit is answered
429 with the body and headers discord.py needs to sleep ``retry_after`` and retry.

The three routes share one bucket hash, and the hash does not include the
channel: Discord's ``X-RateLimit-Bucket`` is "non-inclusive of top-level
resources in the path", and discord.py keys its buckets by hash plus the
channel id (the route's major parameter).  A hash that changed with the channel
would make discord.py re-map the route on every channel switch and forget what
it learned about the others.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

# Discord-looking (32 hex digits), stable across runs.
MESSAGE_WRITES_BUCKET = hashlib.md5(b"discord-double:channel-message-writes").hexdigest()
RATE_LIMITED_BODY_MESSAGE = "You are being rate limited."


def _ceil_ms(seconds: float) -> float:
    """Round up to the millisecond, as Discord does: a client sleeping this long is never early."""
    return math.ceil(max(seconds, 0.0) * 1000) / 1000


@dataclass
class _Bucket:
    window_start: float
    count: int = 0


class WriteDecision(NamedTuple):
    """The limiter's answer for one write: let it through (``allowed``) or 429, and the headers to send."""

    allowed: bool
    remaining: int
    reset_after: float  # seconds until the window closes (the retry_after of a 429)
    headers: dict[str, str]


class ChannelWriteLimiter:
    """``limit`` message writes per ``per`` seconds per channel, in fixed windows."""

    def __init__(self, limit: int, per: float):
        if limit < 1 or per <= 0:
            raise ValueError(f"channel write limit must be (limit >= 1, per > 0), got ({limit}, {per})")
        self.limit = limit
        self.per = per
        self._buckets: dict[int, _Bucket] = {}

    def hit(self, channel_id: int, now: float) -> WriteDecision:
        """Count one write in ``channel_id`` at ``now`` (``time.monotonic()``) unless the bucket is exhausted."""
        bucket = self._buckets.get(channel_id)
        if bucket is None or now >= bucket.window_start + self.per:
            bucket = self._buckets[channel_id] = _Bucket(window_start=now)
        reset_after = _ceil_ms(bucket.window_start + self.per - now)
        allowed = bucket.count < self.limit
        if allowed:
            bucket.count += 1
        remaining = self.limit - bucket.count
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": MESSAGE_WRITES_BUCKET,
        }
        if not allowed:
            headers.update(
                {
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(math.ceil(reset_after)),
                    # Without Via, discord.py takes a 429 for a Cloudflare ban and raises instead of retrying.
                    "Via": "1.1 google",
                }
            )
        return WriteDecision(allowed, remaining, reset_after, headers)

    def reset(self) -> None:
        self._buckets.clear()
