"""The Discord double's OAuth2 authorization code grant ("Log in with Discord"), over real HTTP.

A test plays the browser (GET the consent page, POST its form, read the 302) and the web app
(exchange the code at the token URL, call ``/users/@me`` with the Bearer token), with
``allow_redirects=False`` so every redirect can be checked.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.sandbox.discord_double import DEFAULT_CLIENT_SECRET, DiscordDouble

REDIRECT = "http://127.0.0.1:9/auth/callback"
UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}


@pytest.fixture
async def dd() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        double.register_oauth_redirect(REDIRECT)
        yield double


@pytest.fixture
async def http(dd: DiscordDouble) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(dd.base_url) as session:
        yield session


def alice_and_bob(dd: DiscordDouble) -> tuple[int, int]:
    alice, bob = dd.members
    return alice, bob


def authorize_params(dd: DiscordDouble, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": dd.oauth_client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "identify",
        "state": "st-123",
        **overrides,
    }
    return {key: value for key, value in params.items() if value is not None}


def basic(dd: DiscordDouble, secret: str = DEFAULT_CLIENT_SECRET) -> dict[str, str]:
    """HTTP Basic ``client_id:client_secret``, as the docs' example sends it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{dd.oauth_client_id}:{secret}".encode()).decode()}


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def consent(http: aiohttp.ClientSession, dd: DiscordDouble, **overrides: str | None) -> tuple[str, dict]:
    """GET the consent page: its HTML and the hidden fields its form carries back."""
    async with http.get("/oauth2/authorize", params=authorize_params(dd, **overrides)) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/html"
        text = await response.text()
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', text))
    return text, {html.unescape(k): html.unescape(v) for k, v in hidden.items()}


async def decide(http: aiohttp.ClientSession, form: dict[str, Any], decision: str, user_id: int | None) -> str:
    """POST the consent form as its button would; the 302's Location."""
    data = {**form, "decision": decision, **({} if user_id is None else {"user_id": str(user_id)})}
    async with http.post("/oauth2/authorize", data=data, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def log_in(http: aiohttp.ClientSession, dd: DiscordDouble, user_id: int, **overrides: str | None) -> str:
    """The whole browser half: the code the redirect carries."""
    _, form = await consent(http, dd, **overrides)
    return query_of(await decide(http, form, "authorize", user_id))["code"]


async def exchange(
    http: aiohttp.ClientSession,
    dd: DiscordDouble,
    code: str,
    *,
    use_basic: bool = True,
    path: str = "/api/v10/oauth2/token",
    secret: str = DEFAULT_CLIENT_SECRET,
    **fields: str,
) -> tuple[int, dict[str, Any]]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **fields}
    if not use_basic:
        data.update(client_id=dd.oauth_client_id, client_secret=secret)
    async with http.post(path, data=data, headers=basic(dd, secret) if use_basic else None) as response:
        return response.status, await response.json()


async def get_json(http: aiohttp.ClientSession, path: str, authorization: str) -> tuple[int, Any]:
    async with http.get(path, headers={"Authorization": authorization}) as response:
        return response.status, await response.json()


# --------------------------------------------------------------------------- the happy path


async def test_log_in_with_discord_basic_auth(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, bob = alice_and_bob(dd)
    dd.oauth_user_id = bob
    text, form = await consent(http, dd)
    assert "double-bot wants to access your account" in text
    assert '<select name="user_id" id="user">' in text
    assert f'<option value="{bob}" selected>bob</option>' in text
    assert f'<option value="{alice}">alice</option>' in text
    assert str(dd.bot_id) not in re.findall(r'<option value="(\d+)"', text)  # bots cannot log in
    assert 'id="authorize"' in text and 'id="cancel"' in text
    assert form == authorize_params(dd)

    location = await decide(http, form, "authorize", bob)
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "st-123" and set(query) == {"code", "state"}

    status, token = await exchange(http, dd, query["code"])
    assert status == 200, token
    assert token["token_type"] == "Bearer" and token["expires_in"] == 604800 and token["scope"] == "identify"
    assert token["access_token"] and token["refresh_token"]

    status, me = await get_json(http, "/api/v10/users/@me", f"Bearer {token['access_token']}")
    assert status == 200
    assert me["id"] == str(bob) and me["username"] == "bob" and me["global_name"] == "Bob"
    assert me["discriminator"] == "0" and me["avatar"] is None and "email" not in me
    status, me = await get_json(http, "/api/users/@me", f"Bearer {token['access_token']}")
    assert status == 200 and me["id"] == str(bob)

    authorized, exchanged = dd.oauth_grants
    assert (authorized.action, authorized.user_id, authorized.code, authorized.state) == (
        "authorize",
        bob,
        query["code"],
        "st-123",
    )
    assert authorized.ok and authorized.scopes == ("identify",) and authorized.redirect_uri == REDIRECT
    assert (exchanged.action, exchanged.user_id, exchanged.access_token, exchanged.ok) == (
        "token",
        bob,
        token["access_token"],
        True,
    )


async def test_form_credentials_without_state_keep_the_redirect_query(
    dd: DiscordDouble, http: aiohttp.ClientSession
) -> None:
    alice, _ = alice_and_bob(dd)
    with_query = "http://127.0.0.1:9/cb?next=%2Fadmin%3Fa%3D1"
    dd.register_oauth_redirect(with_query)
    _, form = await consent(http, dd, redirect_uri=with_query, state=None, scope="identify email")
    assert "state" not in form
    location = await decide(http, form, "authorize", alice)
    assert location.startswith(with_query + "&code=")
    assert set(query_of(location)) == {"next", "code"} and query_of(location)["next"] == "/admin?a=1"

    code = query_of(location)["code"]
    status, token = await exchange(http, dd, code, use_basic=False, path="/api/oauth2/token", redirect_uri=with_query)
    assert status == 200, token
    assert token["scope"] == "identify email"
    status, me = await get_json(http, "/api/v10/users/@me", f"Bearer {token['access_token']}")
    assert me["id"] == str(alice) and me["email"] and me["verified"] is True
    status, info = await get_json(http, "/api/v10/oauth2/@me", f"Bearer {token['access_token']}")
    assert status == 200
    assert info["application"]["id"] == dd.oauth_client_id and info["scopes"] == ["identify", "email"]
    assert info["user"]["id"] == str(alice)


async def test_prompt_none_skips_the_page_once_authorized(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    _, bob = alice_and_bob(dd)
    dd.oauth_user_id = bob
    await log_in(http, dd, bob)
    async with http.get(
        "/oauth2/authorize", params=authorize_params(dd, prompt="none"), allow_redirects=False
    ) as response:
        assert response.status == 302
        assert set(query_of(response.headers["Location"])) == {"code", "state"}
    assert [g.user_id for g in dd.oauth_grants] == [bob, bob]


# --------------------------------------------------------------------------- authorize refusals


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "Invalid OAuth2 redirect_uri"),
        ({"redirect_uri": REDIRECT + "/"}, "Invalid OAuth2 redirect_uri"),
        ({"redirect_uri": None}, "Invalid OAuth2 redirect_uri"),
        ({"client_id": "1234"}, "Unknown Application"),
        ({"client_id": None}, "Unknown Application"),
    ],
)
async def test_bad_client_or_redirect_uri_gets_an_error_page(
    dd: DiscordDouble, http: aiohttp.ClientSession, overrides: dict[str, str | None], problem: str
) -> None:
    async with http.get(
        "/oauth2/authorize", params=authorize_params(dd, **overrides), allow_redirects=False
    ) as response:
        assert response.status == 400
        assert "Location" not in response.headers
        assert response.content_type == "text/html"
        assert problem in await response.text()
    (refused,) = dd.oauth_grants
    assert refused.action == "authorize" and refused.error_description == problem and refused.code is None
    assert not dd.oauth.codes


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "banana"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "identify nonsense"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
async def test_bad_response_type_or_scope_is_redirected_back(
    dd: DiscordDouble, http: aiohttp.ClientSession, overrides: dict[str, str | None], error: str
) -> None:
    async with http.get(
        "/oauth2/authorize", params=authorize_params(dd, **overrides), allow_redirects=False
    ) as response:
        assert response.status == 302
        query = query_of(response.headers["Location"])
    assert query["error"] == error and query["error_description"] and query["state"] == "st-123"
    assert "code" not in query


async def test_cancel_redirects_access_denied(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    _, form = await consent(http, dd)
    location = await decide(http, form, "cancel", alice)
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["error"] == "access_denied" and query["error_description"] and query["state"] == "st-123"
    assert "code" not in query
    (denied,) = dd.oauth_grants
    assert (denied.action, denied.user_id, denied.error, denied.code) == ("authorize", alice, "access_denied", None)


async def test_forged_consent_form_is_checked_again(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    _, form = await consent(http, dd)
    async with http.post(
        "/oauth2/authorize",
        data={**form, "redirect_uri": "http://evil.invalid/", "decision": "authorize", "user_id": str(alice)},
        allow_redirects=False,
    ) as response:
        assert response.status == 400 and "Location" not in response.headers
    async with http.post(
        "/oauth2/authorize", data={**form, "decision": "authorize", "user_id": "42"}, allow_redirects=False
    ) as response:
        assert response.status == 400 and "Location" not in response.headers
    assert not dd.oauth.codes


# --------------------------------------------------------------------------- token refusals


async def test_a_code_is_exchanged_once(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    code = await log_in(http, dd, alice)
    assert (await exchange(http, dd, code))[0] == 200
    status, body = await exchange(http, dd, code)
    assert status == 400
    assert body == {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}
    assert (await exchange(http, dd, "made-up-code"))[1]["error"] == "invalid_grant"
    assert [(g.action, g.error) for g in dd.oauth_grants] == [
        ("authorize", None),
        ("token", None),
        ("token", "invalid_grant"),
        ("token", "invalid_grant"),
    ]


async def test_an_expired_code_is_refused(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    dd.oauth.code_lifetime = 0
    code = await log_in(http, dd, alice)
    status, body = await exchange(http, dd, code)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_redirect_uri_must_match_the_authorization(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    other = "http://127.0.0.1:9/other"
    dd.register_oauth_redirect(other)
    code = await log_in(http, dd, alice)
    status, body = await exchange(http, dd, code, redirect_uri=other)
    assert status == 400
    assert body == {"error": "invalid_grant", "error_description": 'Invalid "redirect_uri" in request.'}


@pytest.mark.parametrize("use_basic", [True, False])
async def test_wrong_client_secret_is_invalid_client(
    dd: DiscordDouble, http: aiohttp.ClientSession, use_basic: bool
) -> None:
    alice, _ = alice_and_bob(dd)
    code = await log_in(http, dd, alice)
    assert await exchange(http, dd, code, use_basic=use_basic, secret="not-the-secret") == (
        401,
        {"error": "invalid_client"},
    )
    async with http.post("/api/v10/oauth2/token", data={"grant_type": "authorization_code", "code": code}) as response:
        assert (response.status, await response.json()) == (401, {"error": "invalid_client"})
    # Refused credentials do not burn the code.
    assert (await exchange(http, dd, code, use_basic=use_basic))[0] == 200


async def test_a_json_body_is_refused(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    code = await log_in(http, dd, alice)
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    async with http.post("/api/v10/oauth2/token", json=body, headers=basic(dd)) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"
    status, body = await exchange(http, dd, code, grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")


# --------------------------------------------------------------------------- Bearer tokens


async def test_refresh_then_revoke(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    _, first = await exchange(http, dd, await log_in(http, dd, alice))
    status, second = await exchange(http, dd, "", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert status == 200 and second["access_token"] != first["access_token"]
    assert (await get_json(http, "/api/v10/users/@me", f"Bearer {first['access_token']}"))[0] == 401
    assert (await get_json(http, "/api/v10/users/@me", f"Bearer {second['access_token']}"))[0] == 200

    revoke = {"token": second["access_token"]}
    async with http.post("/api/v10/oauth2/token/revoke", data=revoke, headers=basic(dd)) as r:
        assert r.status == 200
    assert (await get_json(http, "/api/v10/users/@me", f"Bearer {second['access_token']}"))[0] == 401
    assert dd.oauth_grants[-1].action == "revoke" and dd.oauth_grants[-1].user_id == alice


async def test_unknown_expired_or_revoked_bearer_is_401(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    assert await get_json(http, "/api/v10/users/@me", "Bearer not-a-token") == (401, UNAUTHORIZED)
    assert await get_json(http, "/api/v10/users/@me", "Bearer ") == (401, UNAUTHORIZED)
    assert await get_json(http, "/api/v10/oauth2/@me", "Bearer not-a-token") == (401, UNAUTHORIZED)

    _, token = await exchange(http, dd, await log_in(http, dd, alice))
    dd.revoke_oauth_tokens(alice)
    assert await get_json(http, "/api/v10/users/@me", f"Bearer {token['access_token']}") == (401, UNAUTHORIZED)

    dd.oauth.token_lifetime = 0
    _, token = await exchange(http, dd, await log_in(http, dd, alice))
    assert await get_json(http, "/api/v10/users/@me", f"Bearer {token['access_token']}") == (401, UNAUTHORIZED)


async def test_a_bearer_token_is_not_the_bot(dd: DiscordDouble, http: aiohttp.ClientSession) -> None:
    alice, _ = alice_and_bob(dd)
    _, token = await exchange(http, dd, await log_in(http, dd, alice))
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    path = f"/api/v10/channels/{dd.channel_id}/messages"
    async with http.post(path, json={"content": "hi"}, headers=bearer) as response:
        assert (response.status, await response.json()) == (401, UNAUTHORIZED)
    assert not dd.messages
    assert (await get_json(http, "/api/v10/gateway/bot", bearer["Authorization"]))[0] == 401
    assert (await get_json(http, "/api/v10/applications/@me", bearer["Authorization"]))[0] == 401
    # The bot token still gets the bot from /users/@me, and its application lists the redirect URIs.
    status, me = await get_json(http, "/api/v10/users/@me", f"Bot {dd.bot_token}")
    assert status == 200 and me["id"] == str(dd.bot_id) and me["bot"] is True
    status, app = await get_json(http, "/api/v10/applications/@me", f"Bot {dd.bot_token}")
    assert status == 200 and app["redirect_uris"] == [REDIRECT]
