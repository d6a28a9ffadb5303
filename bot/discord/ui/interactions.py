"""What every command and button needs to talk with a member: who they are and their language,
the checks before a job starts, reading an attachment, the prompt form, and one way to answer a
request whatever happens (an ephemeral message for every failure)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.access import Requester
from bot.core.errors import (
    BotRestarting,
    DeliveryError,
    DeliveryForbidden,
    ImageTooLarge,
    MjBotError,
    NotAnImage,
)
from bot.core.i18n import error_text, language_for, t
from bot.core.models import ImageFile
from bot.core.prompt import MAX_PROMPT_LENGTH
from bot.core.text import clip
from bot.media import DEFAULT_MAX_PIXELS, MediaError, probe_image
from bot.media import ImageTooLarge as PixelsTooMany

if TYPE_CHECKING:
    from bot.discord.app import MjBot

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def interaction_language(interaction: discord.Interaction) -> str:
    """The member's language: ``[bot] language`` when the admin forced one, else their locale's."""
    forced = getattr(getattr(interaction.client, "settings", None), "bot", None)
    if forced is not None and forced.language:
        return forced.language
    return language_for(str(interaction.locale) if interaction.locale else None)


def _(text: str, key: str) -> app_commands.locale_str:
    """A command text with its catalogue key, for the translator."""
    return app_commands.locale_str(text, key=key)


def missing_permission(interaction: discord.Interaction) -> str | None:
    """The first permission the bot lacks to post a job in this channel, by its Discord name."""
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    needed = [
        ("view_channel", "view_channel"),
        ("send_messages_in_threads" if in_thread else "send_messages", "send_messages"),
        ("attach_files", "attach_files"),
        ("embed_links", "embed_links"),
        ("read_message_history", "read_message_history"),
    ]
    for attribute, name in needed:
        if not getattr(perms, attribute):
            return t(f"perm.{name}", interaction_language(interaction))  # as Discord names it there
    return None


def requester(interaction: discord.Interaction) -> Requester:
    """The member behind an interaction, and where they are, as the access rules need it."""
    channel = interaction.channel
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    return member_requester(
        interaction.user,
        interaction.guild_id,
        interaction.channel_id or 0,
        parent_channel_id=parent_id,
        language=interaction_language(interaction),
    )


def member_requester(
    user: discord.abc.Snowflake,
    guild_id: int | None,
    channel_id: int,
    *,
    parent_channel_id: int | None = None,
    language: str | None = None,
) -> Requester:
    """A member, where they are, and their roles, as the access rules need them (a reaction has no
    interaction, but the same member)."""
    roles = getattr(user, "roles", ())
    return Requester(
        user_id=user.id,
        guild_id=guild_id,
        channel_id=channel_id,
        parent_channel_id=parent_channel_id,
        role_ids=frozenset(role.id for role in roles),
        language=language,
    )


async def read_reference_image(attachment: discord.Attachment, *, max_mb: float, option: str = "") -> ImageFile:
    """An attached image, checked by its type, its size and its bytes (the type is the uploader's
    word). ``option`` names the command's option in the refusal when there are several."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise NotAnImage(f"attachment {attachment.filename!r} is {content_type or 'of unknown type'}", option=option)
    if attachment.size > max_mb * 1024 * 1024:
        raise ImageTooLarge(f"attachment of {attachment.size} bytes", limit_mb=f"{max_mb:g}")
    try:
        data = await attachment.read()
    except (discord.HTTPException, discord.NotFound) as exc:
        raise DeliveryError(f"downloading the attachment failed: {exc.status}") from None
    try:
        probe_image(data, max_pixels=DEFAULT_MAX_PIXELS)
    except PixelsTooMany:
        raise ImageTooLarge(f"attachment {attachment.filename!r} has too many pixels", limit_mb=f"{max_mb:g}") from None
    except MediaError:
        raise NotAnImage(
            f"attachment {attachment.filename!r} says {content_type} but is not one", option=option
        ) from None
    return ImageFile(filename=attachment.filename, data=data, content_type=content_type)


async def report_failure(interaction: discord.Interaction, error: BaseException, *, what: str) -> None:
    """Tell the member what went wrong, ephemerally, and log it with context."""
    language = interaction_language(interaction)
    context = f"{what} by user {interaction.user.id} in guild {interaction.guild_id} channel {interaction.channel_id}"
    if isinstance(error, MjBotError):
        log.warning(
            "%s refused: %s: %s%s", context, type(error).__name__, error, f" ({error.detail})" if error.detail else ""
        )
        text = error_text(error, language)
    else:
        log.error("%s crashed", context, exc_info=error)
        text = t("error.internal", language)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif _has_ephemeral_ack(interaction):
            await interaction.edit_original_response(content=text)
        else:
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("%s: could not tell the user (interaction expired?)", context)


class MjCommandTree(app_commands.CommandTree):
    """One error path for every slash command (the idea of Red-DiscordBot's tree): whatever a
    command raises becomes the member's ephemeral answer and a log line with its context. Button
    and modal callbacks catch for themselves, since discord.py only logs what they raise."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        command = interaction.command
        what = f"/{command.qualified_name}" if command is not None else "a command"
        await report_failure(interaction, original, what=what)


def _has_ephemeral_ack(interaction: discord.Interaction) -> bool:
    # Slash commands are acknowledged with an ephemeral "thinking" message we can edit into the answer;
    # button clicks are acknowledged silently and answered with an ephemeral follow-up.
    return interaction.type is discord.InteractionType.application_command


class PromptModal(discord.ui.Modal):
    """Asks for a prompt (Custom Zoom, or a task waiting in MODAL), prefilled with the last one."""

    def __init__(
        self,
        language: str,
        prefill: str | None,
        submit: Callable[[discord.Interaction, str], Awaitable[object]],
        what: str,
    ) -> None:
        super().__init__(title=t("modal.title", language)[:45], timeout=15 * 60)
        self.prompt = discord.ui.TextInput(
            label=t("modal.prompt", language)[:45],
            style=discord.TextStyle.paragraph,
            default=clip(prefill or "", MAX_PROMPT_LENGTH) or None,
            max_length=MAX_PROMPT_LENGTH,
        )
        self.add_item(self.prompt)
        self._submit, self._what = submit, what

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await interaction.response.defer()
        try:
            await self._submit(interaction, self.prompt.value)
        except Exception as exc:
            await report_failure(interaction, exc, what=self._what)


async def answered(interaction: discord.Interaction[MjBot], what: str, work: Callable[[], Awaitable[object]]) -> None:
    """Run a member's request so that it is answered whatever happens: every failure becomes an
    ephemeral message (nothing escapes as "This interaction failed"), and a stop of the bot waits
    for the request, answer included, or tells the member the bot is restarting."""
    try:
        async with interaction.client.jobs.member_request(what):
            try:
                await work()
            except Exception as exc:
                await report_failure(interaction, exc, what=what)
    except BotRestarting as exc:
        await report_failure(interaction, exc, what=what)


async def start_job(interaction: discord.Interaction, what: str, start: Callable[[], Awaitable[object]]) -> None:
    """The flow every job-starting command shares: acknowledge at once (Discord allows 3 s, the
    proxy may take longer), check the bot can post here, start the job (which posts its public
    message), then remove the ephemeral "thinking" note; any failure becomes that note's text."""
    await interaction.response.defer(ephemeral=True, thinking=True)

    async def work() -> None:
        permission = missing_permission(interaction)
        if permission:
            raise DeliveryForbidden(f"missing {permission}", permission=permission)
        await start()
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.debug("could not delete the acknowledgement of %s", what, exc_info=True)

    await answered(interaction, what, work)  # type: ignore[arg-type]
