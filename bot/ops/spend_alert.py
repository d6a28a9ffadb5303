"""The admins hear once a day when the day's spend (UTC, every server) passes ``[credits]
daily_alert``: checked when a job is charged and every minute, posted through the alerts channel.

With several processes, only the one that speaks for all of them (the alerts' speaker) checks, and
the database makes the alert once a day even across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.core.background import BackgroundLoop, wait_event
from bot.core.credits import format_amount, period_start
from bot.core.events import NoEvents
from bot.core.models import Job, Status
from bot.ops.alerts import AlertMonitor
from bot.storage.credit_book import CreditBook

log = logging.getLogger(__name__)

CHECK_EVERY_S = 60.0


class SpendAlert(NoEvents):
    def __init__(
        self,
        limit: int,
        unit: str,
        book: CreditBook,
        alerts: AlertMonitor,
        *,
        speaks: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit, self.unit = limit, unit
        self._book, self._alerts, self._speaks, self._clock = book, alerts, speaks, clock
        self._told_day: float | None = None  # the day the admins were told about
        self._wake = asyncio.Event()
        self._loop = BackgroundLoop("mjbot-spend-alert", self._run)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def job_finished(self, job: Job) -> None:
        if job.status is Status.SUCCESS and job.nonce:  # a charge: look now
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await wait_event(self._wake, CHECK_EVERY_S)
            self._wake.clear()
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the next charge or minute tries again
                log.warning("checking today's spend failed (%s: %s)", type(exc).__name__, exc)

    async def check(self) -> bool:
        """Tell the admins if today's spend passed the limit and nobody told them yet today."""
        day = period_start("day", self._clock())
        if self._told_day == day or not self._speaks():
            return False
        total = await self._book.spent_since(day)
        if total < self.limit:
            return False
        claimed = await self._book.claim(f"spend_alert:{int(day)}")
        self._told_day = day  # only once the claim is settled: a failed one is tried again
        if not claimed:
            return False  # told already (before a restart)
        log.warning("today's spend %s passed the alert level %s", format_amount(total), format_amount(self.limit))
        self._alerts.announce(
            "alert.spend", limit=format_amount(self.limit), total=format_amount(total), unit=self.unit
        )
        return True
