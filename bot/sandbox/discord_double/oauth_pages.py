"""The browser half of Discord's OAuth2 flow: ``/oauth2/authorize``, the consent page (see oauth.py).

``GET /oauth2/authorize?client_id=...&redirect_uri=...&response_type=code&scope=identify[&state=...]
[&prompt=...]`` (https://discord.com/developers/docs/topics/oauth2#authorization-code-grant) answers
a small page: "<application> wants to access your account", a ``<select name="user_id" id="user">``
of the double's human users (preselected: ``DiscordDouble.oauth_user_id``, else the first one,
alice), an "Authorize" button (``id="authorize"``) and a "Cancel" one (``id="cancel"``).  Its
form POSTs the authorize parameters back to ``/oauth2/authorize`` with the decision; the answer is a 302 to
``redirect_uri?code=...&state=...``, or ``?error=access_denied&error_description=...&state=...``
when cancelled.  ``state`` comes back only if it was sent; a query already in the redirect URI
is kept as it was.

Refused like Discord (and RFC 6749 4.1.2.1): an unknown ``client_id`` ("Unknown Application") or a
``redirect_uri`` that is not exactly one of the registered ones ("Invalid OAuth2 redirect_uri")
get a 400 page and no redirect; a missing ``response_type`` (invalid_request), another one than
``code`` (unsupported_response_type) or a scope list that is empty or names an unknown scope
(invalid_scope) are redirected back with ``error``/``error_description``.  ``prompt=none`` skips
the page when ``oauth_user_id`` already granted those scopes.  What the double does not do (the
implicit grant, the ``bot``/``webhook.incoming``/``applications.commands`` install flows) gets a
400 page that says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from .oauth import SCOPES, UNSUPPORTED_SCOPES, OAuth, OAuthGrant
from .state import State

AUTHORIZE_PATH = "/oauth2/authorize"
# What the consent page says each scope allows (the others are shown by name).
SCOPE_TEXT = {
    "identify": "Access your username, avatar, and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
    "guilds.members.read": "Read your member info (nickname, avatar, roles, etc...) for servers you belong to",
    "connections": "Access your third-party connections",
}


class Refusal(Exception):
    """An authorize request the double refuses: on a 400 page (``page``) or redirected back."""

    def __init__(self, error: str, description: str, *, page: bool = False):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.page = page


@dataclass
class AuthorizeRequest:
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    prompt: str | None
    params: dict[str, str]  # what the consent form carries back


def redirect_to(uri: str, **params: str | None) -> web.Response:
    """A 302 to ``uri`` with ``params`` (None: left out) added after any query it already has."""
    base, hash_mark, fragment = uri.partition("#")
    added = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return web.Response(status=302, headers={"Location": f"{base}{separator}{added}{hash_mark}{fragment}"})


def page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>Discord | {html.escape(title)}</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    return web.Response(status=status, text=text, content_type="text/html")


class AuthorizePage:
    """``GET``/``POST /oauth2/authorize`` on the double's root (not under ``/api``)."""

    def __init__(self, state: State):
        self.state = state

    @property
    def oauth(self) -> OAuth:
        return self.state.oauth

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(AUTHORIZE_PATH, self.get)
        app.router.add_post(AUTHORIZE_PATH, self.post)

    # ------------------------------------------------------------ handlers

    async def get(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        try:
            auth = self.check(params)
        except Refusal as refusal:
            return self.refuse(params, refusal)
        user_id = self.oauth.user_id
        if (
            auth.prompt == "none"
            and user_id is not None
            and set(auth.scopes) <= self.oauth.authorized.get(user_id, set())
        ):
            return self.grant(auth, user_id)
        return self.consent_page(auth)

    async def post(self, request: web.Request) -> web.Response:
        params = {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
        try:
            auth = self.check(params)
        except Refusal as refusal:
            return self.refuse(params, refusal)
        decision = params.get("decision")
        raw_user = params.get("user_id", "")
        user = self.state.users.get(int(raw_user)) if raw_user.isdigit() else None
        user_id = None if user is None else user.id
        if decision == "cancel":
            description = "The resource owner or authorization server denied the request"
            self.record_decision(auth, user_id, error="access_denied", error_description=description)
            return redirect_to(
                auth.redirect_uri, error="access_denied", error_description=description, state=auth.state
            )
        if decision != "authorize":
            return self.refuse(params, Refusal("invalid_request", f"Unknown decision {decision!r}", page=True))
        if user is None or user.bot:
            return self.refuse(params, Refusal("invalid_request", f"Unknown user {raw_user!r}", page=True))
        return self.grant(auth, user.id)

    # ------------------------------------------------------------ decisions

    def check(self, params: Mapping[str, str]) -> AuthorizeRequest:
        """The request's parameters, or the ``Refusal`` Discord would answer."""
        if params.get("client_id") != self.oauth.client_id:
            raise Refusal("invalid_client", "Unknown Application", page=True)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None or redirect_uri not in self.oauth.redirect_uris:
            raise Refusal("invalid_request", "Invalid OAuth2 redirect_uri", page=True)
        response_type = params.get("response_type")
        if response_type is None:
            raise Refusal("invalid_request", "Missing response_type parameter.")
        if response_type == "token":
            raise Refusal("unsupported_response_type", "The double does not implement the implicit grant", page=True)
        if response_type != "code":
            raise Refusal("unsupported_response_type", f"Unsupported response_type: {response_type}")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        passthrough = [s for s in scopes if s in UNSUPPORTED_SCOPES]
        if passthrough:
            raise Refusal("invalid_scope", f"The double does not implement the {passthrough[0]!r} scope", page=True)
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            raise Refusal("invalid_scope", f"Invalid scope: {' '.join(unknown) or '(none)'}")
        keys = ("client_id", "redirect_uri", "response_type", "scope", "state", "prompt")
        carried = {key: params[key] for key in keys if key in params}
        return AuthorizeRequest(redirect_uri, scopes, params.get("state"), params.get("prompt"), carried)

    def refuse(self, params: Mapping[str, str], refusal: Refusal) -> web.Response:
        redirect_uri = params.get("redirect_uri")
        self.oauth.record(
            OAuthGrant(
                "authorize",
                scopes=tuple(params.get("scope", "").split()),
                redirect_uri=redirect_uri,
                state=params.get("state"),
                error=refusal.error,
                error_description=refusal.description,
            )
        )
        if refusal.page or redirect_uri is None:
            body = f'<h1 id="error">{html.escape(refusal.description)}</h1>\n<p>{html.escape(refusal.error)}</p>'
            return page(refusal.description, body, status=400)
        return redirect_to(
            redirect_uri, error=refusal.error, error_description=refusal.description, state=params.get("state")
        )

    def grant(self, auth: AuthorizeRequest, user_id: int) -> web.Response:
        code = self.oauth.issue_code(user_id, auth.scopes, auth.redirect_uri)
        self.record_decision(auth, user_id, code=code)
        return redirect_to(auth.redirect_uri, code=code, state=auth.state)

    def record_decision(self, auth: AuthorizeRequest, user_id: int | None, **outcome: str) -> None:
        """The user's answer on the consent page: a code, or the error sent back."""
        self.oauth.record(
            OAuthGrant(
                "authorize",
                user_id=user_id,
                scopes=auth.scopes,
                redirect_uri=auth.redirect_uri,
                state=auth.state,
                **outcome,
            )
        )

    def consent_page(self, auth: AuthorizeRequest) -> web.Response:
        app_name = html.escape(self.state.bot.username)
        options = []
        for user in self.state.users.values():
            if user.bot:
                continue  # a bot cannot log in to Discord
            selected = " selected" if user.id == self.oauth.user_id else ""
            options.append(f'<option value="{user.id}"{selected}>{html.escape(user.username)}</option>')
        hidden = "\n".join(
            f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
            for key, value in auth.params.items()
        )
        allowed = "\n".join(f"<li>{html.escape(SCOPE_TEXT.get(s, s))}</li>" for s in auth.scopes)
        body = f"""<h1>{app_name} wants to access your account</h1>
<form method="post" action="{AUTHORIZE_PATH}">
{hidden}
<label for="user">Discord account</label>
<select name="user_id" id="user">
{chr(10).join(options)}
</select>
<p>This will allow the developer of {app_name} to:</p>
<ul id="scopes">
{allowed}
</ul>
<p>Once you authorize, you will be redirected outside of Discord to: {html.escape(auth.redirect_uri)}</p>
<button type="submit" name="decision" value="authorize" id="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>
</form>"""
        return page("Authorize access to your account", body)
