"""``mjbot spend-report``: the credits ledger's entries over a period, as CSV or JSON, for accounting.

It reads the database without migrating it (a report must not change the schema under a running
bot), and says so when the database has no ledger yet.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import datetime, timezone
from typing import TextIO

from bot.core.config import Settings
from bot.core.credits import format_amount
from bot.ops import logs

COLUMNS = (
    "time_utc", "guild_id", "member_id", "kind", "amount", "unit", "price", "action", "task_id", "nonce",
    "reason", "admin_id",
)  # fmt: skip
LEDGER_SCHEMA = 9  # the migration that made the ledger


def parse_day(text: str, option: str) -> float:
    """``2026-11-01`` or ``2026-11-01T12:00`` (UTC unless it says otherwise) as a timestamp."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option}: {text[:40]!r} is not a date; use YYYY-MM-DD (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def spend_report(settings: Settings | None, since: str, until: str | None, fmt: str, output: str | None) -> int:
    if settings is None:
        return 2
    try:
        start = parse_day(since, "--since")
        end = parse_day(until, "--until") if until else None
    except ValueError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return 2
    if end is not None and end <= start:
        print("mjbot: --until must be after --since", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(_entries(settings, start, end))
    except Exception as exc:  # noqa: BLE001 - one line for the operator, whatever broke
        print(f"mjbot: spend report from {settings.storage.where} failed: {logs.redact(str(exc))}", file=sys.stderr)
        return 1
    if rows is None:
        print(f"mjbot: {settings.storage.where} has no credits ledger yet (run the bot once)", file=sys.stderr)
        return 1
    unit = settings.credits.unit
    if output:
        with open(output, "w", encoding="utf-8", newline="") as out:
            _write(out, rows, unit, fmt)
        print(f"wrote {len(rows)} entries to {output}", file=sys.stderr)
    else:
        _write(sys.stdout, rows, unit, fmt)
    return 0


async def _entries(settings: Settings, start: float, end: float | None) -> list | None:
    from bot.storage import Store

    store = Store(settings.storage.database_url)
    await store.open(migrate=False)
    try:
        if await store.schema_version() < LEDGER_SCHEMA:
            return None
        return await store.credits.entries(start, end)
    finally:
        await store.close()


def _write(out: TextIO, entries: list, unit: str, fmt: str) -> None:
    records = [
        {
            "time_utc": datetime.fromtimestamp(e.created_at, timezone.utc).isoformat(timespec="seconds"),
            "guild_id": e.guild_id,
            "member_id": e.member_id,
            "kind": e.kind,
            "amount": format_amount(e.amount),
            "unit": unit,
            "price": format_amount(e.price) if e.price is not None else "",
            "action": e.action or "",
            "task_id": e.task_id or "",
            "nonce": e.nonce or "",
            "reason": e.reason or "",
            "admin_id": e.admin_id or "",
        }
        for e in entries
    ]
    if fmt == "json":
        json.dump(records, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(records)
