"""Prometheus metrics, served at ``/metrics``.

Every metric lives in this process's own registry (not prometheus-client's global one), so tests can
run several bots in one process and the output holds only the bot's numbers. Labels are kept to
small fixed sets (actions, codes, endpoints with ids taken out): never a task id, user or URL.
"""

from __future__ import annotations

import asyncio
import re
import time
from types import SimpleNamespace

import aiohttp
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.core.background import BackgroundLoop
from bot.core.errors import ProxyError, SubmitRefused
from bot.core.events import NoEvents
from bot.core.models import Action, Job, Status

# Proxy answers take from milliseconds (a list) to the full timeout (a submit with images).
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TASK_PATH = re.compile(r"/task/[^/]+/fetch")
# How late a 10 ms timer fires: well under a millisecond on an idle loop; tens of ms is a blocking call.
_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
LOOP_LAG_INTERVAL_S = 0.010


def error_kind(error: ProxyError) -> str:
    """A short, fixed name for a proxy error: ``unreachable``, ``timeout``, ``auth``, …"""
    return error.key.rpartition(".")[2]


def endpoint_of(path: str) -> str:
    """A request path as a label: task ids are replaced so the label set stays small."""
    return _TASK_PATH.sub("/task/{id}/fetch", path.split("?", 1)[0])


class LoopLag:
    """The event loop's health: a background task sleeps ``interval_s`` over and over and records
    how late it woke (``mjbot_event_loop_lag_seconds``, a histogram, and
    ``mjbot_event_loop_lag_max_seconds``, the worst since start). Anything that blocks the loop
    (a slow synchronous call) delays this timer as much as it delays every interaction and push."""

    def __init__(self, registry: CollectorRegistry, *, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.histogram = Histogram(
            "mjbot_event_loop_lag_seconds",
            f"How late a {interval_s * 1000:g} ms timer on the event loop fired",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.max_gauge = Gauge(
            "mjbot_event_loop_lag_max_seconds", "The worst event-loop timer delay since start", registry=registry
        )
        self.worst = 0.0
        self._loop = BackgroundLoop("mjbot-loop-lag", self._run)

    def observe(self, lag: float) -> None:
        self.histogram.observe(lag)
        if lag > self.worst:
            self.worst = lag
            self.max_gauge.set(lag)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval_s)
            self.observe(max(0.0, loop.time() - started - self.interval_s))


class Metrics(NoEvents):
    """The bot's numbers. A jobs-service observer; the proxy client and discord.py's HTTP session
    report to it too (``proxy_request``, ``discord_trace``)."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.jobs_submitted = Counter(
            "mjbot_jobs_submitted", "Tasks the proxy accepted, by action", ["action"], registry=registry
        )
        self.jobs_finished = Counter(
            "mjbot_jobs_finished",
            "Jobs that ended with an image or an answer, by action",
            ["action"],
            registry=registry,
        )
        self.jobs_failed = Counter(
            "mjbot_jobs_failed", "Jobs that ended failed or cancelled, by action", ["action"], registry=registry
        )
        self.submit_refusals = Counter(
            "mjbot_submit_refusals",
            "Submits the proxy refused, by its code (or the error: auth, timeout, …)",
            ["code"],
            registry=registry,
        )
        self.unfinished = Gauge("mjbot_unfinished_tasks", "Tasks being tracked", registry=registry)
        self.tick_seconds = Histogram(
            "mjbot_tracker_tick_seconds", "How long one tracker pass took", buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.last_tick = Gauge(
            "mjbot_tracker_last_tick_timestamp_seconds", "When the tracker last finished a pass", registry=registry
        )
        self.proxy_seconds = Histogram(
            "mjbot_proxy_request_seconds",
            "Proxy API request latency, by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.proxy_errors = Counter(
            "mjbot_proxy_errors",
            "Proxy API requests that failed, by endpoint and kind",
            ["endpoint", "kind"],
            registry=registry,
        )
        self.discord_write_seconds = Histogram(
            "mjbot_discord_write_seconds",
            "Discord REST writes (POST, PATCH, PUT, DELETE) latency, by method",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.discord_rate_limited = Counter(
            "mjbot_discord_rate_limited", "Discord answers 429, by method", ["method"], registry=registry
        )
        self.gateway_connected = Gauge(
            "mjbot_gateway_connected", "1 while the Discord gateway is connected", registry=registry
        )
        self.loop_lag = LoopLag(registry)  # started by the bot (setup_hook), stopped in close()
        # Start every action at 0 so rates and dashboards work before the first job of each kind.
        for action in Action:
            for counter in (self.jobs_submitted, self.jobs_finished, self.jobs_failed):
                counter.labels(action.value.lower())

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # --- the jobs service ----------------------------------------------------------------------

    def job_submitted(self, job: Job) -> None:
        self.jobs_submitted.labels(job.action.value.lower()).inc()

    def job_finished(self, job: Job) -> None:
        counter = self.jobs_finished if job.status is Status.SUCCESS else self.jobs_failed
        counter.labels(job.action.value.lower()).inc()

    def submit_refused(self, error: ProxyError) -> None:
        code = str(error.code) if isinstance(error, SubmitRefused) else error_kind(error)
        self.submit_refusals.labels(code).inc()

    def tracker_ticked(self, seconds: float, unfinished: int) -> None:
        self.tick_seconds.observe(seconds)
        self.unfinished.set(unfinished)
        self.last_tick.set(time.time())

    # --- the proxy client ----------------------------------------------------------------------

    def proxy_request(self, path: str, seconds: float, error: ProxyError | None) -> None:
        endpoint = endpoint_of(path)
        self.proxy_seconds.labels(endpoint).observe(seconds)
        if error is not None:
            self.proxy_errors.labels(endpoint, error_kind(error)).inc()

    # --- discord.py's HTTP session ----------------------------------------------------------------

    def discord_trace(self) -> aiohttp.TraceConfig:
        """Hooks for discord.py's aiohttp session (``Client(http_trace=...)``): each HTTP attempt,
        retries after a 429 included, is timed and counted. It runs for every Discord request, so
        it is kept lean: the start time is taken when aiohttp makes the attempt's context (just
        before its ``on_request_start``, which then needs no hook), and each method's metrics are
        looked up once (``labels()`` takes a lock and builds a key on every call)."""
        trace = aiohttp.TraceConfig(trace_config_ctx_factory=_TimedContext)
        write_seconds: dict[str, Histogram] = {}
        rate_limited: dict[str, Counter] = {}

        async def ended(
            session: aiohttp.ClientSession, context: _TimedContext, params: aiohttp.TraceRequestEndParams
        ) -> None:
            method = params.method.upper()
            if params.response.status == 429:
                counter = rate_limited.get(method)
                if counter is None:
                    counter = rate_limited[method] = self.discord_rate_limited.labels(method)
                counter.inc()
            if method != "GET":
                histogram = write_seconds.get(method)
                if histogram is None:
                    histogram = write_seconds[method] = self.discord_write_seconds.labels(method)
                histogram.observe(time.perf_counter() - context.started)

        trace.on_request_end.append(ended)
        return trace


class _TimedContext(SimpleNamespace):
    """aiohttp's per-attempt trace context (a ``SimpleNamespace``), stamped when it is made."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.started = time.perf_counter()
