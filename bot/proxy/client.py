"""A typed client for the Midjourney Proxy HTTP API.

One ``httpx.AsyncClient`` with explicit timeouts and pool limits. Every failure (transport errors,
HTTP errors, bodies that are not the API's) becomes a :class:`bot.core.errors.ProxyError` before a caller
sees it, so the layers above handle one hierarchy and never an httpx type.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import ValidationError

from bot.core.config import ProxySettings
from bot.core.errors import (
    EmptyAnswer,
    ProxyActionNotAllowed,
    ProxyAuthFailed,
    ProxyBadResponse,
    ProxyBusy,
    ProxyEndpointMissing,
    ProxyError,
    ProxyRateLimited,
    ProxyTimeout,
    ProxyUnreachable,
    SubmitRefused,
)
from bot.core.models import Action, ProxyTask, SubmitAccepted
from bot.proxy.answers import (
    MODEL_DENIED,
    REFUSALS,
    add_optional,
    error_message,
    is_web_page,
    looks_like_api_json,
    snippet,
    submit_answer,
)
from bot.proxy.download import ImageDownloader
from bot.proxy.task_commands import TaskCommands

log = logging.getLogger(__name__)

POOL_WAIT_S = 60.0  # how long a request may wait for one of the pool's connections


def _remember_sniffio_is_missing() -> None:
    """httpcore runs ``import sniffio`` for every lock and event it makes, several per request;
    without sniffio installed (anyio 4 no longer needs it) each is a failed import that searches
    every ``sys.path`` entry again, about 45 µs, 2,000 times per 1,000 task updates. A ``None`` in
    ``sys.modules`` is Python's own "not importable" mark: the import fails at once, as it would
    anyway. Nothing changes when sniffio is installed."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


_remember_sniffio_is_missing()


class ProxyClient(TaskCommands):
    """Talks to one proxy server. Create once, share, and ``aclose()`` at shutdown."""

    def __init__(self, settings: ProxySettings, *, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        # Auth goes per request, not on the client, so image downloads from other hosts never
        # carry the secret.
        self._auth = self._auth_headers()
        # Waiting for a free connection is not the proxy being slow: a burst of submits queues here
        # for longer than one request may take.
        timeout = httpx.Timeout(
            settings.timeout_s, connect=min(settings.timeout_s, 10.0), pool=max(POOL_WAIT_S, settings.timeout_s)
        )
        self._http = httpx.AsyncClient(
            base_url=settings.api_base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
            follow_redirects=False,
        )
        # Images come through aiohttp (which discord.py brings): a download through httpx cost
        # about 1 ms of CPU against aiohttp's 0.2-0.3 ms, and a burst of finished tasks queued in
        # httpx's pool cost more again (the queue is walked, every idle connection's socket
        # polled, each time a request ends). Made on first use, inside the running loop.
        self._images = ImageDownloader(settings, self._auth)
        # Told of every API request: (path, seconds, the error or None). For metrics.
        self.on_request: Callable[[str, float, ProxyError | None], None] | None = None

    def __repr__(self) -> str:  # never show headers (they hold the secret)
        return f"ProxyClient(base_url={self._settings.api_base_url!r}, auth={self._settings.auth!r})"

    def _auth_headers(self) -> dict[str, str]:
        secret = self._settings.secret.get_secret_value()
        if not secret:
            return {}
        if self._settings.auth == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        if self._settings.auth == "authorization":
            return {"Authorization": secret}
        return {"mj-api-secret": secret}

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._images.aclose()

    # --- submits -------------------------------------------------------------------------------

    async def submit_imagine(
        self,
        prompt: str,
        images: Sequence[str] = (),
        *,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: str | None = None,
    ) -> SubmitAccepted:
        """Start an imagine; ``images`` are full data URLs (novicezk rejects bare base64).
        ``state`` comes back unchanged on the task (the bot uses it to find a task again);
        ``mode`` ("fast", "relax", "turbo") sends it through trueai's ``/mj-<mode>/mj`` path."""
        body: dict[str, Any] = {"prompt": prompt}
        if images:
            body["base64Array"] = list(images)
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit(self._in_mode("/submit/imagine", mode), body)

    def _in_mode(self, path: str, mode: str | None) -> str:
        """``path`` under a speed mode's prefix (an absolute URL), or as it is."""
        base = self._settings.base_url
        if not mode or not base.endswith("/mj"):
            return path
        return f"{base[:-3]}/mj-{mode}/mj{path}"

    async def submit_change(
        self,
        task_id: str,
        action: Action,
        index: int | None,
        *,
        state: str | None = None,
        notify_hook: str | None = None,
    ) -> SubmitAccepted:
        body: dict[str, Any] = {"taskId": task_id, "action": action.value}
        # new-api requires an index even for REROLL; the others ignore it there.
        body["index"] = index if index else 1
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/change", body)

    async def submit_describe(
        self, image: str, *, state: str | None = None, notify_hook: str | None = None
    ) -> SubmitAccepted:
        """Four prompts for an image: a full data URL, or an http(s) link (trueai's ``link``;
        novicezk reads only ``base64`` and answers base64不能为空)."""
        body: dict[str, Any] = {"link": image} if image.startswith(("http://", "https://")) else {"base64": image}
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/describe", body)

    async def submit_blend(
        self, images: Sequence[str], dimensions: str, *, state: str | None = None, notify_hook: str | None = None
    ) -> SubmitAccepted:
        """Blend 2-5 images (data URLs); ``dimensions`` PORTRAIT, SQUARE or LANDSCAPE."""
        body: dict[str, Any] = {"base64Array": list(images), "dimensions": dimensions}
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/blend", body)

    async def submit_video(
        self,
        prompt: str,
        *,
        image: str | None = None,
        end_image: str | None = None,
        motion: str = "low",
        loop: bool = False,
        batch_size: int = 4,
        extend: tuple[str, int] | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
    ) -> SubmitAccepted:
        """Short videos from an image (trueai's ``/submit/video``, relayed by new-api): ``image``
        and ``end_image`` are URLs or data URLs, ``motion`` low|high, ``batch_size`` 1, 2 or 4;
        ``extend`` = (task id, video index) extends a video of a batch instead. A server without
        video answers 404 (:class:`ProxyEndpointMissing`)."""
        body: dict[str, Any] = {"prompt": prompt, "motion": motion, "batchSize": batch_size}
        if loop:
            body["loop"] = True
        if extend is not None:
            body.update(action="extend", taskId=extend[0], index=extend[1])
        add_optional(body, image=image, endImage=end_image, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/video", body)

    async def submit_action(
        self,
        task_id: str,
        custom_id: str,
        *,
        state: str | None = None,
        notify_hook: str | None = None,
        remix: bool = False,
    ) -> SubmitAccepted:
        """Press one of the task's own buttons (trueai, new-api): ``custom_id`` from its ``buttons``.
        ``remix`` asks for a prompt first (trueai's ``enableRemix``): the new task waits in MODAL
        for ``submit_modal``. An account without Remix refuses it (code 4)."""
        body: dict[str, Any] = {"taskId": task_id, "customId": custom_id}
        if remix:
            body["enableRemix"] = True
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/action", body)

    async def submit_shorten(
        self, prompt: str, *, state: str | None = None, notify_hook: str | None = None
    ) -> SubmitAccepted:
        """Shorter versions of a prompt (trueai, relayed by new-api): a SHORTEN task whose
        ``properties.finalPrompt`` lists them. novicezk: 404."""
        body: dict[str, Any] = {"prompt": prompt}
        add_optional(body, state=state, notifyHook=notify_hook)
        return await self._submit("/submit/shorten", body)

    async def submit_modal(self, task_id: str, prompt: str) -> SubmitAccepted:
        """Give a task waiting in MODAL (Custom Zoom, Remix) its prompt."""
        return await self._submit("/submit/modal", {"taskId": task_id, "prompt": prompt})

    async def upload_images(self, images: Sequence[str]) -> list[str]:
        """Store images (data URLs) on the server and get their links, for ``--sref``/``--cref``/
        ``--oref`` (trueai's ``/submit/upload-discord-images``, relayed by new-api; its answer's
        ``result`` is the list of links). A server without it: :class:`ProxyEndpointMissing`."""
        path = "/submit/upload-discord-images"
        data = await self._request_json("POST", path, json={"base64Array": list(images)}, accept_error_bodies=True)
        if not isinstance(data, dict) or "code" not in data:
            raise ProxyBadResponse(f"POST {path}: answer without a code", detail=snippet(str(data)))
        result, description = data.get("result"), str(data.get("description") or data.get("message") or "")
        if data.get("code") == 1:
            if (
                isinstance(result, list)
                and len(result) == len(images)
                and all(isinstance(url, str) and url.startswith(("http://", "https://")) for url in result)
            ):
                return list(result)
            raise ProxyBadResponse(f"POST {path}: not one link per image", detail=snippet(str(result)))
        code = data["code"] if isinstance(data["code"], int) else -1
        raise REFUSALS.get(code, SubmitRefused)(code, description.strip() or "upload refused", {})

    async def _submit(self, path: str, body: dict[str, Any]) -> SubmitAccepted:
        data = await self._request_json("POST", path, json=body, accept_error_bodies=True)
        return submit_answer(path, data)

    # --- tasks ---------------------------------------------------------------------------------

    async def fetch_task(self, task_id: str) -> ProxyTask | None:
        """One task, or None when the server does not know the id (empty 200, 204, 404)."""
        try:
            data = await self._request_json("GET", f"/task/{task_id}/fetch", empty_ok=True)
        except ProxyEndpointMissing:
            return None
        if data is None:
            return None
        return self._parse_task(data, f"GET /task/{task_id}/fetch")

    async def list_tasks(self, task_ids: Sequence[str]) -> list[ProxyTask]:
        """Tasks for these ids in one request; unknown ids are simply absent.

        Raises :class:`ProxyEndpointMissing` when the server has no ``list-by-condition``.
        """
        if not task_ids:
            return []
        path = "/task/list-by-condition"
        data = await self._request_json("POST", path, json={"ids": list(task_ids)})
        if not isinstance(data, list):
            raise ProxyBadResponse(f"POST {path}: expected a list", detail=snippet(str(data)))
        return self._parse_tasks(data, f"POST {path}")

    async def recent_tasks(self) -> list[ProxyTask]:
        """Every task the server still holds (``GET /task/list``), to find one by its ``state``.

        Raises :class:`ProxyEndpointMissing` when the server has no such list.
        """
        path = "/task/list"
        data = await self._request_json("GET", path)
        if not isinstance(data, list):
            raise ProxyBadResponse(f"GET {path}: expected a list", detail=snippet(str(data)))
        return self._parse_tasks(data, f"GET {path}")

    async def ping(self) -> float:
        """Seconds one cheap authenticated request takes; raises a ProxyError when it fails."""
        started = time.perf_counter()
        await self._request_json("POST", "/task/list-by-condition", json={"ids": ["mjbot-ping"]})
        return time.perf_counter() - started

    def _parse_tasks(self, data: list[Any], where: str) -> list[ProxyTask]:
        tasks = []
        for item in data:
            try:
                tasks.append(self._parse_task(item, where))
            except ProxyBadResponse as exc:
                log.warning("skipping a malformed task in %s: %s", where, exc.detail)
        return tasks

    @staticmethod
    def _parse_task(data: Any, where: str) -> ProxyTask:
        if not isinstance(data, dict):
            raise ProxyBadResponse(f"{where}: expected a task object", detail=snippet(str(data)))
        try:
            return ProxyTask.model_validate(data)
        except ValidationError as exc:
            raise ProxyBadResponse(
                f"{where}: not a task: {exc.error_count()} errors", detail=snippet(json.dumps(data)[:400])
            ) from None

    # --- images --------------------------------------------------------------------------------

    # --- images --------------------------------------------------------------------------------

    async def download_image(self, url: str, *, max_bytes: int) -> tuple[bytes, str | None]:
        """Fetch a task's image (the proxy gave us the URL): bytes and content type. Capped at
        ``max_bytes``, and only from addresses the bot may reach (see :mod:`bot.proxy.download`)."""
        return await self._images.download(url, max_bytes=max_bytes)

    # --- plumbing ------------------------------------------------------------------------------

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        accept_error_bodies: bool = False,
        empty_ok: bool = False,
    ) -> Any:
        if self.on_request is None:
            return await self._answer_json(
                method, path, json=json, accept_error_bodies=accept_error_bodies, empty_ok=empty_ok
            )
        started, error = time.perf_counter(), None
        try:
            return await self._answer_json(
                method, path, json=json, accept_error_bodies=accept_error_bodies, empty_ok=empty_ok
            )
        except ProxyError as exc:
            error = exc
            raise
        finally:
            self.on_request(path, time.perf_counter() - started, error)

    async def _answer_json(
        self, method: str, path: str, *, json: Any, accept_error_bodies: bool, empty_ok: bool
    ) -> Any:
        what = f"{method} {path}"
        try:
            response = await self._http.request(method, path, json=json, headers=self._auth)
        except httpx.HTTPError as exc:
            raise self._transport_error(what, exc) from None

        status = response.status_code
        text = response.text
        if status == 403:
            denied = MODEL_DENIED.search(error_message(text) or "")
            if denied:
                model = denied.group(1).strip("'\"。.")
                raise ProxyActionNotAllowed(
                    f"{what}: the proxy key may not use model {model or '?'}", detail=error_message(text), model=model
                )
        if status in (401, 403):
            raise ProxyAuthFailed(f"{what}: HTTP {status}", detail=error_message(text))
        if status == 200 and is_web_page(response):
            # new-api answers any route it does not relay with its web UI (router/web-router.go).
            raise ProxyEndpointMissing(f"{what}: the server answered with a web page, not the API")
        if status == 429:
            raise ProxyRateLimited(f"{what}: HTTP 429", detail=error_message(text))
        if status in (404, 405) and not looks_like_api_json(text):
            raise ProxyEndpointMissing(f"{what}: HTTP {status}")
        if status == 204 and empty_ok:
            return None
        if not text.strip():
            if empty_ok and status == 200:
                return None
            raise (EmptyAnswer if status == 200 else ProxyBadResponse)(f"{what}: HTTP {status} with an empty body")
        try:
            data = response.json()
        except ValueError:
            raise ProxyBadResponse(f"{what}: HTTP {status}, not JSON", detail=snippet(text)) from None
        if status >= 400:
            # Submit errors come with the API's body on any status (trueai 404, new-api 400).
            if accept_error_bodies and isinstance(data, dict) and "code" in data:
                return data
            if accept_error_bodies and status == 400 and isinstance(data, dict) and isinstance(data.get("error"), dict):
                # new-api refuses before relaying, e.g. a customId it cannot convert
                # (middleware/distributor.go: {"error": {"message": "无效的请求，unknown_action:…"}}).
                return {"code": data["error"].get("code") or "", "description": error_message(text)}
            if empty_ok and status in (400, 404):  # new-api: 400 task_no_found
                return None
            raise ProxyBadResponse(f"{what}: HTTP {status}", detail=error_message(text))
        return data

    @staticmethod
    def _transport_error(what: str, exc: httpx.HTTPError) -> ProxyError:
        if isinstance(exc, httpx.PoolTimeout):
            # Never sent: nothing for the proxy to have taken, so not a timeout to recover from.
            return ProxyBusy(f"{what}: no free connection to the proxy within {POOL_WAIT_S:g} s")
        if isinstance(exc, httpx.TimeoutException):
            return ProxyTimeout(f"{what}: timed out ({type(exc).__name__})")
        # Connection refused, reset, DNS, protocol errors: the server is not there for us.
        return ProxyUnreachable(f"{what}: {type(exc).__name__}")
