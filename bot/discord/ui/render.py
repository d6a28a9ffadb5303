"""How a job looks on Discord: its text, embed and buttons for each state."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.core.i18n import t
from bot.core.models import (
    MAX_VIDEOS,
    PROMPT_MARKS,
    Action,
    Display,
    ImageFile,
    Job,
    MediaNote,
    Phase,
    is_video_url,
    offered_prompts,
    parse_local_reason,
)
from bot.core.results import safe_link
from bot.core.text import MAX_CONTENT, clip, clip_words
from bot.discord.ui.buttons import (
    cancel_button,
    described_buttons,
    grid_buttons,
    prompt_button,
    server_buttons,
    with_delete,
)

MAX_PROMPT_SHOWN = 1500
MAX_SHORTENED_SHOWN = 250
MAX_EMBED_URL = 2048
MAX_REASON_SHOWN = 300  # a failReason is the proxy's text, of any length
MAX_NOTE = 1400  # four links of MAX_NOTE_LINK and the words: the prompt keeps at least 600


@dataclass
class Rendered:
    content: str
    embeds: list[discord.Embed]
    view: discord.ui.View | None
    allowed_mentions: discord.AllowedMentions

    def new_message(self, files: Sequence[ImageFile] = ()) -> dict[str, Any]:
        """What ``send`` takes to post this as a new message, with ``files`` attached (fresh
        file objects each call: discord.py consumes a file once it is sent)."""
        return dict(
            content=self.content,
            embeds=self.embeds,
            files=attachments(files),
            view=self.view or discord.utils.MISSING,
            allowed_mentions=self.allowed_mentions,
        )


def attachments(files: Sequence[ImageFile]) -> list[discord.File]:
    return [discord.File(io.BytesIO(file.data), filename=file.filename) for file in files]


def status_text(display: Display, language: str) -> str | None:
    """The part in parentheses after the prompt, or None once the job is done."""
    if display.phase is Phase.WAITING:
        return t("status.waiting", language)
    if display.phase is Phase.QUEUED:
        return t("status.queued", language, ahead=display.queue_ahead)
    if display.phase is Phase.RUNNING:
        return display.progress
    if display.phase is Phase.NEEDS_PROMPT:
        return t("status.needs_prompt", language)
    if display.phase is Phase.FAILED:
        if display.fail_reason:
            return t(
                "status.failed",
                language,
                reason=clip_words(reason_text(display.fail_reason, language), MAX_REASON_SHOWN),
            )
        return t("status.failed_no_reason", language)
    return None


def reason_text(reason: str, language: str) -> str:
    """A failure reason: the bot's own in the member's language, the server's as it wrote it."""
    local = parse_local_reason(reason)
    return t(local[0], language, **local[1]) if local else reason


def content_prefix(job: Job, language: str) -> str:
    """How every version of a job's message begins: its prompt (or what it is), in bold."""
    if job.action is Action.DESCRIBE:
        title = t("job.title.describe", language)
    elif job.action is Action.BLEND and not job.prompt:
        title = t("job.title.blend", language)
    elif job.action is Action.VIDEO and not job.prompt:
        title = t("job.title.animate", language)
    else:
        title = discord.utils.escape_markdown(job.prompt)
    # A /shorten answer needs room for its five prompts under the one it shortens.
    shown = MAX_SHORTENED_SHOWN if job.action is Action.SHORTEN else MAX_PROMPT_SHOWN
    return f"**{clip(title, shown)}** - "


def size_text(size: int) -> str:
    """Bytes as Discord's upload limits are spoken of: "9.8 MB" (MiB, as Discord counts them)."""
    return f"{size / (1024 * 1024):.1f} MB"


def media_note_text(note: MediaNote, language: str) -> str:
    """What the bot did to post a result: re-encoded to fit, linked, or too large for this server
    ("" when it was attached as it was). Links are re-checked and bounded: at most four, each short."""
    links = " ".join(f"<{link}>" for link in filter(None, map(safe_link, note.links[:MAX_VIDEOS])))
    if note.kind == "attached":
        return ""
    if note.kind == "reencoded":
        text = t("media.reencoded", language, size=size_text(note.size or 0), format=note.format or "")
        return text + (" " + t("media.original", language, links=links) if links else "")
    if note.kind == "video_too_large":
        text = t("media.video_too_large" if note.attached else "media.video_too_large_no_frame", language)
        return text + (f" {links}" if links else "")
    if note.kind == "linked" and links:
        return t("media.linked", language, links=links)
    if note.kind == "download_failed":
        return t("media.download_failed", language) + (f" {links}" if links else "")
    return t("media.too_large", language)


def content_for(job: Job, display: Display, language: str) -> str:
    owner = f"<@{job.owner_id}>"
    if job.action is Action.VIDEO and job.parent_index:
        who = t("job.title.video_upscale", language, index=job.parent_index, owner=owner)
    elif job.action is Action.VIDEO:
        who = t("job.title.video", language, owner=owner)
    elif job.action is Action.UPSCALE:
        who = t("job.title.upscale", language, index=job.parent_index, owner=owner)
    elif job.action is Action.VARIATION:
        who = t("job.title.variation", language, owner=owner)
    else:
        who = owner
    text = content_prefix(job, language) + who
    status = status_text(display, language)
    if status:
        text += f" ({status})"
    offers_prompts = job.action in (Action.DESCRIBE, Action.SHORTEN)
    if job.prompt_en and not offers_prompts and _differs(job.prompt_en, job.prompt):
        # The proxy translated the prompt (a Chinese one, say): show what Midjourney got.
        text += "\n" + t(
            "job.translated", language, prompt=discord.utils.escape_markdown(clip_words(job.prompt_en, 600))
        )
    if offers_prompts and display.phase is Phase.DONE:
        prompts = offered_prompts(job)
        lines = [
            f"{mark} {discord.utils.escape_markdown(clip_words(prompt, 300))}"
            for mark, prompt in zip(PROMPT_MARKS, prompts, strict=False)
        ]
        pick = t("job.describe_pick", language, last=PROMPT_MARKS[max(len(prompts), 1) - 1])
        text += "\n\n" + "\n\n".join(lines) + "\n\n" + pick
    note = media_note_text(job.media_note, language) if display.phase is Phase.DONE and job.media_note else ""
    if note:
        # Last, and kept within the limit: the note matters more than the prompt's tail.
        note = "\n" + clip(note, MAX_NOTE)
        return clip(text, MAX_CONTENT - len(note)) + note
    return clip(text, MAX_CONTENT)


def render(
    job: Job,
    display: Display,
    *,
    language: str,
    image_attached: bool,
    server_buttons_ok: bool = True,
    cancel_ok: bool = False,
) -> Rendered:
    """The message for ``job`` in state ``display``. When the final image could not be attached
    (too large for the channel, or not downloadable) it is linked in an embed instead.
    ``server_buttons_ok``: the server's own buttons can be pressed (it speaks /submit/action);
    ``cancel_ok``: the server can cancel a running job (⏹)."""
    embeds: list[discord.Embed] = []
    # A link longer than Discord takes in an embed is left out rather than have the edit refused.
    # A finished image that could not be attached is linked in an embed, unless the bot already
    # said why not (a link that expires would leave the message blank).
    said = job.media_note is not None and job.media_note.kind != "download_failed"
    if (
        display.image_url
        and not job.is_video
        and not is_video_url(display.image_url)
        and len(display.image_url) <= MAX_EMBED_URL
        and (display.phase is Phase.RUNNING or (display.phase is Phase.DONE and not image_attached and not said))
    ):
        embed = discord.Embed()
        embed.set_image(url=display.image_url)
        if display.phase is Phase.DONE:
            embed.title = t("job.image_link", language)
            embed.url = display.image_url
        embeds.append(embed)
    view = None
    if display.phase is Phase.DONE and job.action in (Action.DESCRIBE, Action.SHORTEN):
        # Our own 1️⃣-5️⃣: trueai refuses its PromptAnalyzer buttons (a new imagine is the way).
        count = len(offered_prompts(job))
        view = described_buttons(job.task_id, count) if count else None
    elif display.phase is Phase.DONE and job.buttons and server_buttons_ok:
        view = server_buttons(job.task_id, job.buttons, set(display.used_buttons))
    elif display.phase is Phase.DONE and job.action.makes_grid:
        view = grid_buttons(job.task_id, set(display.used_buttons))
    elif display.phase is Phase.NEEDS_PROMPT:
        view = prompt_button(job.task_id)
    elif cancel_ok and display.phase in (Phase.WAITING, Phase.QUEUED, Phase.RUNNING):
        view = cancel_button(job.task_id)
    if display.phase in (Phase.DONE, Phase.FAILED):
        view = with_delete(view, job.task_id)  # the owner may remove a finished job's message
    return Rendered(
        content=content_for(job, display, language),
        embeds=embeds,
        view=view,
        # Ping the member whose job it is, never @everyone or roles from a prompt.
        allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.owner_id)]),
    )


def _differs(translated: str, original: str) -> bool:
    return " ".join(translated.split()).casefold() != " ".join(original.split()).casefold()
