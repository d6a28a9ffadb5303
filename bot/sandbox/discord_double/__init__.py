"""A Discord double for end-to-end tests: REST + gateway on 127.0.0.1 for an unmodified discord.py client.

See ``DiscordDouble`` (server.py) for the test-facing API, records.py for
what the double records, rules.py for the faults and delays a test injects
and shards.py for how it shards its gateway.
"""

from .emoji import is_unicode_emoji
from .errors import ApiError, FormError, flatten_form_errors
from .oauth import DEFAULT_CLIENT_SECRET, OAuthGrant
from .records import (
    AttachmentRecord,
    CallbackRecord,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    RequestRecord,
    UploadedFile,
    WriteEvent,
)
from .rules import DelayRule, FaultRule
from .server import DEFAULT_TOKEN, DISCORD_CHANNEL_WRITE_LIMIT, DiscordDouble
from .shards import INVALID_SHARD, SHARDING_REQUIRED, SessionInfo, guild_id_on_shard, shard_of
from .world import ALL_TEXT_PERMISSIONS

__all__ = [
    "ALL_TEXT_PERMISSIONS",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_TOKEN",
    "DISCORD_CHANNEL_WRITE_LIMIT",
    "INVALID_SHARD",
    "SHARDING_REQUIRED",
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
    "OAuthGrant",
    "RequestRecord",
    "SessionInfo",
    "UploadedFile",
    "WriteEvent",
    "flatten_form_errors",
    "guild_id_on_shard",
    "is_unicode_emoji",
    "shard_of",
]
