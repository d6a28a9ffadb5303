"""How the REST routes answer: JSON bodies discord.py parses, 204s and Discord's error bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import ApiError


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only if Content-Type is exactly "application/json";
    # web.json_response would append "; charset=utf-8", so the header is set by hand.
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), status=error.status)
