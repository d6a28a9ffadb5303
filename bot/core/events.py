"""What the jobs service tells observers (metrics, alerts, health) as it works.

The service calls these synchronously at a few points and never waits on an observer; an observer
that needs to do I/O (an alert post) schedules it itself. ``NoEvents`` is the default.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.core.errors import ProxyError
from bot.core.models import Job

log = logging.getLogger(__name__)


class JobEvents(Protocol):
    def job_submitted(self, job: Job) -> None:
        """The proxy accepted a task and it is stored as a job."""

    def job_finished(self, job: Job) -> None:
        """A job reached SUCCESS, FAILURE or CANCEL (``job.fail_reason`` says why it failed)."""

    def submit_refused(self, error: ProxyError) -> None:
        """The proxy refused a submit (a code, or an error such as a rejected secret)."""

    def tracker_ticked(self, seconds: float, unfinished: int) -> None:
        """One pass of the tracker ended (whether or not the proxy answered it)."""

    def proxy_answered(self, error: ProxyError | None) -> None:
        """The tracker's request to the proxy worked (``None``) or failed."""


class NoEvents:
    """An observer that ignores everything: the base for observers interested in a few events."""

    def job_submitted(self, job: Job) -> None:
        pass

    def job_finished(self, job: Job) -> None:
        pass

    def submit_refused(self, error: ProxyError) -> None:
        pass

    def tracker_ticked(self, seconds: float, unfinished: int) -> None:
        pass

    def proxy_answered(self, error: ProxyError | None) -> None:
        pass


class Fanout(NoEvents):
    """Passes every event to each observer. A broken observer is logged, never allowed to break the
    tracker or a member's submit."""

    def __init__(self, *observers: JobEvents) -> None:
        self.observers = observers

    def _each(self, name: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, name)(*args)
            except Exception:
                log.exception("%s.%s failed", type(observer).__name__, name)

    def job_submitted(self, job: Job) -> None:
        self._each("job_submitted", job)

    def job_finished(self, job: Job) -> None:
        self._each("job_finished", job)

    def submit_refused(self, error: ProxyError) -> None:
        self._each("submit_refused", error)

    def tracker_ticked(self, seconds: float, unfinished: int) -> None:
        self._each("tracker_ticked", seconds, unfinished)

    def proxy_answered(self, error: ProxyError | None) -> None:
        self._each("proxy_answered", error)
