"""Log in with Discord: the OAuth2 authorization-code flow with the ``identify`` scope
(https://discord.com/developers/docs/topics/oauth2#authorization-code-grant), for the bot's own
application. The code is exchanged with the client secret, then ``GET /users/@me`` with the user's
token says who logged in; the token is not kept."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

log = logging.getLogger(__name__)

_API_PATH = re.compile(r"/api(/v\d+)?$")
CALLBACK_PATH = "/admin/login/callback"


class LoginFailed(Exception):
    """The login did not go through; the message is safe to show (it names no secret)."""


@dataclass(frozen=True)
class DiscordUser:
    id: int
    name: str


class DiscordLogin:
    def __init__(
        self,
        api_base: str,
        client_id: Callable[[], int],
        client_secret: SecretStr,
        redirect_uri: str,
        *,
        timeout_s: float = 10,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.site = _API_PATH.sub("", self.api_base)  # https://discord.com: where the consent page is
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._timeout = httpx.Timeout(timeout_s)
        self._limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)

    def __repr__(self) -> str:
        return f"DiscordLogin(site={self.site!r}, redirect_uri={self.redirect_uri!r})"

    def authorize_url(self, state: str) -> str:
        query = {
            "client_id": str(self._client_id()),
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": "identify",
            "state": state,
        }
        return f"{self.site}/oauth2/authorize?{urlencode(query)}"

    async def user_of(self, code: str) -> DiscordUser:
        """Who logged in, from the code Discord sent back; :class:`LoginFailed` otherwise."""
        async with httpx.AsyncClient(timeout=self._timeout, limits=self._limits) as client:
            try:
                answer = await client.post(
                    f"{self.api_base}/oauth2/token",
                    data={"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri},
                    auth=(str(self._client_id()), self._client_secret.get_secret_value()),
                )
                if answer.status_code != 200:
                    log.warning(
                        "admin page: Discord refused the login code (HTTP %s, %s)",
                        answer.status_code,
                        _oauth_error(answer),
                    )
                    raise LoginFailed(_refusal(answer))
                body = answer.json()
                access = body.get("access_token") if isinstance(body, dict) else None
                if not isinstance(access, str) or not access:
                    raise LoginFailed("Discord's answer had no access token. Try logging in again.")
                me = await client.get(f"{self.api_base}/users/@me", headers={"Authorization": f"Bearer {access}"})
            except httpx.HTTPError as exc:
                log.warning("admin page: cannot reach Discord to log in: %s", type(exc).__name__)
                raise LoginFailed("Discord could not be reached. Try again in a minute.") from None
            except ValueError:
                raise LoginFailed("Discord's answer was not JSON. Try again in a minute.") from None
        if me.status_code != 200:
            log.warning("admin page: Discord refused /users/@me with the new token (HTTP %s)", me.status_code)
            raise LoginFailed("Discord did not say who you are. Try logging in again.")
        try:
            user = me.json()
            return DiscordUser(int(user["id"]), str(user.get("global_name") or user.get("username") or user["id"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LoginFailed("Discord's answer about you was not understood. Try again.") from None


def _oauth_error(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return "not JSON"
    return str(body.get("error", "?"))[:60] if isinstance(body, dict) else "?"


def _refusal(answer: httpx.Response) -> str:
    error = _oauth_error(answer)
    if error == "invalid_client":
        return "Discord refused the bot's client id or secret: check [admin_page] client_id and client_secret."
    if error == "invalid_grant":
        return "That login link was used or has expired. Log in again."
    return f"Discord refused the login ({error}). Log in again."
