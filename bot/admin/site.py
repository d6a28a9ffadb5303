"""The admin page's routes, its login, and the checks every request passes: a signed session of an
admin who is still one, a CSRF token on every POST, the OAuth ``state`` on the way back from
Discord, and headers that keep the page out of frames and scripts out of it."""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from importlib.resources import files
from urllib.parse import quote

from aiohttp import web

from bot.admin.context import AdminContext, MemberDirectory
from bot.admin.oauth import CALLBACK_PATH, DiscordLogin, LoginFailed
from bot.admin.pages import Pages
from bot.admin.render import make_environment, page
from bot.admin.sessions import (
    KEY_META,
    SESSION_COOKIE,
    STATE_COOKIE,
    AdminSession,
    Signer,
    new_key,
    same,
    token_fingerprint,
)
from bot.core.access import AccessPolicy
from bot.core.config import Settings
from bot.jobs import JobService
from bot.ops import logs
from bot.ops.http import Health
from bot.storage import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request, AdminSession], Awaitable[web.StreamResponse]]
TOKEN_TRIES_PER_MINUTE = 10  # failed token logins per minute from one address
TOKEN_TRIES_PER_MINUTE_ALL = 100  # and from everyone: a guesser with many addresses is slowed too
LOGOUT_META = "admin_logout:"  # + the admin's id ("token" for the token login): when they last logged out
_LOOPBACK = ("127.", "::1", "localhost")
_STATIC = {"admin.css": "text/css", "admin.js": "text/javascript"}


class AdminSite:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        jobs: JobService,
        health: Health,
        *,
        directory: MemberDirectory,
        client_id: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings.admin_page
        self.public_url = self.settings.public_url or f"http://{settings.http.listen}"
        self.secure_cookies = self.public_url.startswith("https://")
        policy = AccessPolicy(settings.access)
        self.ctx = AdminContext(settings, store, jobs, health, directory, policy, clock)
        self.env = make_environment()
        self.pages = Pages(self.ctx, self.env, lambda: self.signer, self._cookie)
        self.login: DiscordLogin | None = None
        if self.settings.discord_login:
            configured = self.settings.client_id
            self.login = DiscordLogin(
                settings.discord.api_base,
                (lambda: configured) if configured else client_id,
                self.settings.client_secret,
                self.public_url + CALLBACK_PATH,
            )
        self._signer: Signer | None = None
        self._token_failures: deque[tuple[float, str]] = deque()
        host = settings.http.listen.rpartition(":")[0].strip("[]")
        if not host.startswith(_LOOPBACK) and not self.secure_cookies:
            log.warning(
                "admin page: served on %s over plain http; keep [http] listen on 127.0.0.1 behind an https reverse "
                "proxy, and set [admin_page] public_url to its https:// address",
                settings.http.listen,
            )

    async def start(self) -> None:
        key = await self.ctx.store.meta_value(KEY_META, new_key)
        logs.add_secret(key)
        self._signer = Signer(key)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            raise RuntimeError("AdminSite.start() was not awaited")
        return self._signer

    def add_routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", "/admin", self._admin(self.pages.overview))
        add("GET", "/admin/jobs", self._admin(self.pages.jobs))
        add("GET", "/admin/jobs/{task_id}", self._admin(self.pages.job))
        add("GET", "/admin/members", self._admin(self.pages.members))
        add("GET", "/admin/members/{guild_id:[0-9]{1,19}}/{member_id:[0-9]{1,19}}", self._admin(self.pages.member))
        add(
            "POST",
            "/admin/members/{guild_id:[0-9]{1,19}}/{member_id:[0-9]{1,19}}/credits",
            self._admin(self.pages.adjust),
        )
        add("GET", "/admin/settings", self._admin(self.pages.settings_page))
        add("POST", "/admin/logout", self._admin(self._logout))
        add("GET", "/admin/login", self._login_page)
        add("GET", "/admin/login/discord", self._to_discord)
        add("GET", CALLBACK_PATH, self._from_discord)
        add("POST", "/admin/login/token", self._token_login)
        add("GET", "/admin/static/{name}", self._static)
        app.on_response_prepare.append(self._headers)

    # --- every request -------------------------------------------------------------------------

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith("/admin"):
            return
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")

    async def session_of(self, request: web.Request) -> AdminSession | None:
        """The request's session, if it is signed, current, not logged out, and its admin is still one."""
        session = self.signer.session(request.cookies.get(SESSION_COOKIE), now=self.ctx.clock())
        if session is None:
            return None
        token = self.settings.token.get_secret_value()
        if session.via == "discord":
            valid = self.login is not None and self.ctx.policy.is_admin(session.user_id)
        else:
            valid = session.via == "token" and bool(token) and same(session.token_print, token_fingerprint(token))
        if not valid:
            return None
        logged_out = await self.ctx.store.get_meta(LOGOUT_META + _who_key(session))
        if logged_out is not None and session.issued <= float(logged_out):
            return None
        return session

    def _admin(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def checked(request: web.Request) -> web.StreamResponse:
            session = await self.session_of(request)
            if session is None:
                if request.method != "GET" or request.headers.get("X-Admin-Fragment"):
                    return self._error(request, 401, "Your session has ended. Log in again.")
                raise web.HTTPFound(f"/admin/login?next={quote(request.path_qs, safe='')}")
            if request.method == "POST":
                form = await request.post()
                sent = form.get("csrf")
                if not isinstance(sent, str) or not same(sent, session.csrf):
                    log.warning(
                        "admin page: %s sent %s %s without a valid CSRF token",
                        session.who,
                        request.method,
                        request.path,
                    )
                    return self._error(
                        request,
                        403,
                        "This form did not come from this page, or it is too old. Reload the page and try again.",
                    )
            return await handler(request, session)

        return checked

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        return page(self.env, request, "error.html", status=status, message=message, session=None, nav="")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        body = files("bot.admin").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})

    # --- logging in and out --------------------------------------------------------------------

    async def _login_page(self, request: web.Request, *, problem: str = "", status: int = 200) -> web.Response:
        return page(
            self.env,
            request,
            "login.html",
            status=status,
            discord=self.login is not None,
            token=bool(self.settings.token.get_secret_value()),
            next=_local(request.query.get("next", "")),
            problem=problem,
            session=None,
            nav="",
        )

    async def _to_discord(self, request: web.Request) -> web.StreamResponse:
        if self.login is None:
            return await self._login_page(request, problem="Log in with Discord is not set up here.", status=404)
        state = secrets.token_urlsafe(24)
        response = web.HTTPFound(self.login.authorize_url(state))
        going = _local(request.query.get("next", ""))
        self._cookie(response, STATE_COOKIE, self.signer.seal_state(state, going, now=self.ctx.clock()), max_age=600)
        raise response

    async def _from_discord(self, request: web.Request) -> web.StreamResponse:
        if self.login is None:
            return await self._login_page(request, problem="Log in with Discord is not set up here.", status=404)
        expected = self.signer.state(request.cookies.get(STATE_COOKIE), now=self.ctx.clock())
        state = request.query.get("state", "")
        if expected is None or not same(state, expected[0]):
            log.warning("admin page: a login came back from Discord with a state this browser was not given")
            return await self._login_page(
                request, problem="That login did not start in this browser, or took too long. Log in again.", status=400
            )
        if "code" not in request.query:
            reason = request.query.get("error", "no code")[:60]
            return await self._login_page(request, problem=f"Discord did not log you in ({reason}).", status=400)
        try:
            user = await self.login.user_of(request.query["code"])
        except LoginFailed as exc:
            return await self._login_page(request, problem=str(exc), status=502)
        if not self.ctx.policy.is_admin(user.id):
            log.warning("admin page: %s (%s) logged in with Discord but is not an admin: refused", user.name, user.id)
            return self._error(request, 403, f"{user.name} is not one of this bot's admins ([access] admin_user_ids).")
        log.info("admin page: %s (%s) logged in with Discord", user.name, user.id)
        raise self._start_session(
            AdminSession(user.id, user.name, "discord", "", 0.0), next_path=expected[1] or "/admin"
        )

    async def _token_login(self, request: web.Request) -> web.StreamResponse:
        token = self.settings.token.get_secret_value()
        form = await request.post()
        now, remote = time.monotonic(), request.remote or "?"
        while self._token_failures and now - self._token_failures[0][0] > 60:
            self._token_failures.popleft()
        mine = sum(1 for _, where in self._token_failures if where == remote)
        if mine >= TOKEN_TRIES_PER_MINUTE or len(self._token_failures) >= TOKEN_TRIES_PER_MINUTE_ALL:
            return await self._login_page(request, problem="Too many wrong tokens. Wait a minute.", status=429)
        sent = form.get("token")
        if not token or not isinstance(sent, str) or not same(sent.strip(), token):
            self._token_failures.append((now, remote))
            log.warning("admin page: a token login from %s was refused", request.remote)
            return await self._login_page(request, problem="That token is not right.", status=403)
        log.info("admin page: token login from %s", request.remote)
        session = AdminSession(0, "admin (token)", "token", "", 0.0, token_fingerprint(token))
        raise self._start_session(session, next_path=_local(str(form.get("next", ""))) or "/admin")

    def _start_session(self, session: AdminSession, *, next_path: str) -> web.HTTPFound:
        seconds = self.settings.session_hours * 3600
        expires, issued = self.ctx.clock() + seconds, time.time()  # issued: wall time, as a logout's
        fresh = AdminSession(
            session.user_id, session.name, session.via, secrets.token_urlsafe(24), expires, session.token_print, issued
        )
        response = web.HTTPFound(next_path)
        self._cookie(response, SESSION_COOKIE, self.signer.seal_session(fresh), max_age=int(seconds))
        response.del_cookie(STATE_COOKIE, path="/admin")
        return response

    async def _logout(self, request: web.Request, session: AdminSession) -> web.StreamResponse:
        # Every session of this admin issued until now ends, on every browser and every process.
        await self.ctx.store.set_meta(LOGOUT_META + _who_key(session), repr(time.time()))
        log.info("admin page: %s logged out (every session of theirs ends)", session.who)
        response = web.HTTPSeeOther("/admin/login")
        response.del_cookie(SESSION_COOKIE, path="/admin")
        raise response

    def _cookie(self, response: web.StreamResponse, name: str, value: str, *, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/admin", httponly=True, samesite="Lax", secure=self.secure_cookies
        )


def _who_key(session: AdminSession) -> str:
    return str(session.user_id) if session.via == "discord" else "token"


def _local(path: str) -> str:
    """``path`` if it is a path on this page (never another site: an open redirect), else ""."""
    if path.startswith("/admin") and not path.startswith("//") and "\\" not in path and "\n" not in path:
        return path
    return ""
