"""Alerts to the admins' channel (``[alerts] channel_id``): once when something breaks for everyone,
once when it recovers, never once per task.

- The proxy fails for longer than ``proxy_down_s``: the tracker's own requests tell (a jobs-service
  observer); while it has nothing to track, the monitor asks the proxy itself now and then.
- ``failure_run`` jobs in a row fail for the same reason (credits exhausted, an account banned…).

The monitor posts through a callable the app gives it, so it knows nothing of Discord.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.core.background import BackgroundLoop, wait_event
from bot.core.config import AlertsSettings
from bot.core.errors import ProxyActionNotAllowed, ProxyError
from bot.core.events import NoEvents
from bot.core.i18n import t
from bot.core.models import Job, Status, parse_local_reason
from bot.core.text import MAX_CONTENT, clip, clip_words, duration_text

log = logging.getLogger(__name__)

IDLE_PROBE_S = 60.0  # longest gap without a word from the proxy before the monitor asks it
MAX_CHECK_S = 5.0
MAX_ALERT_REASON = 500  # characters of a failReason quoted in an alert
MAX_POST_ATTEMPTS = 10  # an alert Discord refuses this often (no permission?) is dropped, not retried forever


def _problem_text(error: ProxyError, limit: int = 300) -> str:
    """What failed, for admins: the request and the error (never a secret: no layer puts one in an
    error), and the server's words."""
    return clip_words(f"{error}" + (f" ({error.detail})" if error.detail else ""), limit)


class AlertMonitor(NoEvents):
    def __init__(
        self,
        settings: AlertsSettings,
        *,
        post: Callable[[str], Awaitable[object]],
        probe: Callable[[], Awaitable[object]],
        language: str = "en",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._post = post
        self._probe = probe
        self.language = language
        self._clock = clock
        # The proxy: failing since when, with what, and whether the admins were told.
        self._heard_at = clock()
        self._down_since: float | None = None
        self._last_error: ProxyError | None = None
        self._proxy_alerted = False
        # The current run of failures with one reason, and the reason the admins were told about.
        self._run_reason: str | None = None
        self._run_length = 0
        self._run_alerted: str | None = None
        self._outbox: list[str] = []
        self._denied_models: set[str] = set()  # models the admins were told the key may not use
        self._post_failures = 0  # of the first alert in the outbox
        self.posted: list[str] = []  # what reached the channel, for /mj status and tests
        self._wake = asyncio.Event()
        self._loop = BackgroundLoop("mjbot-alerts", self._run)
        down = settings.proxy_down_s
        self._check_s = min(MAX_CHECK_S, down / 4)
        self._probe_idle_s = min(IDLE_PROBE_S, down / 3)

    def __repr__(self) -> str:
        return f"AlertMonitor(channel_id={self.settings.channel_id})"

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        while True:
            await wait_event(self._wake, self._check_s)
            self._wake.clear()
            try:
                await self.check()
            except Exception:
                log.exception("alert check failed; continuing")

    async def check(self) -> None:
        """Probe the proxy if nothing was heard from it lately, post what is due."""
        now = self._clock()
        quiet_for = now - self._heard_at
        if quiet_for >= (self._check_s if self._down_since is not None else self._probe_idle_s):
            await self.probe()
        self._check_proxy(self._clock())
        await self.flush()

    async def probe(self) -> None:
        try:
            await self._probe()
        except ProxyError as exc:
            self.proxy_answered(exc)
        else:
            self.proxy_answered(None)

    async def flush(self) -> None:
        """Post the queued alerts in order; one that fails stays queued for the next check."""
        while self._outbox:
            text = self._outbox[0]
            try:
                await self._post(text)
            except Exception as exc:
                self._post_failures += 1
                if self._post_failures < MAX_POST_ATTEMPTS:
                    log.warning(
                        "posting an alert to channel %s failed (%s: %s); will retry",
                        self.settings.channel_id,
                        type(exc).__name__,
                        exc,
                    )
                    return
                log.error(
                    "posting an alert to channel %s failed %d times (%s: %s); dropped: %s",
                    self.settings.channel_id,
                    self._post_failures,
                    type(exc).__name__,
                    exc,
                    text,
                )
                self._outbox.pop(0)
                self._post_failures = 0
                continue
            self._outbox.pop(0)
            self._post_failures = 0
            self.posted.append(text)
            log.info("alert posted to channel %s: %s", self.settings.channel_id, text)

    def announce(self, key: str, **params: object) -> None:
        """Post the catalogue's ``key`` to the alerts channel (for other watchers: spend)."""
        self._queue(key, **params)

    def _queue(self, key: str, **params: object) -> None:
        # Bounded: an alert Discord refuses for its length would be retried, then dropped.
        self._outbox.append(clip(t(key, self.language, **params), MAX_CONTENT))
        self._wake.set()

    # --- what the proxy's key may do -----------------------------------------------------------

    def submit_refused(self, error: ProxyError) -> None:
        """A key that may not use a model is an admin's setting to change: say so once per model."""
        if isinstance(error, ProxyActionNotAllowed):
            model = str(error.params.get("model") or "?")
            if model not in self._denied_models:
                self._denied_models.add(model)
                self._queue("alert.model_denied", model=clip_words(model, 100))

    # --- the proxy -----------------------------------------------------------------------------

    def proxy_answered(self, error: ProxyError | None) -> None:
        now = self._clock()
        self._heard_at = now
        if error is None:
            if self._proxy_alerted and self._down_since is not None:
                self._queue("alert.proxy_up", duration=duration_text(now - self._down_since))
            self._down_since, self._last_error, self._proxy_alerted = None, None, False
            return
        if self._down_since is None:
            self._down_since = now
        self._last_error = error
        self._check_proxy(now)

    def _check_proxy(self, now: float) -> None:
        if self._down_since is None or self._proxy_alerted or self._last_error is None:
            return
        if now - self._down_since >= self.settings.proxy_down_s:
            self._proxy_alerted = True
            problem = _problem_text(self._last_error)
            self._queue("alert.proxy_down", duration=duration_text(now - self._down_since), problem=problem)

    # --- runs of failed jobs -----------------------------------------------------------------------

    def job_finished(self, job: Job) -> None:
        if job.status is Status.SUCCESS:
            if self._run_alerted is not None:
                self._queue("alert.failures_over", reason=self._reason_text(self._run_alerted))
            self._run_reason, self._run_length, self._run_alerted = None, 0, None
            return
        if job.status is not Status.FAILURE:
            return  # a cancelled job says nothing about the service
        reason = job.fail_reason or ""
        if reason == self._run_reason:
            self._run_length += 1
        else:
            self._run_reason, self._run_length = reason, 1
        if self._run_length >= self.settings.failure_run and self._run_alerted != reason:
            self._run_alerted = reason
            self._queue("alert.failures", count=self._run_length, reason=self._reason_text(reason))

    def _reason_text(self, reason: str) -> str:
        local = parse_local_reason(reason)
        text = t(local[0], self.language, **local[1]) if local else reason
        return clip_words(text, MAX_ALERT_REASON) or t("status.failed_no_reason", self.language)
