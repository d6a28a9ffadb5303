"""The double's channel as one member sees it: the bot's messages with their embeds, images, videos,
buttons and menus; that member's own ephemeral replies, marked; a modal the bot opened for them;
and the registered slash commands as forms. Read from the double's records for the page's templates."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from markupsafe import Markup

from bot.sandbox.discord_double import DiscordDouble, MessageRecord

SHOWN_MESSAGES = 40
NOT_ANSWERED_S = (3.0, 120.0)  # Discord says so after 3 s; the page stops saying it after 2 minutes
OPTION_KINDS = {3: "text", 4: "integer", 5: "boolean", 6: "user", 10: "number", 11: "attachment"}
SUBCOMMAND, GROUP = 1, 2
_MENTION = re.compile(r"&lt;@!?(\d+)&gt;")
_TIME = re.compile(r"&lt;t:(\d+)(?::[tTdDfFR])?&gt;")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)
_CODE = re.compile(r"`([^`]+)`")
_MASKED = re.compile(r"\[([^\]]+)\]\((https?://[^\s)]+)\)")
_BARE = re.compile(r"&lt;(https?://[^\s&]+)&gt;")
# Discord's escapes: a backslash before a markdown character shows the character itself.
_ESCAPED = re.compile(r"\\([\\*_~|`>\[\]()#:<-])")
_HELD = "\ue000"  # a private-use character stands for each escaped one until the end


@dataclass
class Control:
    kind: str  # "button", "link" or "select"
    custom_id: str = ""
    label: str = ""
    style: int = 2
    disabled: bool = False
    url: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    placeholder: str = ""
    multiple: bool = False


@dataclass
class Media:
    url: str
    name: str
    video: bool


@dataclass
class Shown:
    id: int
    author: str
    text: Markup
    embeds: list[dict[str, Any]]
    media: list[Media]
    rows: list[list[Control]]
    ephemeral: bool
    loading: bool
    edited: bool


@dataclass
class Modal:
    interaction_id: int
    title: str
    inputs: list[dict[str, Any]]


@dataclass
class Command:
    path: str  # "imagine", "prefer suffix"
    description: str
    options: list[dict[str, Any]]


def render_text(text: str, names: dict[int, str]) -> Markup:
    """Discord's markdown, the little the bot uses, as safe HTML: everything escaped first."""
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(match.group(1))
        return f"{_HELD}{len(held) - 1}{_HELD}"

    out = html.escape(_ESCAPED.sub(hold, (text or "").replace(_HELD, "")))
    out = _MENTION.sub(
        lambda m: f'<span class="mention">@{html.escape(names.get(int(m.group(1)), m.group(1)))}</span>', out
    )
    out = _TIME.sub(lambda m: _time(int(m.group(1))), out)
    out = _MASKED.sub(lambda m: f'<a href="{m.group(2)}" rel="noreferrer" target="_blank">{m.group(1)}</a>', out)
    out = _BARE.sub(lambda m: f'<a href="{m.group(1)}" rel="noreferrer" target="_blank">{m.group(1)}</a>', out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = re.sub(f"{_HELD}(\\d+){_HELD}", lambda m: html.escape(held[int(m.group(1))]), out)
    return Markup(out.replace("\n", "<br>"))


def _time(stamp: int) -> str:
    try:
        return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):  # <t:99999999999999> in a prompt: shown as typed
        return f"&lt;t:{stamp}&gt;"


def names_of(dd: DiscordDouble) -> dict[int, str]:
    return {user_id: user.username for user_id, user in dd.state.users.items()}


def channel_view(dd: DiscordDouble, viewer: int) -> list[Shown]:
    """The newest messages of the main channel that ``viewer`` may see, oldest first; then what
    they did that the bot did not answer in time, as Discord's client says it."""
    names = names_of(dd)
    shown = []
    for message in dd.channel_messages()[-SHOWN_MESSAGES * 2 :]:
        if message.ephemeral and _asker(dd, message) != viewer:
            continue
        try:
            shown.append(_shown(message, names))
        except (KeyError, TypeError, ValueError, AttributeError):  # one odd message never hides the rest
            shown.append(_unreadable(message))
    return shown[-SHOWN_MESSAGES:] + _not_answered(dd, viewer)


def _unreadable(message: MessageRecord) -> Shown:
    return Shown(
        message.id, "mjbot", Markup("<i>(the demo page cannot show this message)</i>"), [], [], [], False, False, False
    )


def _not_answered(dd: DiscordDouble, viewer: int) -> list[Shown]:
    now = time.monotonic()
    late = [
        interaction
        for interaction in dd.state.interactions.values()
        if interaction.user_id == viewer
        and interaction.type in (2, 3, 5)
        and not interaction.callbacks
        and interaction.sent_at is not None
        and NOT_ANSWERED_S[0] < now - interaction.sent_at < NOT_ANSWERED_S[1]
    ]
    return [
        Shown(i.id, "mjbot", Markup("The application did not respond."), [], [], [], True, False, False)
        for i in sorted(late, key=lambda i: i.id)[-3:]
    ]


def _asker(dd: DiscordDouble, message: MessageRecord) -> int | None:
    interaction = dd.state.interactions.get(message.interaction_id) if message.interaction_id else None
    return interaction.user_id if interaction else None


def _shown(message: MessageRecord, names: dict[int, str]) -> Shown:
    version = message.current
    media = [
        Media(a.url, a.filename, a.content_type.startswith("video/"))
        for a in version.attachments
        if a.content_type.startswith(("image/", "video/"))
    ]
    embeds = []
    for embed in version.embeds:
        embeds.append(
            {
                "title": embed.get("title") or "",
                "text": render_text(embed.get("description") or "", names),
                "fields": [
                    (f.get("name", ""), render_text(f.get("value", ""), names)) for f in embed.get("fields", [])
                ],
                "image": _http((embed.get("image") or {}).get("url")),
                "thumbnail": _http((embed.get("thumbnail") or {}).get("url")),
                "footer": (embed.get("footer") or {}).get("text") or "",
            }
        )
    return Shown(
        id=message.id,
        author=names.get(message.author_id, "someone"),
        text=render_text(version.content, names),
        embeds=embeds,
        media=media,
        rows=[_row(row) for row in version.components if row.get("type") == 1],
        ephemeral=version.ephemeral,
        loading=version.loading,
        edited=len(message.versions) > 1,
    )


def _http(url: str | None) -> str:
    """A link the page may show (an embed's ``attachment://`` image is among the message's media)."""
    return url if url and url.startswith(("http://", "https://")) else ""


def _row(row: dict[str, Any]) -> list[Control]:
    controls = []
    for item in row.get("components", []):
        if item.get("type") == 2:
            emoji = (item.get("emoji") or {}).get("name") or ""
            label = " ".join(part for part in (emoji, item.get("label") or "") if part)
            if item.get("style") == 5:
                controls.append(Control("link", label=label, url=_http(item.get("url")), style=5))
            else:
                controls.append(
                    Control(
                        "button", item.get("custom_id", ""), label, item.get("style", 2), bool(item.get("disabled"))
                    )
                )
        elif item.get("type") == 3:
            controls.append(
                Control(
                    "select",
                    item.get("custom_id", ""),
                    disabled=bool(item.get("disabled")),
                    options=list(item.get("options", [])),
                    placeholder=item.get("placeholder") or "",
                    multiple=int(item.get("max_values", 1)) > 1,
                )
            )
    return controls


def open_modal(dd: DiscordDouble, viewer: int, answered: set[int]) -> Modal | None:
    """The newest modal the bot opened for ``viewer`` that they have not sent or closed."""
    for interaction in sorted(dd.state.interactions.values(), key=lambda i: i.id, reverse=True):
        if interaction.user_id != viewer:
            continue
        callback = interaction.callback
        if callback is None or callback.type != 9:
            continue
        if interaction.id in answered:
            return None
        inputs = [
            {
                "custom_id": item.get("custom_id", ""),
                "label": item.get("label", ""),
                "value": item.get("value") or "",
                "long": item.get("style") == 2,
                "required": item.get("required", True),
                "max_length": item.get("max_length") or 4000,
            }
            for row in callback.data.get("components", [])
            for item in row.get("components", [])
            if item.get("type") == 4
        ]
        return Modal(interaction.id, callback.data.get("title", ""), inputs)
    return None


def commands_of(dd: DiscordDouble) -> list[Command]:
    """Every command a member can run, subcommands spelled out ("prefer option set")."""
    found: list[Command] = []
    for command in sorted(dd.commands(dd.guild_id) or dd.commands(None), key=lambda c: c["name"]):
        _walk(command["name"], command.get("description", ""), command.get("options", []), found)
    return found


def _walk(path: str, description: str, options: list[dict[str, Any]], found: list[Command]) -> None:
    subcommands = [o for o in options if o.get("type") in (SUBCOMMAND, GROUP)]
    if not subcommands:
        usable = [dict(o, kind=OPTION_KINDS.get(o.get("type"), "text")) for o in options]
        found.append(Command(path, description, usable))
        return
    for sub in subcommands:
        _walk(f"{path} {sub['name']}", sub.get("description", ""), sub.get("options", []), found)
