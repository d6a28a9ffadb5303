"""The jobs service's view on Discord: posts and edits job messages with the bot token.

The bot token, unlike an interaction token, does not expire after 15 minutes, so long jobs and
jobs resumed after a restart are edited the same way as fresh ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timezone

import discord
from discord.http import handle_message_parameters

from bot.core.errors import DeliveryError, DeliveryForbidden, MessageGone
from bot.core.i18n import DEFAULT_LANGUAGE, t
from bot.core.models import MAX_VIDEOS, Display, ImageFile, Job
from bot.discord.ui.render import Rendered, attachments, content_prefix, render

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's limit for a guild without boosts
# Discord error codes that mean the message or channel is not there any more.
_GONE_CODES = {10003, 10008}
POSTING_CLOCK_SLACK_S = 60  # our clock and Discord's may differ a little
INTERACTION_TOKEN_S = 14 * 60  # Discord's interaction tokens last 15 minutes
UNKNOWN_WEBHOOK = 10015


class InteractionOrigin:
    """The command that started a job. Its message is posted as the command's follow-up and
    edited through the interaction's own webhook while the token lives (15 minutes; we stop a minute
    early). That webhook has its own rate limit, so a burst of /imagine in one channel does not
    queue behind the channel's 5 writes per 5 s, as Midjourney's own bot does. Afterwards (or after
    a restart) the bot token and the channel take over."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.expires_at = time.monotonic() + INTERACTION_TOKEN_S

    def valid(self) -> bool:
        return time.monotonic() < self.expires_at

    async def post(self, rendered: Rendered, files: Sequence[ImageFile], language: str) -> int:
        # Answer the "thinking" note first, or the follow-up would replace it (and stay ephemeral).
        await self.interaction.edit_original_response(content=t("job.started", language))
        message = await self.interaction.followup.send(**rendered.new_message(files), wait=True)
        return message.id

    async def edit(self, message_id: int, edit: dict) -> None:
        await self.interaction.followup.edit_message(message_id, **edit)


class DiscordJobView:
    def __init__(
        self,
        client: discord.Client,
        *,
        language: str | None = None,
        server_buttons_ok: bool = True,
        can_cancel: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.can_cancel = can_cancel  # the server can cancel a running job: ⏹ under it
        self.language = language  # None: each job in its owner's language
        # With [proxy] api = "change" the server's own buttons cannot be pressed: show ours.
        self.server_buttons_ok = server_buttons_ok
        self._origins: dict[str, InteractionOrigin] = {}  # jobs whose message a command's webhook posted

    def lane(self, job: Job, origin: object | None = None) -> Hashable:
        """Writes through a command's webhook have that webhook's budget; all others the channel's."""
        if self._origin(job, origin) is not None:
            return ("interaction", job.task_id)
        return job.channel_id

    def _origin(self, job: Job, origin: object | None = None) -> InteractionOrigin | None:
        candidate = origin if isinstance(origin, InteractionOrigin) else self._origins.get(job.task_id)
        if candidate is not None and candidate.valid():
            return candidate
        self._origins.pop(job.task_id, None)
        return None

    def language_of(self, job: Job) -> str:
        return self.language or job.language or DEFAULT_LANGUAGE

    def upload_limit(self, job: Job) -> int:
        """The guild's limit by its boost tier (discord.py follows GUILD_UPDATE); 10 MiB in DMs."""
        guild = self.client.get_guild(job.guild_id) if job.guild_id else None
        return guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT

    async def show(
        self,
        job: Job,
        display: Display,
        *,
        files: Sequence[ImageFile] = (),
        reply_to: int | None,
        origin: object | None = None,
    ) -> int:
        # Once the final result is posted, later renders (a button marked used) keep its files:
        # as many as its note says (a message from before notes were kept: one).
        keep_attachment = job.shows_final and not files
        attached = job.media_note.attached if job.media_note is not None else 1
        rendered = render(
            job,
            display,
            language=self.language_of(job),
            image_attached=bool(files) or (keep_attachment and attached > 0),
            server_buttons_ok=self.server_buttons_ok,
            cancel_ok=self.can_cancel(),
        )
        hook = self._origin(job, origin)
        try:
            if job.message_id is None and hook is not None and reply_to is None:
                # Known before the post is answered: an update meanwhile goes to this lane, after it.
                self._origins[job.task_id] = hook
                try:
                    return await hook.post(rendered, files, self.language_of(job))
                except BaseException:
                    self._origins.pop(job.task_id, None)
                    raise
            if job.message_id is None:
                reference = (
                    discord.MessageReference(message_id=reply_to, channel_id=job.channel_id, fail_if_not_exists=False)
                    if reply_to
                    else None
                )
                channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
                message = await channel.send(**rendered.new_message(files), reference=reference)
                return message.id
            edit: dict = dict(
                content=rendered.content,
                embeds=rendered.embeds,
                view=rendered.view,
                allowed_mentions=rendered.allowed_mentions,
            )
            if files:
                # Only ever to attach: an edit without files keeps what the message carries (a
                # result posted just before a restart, whose note was not stored yet).
                edit["attachments"] = attachments(files)
            if hook is not None and job.message_id is not None:
                try:
                    await hook.edit(job.message_id, edit)
                    return job.message_id
                except discord.NotFound as exc:
                    if exc.code != UNKNOWN_WEBHOOK:
                        raise
                    self._origins.pop(job.task_id, None)  # the token is gone: the bot token takes over
                    if files:
                        edit["attachments"] = attachments(files)  # the failed try consumed the files
            await self._edit(job, edit)
            return job.message_id
        except discord.NotFound as exc:
            if exc.code in _GONE_CODES or job.message_id is not None:
                raise MessageGone(f"Discord {exc.status} (code {exc.code}) on task {job.task_id}") from None
            raise DeliveryError(f"Discord {exc.status} (code {exc.code})") from None
        except discord.Forbidden as exc:
            raise DeliveryForbidden(
                f"Discord 403 (code {exc.code}) in channel {job.channel_id}", permission=_permission_for(exc.code)
            ) from None
        except discord.HTTPException as exc:
            raise DeliveryError(f"Discord {exc.status} (code {exc.code})") from None
        except (OSError, TimeoutError) as exc:  # aiohttp connection trouble
            raise DeliveryError(f"cannot reach Discord: {type(exc).__name__}") from None

    async def _edit(self, job: Job, edit: dict) -> None:
        """``PartialMessage.edit(**edit)`` without two steps the bot has no use for, about half of
        the Python time of an edit outside the HTTP request: a ``Message`` built from Discord's
        answer (only the id is needed, and it is known), and filing the view in discord.py's view
        store, which does nothing for a view made of dynamic items only (all of ours: a click
        finds its class by the custom_id, registered once at start). The request is the very same:
        the same parameters, with the client's allowed mentions merged in as ``edit`` does."""
        assert job.message_id is not None
        view = edit.get("view")
        if view is not None and not all(isinstance(item, discord.ui.DynamicItem) for item in view.children):
            channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
            await channel.get_partial_message(job.message_id).edit(**edit)
            return
        with handle_message_parameters(**edit, previous_allowed_mentions=self.client.allowed_mentions) as params:
            await self.client.http.edit_message(job.channel_id, job.message_id, params=params)

    async def posted_files(self, job: Job) -> tuple[ImageFile, ...]:
        if job.message_id is None or job.message_gone:
            return ()
        try:
            channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
            message = await channel.fetch_message(job.message_id)
            return tuple(
                [ImageFile(a.filename, await a.read(), a.content_type) for a in message.attachments[:MAX_VIDEOS]]
            )
        except discord.HTTPException as exc:
            log.info("task %s: its message's files could not be read (%s)", job.task_id, exc)
            return ()

    async def find_posted(self, job: Job) -> list[int]:
        if job.posting_at is None or self.client.user is None:
            return []
        channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        since = datetime.fromtimestamp(job.posting_at - POSTING_CLOCK_SLACK_S, tz=timezone.utc)
        prefix, owner = content_prefix(job, self.language_of(job)), f"<@{job.owner_id}>"
        found = []
        try:
            async for message in channel.history(limit=50, after=discord.Object(discord.utils.time_snowflake(since))):
                if (
                    message.author.id == self.client.user.id
                    and message.content.startswith(prefix)
                    and owner in message.content
                ):
                    found.append(message.id)
        except discord.HTTPException as exc:
            raise DeliveryError(f"reading channel {job.channel_id} history: Discord {exc.status}") from None
        return sorted(found, reverse=True)


def _permission_for(code: int) -> str:
    # 50001 Missing Access (cannot see the channel); 50013 Missing Permissions (send/attach/embed).
    return "View Channel" if code == 50001 else "Send Messages, Attach Files and Embed Links"
