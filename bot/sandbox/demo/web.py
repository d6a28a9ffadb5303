"""The demo's web page: the double's channel as the chosen member sees it (refreshed every second),
a form for each slash command, and the fault buttons. Plain forms and a small script; no build."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from bot.sandbox.demo.channel import channel_view, commands_of, names_of, open_modal
from bot.sandbox.demo.stage import Demo

log = logging.getLogger(__name__)

MAX_UPLOAD = 10 * 1024 * 1024
_STATIC = {"demo.css": "text/css", "demo.js": "text/javascript"}
FAULTS = {
    "proxy-down": "Take the proxy down for 10 s",
    "ban-next": "Fail the next /imagine with a banned word",
    "drop-gateway": "Drop the Discord gateway",
    "restart-bot": "Kill and restart the bot",
}


class DemoPage:
    def __init__(self, demo: Demo, *, host: str = "127.0.0.1", port: int = 8090) -> None:
        self.demo = demo
        self.host, self.port = host, port
        self.env = Environment(loader=PackageLoader("bot.sandbox.demo", "templates"), autoescape=select_autoescape())
        self._runner: web.AppRunner | None = None
        self._answered_modals: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD * 3)
        app.router.add_get("/", self._page)
        app.router.add_get("/channel", self._channel)
        app.router.add_post("/command", self._command)
        app.router.add_post("/press", self._press)
        app.router.add_post("/pick", self._pick)
        app.router.add_post("/modal", self._modal)
        app.router.add_post("/fault/{name}", self._fault)
        app.router.add_get("/static/{name}", self._static)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what the page shows -------------------------------------------------------------------

    def _viewer(self, request: web.Request, form: Any = None) -> int:
        """The demo member the page acts as: alice (an admin) or bob."""
        alice, bob = self.demo.dd.members
        wanted = (form.get("as") if form is not None else None) or request.query.get("as", "alice")
        return bob if wanted == "bob" else alice

    def _values(self, viewer: int) -> dict[str, Any]:
        dd = self.demo.dd
        names = names_of(dd)
        return {
            "viewer": names[viewer],
            "members": [names[m] for m in dd.members],
            "messages": channel_view(dd, viewer),
            "modal": open_modal(dd, viewer, self._answered_modals),
            "notes": self.demo.notes,
            "flavour": self.demo.flavour,
        }

    async def _page(self, request: web.Request) -> web.Response:
        viewer = self._viewer(request)
        html = self.env.get_template("demo.html").render(
            commands=commands_of(self.demo.dd), faults=FAULTS, **self._values(viewer)
        )
        return web.Response(text=html, content_type="text/html")

    async def _channel(self, request: web.Request) -> web.Response:
        html = self.env.get_template("_channel.html").render(**self._values(self._viewer(request)))
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        from importlib.resources import files

        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(
            body=files("bot.sandbox.demo").joinpath("static", name).read_bytes(), content_type=_STATIC[name]
        )

    def _back(self, form: Any) -> web.HTTPSeeOther:
        return web.HTTPSeeOther(f"/?as={'bob' if form.get('as') == 'bob' else 'alice'}")

    # --- what a member does --------------------------------------------------------------------

    async def _command(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        viewer = self._viewer(request, form)
        path = str(form.get("command", ""))
        command = next((c for c in commands_of(self.demo.dd) if c.path == path), None)
        if command is None:
            self.demo.note(f"There is no command /{path[:40]}.")
            raise self._back(form)
        options: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes, str]] = {}
        for option in command.options:
            raw = form.get(f"{path}:{option['name']}")
            if option["kind"] == "attachment":
                if raw is not None and getattr(raw, "filename", ""):
                    data = raw.file.read(MAX_UPLOAD + 1)
                    files[option["name"]] = (raw.filename, data, raw.content_type or "application/octet-stream")
                continue
            if raw is None or str(raw) == "":
                continue
            text = str(raw)
            try:
                options[option["name"]] = {
                    "integer": int,
                    "number": float,
                    "boolean": lambda v: v == "true",
                    "user": int,
                }.get(option["kind"], str)(text)
            except ValueError:
                self.demo.note(f"/{path} {option['name']}: {text[:40]!r} is not a {option['kind']}.")
                raise self._back(form) from None
        try:
            await self.demo.dd.slash(path, options, user=viewer, attachments=files)
        except (ValueError, LookupError) as exc:  # what Discord's own client would not let through
            self.demo.note(f"Discord would not send that: {str(exc)[:200]}")
        raise self._back(form)

    async def _press(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            await self.demo.dd.click(
                int(str(form.get("message", "0"))), str(form.get("custom_id", "")), user=self._viewer(request, form)
            )
        except (ValueError, LookupError) as exc:
            self.demo.note(f"That button is gone: {str(exc)[:120]}")
        raise self._back(form)

    async def _pick(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        values = [str(v) for v in form.getall("values", [])]
        try:
            await self.demo.dd.select(
                int(str(form.get("message", "0"))),
                str(form.get("custom_id", "")),
                values,
                user=self._viewer(request, form),
            )
        except (ValueError, LookupError) as exc:
            self.demo.note(f"That menu is gone: {str(exc)[:120]}")
        raise self._back(form)

    async def _modal(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        interaction_id = int(str(form.get("interaction", "0")))
        opened_by = self.demo.dd.state.interactions.get(interaction_id)
        self._answered_modals.add(interaction_id)
        if opened_by is not None and form.get("action") != "close":
            values = {k[len("field:") :]: str(v) for k, v in form.items() if k.startswith("field:")}
            await self.demo.dd.submit_modal(opened_by, values, user=self._viewer(request, form))
        raise self._back(form)

    async def _fault(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name = request.match_info["name"]
        actions = {
            "proxy-down": self.demo.proxy_down,
            "drop-gateway": self.demo.drop_gateway,
            "restart-bot": self.demo.restart_bot,
        }
        if name == "ban-next":
            self.demo.ban_next_submit()
        elif name in actions:
            try:
                await actions[name]()
            except RuntimeError as exc:  # e.g. no gateway connection to drop while the bot restarts
                self.demo.note(f"Not now: {exc}")
        else:
            raise web.HTTPNotFound()
        raise self._back(form)
