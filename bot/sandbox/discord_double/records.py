"""Records of what the Discord double saw and holds.

Tests read these objects; the double writes them.  Message versions and
attachments are immutable snapshots so an assertion about "what the bot
posted first" cannot be disturbed by a later edit.  The injected fault and
delay rules a request may meet are in rules.py (importable from here too).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import FormError, flatten_form_errors
from .rules import DelayRule, FaultRule

if TYPE_CHECKING:
    from .state import State

# Message flags the double interprets.
EPHEMERAL = 1 << 6
LOADING = 1 << 7


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request, exactly as the client sent it."""

    field: str  # the multipart field name, e.g. "files[0]"
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class RequestRecord:
    """One HTTP request the double received (REST, webhook or attachment download)."""

    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"; attachment URLs keep their own path
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    json: Any  # the JSON body, if the request had one
    payload: Any  # the effective JSON payload: the JSON body or a multipart request's payload_json
    files: list[UploadedFile]
    at: float  # time.monotonic() on arrival
    status: int | None = None  # what the double answered
    fault: FaultRule | None = field(default=None, repr=False)  # the injected fault that answered it, if any
    # The channel whose write rate limit counted this request (bot-token message POST/PATCH/DELETE).
    write_channel_id: int | None = None
    rate_limited: bool = False  # answered 429 by the channel write rate limit (not by an injected fault)
    delay: DelayRule | None = field(default=None, repr=False)  # the rule that held its answer back, if any
    # The JSON error body the double answered with (its own rules or an injected fault), if any.
    error: dict[str, Any] | None = None
    # Refused by one of Discord's rules with 400 (Invalid Form Body 50035, empty message...);
    # such requests changed nothing.  Injected faults are not refusals.
    refused: bool = False

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def error_code(self) -> int | None:
        """Discord's JSON error code of the answer (50035 Invalid Form Body...), if it was an error."""
        return None if self.error is None else self.error.get("code")

    @property
    def form_errors(self) -> list[FormError]:
        """The invalid fields of a 50035 answer: ``FormError(path, code, message)``, path dotted
        as in "data.components.0.components.1.emoji.name"."""
        return flatten_form_errors((self.error or {}).get("errors"))

    @property
    def form_error_codes(self) -> dict[str, str]:
        """``{path: code}`` of ``form_errors`` (the first code of each path)."""
        codes: dict[str, str] = {}
        for error in self.form_errors:
            codes.setdefault(error.path, error.code)
        return codes


@dataclass(frozen=True)
class AttachmentRecord:
    """A file stored by the double and served back at ``url``."""

    id: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    url: str
    proxy_url: str
    description: str | None = None
    ephemeral: bool = False
    # Images and videos Discord could read (see media.py); None for other files.
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.content_type.startswith("video/")

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
            "content_type": self.content_type,
        }
        if self.width is not None and self.height is not None:
            payload.update(width=self.width, height=self.height)
        if self.description is not None:
            payload["description"] = self.description
        if self.ephemeral:
            payload["ephemeral"] = True
        return payload


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every component, depth first: action rows, their children, v2 containers and accessories."""
    for component in components:
        yield component
        yield from walk_components(component.get("components", []))
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from walk_components([component[key]])


@dataclass(frozen=True)
class MessageVersion:
    """One state of a message: as created, or after one edit."""

    content: str
    embeds: list[dict[str, Any]]
    attachments: tuple[AttachmentRecord, ...]
    components: list[dict[str, Any]]
    flags: int
    message_reference: dict[str, Any] | None
    via: str  # who produced this version: "bot" (bot token), "interaction" (callback/webhook) or "user"
    at: float  # time.monotonic()
    edited_timestamp: str | None = None  # ISO time of the edit, None for the first version

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True for the "Bot is thinking..." placeholder of a deferred interaction."""
        return bool(self.flags & LOADING)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in walk_components(self.components) if c.get("type") == 2]

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in walk_components(self.components) if c.get("custom_id") == custom_id), None)

    def attachment(self, filename: str) -> AttachmentRecord:
        for attachment in self.attachments:
            if attachment.filename == filename:
                return attachment
        raise KeyError(f"no attachment named {filename!r}; have {[a.filename for a in self.attachments]}")


@dataclass
class MessageRecord:
    """A message and every version of it the bot (or a simulated user) produced."""

    id: int
    channel_id: int
    author_id: int
    origin: str  # who created it: "bot", "interaction" or "user"
    type: int  # Discord message type: 0 default, 19 reply, 20 slash command response
    interaction_id: int | None = None  # the interaction this message answers, if any
    versions: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    deleted_by: str | None = None  # "bot", "interaction" or "user"

    @property
    def current(self) -> MessageVersion:
        return self.versions[-1]

    @property
    def first(self) -> MessageVersion:
        return self.versions[0]

    @property
    def content(self) -> str:
        return self.current.content

    @property
    def ephemeral(self) -> bool:
        return self.current.ephemeral

    @property
    def attachments(self) -> tuple[AttachmentRecord, ...]:
        return self.current.attachments

    @property
    def reply_to(self) -> int | None:
        """The id of the message this one replies to, if it is a reply."""
        reference = self.current.message_reference
        if reference and reference.get("message_id") is not None:
            return int(reference["message_id"])
        return None


@dataclass(frozen=True)
class CallbackRecord:
    """One ``POST /interactions/{id}/{token}/callback`` the bot made."""

    type: int  # 1 pong, 4 message, 5 deferred message, 6 deferred update, 7 update, 8 autocomplete, 9 modal
    data: dict[str, Any]
    files: tuple[UploadedFile, ...]
    at: float

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def content(self) -> str | None:
        return self.data.get("content")


@dataclass
class InteractionRecord:
    """An interaction the double sent to the bot, and everything the bot answered."""

    id: int
    token: str
    type: int  # 2 application command, 3 message component, 4 autocomplete, 5 modal submit
    user_id: int
    channel_id: int
    payload: dict[str, Any] = field(repr=False)  # the INTERACTION_CREATE data as sent
    at: float
    name: str | None = None  # the command as typed, e.g. "echo" or "settings show"
    custom_id: str | None = None
    focused: str | None = None  # autocomplete: the option being typed
    source_message_id: int | None = None  # the message whose component was used
    callbacks: list[CallbackRecord] = field(default_factory=list)
    # The message "@original" refers to: the response message once the bot answered with
    # type 4/5, else (components) the message the component is on.
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    # For ack latency (time.monotonic()): when the double handed INTERACTION_CREATE to the gateway
    # (None: never sent), and when the request of the bot's first accepted callback arrived.
    sent_at: float | None = None
    acked_at: float | None = None
    # The gateway sessions INTERACTION_CREATE went to: those whose shard owns the guild.
    delivered_to: list[str] = field(default_factory=list)
    _state: State | None = field(default=None, repr=False, compare=False)

    @property
    def guild_id(self) -> int:
        return int(self.payload["guild_id"])

    @property
    def delivered(self) -> bool:
        """Whether a live session got it; if none owned its guild's shard, it is lost, as on Discord."""
        return bool(self.delivered_to)

    @property
    def callback(self) -> CallbackRecord | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def ack_s(self) -> float | None:
        """Seconds from the INTERACTION_CREATE dispatch to the arrival of the bot's first accepted
        callback (whatever its type: 4, 5, 6, 7, 9...); None while unanswered."""
        if self.sent_at is None or self.acked_at is None:
            return None
        return self.acked_at - self.sent_at

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def deferred(self) -> bool:
        return self.response_type in (5, 6)

    @property
    def ephemeral(self) -> bool:
        """Whether the response (message or deferred placeholder) is ephemeral."""
        return bool(self.callbacks) and self.callbacks[0].ephemeral

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """The choices the bot suggested for an autocomplete (callback type 8), as it sent them
        (``{"name", "value"}``, with ``name_localizations`` if it gave any); None until answered.

        An autocomplete has no message: ``original`` stays None and its token takes no follow-up."""
        return next((list(c.data.get("choices") or []) for c in self.callbacks if c.type == 8), None)

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9), if any."""
        return next((c.data for c in self.callbacks if c.type == 9), None)

    @property
    def original(self) -> MessageRecord | None:
        """The response message (for components before a type 4/5 answer: the clicked message)."""
        if self.original_message_id is None or self._state is None:
            return None
        return self._state.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[MessageRecord]:
        assert self._state is not None
        return [self._state.messages[i] for i in self.followup_ids]


class WriteEvent(NamedTuple):
    """One message write in a channel as the rate limit saw it (``DiscordDouble.write_timeline``)."""

    at: float  # time.monotonic() on arrival, the instant the rate limit counted it
    method: str
    path: str
    status: int | None  # 429: refused by the rate limit; None: not answered yet


@dataclass(frozen=True)
class GatewayConnection:
    """One websocket connection a client opened to the gateway."""

    id: int
    path: str  # "/gateway" (DEFAULT_GATEWAY) or "/gateway/resume" (READY's resume_gateway_url)
    query: dict[str, str]
    at: float


@dataclass(frozen=True)
class GatewayFrame:
    """One gateway frame; ``direction`` is "in" (from the client) or "out" (to the client)."""

    direction: str
    connection: int  # sequential id of the websocket connection
    op: int
    t: str | None
    s: int | None
    d: Any = field(repr=False)
    at: float


def snapshot(value: Any) -> Any:
    """Deep copy JSON-ish data so recorded versions never alias live payloads."""
    return copy.deepcopy(value)
