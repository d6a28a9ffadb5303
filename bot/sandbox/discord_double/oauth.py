"""Discord's OAuth2 authorization code grant, for a bot's "Log in with Discord" web page.

The flow (https://discord.com/developers/docs/topics/oauth2#authorization-code-grant):

1. the browser opens ``{base_url}/oauth2/authorize?client_id=...&redirect_uri=...&response_type=code
   &scope=identify&state=...`` (the consent page, oauth_pages.py) and the user authorizes or cancels;
2. Discord redirects to ``redirect_uri?code=...&state=...`` (``error=access_denied`` when cancelled);
3. the web app POSTs the code to ``/api/oauth2/token`` (``/api/v10/oauth2/token`` works too) as
   ``application/x-www-form-urlencoded``, with HTTP Basic ``client_id:client_secret`` or
   ``client_id``/``client_secret`` form fields, and gets ``{access_token, token_type: "Bearer",
   expires_in: 604800, refresh_token, scope}``; ``grant_type=refresh_token`` refreshes it and
   ``/oauth2/token/revoke`` revokes it;
4. ``GET /users/@me`` with ``Authorization: Bearer <access_token>`` returns the user (``identify``
   scope; https://discord.com/developers/docs/resources/user#get-current-user), ``GET /oauth2/@me``
   the authorization (https://discord.com/developers/docs/topics/oauth2#get-current-authorization-information).

The docs only say that JSON bodies are refused "with an error" and name no error.  The answers
below follow what Discord was reported answering in discord/discord-api-docs issues: a body that
is not a form (or lacks ``grant_type``) gets 400 ``unsupported_grant_type`` "Grant type None is not
supported" (#645, #5249), bad client credentials 401 ``invalid_client``, an unknown, used or expired
code 400 ``invalid_grant`` 'Invalid "code" in request.' (#5579, #2526), a redirect_uri other than
the authorization's 'Invalid "redirect_uri" in request.' (#1131), a bad Bearer token
``{"message": "401: Unauthorized", "code": 0}``.  Codes are single use and live ``code_lifetime``
seconds (10 minutes here; a Discord staff member once said 100 s, #2526).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_plus

from aiohttp import web

from .records import RequestRecord
from .responses import json_response

if TYPE_CHECKING:
    from .state import State

DEFAULT_CLIENT_SECRET = "discord-double-client-secret"
CODE_LIFETIME = 600.0  # seconds an authorization code may wait for its exchange
TOKEN_LIFETIME = 604800  # seconds an access token lives: Discord's expires_in (7 days)

# https://discord.com/developers/docs/topics/oauth2#shared-resources-oauth2-scopes
SCOPES = frozenset(
    "activities.read activities.write applications.builds.read applications.builds.upload applications.commands "
    "applications.commands.update applications.commands.permissions.update applications.entitlements "
    "applications.store.update bot connections dm_channels.read email gdm.join guilds guilds.join "
    "guilds.members.read identify identify.premium messages.read relationships.read role_connections.write rpc "
    "rpc.activities.write rpc.notifications.read rpc.voice.read rpc.voice.write voice webhook.incoming".split()
)
# Valid on Discord, but they add a bot or a webhook somewhere: the double does not do that.
UNSUPPORTED_SCOPES = frozenset({"bot", "webhook.incoming", "applications.commands"})
GRANT_TYPES = ("authorization_code", "refresh_token")
UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}


@dataclass
class OAuthGrant:
    """One OAuth2 step the double saw, in ``DiscordDouble.oauth_grants``.

    ``action`` is "authorize" (the consent page was answered, or an authorize URL refused),
    "token" (a token request) or "revoke".  ``error`` is the OAuth error answered
    ("access_denied" when the user cancelled, "invalid_grant"...), None when granted.
    """

    action: str
    user_id: int | None = None
    scopes: tuple[str, ...] = ()
    redirect_uri: str | None = None
    state: str | None = None  # the client's ``state``, as given to authorize
    grant_type: str | None = None  # token requests
    code: str | None = None  # the code issued (authorize) or presented (token)
    access_token: str | None = None  # the token issued (token) or revoked (revoke)
    error: str | None = None
    error_description: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class AuthorizationCode:
    code: str
    user_id: int
    scopes: tuple[str, ...]
    redirect_uri: str
    expires_at: float  # time.time()
    used: bool = False


@dataclass
class OAuthToken:
    """An access token and its refresh token, as issued to the web app."""

    access_token: str
    refresh_token: str
    user_id: int
    scopes: tuple[str, ...]
    expires_at: float  # time.time()
    revoked: bool = False

    @property
    def live(self) -> bool:
        return not self.revoked and time.time() < self.expires_at


class OAuthError(Exception):
    """An OAuth-style error answer: ``{"error", "error_description"?}``."""

    def __init__(self, status: int, error: str, description: str | None = None):
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return body


class OAuth:
    """The authorization server: the application's credentials, codes, tokens and what happened."""

    def __init__(self, state: State):
        self.state = state
        self.client_secret = DEFAULT_CLIENT_SECRET
        self.redirect_uris: list[str] = []
        self.user_id: int | None = None  # who is "logged in to Discord" in the browser
        self.code_lifetime = CODE_LIFETIME
        self.token_lifetime = TOKEN_LIFETIME
        self.grants: list[OAuthGrant] = []
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, OAuthToken] = {}  # by access token
        self.authorized: dict[int, set[str]] = {}  # scopes each user has granted (for prompt=none)

    @property
    def client_id(self) -> str:
        return str(self.state.application_id)

    def issue_code(self, user_id: int, scopes: tuple[str, ...], redirect_uri: str) -> str:
        code = secrets.token_urlsafe(22)
        self.codes[code] = AuthorizationCode(code, user_id, scopes, redirect_uri, time.time() + self.code_lifetime)
        self.authorized.setdefault(user_id, set()).update(scopes)
        return code

    def redeem_code(self, code: str | None, redirect_uri: str | None) -> OAuthToken:
        grant = self.codes.get(code or "")
        if grant is None or grant.used or time.time() >= grant.expires_at:
            raise OAuthError(400, "invalid_grant", 'Invalid "code" in request.')
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
        grant.used = True
        return self._issue_token(grant.user_id, grant.scopes)

    def refresh(self, refresh_token: str | None) -> OAuthToken:
        old = next((t for t in self.tokens.values() if t.refresh_token == refresh_token), None)
        if old is None or old.revoked:
            raise OAuthError(400, "invalid_grant", 'Invalid "refresh_token" in request.')
        old.revoked = True  # the new pair replaces it
        return self._issue_token(old.user_id, old.scopes)

    def _issue_token(self, user_id: int, scopes: tuple[str, ...]) -> OAuthToken:
        token = OAuthToken(
            secrets.token_urlsafe(22), secrets.token_urlsafe(22), user_id, scopes, time.time() + self.token_lifetime
        )
        self.tokens[token.access_token] = token
        return token

    def revoke(self, token: str | None) -> OAuthToken | None:
        """Revoke the authorization an access or refresh token belongs to (both tokens go)."""
        found = next((t for t in self.tokens.values() if token in (t.access_token, t.refresh_token)), None)
        if found is not None:
            found.revoked = True
        return found

    def bearer(self, authorization: str | None) -> OAuthToken | None:
        """The live token of an ``Authorization: Bearer ...`` header, if it is one."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        return token if token is not None and token.live else None

    def authenticate_client(self, authorization: str | None, form: dict[str, str]) -> None:
        """HTTP Basic ``client_id:client_secret`` or the form's fields; 401 invalid_client if wrong."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization.removeprefix("Basic ").strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, secret = decoded.partition(":")
        # RFC 6749 2.3.1 form-encodes both before Basic encoding; most clients do not.
        if client_id is None or secret is None or unquote_plus(client_id) != self.client_id:
            raise OAuthError(401, "invalid_client")
        if self.client_secret not in (secret, unquote_plus(secret)):
            raise OAuthError(401, "invalid_client")

    def record(self, grant: OAuthGrant) -> OAuthGrant:
        self.grants.append(grant)
        return grant

    def user_payload(self, token: OAuthToken) -> dict[str, Any]:
        """The user object ``GET /users/@me`` returns for a Bearer token (no email without ``email``)."""
        user = self.state.user(token.user_id)
        payload = {
            **user.to_payload(),
            "mfa_enabled": False,
            "banner": None,
            "accent_color": None,
            "locale": "en-US",
            "flags": 0,
            "premium_type": 0,
        }
        if "email" in token.scopes:
            payload.update(email=f"{user.username}@users.discord-double.invalid", verified=True)
        return payload


def _form(req: RequestRecord) -> dict[str, str] | None:
    """The request's form fields (first value of each), or None if the body is not a form."""
    content_type = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    # The REST plumbing keeps a body that is not JSON as text; a JSON-looking one is no form anyway.
    raw = req.json if isinstance(req.json, str) else ""
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _oauth_error(req: RequestRecord, error: OAuthError) -> web.Response:
    req.error = error.body()
    return json_response(error.body(), status=error.status)


class OAuthRoutes:
    """Mixed into ``RestApi``: the token, revocation and Bearer routes."""

    state: State

    @property
    def oauth(self) -> OAuth:
        return self.state.oauth

    async def oauth_token(self, req: RequestRecord) -> web.Response:
        """``POST /oauth2/token``: exchange a code (or a refresh token) for an access token."""
        form = _form(req) or {}
        grant_type = form.get("grant_type")
        grant = OAuthGrant("token", grant_type=grant_type, code=form.get("code"), redirect_uri=form.get("redirect_uri"))
        try:
            if grant_type not in GRANT_TYPES:
                raise OAuthError(400, "unsupported_grant_type", f"Grant type {grant_type} is not supported")
            self.oauth.authenticate_client(req.authorization, form)
            if grant_type == "authorization_code":
                token = self.oauth.redeem_code(form.get("code"), form.get("redirect_uri"))
            else:
                token = self.oauth.refresh(form.get("refresh_token"))
        except OAuthError as error:
            grant.error, grant.error_description = error.error, error.description
            self.oauth.record(grant)
            return _oauth_error(req, error)
        grant.user_id, grant.scopes, grant.access_token = token.user_id, token.scopes, token.access_token
        self.oauth.record(grant)
        return json_response(
            {
                "access_token": token.access_token,
                "token_type": "Bearer",
                "expires_in": max(0, round(token.expires_at - time.time())),
                "refresh_token": token.refresh_token,
                "scope": " ".join(token.scopes),
            }
        )

    async def oauth_revoke(self, req: RequestRecord) -> web.Response:
        """``POST /oauth2/token/revoke`` (RFC 7009): 200 whether or not the token was known."""
        form = _form(req)
        try:
            if form is None:
                raise OAuthError(400, "invalid_request", "The request is not formatted correctly")
            self.oauth.authenticate_client(req.authorization, form)
        except OAuthError as error:
            self.oauth.record(OAuthGrant("revoke", error=error.error, error_description=error.description))
            return _oauth_error(req, error)
        token = self.oauth.revoke(form.get("token"))
        grant = OAuthGrant("revoke")
        if token is not None:
            grant.user_id, grant.scopes, grant.access_token = token.user_id, token.scopes, token.access_token
        self.oauth.record(grant)
        return json_response({})

    def bearer_me(self, req: RequestRecord) -> web.Response:
        """``GET /users/@me`` with a Bearer token: its user, if the token has ``identify``."""
        token = self.oauth.bearer(req.authorization)
        if token is None or not {"identify", "email"} & set(token.scopes):
            return json_response(UNAUTHORIZED, status=401)
        return json_response(self.oauth.user_payload(token))

    async def oauth_authorization(self, req: RequestRecord) -> web.Response:
        """``GET /oauth2/@me``: the Bearer token's application, scopes, expiry and (``identify``) user."""
        token = self.oauth.bearer(req.authorization)
        if token is None:
            return json_response(UNAUTHORIZED, status=401)
        app = self.state.application_payload()
        keys = ("id", "name", "icon", "description", "bot_public", "bot_require_code_grant", "verify_key", "flags")
        body: dict[str, Any] = {
            "application": {key: app[key] for key in keys},
            "scopes": list(token.scopes),
            "expires": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(token.expires_at)),
        }
        if "identify" in token.scopes:
            body["user"] = self.state.user_payload(token.user_id)
        return json_response(body)


class OAuthControls:
    """Mixed into ``DiscordDouble``: the OAuth2 application's settings and records."""

    state: State

    @property
    def oauth(self) -> OAuth:
        """The authorization server itself (``code_lifetime``, ``token_lifetime``, ``tokens``...)."""
        return self.state.oauth

    @property
    def oauth_client_id(self) -> str:
        """The OAuth2 client id: the application id, as a string."""
        return self.oauth.client_id

    @property
    def oauth_client_secret(self) -> str:
        return self.oauth.client_secret

    @oauth_client_secret.setter
    def oauth_client_secret(self, value: str) -> None:
        self.oauth.client_secret = value

    @property
    def oauth_redirect_uris(self) -> list[str]:
        """The registered redirect URIs (none at first): authorize accepts only these, exactly."""
        return self.oauth.redirect_uris

    def register_oauth_redirect(self, uri: str) -> None:
        if uri not in self.oauth.redirect_uris:
            self.oauth.redirect_uris.append(uri)

    @property
    def oauth_user_id(self) -> int | None:
        """Who is "logged in to Discord" in the browser: the consent page's preselected account."""
        return self.oauth.user_id

    @oauth_user_id.setter
    def oauth_user_id(self, value: int | None) -> None:
        if value is not None:
            self.state.user(value)  # KeyError for a user the double does not know
        self.oauth.user_id = value

    @property
    def oauth_grants(self) -> list[OAuthGrant]:
        """Every authorize decision and token request, in order (see ``OAuthGrant``)."""
        return self.oauth.grants

    @property
    def oauth_authorize_url(self) -> str:
        return f"{self.state.base_url}/oauth2/authorize"

    @property
    def oauth_token_url(self) -> str:
        return f"{self.state.base_url}/api/v10/oauth2/token"

    def revoke_oauth_tokens(self, user_id: int | None = None) -> None:
        """Revoke every access token (of one user, if given), as a user removing the app would."""
        for token in self.oauth.tokens.values():
            if user_id is None or token.user_id == user_id:
                token.revoked = True
