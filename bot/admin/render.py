"""Jinja2 for the admin page: autoescaped templates from the package, and the few filters they use."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.core.credits import format_amount
from bot.core.results import safe_link

FRAGMENT_HEADER = "X-Admin-Fragment"  # the page's script asks for the live part only


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.admin", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["amount"] = lambda units: format_amount(int(units))
    env.filters["link"] = lambda url: safe_link(url or "") or ""
    env.filters["clip"] = lambda text, n=120: (text or "")[:n] + ("…" if len(text or "") > n else "")
    return env


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(float(timestamp), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def page(env: Environment, request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    """The whole page, or only its live fragment when the page's script asks for it."""
    template = env.get_template(name)
    if request.headers.get(FRAGMENT_HEADER) == "1" and "live" in template.blocks:
        context = template.new_context(values)
        html = "".join(template.blocks["live"](context))
    else:
        html = template.render(**values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
