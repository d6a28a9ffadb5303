"""The push receiver: the proxy POSTs each task change to ``<public_url>/<token>``.

The token is this install's secret (kept in SQLite), but the proxy shows it to anyone who can call
it (``properties.notifyHook`` of every task), so a push proves nothing: it only tells the jobs
service to ask the proxy now, with the bot's credentials. What that request answers is applied like
a poll: written to SQLite first, idempotent and order-proof.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError

from bot.core.config import NotifySettings
from bot.core.models import ProxyTask
from bot.jobs import JobService

log = logging.getLogger(__name__)

TOKEN_KEY = "notify_token"
MAX_BODY_BYTES = 1024 * 1024  # a task is a few KB; anything bigger is not one


def new_token() -> str:
    return secrets.token_urlsafe(32)


class NotifyReceiver:
    def __init__(
        self,
        settings: NotifySettings,
        jobs: JobService,
        token: str,
        *,
        extra_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self._token = token
        self._extra_routes = extra_routes  # /healthz and /metrics, when they share this server
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.received = 0

    def __repr__(self) -> str:  # never show the token
        return f"NotifyReceiver(listen={self.settings.listen!r}, public_url={self.settings.public_url!r})"

    @property
    def hook_url(self) -> str:
        """What each submit sends as ``notifyHook``."""
        return f"{self.settings.public_url}/{self._token}"

    async def start(self) -> None:
        prefix = urlsplit(self.settings.public_url).path.rstrip("/")
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(f"{prefix}/{{token}}", self._deliver)
        if self._extra_routes is not None:
            self._extra_routes(app)
        # No access log: the request path holds the secret token.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, port = self.settings.listen_address()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1] if self._runner.addresses else port
        log.info("push receiver listening on %s:%s for %s/…", host, self.port, self.settings.public_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _deliver(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["token"].encode(), self._token.encode()):
            log.warning("push from %s with an unknown token: refused", request.remote)
            return web.Response(status=404, text="not found")
        try:
            task = ProxyTask.model_validate(await request.json())
        except (ValueError, ValidationError):
            log.warning("push from %s is not a task: refused", request.remote)
            return web.Response(status=400, text="not a task")
        self.received += 1
        # Only the id is taken: the token is readable by anyone who can call the proxy (it is in
        # every task's properties.notifyHook), so the task's state is confirmed with the proxy.
        self.jobs.signal_push(task.id)
        return web.Response(text="ok")
