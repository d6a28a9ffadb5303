"""Scripted transport failures: ``fail_next`` / ``clear_failures`` and the bad answers they
make (Spring 500, nginx 502, empty or malformed 200, status, delay, code, trueai logic)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.core.background import wait_event

from .wire import _logic_error, _spring_error


@dataclass
class _ScriptedFailure:
    path_suffix: str
    kind: str
    times: int | None  # None: every matching request until clear_failures()
    description: str | None
    properties: dict | None
    result: Any
    body: Any
    content_type: str | None


_FAILURE_KINDS = ("http500_spring", "html502", "empty200", "malformed", "unauthorized", "logic", "hang")
_FAILURE_PREFIXES = ("status:", "delay:", "code:")

# Descriptions novicezk uses for each submit code, for fail_next("code:N").
_CODE_DESCRIPTIONS = {
    1: "提交成功",
    3: "关联任务不存在或已失效",
    4: "参数错误",
    9: "提交失败，系统异常",
    21: "任务已存在",
    22: "排队中，前面还有1个任务",
    23: "队列已满，请稍后尝试",
    24: "可能包含敏感词",
}

_NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _check_kind(kind: str) -> None:
    if kind in _FAILURE_KINDS:
        return
    prefix, _, value = kind.partition(":")
    try:
        if prefix == "delay":
            if float(value) >= 0:
                return
        elif prefix in ("status", "code"):
            int(value)
            return
    except ValueError:
        pass
    raise ValueError(
        f"unknown failure kind {kind!r}; use one of {', '.join(_FAILURE_KINDS)} "
        f"or {', '.join(p + '<N>' for p in _FAILURE_PREFIXES)}"
    )


class _FailureMixin:
    """ProxySim's scripted failures: what fail_next() sets up and the middleware answers with."""

    # ---- scripting: transport failures ---------------------------------

    def fail_next(
        self,
        path_suffix: str = "",
        kind: str = "http500_spring",
        times: int | None = 1,
        *,
        description: str | None = None,
        properties: dict | None = None,
        result: Any = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path ends with ``path_suffix`` badly.

        ``times=None`` keeps failing until clear_failures(); an empty suffix matches
        every request. Kinds: http500_spring, html502, empty200, malformed,
        unauthorized, ``status:<N>`` (``body``/``content_type`` optional),
        ``delay:<seconds>`` (then answer normally), ``hang`` (no answer until the simulator
        stops, and no effect: the request as good as never arrived), ``code:<N>`` (a submit result
        with ``description``/``properties``/``result``), ``logic`` (trueai, or new-api in
        front of it: HTTP 200 ``{"success": false, "code": -1, "message": description,
        "timestamp": "<.NET ticks>"}``, description defaulting to "并发数已达上限", as
        Filters/CustomLogicExceptionFilterAttribute.cs answers a LogicException on
        /submit/action, /modal, /describe, /blend). Scripted answers come before the auth
        check and the request has no other effect (except for delay).
        """
        _check_kind(kind)
        if kind == "logic" and (self.upstream or self.flavour) != "trueai":
            raise ValueError("kind='logic' is trueai's answer (flavour='trueai', or newapi over trueai)")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for always")
        self._failures.append(
            _ScriptedFailure(path_suffix, kind, times, description, properties, result, body, content_type)
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    def _take_failure(self, path: str) -> _ScriptedFailure | None:
        for failure in self._failures:
            if path.endswith(failure.path_suffix):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times == 0:
                        self._failures.remove(failure)
                return failure
        return None

    async def _delay(self, seconds: float) -> bool:
        """Sleep; True if the server started shutting down meanwhile."""
        return await wait_event(self._closing, seconds)

    def _failure_response(self, failure: _ScriptedFailure, path: str) -> web.Response:
        kind = failure.kind
        if kind == "http500_spring":
            return _spring_error(500, path)
        if kind == "html502":
            return web.Response(status=502, text=_NGINX_502, content_type="text/html", headers={"Server": "nginx"})
        if kind == "empty200":
            return web.Response(status=200)
        if kind == "malformed":
            return web.Response(status=200, text='{"code":1,', content_type="application/json")
        if kind == "unauthorized":
            return self._flavour.unauthorized()
        if kind == "logic":  # trueai (also relayed as is by new-api in front of it)
            return _logic_error(failure.description or "并发数已达上限")
        number = int(kind.split(":", 1)[1])
        if kind.startswith("code:"):
            description = failure.description or _CODE_DESCRIPTIONS.get(number, "失败")
            return self._flavour.submit_result(number, description, failure.result, failure.properties)
        # status:<N>
        if failure.body is None:
            return _spring_error(number, path)
        if isinstance(failure.body, (dict, list)):
            return web.Response(
                status=number,
                text=json.dumps(failure.body, ensure_ascii=False),
                content_type=failure.content_type or "application/json",
            )
        data = failure.body.encode() if isinstance(failure.body, str) else failure.body
        return web.Response(status=number, body=data, content_type=failure.content_type or "text/plain")
