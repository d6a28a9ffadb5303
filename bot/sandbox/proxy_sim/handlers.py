"""HTTP: the middleware (records every request, scripted failures, auth, new-api's index.html)
and the submit, fetch and list handlers, which leave the details to the flavour."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from .newapi_rules import NEWAPI_INDEX_HTML
from .tasks import RecordedRequest
from .timeline import API_PREFIX
from .wire import _json_response, _prefix_of


class _HttpMixin:
    """ProxySim's aiohttp middleware and route handlers (the image route is in media.py)."""

    # ---- internals: HTTP ------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # over the flavour's max_body (Kestrel's 30 MB for trueai)
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    json=None,
                    body=b"",
                    time=time.time(),
                    prefix=_prefix_of(request.path),
                )
            )
            self._notify()
            return self._flavour.http_error(413, request)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed,
            body=raw,
            time=time.time(),
            prefix=_prefix_of(request.path),
        )
        self.requests.append(record)
        self._notify()

        failure = self._take_failure(request.path)
        if failure is not None:
            if failure.kind == "hang":  # never reaches the proxy's logic: as if it was never sent
                await self._delay(3600)
                return web.Response(status=503)
            if not failure.kind.startswith("delay:"):
                return self._failure_response(failure, request.path)
            if await self._delay(float(failure.kind.split(":", 1)[1])):
                return web.Response(status=503)  # shutting down: the client is gone anyway

        # new-api: a path no route claims (or a wrong method) reaches gin's NoRoute, which answers
        # the web UI's index.html with 200 and no key check (router/web-router.go).
        if (
            self.flavour == "newapi"
            and request.match_info.http_exception is not None
            and not request.path.startswith(("/v1", "/api", "/assets"))
        ):
            return web.Response(
                status=200,
                text=NEWAPI_INDEX_HTML,
                content_type="text/html",
                charset="utf-8",
                headers={"Cache-Control": "no-cache"},
            )
        # Images stand in for CDN links, which need no secret.
        if not request.path.startswith(API_PREFIX + "/image/"):
            if not self._flavour.authorized(record.headers, self.secret):
                return self._flavour.unauthorized(record.headers)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # no route, wrong method: Spring's error body (novicezk)
            if exc.status < 400:
                raise
            return self._flavour.http_error(exc.status, request)

    @staticmethod
    async def _json_object(request: web.Request) -> dict | None:
        """The JSON object sent, or None (Spring would answer 400 to anything else)."""
        try:
            body = json.loads(await request.read())  # aiohttp caches the bytes read earlier
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _submit(self, request: web.Request) -> web.Response:
        """POST /submit/<kind>: the flavour checks and renders, _run_submit does the work."""
        body = await self._json_object(request)
        if body is None:
            return self._flavour.bad_body(request, await request.read())
        kind = request.path.rsplit("/", 1)[-1]  # imagine, change, action, modal, ...
        return await self._flavour.submit(kind, request, body)

    async def _fetch(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        view = self._flavour.view(task_id)
        if view is None:
            return self._flavour.unknown_task()
        response = _json_response(view)
        self._flavour.after_read([task_id])  # after serialising: the caller sees the old state
        return response

    async def _list_all(self, request: web.Request) -> web.Response:
        """GET /task/list: every task it still holds, newest first."""
        return _json_response([self._flavour.task_json(task) for task in reversed(self.tasks.values())])

    async def _list_by_condition(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        if body is None:
            return self._flavour.bad_body(request, await request.read())
        ids = dict.fromkeys(str(i) for i in body.get("ids") or [])  # dedupe, keep order
        found = {i: view for i in ids if (view := self._flavour.view(i)) is not None}
        response = _json_response(list(found.values()))
        self._flavour.after_read(found)
        return response
