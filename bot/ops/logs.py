"""Logging: one line per event, as text (default) or JSON (``[logging] format = "json"``).

Each line carries the task id, guild, channel and user where the event has them: from the record's
``extra`` (``log.info(..., extra={"task_id": ...})``) or, for the bot's usual wording ("task 123 …
by user 4 in guild 5 channel 6"), read from the message. A line that names only a task gets the
rest from what the bot knows of that task (:class:`TaskContext`): text lines end with
``[guild 5 channel 6 user 4]``, JSON lines have the fields. discord.py's own records come at WARNING
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
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bot.core.config import url_password
from bot.core.events import NoEvents
from bot.core.models import Job

if TYPE_CHECKING:
    from bot.core.config import Settings

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
_QUIET = {
    "discord": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "asyncio": logging.WARNING,
    # Its pool logs a traceback per reconnect attempt while PostgreSQL is away; the store says it
    # once (bot.storage.postgres).
    "asyncpg": logging.ERROR,
}

_secrets: set[str] = set()
KNOWN_TASKS = 10_000  # the newest tasks whose guild, channel and user are remembered for log lines
_tasks: OrderedDict[str, dict[str, int]] = OrderedDict()


def add_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log line."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def add_settings_secrets(settings: Settings) -> None:
    """Mask the configuration's secrets (the Discord token, the proxy secret, the admin page's
    client secret and token, the database password) in every log line."""
    page = settings.admin_page
    for secret in (settings.discord.token, settings.proxy.secret, page.client_secret, page.token):
        add_secret(secret.get_secret_value())
    add_secret(url_password(settings.storage.database_url))


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one may contain another
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def remember(job: Job) -> None:
    """Note where a task lives, so lines naming only the task can say it too."""
    fields = {"guild_id": job.guild_id, "channel_id": job.channel_id, "user_id": job.owner_id}
    _tasks[job.task_id] = {name: value for name, value in fields.items() if value is not None}
    _tasks.move_to_end(job.task_id)
    while len(_tasks) > KNOWN_TASKS:
        _tasks.popitem(last=False)


class TaskContext(NoEvents):
    """A jobs-service observer that remembers each job's guild, channel and user for the log."""

    def job_submitted(self, job: Job) -> None:
        remember(job)

    def job_finished(self, job: Job) -> None:
        remember(job)


def context_of(record: logging.LogRecord, message: str) -> tuple[dict[str, object], set[str]]:
    """The task id, guild, channel and user an event concerns, where it has them; and which of them
    the message itself does not say."""
    context: dict[str, object] = {}
    unsaid: set[str] = set()
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            unsaid.add(name)
        elif found := _FROM_MESSAGE[name].search(message):
            value = found.group(1)
        if value is not None:
            context[name] = int(value) if name != "task_id" and str(value).isdigit() else str(value)
    for name, value in _tasks.get(str(context.get("task_id")), {}).items():
        if name not in context:
            context[name] = value
            unsaid.add(name)
    return context, unsaid


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context, unsaid = context_of(record, record.getMessage())
        extra = " ".join(f"{name.removesuffix('_id')} {context[name]}" for name in CONTEXT_FIELDS if name in unsaid)
        if extra:
            # After the message's first line: a traceback keeps its own lines below.
            first, newline, rest = line.partition("\n")
            line = f"{first} [{extra}]{newline}{rest}"
        return redact(line)


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
            **context_of(record, message)[0],
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
    logging.captureWarnings(True)  # Python's warnings become log lines too (JSON stays JSON)
