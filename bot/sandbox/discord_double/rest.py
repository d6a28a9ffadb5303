"""The REST half of the double: the routes a discord.py bot calls, plus attachment downloads.

Every request is recorded first, then checked against the injected faults,
then authenticated, counted against its channel's write rate limit (message
writes with the bot token only) and routed; an injected delay then holds the
answer back.  Routes are matched by a small table instead of aiohttp's router
so that one place records, fails, authenticates, limits and answers unknown
routes with a loud 404.  The application command routes are in rest_commands.py,
the interaction callback and webhook routes in rest_interactions.py, the OAuth2
token and Bearer routes in oauth.py.  Channel routes serve DMs too
(``POST /users/@me/channels`` opens one), without a guild.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from bot.core.background import wait_event

from .errors import ApiError, invalid_form
from .oauth import OAuthRoutes
from .ratelimit import RATE_LIMITED_BODY_MESSAGE
from .records import RequestRecord, UploadedFile
from .responses import error_response, json_response, no_content
from .rest_commands import CommandRoutes
from .rest_interactions import InteractionRoutes
from .rules import FaultRule
from .state import State
from .world import DMChannel, Guild

log = logging.getLogger(__name__)

API_PREFIX = re.compile(r"^/api(?:/v\d+)?")

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    bot_auth: bool  # interaction callbacks and webhooks are authenticated by their token instead
    channel_write: bool  # counts against the channel's message write rate limit

    @classmethod
    def make(
        cls, method: str, template: str, handler: Handler, *, bot_auth: bool = True, channel_write: bool = False
    ) -> Route:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return cls(method, re.compile(f"^{regex}$"), handler, bot_auth, channel_write)


class RestApi(CommandRoutes, InteractionRoutes, OAuthRoutes):
    def __init__(self, state: State):
        self.state = state
        self.closing = asyncio.Event()  # set when the double stops: answers held by a delay go out at once
        r = Route.make
        self.routes = [
            r("GET", "/users/@me", self.get_me, bot_auth=False),  # the bot token or an OAuth2 Bearer token
            r("GET", "/users/{user_id}", self.get_user),
            r("POST", "/users/@me/channels", self.create_dm),
            r("GET", "/gateway", self.get_gateway, bot_auth=False),
            r("GET", "/gateway/bot", self.get_gateway_bot),
            r("GET", "/applications/@me", self.get_application),
            r("GET", "/oauth2/applications/@me", self.get_application),
            # OAuth2 (oauth.py): client credentials in the form or HTTP Basic, Bearer tokens
            r("POST", "/oauth2/token", self.oauth_token, bot_auth=False),
            r("POST", "/oauth2/token/revoke", self.oauth_revoke, bot_auth=False),
            r("GET", "/oauth2/@me", self.oauth_authorization, bot_auth=False),
            # application commands, global and per guild
            r("GET", "/applications/{app_id}/commands", self.list_commands),
            r("PUT", "/applications/{app_id}/commands", self.put_commands),
            r("POST", "/applications/{app_id}/commands", self.upsert_command),
            r("GET", "/applications/{app_id}/commands/{command_id}", self.get_command),
            r("PATCH", "/applications/{app_id}/commands/{command_id}", self.edit_command),
            r("DELETE", "/applications/{app_id}/commands/{command_id}", self.delete_command),
            r("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self.list_commands),
            r("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self.put_commands),
            r("POST", "/applications/{app_id}/guilds/{guild_id}/commands", self.upsert_command),
            r("GET", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", self.get_command),
            r("PATCH", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", self.edit_command),
            r("DELETE", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", self.delete_command),
            # guild and channels
            r("GET", "/guilds/{guild_id}", self.get_guild),
            r("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            r("GET", "/guilds/{guild_id}/roles", self.get_guild_roles),
            r("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            r("GET", "/channels/{channel_id}", self.get_channel),
            r("POST", "/channels/{channel_id}/typing", self.typing),
            r("GET", "/channels/{channel_id}/messages", self.list_messages),
            # Message writes with the bot token count against the channel's rate limit; interaction
            # callbacks and webhooks have their own per-token limits on Discord and are not counted.
            r("POST", "/channels/{channel_id}/messages", self.create_message, channel_write=True),
            r("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            r("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message, channel_write=True),
            r("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message, channel_write=True),
            # interactions
            r("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback, bot_auth=False),
            r("POST", "/webhooks/{app_id}/{token}", self.create_followup, bot_auth=False),
            r("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self.get_webhook_message, bot_auth=False),
            r("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self.edit_webhook_message, bot_auth=False),
            r(
                "DELETE",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self.delete_webhook_message,
                bot_auth=False,
            ),
            # attachment downloads (Attachment.read() GETs the url directly, without the API prefix)
            r("GET", "/attachments/{channel_id}/{attachment_id}/{filename}", self.download, bot_auth=False),
            r("GET", "/media/attachments/{channel_id}/{attachment_id}/{filename}", self.download, bot_auth=False),
        ]

    # -------------------------------------------------------------- plumbing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        self.state.requests.append(record)
        handled = False
        try:
            response, handled = await self._answer(record)
        except ApiError as error:
            response = self._refuse(record, error)
        except Exception as error:
            # A bug in the double: answer 400 so discord.py raises at once, instead of a 500
            # that it would retry (and sleep on) five times.
            log.exception("discord double: error handling %s %s", record.method, record.path)
            response = json_response({"message": f"discord double internal error: {error!r}", "code": 0}, 400)
        record.status = response.status
        await self.state.notify()
        if handled:
            for rule in self.state.delays:
                if rule.matches(record.method, record.path):
                    # Processed and recorded above; only the answer is late (or never read: a test
                    # may kill the client meanwhile).
                    rule.hits.append(record)
                    record.delay = rule
                    await self.state.notify()
                    await wait_event(self.closing, rule.seconds)
                    break
        return response

    async def _record(self, request: web.Request) -> RequestRecord:
        body: Any = None
        payload: Any = None
        files: list[UploadedFile] = []
        if request.content_type == "multipart/form-data":
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader):
                    continue  # discord.py never nests multiparts
                data = await part.read()
                if part.name == "payload_json":
                    payload = json.loads(data)
                elif part.filename:
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    files.append(UploadedFile(part.name or "", part.filename, content_type, bytes(data)))
        elif request.can_read_body:
            raw = await request.read()
            try:
                body = payload = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        # Files arrive as files[n]; keep them in index order so attachments[].id can refer to them.
        files.sort(key=lambda f: int(m.group(1)) if (m := re.search(r"\[(\d+)\]", f.field)) else 0)
        return RequestRecord(
            method=request.method,
            path=API_PREFIX.sub("", request.path),
            query=dict(request.query),
            headers=dict(request.headers),
            json=body,
            payload=payload,
            files=files,
            at=time.monotonic(),
        )

    async def _answer(self, record: RequestRecord) -> tuple[web.StreamResponse, bool]:
        """The answer, and whether a route handler processed the request (only then may a delay hold it)."""
        for rule in self.state.faults:
            if rule.matches(record.method, record.path):
                rule.hits.append(record)
                record.fault = rule
                response = self._fault_response(rule)
                if response.status != 429:
                    record.error = json.loads(response.body)  # type: ignore[arg-type]
                return response, False

        allowed: list[str] = []
        for route in self.routes:
            match = route.pattern.match(record.path)
            if match is None:
                continue
            if route.method != record.method:
                allowed.append(route.method)
                continue
            if route.bot_auth and record.authorization != f"Bot {self.state.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, status=401), False
            # Checked with no await since the request's arrival, so decisions follow ``record.at`` order.
            limit_headers: dict[str, str] = {}
            limiter = self.state.write_limiter
            channel_id = match.groupdict().get("channel_id", "")
            if route.channel_write and channel_id.isdigit():
                record.write_channel_id = int(channel_id)  # counted for write_timeline even with no limit
            if record.write_channel_id is not None and limiter is not None:
                decision = limiter.hit(record.write_channel_id, record.at)
                if not decision.allowed:
                    record.rate_limited = True
                    self.state.rate_limited.append(record)
                    body = {"message": RATE_LIMITED_BODY_MESSAGE, "retry_after": decision.reset_after, "global": False}
                    return json_response(body, status=429, headers=decision.headers), False
                limit_headers = decision.headers
            try:
                response = await route.handler(record, **match.groupdict())
            except ApiError as error:
                response = self._refuse(record, error)
            # Every counted answer carries the bucket's state, errors included, as on Discord.
            response.headers.update(limit_headers)
            return response, True

        if allowed:
            return json_response({"message": "405: Method Not Allowed", "code": 0}, status=405), False
        # Loud on purpose: a bot calling a route the double lacks should fail its test, not pass silently.
        log.warning("discord double: no route for %s %s", record.method, record.path)
        return json_response(
            {"message": f"404: Not Found (discord double has no {record.method} {record.path})", "code": 0}, 404
        ), False

    def _refuse(self, record: RequestRecord, error: ApiError) -> web.Response:
        """Answer one of Discord's errors; a 400 is a refusal, recorded in ``state.refusals``."""
        record.error = error.body()
        if error.status == 400:
            record.refused = True
            self.state.refusals.append(record)
        return error_response(error)

    @staticmethod
    def _fault_response(rule: FaultRule) -> web.Response:
        status = rule.status
        headers: dict[str, str] = {}
        if status == 429:
            body = {"message": "You are being rate limited.", "retry_after": rule.retry_after, "global": rule.is_global}
            headers = {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": "discord-double-bucket",
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
                # Without Via, discord.py takes a 429 for a Cloudflare ban and raises instead of retrying.
                "Via": "1.1 google",
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
        elif status == 401:
            body = {"message": "401: Unauthorized", "code": 0}
        elif status == 403:
            body = {"message": "Missing Permissions", "code": 50013}
        elif status == 404:
            body = {"message": "Unknown Message", "code": 10008}
        elif status >= 500:
            body = {"message": f"{status}: Internal Server Error", "code": 0}
        else:
            body = {"message": f"{status}: Error", "code": 0}
        return json_response(rule.body if rule.body is not None else body, status=status, headers=headers)

    def _guild(self, guild_id: str) -> Guild:
        return self.state.guild_by_id(int(guild_id))

    # ------------------------------------------------------------ identity

    async def get_me(self, req: RequestRecord) -> web.Response:
        if req.authorization != f"Bot {self.state.token}":
            return self.bearer_me(req)  # a user's Bearer token, else 401
        return json_response({**self.state.bot.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0})

    async def get_user(self, req: RequestRecord, user_id: str) -> web.Response:
        try:
            return json_response(self.state.user_payload(int(user_id)))
        except (KeyError, ValueError):
            raise ApiError(404, 10013, "Unknown User") from None

    async def create_dm(self, req: RequestRecord) -> web.Response:
        """Create DM (https://discord.com/developers/docs/resources/user#create-dm): the DM channel with
        ``recipient_id``, the one already open if any.  No gateway event: CHANNEL_CREATE is for guild
        channels.  Refusals: see ``State.open_dm``; a missing or non-snowflake ``recipient_id`` is 50035."""
        payload = req.payload if isinstance(req.payload, dict) else {}
        raw = payload.get("recipient_id")
        if raw is None:
            raise invalid_form("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        if isinstance(raw, bool) or not str(raw).isdigit():
            raise invalid_form("recipient_id", "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
        dm = self.state.open_dm(int(raw))
        return json_response(self.state.channel_payload(dm))

    async def get_gateway(self, req: RequestRecord) -> web.Response:
        return json_response({"url": self.state.gateway_url})

    async def get_gateway_bot(self, req: RequestRecord) -> web.Response:
        sharding = self.state.sharding
        return json_response(
            {
                "url": self.state.gateway_url,
                "shards": sharding.count,  # recommended; AutoShardedClient without shard_count uses it
                "session_start_limit": sharding.session_start_limit(),
            }
        )

    async def get_application(self, req: RequestRecord) -> web.Response:
        return json_response(self.state.application_payload())

    # ----------------------------------------------------- guild and channels

    async def get_guild(self, req: RequestRecord, guild_id: str) -> web.Response:
        return json_response(self._guild(guild_id).rest_payload())  # without the gateway-only fields

    async def get_guild_channels(self, req: RequestRecord, guild_id: str) -> web.Response:
        return json_response([c.to_payload() for c in self._guild(guild_id).channels])

    async def get_guild_roles(self, req: RequestRecord, guild_id: str) -> web.Response:
        return json_response([r.to_payload() for r in self._guild(guild_id).roles])

    async def get_member(self, req: RequestRecord, guild_id: str, user_id: str) -> web.Response:
        guild = self._guild(guild_id)
        if int(user_id) not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(guild.member_payload(int(user_id)))

    async def get_channel(self, req: RequestRecord, channel_id: str) -> web.Response:
        return json_response(self.state.channel_payload(self.state.channel(int(channel_id))))

    async def typing(self, req: RequestRecord, channel_id: str) -> web.Response:
        self.state.channel(int(channel_id))
        return no_content()

    # -------------------------------------------------------- channel messages

    async def list_messages(self, req: RequestRecord, channel_id: str) -> web.Response:
        cid = self.state.channel(int(channel_id)).id
        limit = min(int(req.query.get("limit", 50)), 100)
        before = int(req.query.get("before", 0)) or None
        after = int(req.query.get("after", 0)) or None
        found = [
            m
            for m in self.state.messages.values()
            if m.channel_id == cid and not m.deleted and not m.ephemeral
            and (before is None or m.id < before) and (after is None or m.id > after)
        ]  # fmt: skip
        found.sort(key=lambda m: m.id, reverse=True)  # newest first, as Discord answers
        if after is not None and before is None:
            found = found[-limit:]
        return json_response([self.state.message_payload(m) for m in found[:limit]])

    async def create_message(self, req: RequestRecord, channel_id: str) -> web.Response:
        message = await self.state.create_message(
            channel_id=int(channel_id),
            author_id=self.state.bot.id,
            payload=req.payload or {},
            files=req.files,
            via="bot",
        )
        return json_response(self.state.message_payload(message))

    async def get_message(self, req: RequestRecord, channel_id: str, message_id: str) -> web.Response:
        message = self.state.live_message(int(message_id), int(channel_id))
        return json_response(self.state.message_payload(message))

    async def edit_message(self, req: RequestRecord, channel_id: str, message_id: str) -> web.Response:
        message = self.state.live_message(int(message_id), int(channel_id))
        payload = req.payload or {}
        if message.author_id != self.state.bot.id and set(payload) - {"flags"}:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        await self.state.edit_message(message, payload, req.files, via="bot")
        return json_response(self.state.message_payload(message))

    async def delete_message(self, req: RequestRecord, channel_id: str, message_id: str) -> web.Response:
        message = self.state.live_message(int(message_id), int(channel_id))
        if isinstance(self.state.channel(message.channel_id), DMChannel) and message.author_id != self.state.bot.id:
            # Nobody manages messages in a DM: the bot deletes only its own there.
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        await self.state.delete_message(message, by="bot")
        return no_content()

    # ------------------------------------------------------------- downloads

    async def download(self, req: RequestRecord, channel_id: str, attachment_id: str, filename: str) -> web.Response:
        attachment = self.state.files.get(int(attachment_id)) if attachment_id.isdigit() else None
        if attachment is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})
