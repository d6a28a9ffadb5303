"""Wire helpers shared by the flavours and the server: JSON and error bodies (Spring, ASP.NET,
trueai's LogicException), submit outcomes, API prefixes, data-URL and index checks."""

from __future__ import annotations

import base64
import binascii
import http
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .timeline import API_PREFIX, SPEED_PREFIXES

_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,(.+)", re.DOTALL)


def _json_response(data: Any, status: int = 200) -> web.Response:
    # ensure_ascii=False: the real servers send Chinese descriptions as UTF-8.
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
    )


def _spring_error(status: int, path: str) -> web.Response:
    """The body Spring Boot answers with when a request fails outside a controller."""
    return _json_response(
        {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "status": status,
            "error": http.HTTPStatus(status).phrase,
            "path": path,
        },
        status=status,
    )


def _dotnet_ticks() -> str:
    """DateTime.Now.Ticks as a string (trueai's Result.Timestamp): 100 ns steps since 0001-01-01."""
    return str(time.time_ns() // 100 + 621_355_968_000_000_000)


def _logic_error(message: str) -> web.Response:
    """trueai's answer when a LogicException escapes a controller: HTTP 200 and Result.Fail(message),
    i.e. success false, code -1, message, timestamp; no data field, no SubmitResultVO code
    (Filters/CustomLogicExceptionFilterAttribute.cs, Models/Result.cs)."""
    return _json_response({"success": False, "code": -1, "message": message, "timestamp": _dotnet_ticks()})


def _is_data_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    match = _DATA_URL.fullmatch(value)
    if match is None:
        return False
    try:
        base64.b64decode(match.group(1), validate=True)
    except binascii.Error:
        return False
    return True


def _parse_index(value: Any) -> int | None:
    """The 1-4 index of a change; Jackson also accepts it as a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= 4:
        return value
    return None


@dataclass
class _Outcome:
    """What a submit came to, before a flavour puts it on the wire."""

    code: int
    description: str
    result: Any = None
    properties: dict | None = None
    http_status: int | None = None  # None: the flavour's status for the code


def _speed_of(path: str) -> str | None:
    """FAST / RELAX / TURBO for trueai's /mj-<speed>/mj prefixes; None for plain /mj."""
    for prefix, speed in SPEED_PREFIXES.items():
        if path.startswith(prefix + "/"):
            return speed
    return None


def _prefix_of(path: str) -> str:
    for prefix in SPEED_PREFIXES:
        if path.startswith(prefix + "/"):
            return prefix
    return API_PREFIX if path.startswith(API_PREFIX + "/") else ""


def _problem(status: int, errors: dict[str, list[str]]) -> web.Response:
    """ASP.NET Core's validation answer (trueai), e.g. for a botType it cannot bind."""
    return web.Response(
        status=status,
        text=json.dumps(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": status,
                "errors": errors,
                "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
            },
            ensure_ascii=False,
        ),
        content_type="application/problem+json",
        charset="utf-8",
    )
