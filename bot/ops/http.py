"""``/healthz`` and ``/metrics``: on the push receiver's server when it runs, or on their own at
``[http] listen``.

``/healthz`` answers 200 while the bot does its job: the Discord gateway is connected and the
tracker finishes its passes. Otherwise 503, with the reason as the body (a container's healthcheck
and an admin's curl both read it). ``/metrics`` is the Prometheus text format.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.core.config import Settings
from bot.core.events import NoEvents
from bot.jobs import MAX_BACKOFF_S
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)


def tracker_stale_after(settings: Settings) -> float:
    """Seconds without a finished tracker pass after which the bot counts as stuck: longer than the
    longest back-off (with its jitter) plus a slow pass (a few requests up to the proxy's timeout),
    so a proxy outage alone never makes the bot unhealthy."""
    return settings.tracking.poll_interval_s + MAX_BACKOFF_S * 1.2 + 4 * settings.proxy.timeout_s + 30


class Health(NoEvents):
    """What ``/healthz`` reports. The Discord layer says when the gateway connects and drops; the
    jobs service says when the tracker finishes a pass."""

    def __init__(self, *, stale_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self._clock = clock
        self.gateway_connected = False
        self._gateway_since = clock()
        self._last_tick = clock()  # the tracker gets stale_after_s from start-up for its first pass

    def gateway(self, connected: bool) -> None:
        if connected != self.gateway_connected:
            self.gateway_connected = connected
            self._gateway_since = self._clock()

    def tracker_ticked(self, seconds: float, unfinished: int) -> None:
        self._last_tick = self._clock()

    def problem(self) -> str | None:
        """Why the bot is unhealthy, or None."""
        now = self._clock()
        if not self.gateway_connected:
            return f"the Discord gateway is not connected (for {now - self._gateway_since:.0f} s)"
        idle = now - self._last_tick
        if idle > self.stale_after_s:
            return f"the tracker has not finished a pass for {idle:.0f} s"
        return None

    def tracker_age(self) -> float:
        """Seconds since the tracker's last finished pass."""
        return self._clock() - self._last_tick

    def summary(self) -> str:
        return f"gateway connected, tracker's last pass {self._clock() - self._last_tick:.0f} s ago"


class OpsEndpoints:
    def __init__(self, health: Health, metrics: Metrics) -> None:
        self.health = health
        self.metrics = metrics

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)

    async def _healthz(self, request: web.Request) -> web.Response:
        problem = self.health.problem()
        if problem is not None:
            return web.Response(status=503, text=f"unhealthy: {problem}\n")
        return web.Response(text=f"ok: {self.health.summary()}\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


class OpsServer:
    """Its own small server for the endpoints (and the admin page's routes, ``also``), at ``[http] listen``."""

    def __init__(
        self, address: tuple[str, int], endpoints: OpsEndpoints, also: Callable[[web.Application], None] | None = None
    ) -> None:
        self.address = address
        self.endpoints = endpoints
        self.also = also
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        self.endpoints.add_routes(app)
        if self.also is not None:
            self.also(app)
        self._runner = web.AppRunner(app, access_log=None)  # scraped every few seconds: no log
        await self._runner.setup()
        host, port = self.address
        await web.TCPSite(self._runner, host, port).start()
        self.port = self._runner.addresses[0][1] if self._runner.addresses else port
        log.info("/healthz and /metrics%s on %s:%s", " and /admin" if self.also else "", host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
