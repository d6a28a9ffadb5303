"""How credits read in Discord: a member's account (/balance), what admins see of who spent what
(/mj spend), and a job's cost in /jobs. Times are Discord timestamps, shown in each reader's zone."""

from __future__ import annotations

import discord

from bot.core.credits import format_amount
from bot.core.i18n import t
from bot.core.text import MAX_CONTENT, clip, clip_words
from bot.storage.credit_book import Account, Cost, Spend
from bot.storage.ledger import Entry

MAX_REASON_SHOWN = 60


def account_text(account: Account, unit: str, language: str) -> str:
    lines = [t("credits.balance", language, balance=format_amount(account.balance), unit=unit)]
    allowance = account.allowance
    if allowance is None:
        lines.append(t("credits.no_allowance", language))
    else:
        lines.append(
            t(
                "credits.allowance",
                language,
                amount=format_amount(allowance.amount),
                unit=unit,
                every=t(f"credits.every.{allowance.every}", language),
                cap=format_amount(allowance.cap),
                refill=f"<t:{int(account.next_refill or 0)}:R>",
            )
        )
    if account.entries:
        lines.append(t("credits.entries", language))
        lines += [entry_line(entry, language) for entry in account.entries]
    else:
        lines.append(t("credits.no_entries", language))
    return clip("\n".join(lines), MAX_CONTENT)


def entry_line(entry: Entry, language: str) -> str:
    amount = format_amount(entry.amount)
    detail = entry.action or ""
    if entry.task_id:
        detail += f" `{entry.task_id}`"
    if entry.kind == "adjust":
        detail = t("credits.by_admin", language, admin=entry.admin_id or 0)
        if entry.reason:
            detail += f": {discord.utils.escape_markdown(clip_words(entry.reason, MAX_REASON_SHOWN))}"
    return t(
        "credits.entry",
        language,
        when=int(entry.created_at),
        kind=t(f"credits.kind.{entry.kind}", language),
        amount=f"+{amount}" if entry.amount > 0 else amount,
        detail=detail.strip(),
    ).rstrip()


def cost_text(cost: Cost | None, unit: str | None, language: str) -> str:
    """`` · 0.1 credits`` after a job in /jobs (nothing when credits are off or it had no price)."""
    if cost is None or unit is None:
        return ""
    return " · " + t(f"jobs.cost.{cost.state}", language, price=format_amount(cost.price), unit=unit)


def spend_text(spend: Spend, unit: str, period: str, language: str) -> str:
    total = sum(line.total for line in spend.by_action)
    jobs = sum(line.jobs for line in spend.by_action)
    lines = [
        t(
            "credits.spend.title",
            language,
            period=t(f"credits.spend.period.{period}", language),
            total=format_amount(total),
            unit=unit,
            jobs=jobs,
        )
    ]
    if not spend.by_action:
        lines.append(t("credits.spend.none", language))
    for line in spend.by_action:
        lines.append(
            t(
                "credits.spend.action",
                language,
                action=line.key,
                jobs=line.jobs,
                total=format_amount(line.total),
                unit=unit,
            )
        )
    if spend.top_members:
        lines.append(t("credits.spend.top", language))
        for line in spend.top_members:
            lines.append(
                t(
                    "credits.spend.member",
                    language,
                    member=line.key,
                    jobs=line.jobs,
                    total=format_amount(line.total),
                    unit=unit,
                )
            )
    lines.append(
        t(
            "credits.spend.refunded",
            language,
            jobs=spend.refunded.jobs,
            total=format_amount(spend.refunded.total),
            held_jobs=spend.held.jobs,
            held=format_amount(spend.held.total),
            unit=unit,
        )
    )
    return clip("\n".join(lines), MAX_CONTENT)
