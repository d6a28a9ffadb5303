"""The demo's web page: the double's channel as the chosen member sees it (refreshed every second),
a form for each slash command, and the fault buttons. Plain forms and a small script; no build."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from multidict import MultiDictProxy

from bot.sandbox.demo.channel import channel_view, commands_of, names_of, open_modal
from bot.sandbox.demo.stage import Demo

log = logging.getLogger(__name__)

MAX_UPLOAD = 10 * 1024 * 1024  # per file, as the bot's default [limits] max_attachment_mb
MAX_FILES = 6  # /blend's five images and a margin
_STATIC = {"demo.css": "text/css", "demo.js": "text/javascript"}
FAULTS = {
    "proxy-down": "Take the proxy down for 10 s",
    "ban-next": "Fail the next /imagine with a banned word",
    "drop-gateway": "Drop the Discord gateway",
    "restart-bot": "Kill and restart the bot",
}
CONVERT = {"integer": int, "number": float, "boolean": lambda v: v == "true", "user": int}


class Refused(Exception):
    """Something the page could not send; its message becomes a note."""


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
        app = web.Application(client_max_size=MAX_UPLOAD * MAX_FILES + 65536, middlewares=[self._same_origin])
        app.router.add_get("/", self._page)
        app.router.add_get("/channel", self._channel)
        for path, handler in (
            ("/command", self._command),
            ("/press", self._press),
            ("/pick", self._pick),
            ("/modal", self._modal),
        ):
            app.router.add_post(path, self._acting(handler))
        app.router.add_post("/fault/{name}", self._acting(self._fault))
        app.router.add_get("/static/{name}", self._static)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _same_origin(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A POST from another site (a page the user has open elsewhere) is refused."""
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None and origin.rstrip("/") != f"http://{request.host}":
            return web.Response(status=403, text="The demo takes its buttons from its own page only.")
        return await handler(request)

    # --- what the page shows -------------------------------------------------------------------

    def _viewer(self, wanted: str | None) -> int:
        """The demo member the page acts as: alice (an admin) or bob."""
        alice, bob = self.demo.dd.members
        return bob if wanted == "bob" else alice

    def _values(self, viewer: int) -> dict[str, Any]:
        dd = self.demo.dd
        names = names_of(dd)
        return {
            "viewer": names[viewer],
            "members": [(member, names[member]) for member in dd.members],
            "messages": channel_view(dd, viewer),
            "modal": open_modal(dd, viewer, self._answered_modals),
            "notes": self.demo.notes,
            "flavour": self.demo.flavour,
            "bot_up": self.demo.bot_up,
        }

    async def _page(self, request: web.Request) -> web.Response:
        viewer = self._viewer(request.query.get("as"))
        html = self.env.get_template("demo.html").render(
            commands=commands_of(self.demo.dd), faults=FAULTS, **self._values(viewer)
        )
        return web.Response(text=html, content_type="text/html")

    async def _channel(self, request: web.Request) -> web.Response:
        html = self.env.get_template("_channel.html").render(**self._values(self._viewer(request.query.get("as"))))
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(
            body=files("bot.sandbox.demo").joinpath("static", name).read_bytes(), content_type=_STATIC[name]
        )

    # --- what a member does --------------------------------------------------------------------

    def _acting(self, handler: Any) -> Any:
        """Every POST: read its form (a broken or oversized one is a note, not a 500), act, and go
        back to the page as the same member."""

        async def act(request: web.Request) -> web.StreamResponse:
            form: MultiDictProxy[Any] | None = None
            try:
                form = await request.post()
                await handler(request, form, self._viewer(str(form.get("as", ""))))
            except web.HTTPRequestEntityTooLarge:
                self.demo.note(f"That upload is too large: at most {MAX_UPLOAD // 2**20} MiB a file.")
            except (Refused, ValueError, LookupError) as exc:  # what Discord's own client would not send
                self.demo.note(str(exc)[:300])
            raise web.HTTPSeeOther(f"/?as={'bob' if form is not None and form.get('as') == 'bob' else 'alice'}")

        return act

    async def _command(self, request: web.Request, form: Any, viewer: int) -> None:
        path = str(form.get("command", ""))
        command = next((c for c in commands_of(self.demo.dd) if c.path == path), None)
        if command is None:
            raise Refused(f"There is no command /{path[:40]}.")
        options: dict[str, Any] = {}
        uploads: dict[str, tuple[str, bytes, str]] = {}
        for option in command.options:
            raw = form.get(f"{path}:{option['name']}")
            if option["kind"] == "attachment":
                if raw is not None and getattr(raw, "filename", ""):
                    data = raw.file.read(MAX_UPLOAD + 1)
                    if len(data) > MAX_UPLOAD:
                        raise Refused(f"{raw.filename[:60]} is over {MAX_UPLOAD // 2**20} MiB: pick a smaller image.")
                    uploads[option["name"]] = (raw.filename, data, raw.content_type or "application/octet-stream")
                continue
            if raw is None or str(raw) == "":
                continue
            try:
                options[option["name"]] = CONVERT.get(option["kind"], str)(str(raw))
            except ValueError:
                raise Refused(f"/{path} {option['name']}: {str(raw)[:40]!r} is not a {option['kind']}.") from None
        await self.demo.dd.slash(path, options, user=viewer, attachments=uploads)

    async def _press(self, request: web.Request, form: Any, viewer: int) -> None:
        await self.demo.dd.click(_number(form.get("message")), str(form.get("custom_id", "")), user=viewer)

    async def _pick(self, request: web.Request, form: Any, viewer: int) -> None:
        values = [str(v) for v in form.getall("values", []) if str(v)]
        if not values:
            raise Refused("Pick an option in the menu first.")
        await self.demo.dd.select(_number(form.get("message")), str(form.get("custom_id", "")), values, user=viewer)

    async def _modal(self, request: web.Request, form: Any, viewer: int) -> None:
        interaction_id = _number(form.get("interaction"))
        opened_by = self.demo.dd.state.interactions.get(interaction_id)
        self._answered_modals.add(interaction_id)
        if opened_by is not None and form.get("action") != "close":
            values = {k[len("field:") :]: str(v) for k, v in form.items() if k.startswith("field:")}
            await self.demo.dd.submit_modal(opened_by, values, user=viewer)

    async def _fault(self, request: web.Request, form: Any, viewer: int) -> None:
        name = request.match_info["name"]
        if name == "ban-next":
            self.demo.ban_next_submit()
        elif name == "restart-bot":
            self.demo.restart_bot()  # in the background: the page follows it in its notes
        elif name == "proxy-down":
            await self.demo.proxy_down()
        elif name == "drop-gateway":
            try:
                await self.demo.drop_gateway()
            except RuntimeError:  # no live connection: the bot is restarting
                raise Refused("The bot is not connected right now: nothing to drop.") from None
        else:
            raise Refused(f"There is no fault {name[:40]!r}.")


def _number(value: Any) -> int:
    text = str(value or "")
    if not text.isascii() or not text.isdigit():
        raise Refused("That button or form is not on the page any more: reload it.")
    return int(text)
