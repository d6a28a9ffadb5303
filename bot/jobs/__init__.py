"""The jobs service: submit tasks, track every unfinished one in a single loop, and push changes to a
view. No Discord here: the Discord layer implements :class:`JobView`, tests implement it in memory.

The parts call one way, each owning its state:

- ``service``: :class:`JobService`, the front the rest of the bot uses (start/stop, status, members'
  questions, the guard that holds the service open for members' requests); it wires the others.
- ``press``: button presses (the bot's U/V/🔄, the server's own buttons, a prompt for MODAL).
- ``video``: /animate, and Animate where the server cannot press it (``/submit/video``).
- ``submit``: new jobs, and what every submit shares: members' job slots, submissions become jobs.
- ``track``: the loop, polls and pushes, changes stored, deadlines, tasks the proxy forgot; it adopts
  what ``recover`` finds (submissions cut off by a crash). ``changes``: what an answer changes.
- ``deliver``: :class:`JobView`, the write budgets, one write at a time per job, final results (``media``: fitted to Discord's upload limit).

service → press → submit → track → deliver (each may also call any part further along), and
track → recover, track → changes. Nothing calls back up but through ``Delivery.on_shown``, a hook
the service wires to the tracker.
"""

from bot.jobs.changes import progress_rank
from bot.jobs.deliver import (
    DISCORD_CHANNEL_WINDOW_S,
    DISCORD_CHANNEL_WRITES,
    IMAGE_DOWNLOAD_ATTEMPTS,
    MAX_DELIVERY_ATTEMPTS,
    JobView,
)
from bot.jobs.media import MAX_IMAGE_BYTES
from bot.jobs.press import API_STYLE_KEY
from bot.jobs.recover import RECOVERY_GRACE_S, SUBMISSION_GIVE_UP_S
from bot.jobs.service import SHUTDOWN_GRACE_S, JobService, ServiceStatus
from bot.jobs.track import (
    FETCH_CONCURRENCY,
    LIST_BATCH_SIZE,
    MAX_BACKOFF_S,
    PUSHED_POLL_FACTOR,
    VANISHED_AFTER_MISSES,
)
from bot.jobs.video import AnimateRequest

__all__ = [
    "API_STYLE_KEY",
    "DISCORD_CHANNEL_WINDOW_S",
    "DISCORD_CHANNEL_WRITES",
    "FETCH_CONCURRENCY",
    "IMAGE_DOWNLOAD_ATTEMPTS",
    "LIST_BATCH_SIZE",
    "MAX_BACKOFF_S",
    "MAX_DELIVERY_ATTEMPTS",
    "MAX_IMAGE_BYTES",
    "PUSHED_POLL_FACTOR",
    "RECOVERY_GRACE_S",
    "SHUTDOWN_GRACE_S",
    "SUBMISSION_GIVE_UP_S",
    "VANISHED_AFTER_MISSES",
    "AnimateRequest",
    "JobService",
    "JobView",
    "ServiceStatus",
    "progress_rank",
]
