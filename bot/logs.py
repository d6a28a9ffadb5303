"""Logging: one line per event, as text (default) or JSON (``[logging] format = "json"``).

Each line carries the task id, guild, channel and user where the event has them: from the record's
``extra`` (``log.info(..., extra={"task_id": ...})``) or, for the bot's usual wording ("task 123 …
by user 4 in guild 5 channel 6"), read from the message. discord.py's own records come at WARNING
and above.

Secrets registered with :func:`add_secret` (the Discord token, the proxy secret, the push token) are
masked in every line, tracebacks included, whichever format: no layer should log one, and this is
the net under that rule.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

MASK = "[secret]"
MIN_SECRET_LENGTH = 4  # masking a one-letter "secret" everywhere would garble every line
CONTEXT_FIELDS = ("task_id", "guild_id", "channel_id", "user_id")
_FROM_MESSAGE = {
    # A task id has a digit in it: "task 1712…", not "task is".
    "task_id": re.compile(r"\btask (?=[\w.:-]*\d)([\w.:-]+)"),
    "guild_id": re.compile(r"\bguild (\d+)"),
    "channel_id": re.compile(r"\bchannel (\d+)"),
    "user_id": re.compile(r"\buser (\d+)"),
}
# Libraries whose INFO/DEBUG records are noise to an admin (discord.py reconnects, every SQL call).
_QUIET = {"discord": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING,
          "aiosqlite": logging.WARNING, "asyncio": logging.WARNING}

_secrets: set[str] = set()


def add_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log line."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one may contain another
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def context_of(record: logging.LogRecord, message: str) -> dict[str, object]:
    """The task id, guild, channel and user an event concerns, where it has them."""
    context: dict[str, object] = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is None and (found := _FROM_MESSAGE[name].search(message)):
            value = found.group(1)
        if value is not None:
            context[name] = int(value) if name != "task_id" and str(value).isdigit() else str(value)
    return context


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and the
    exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            **context_of(record, message),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        # Masked before encoding too: JSON escaping could change how a secret is spelled.
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def setup_logging(format: str = "text", level: str | int = "INFO") -> None:
    """Send every record at ``level`` and above to stderr, one line each, in ``format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLogger().level))
