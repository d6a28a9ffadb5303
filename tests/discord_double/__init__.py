"""A Discord double for end-to-end tests: REST + gateway on 127.0.0.1 for an unmodified discord.py client.

See ``DiscordDouble`` (server.py) for the test-facing API and records.py for
what the double records.
"""

from .emoji import is_unicode_emoji
from .errors import ApiError, FormError, flatten_form_errors
from .records import (
    AttachmentRecord,
    CallbackRecord,
    DelayRule,
    FaultRule,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    RequestRecord,
    UploadedFile,
    WriteEvent,
)
from .server import DEFAULT_TOKEN, DISCORD_CHANNEL_WRITE_LIMIT, DiscordDouble
from .state import ALL_TEXT_PERMISSIONS

__all__ = [
    "ALL_TEXT_PERMISSIONS",
    "DEFAULT_TOKEN",
    "DISCORD_CHANNEL_WRITE_LIMIT",
    "ApiError",
    "AttachmentRecord",
    "CallbackRecord",
    "DelayRule",
    "DiscordDouble",
    "FaultRule",
    "FormError",
    "GatewayFrame",
    "InteractionRecord",
    "MessageRecord",
    "MessageVersion",
    "RequestRecord",
    "UploadedFile",
    "WriteEvent",
    "flatten_form_errors",
    "is_unicode_emoji",
]
