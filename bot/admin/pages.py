"""The admin page's pages: overview, jobs (and one job's timeline), members (and one member's
credits), settings. Each handler reads what it shows and renders one template."""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from jinja2 import Environment

from bot.admin.context import AdminContext
from bot.admin.render import page
from bot.admin.sessions import AdminSession, Signer
from bot.admin.settings_view import settings_rows
from bot.core.actions import Action
from bot.core.credits import MAX_AMOUNT, format_amount
from bot.core.errors import BadAmount, CreditsOff, TakeTooMuch, UserInputError
from bot.core.models import Status
from bot.storage.admin_queries import UNFINISHED, JobFilter

log = logging.getLogger(__name__)

FLASH_COOKIE = "mjbot_admin_flash"
PAGE_ROWS = 50
STATUSES = (UNFINISHED, *(s.value for s in Status if s.value))
MAX_ID = 2**63 - 1  # Discord ids are 64-bit; both databases store them as such
_ID = re.compile(r"[0-9]{1,19}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
CookieSetter = Callable[..., None]
ACTIONS = tuple(a.value for a in Action)
WAITING = (Status.UNKNOWN.value, Status.NOT_START.value, Status.SUBMITTED.value, Status.MODAL.value)


class Pages:
    def __init__(self, ctx: AdminContext, env: Environment, signer: Callable[[], Signer], cookie: CookieSetter) -> None:
        self.ctx = ctx
        self.env = env
        self._signer = signer
        self._cookie = cookie  # sets a cookie with the page's flags (Secure behind https)

    def _render(self, request: web.Request, name: str, session: AdminSession, **values: Any) -> web.Response:
        response = page(self.env, request, name, session=session, **values)
        if request.cookies.get(FLASH_COOKIE):
            response.del_cookie(FLASH_COOKIE, path="/admin")
        return response

    def _midnight(self) -> float:
        now = datetime.fromtimestamp(self.ctx.clock(), timezone.utc)
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def name(self, guild_id: int | None, user_id: int) -> str:
        return self.ctx.directory.member_name(guild_id or 0, user_id) or str(user_id)

    def guild(self, guild_id: int | None) -> str:
        if not guild_id:
            return "direct messages"
        return self.ctx.directory.guild_name(guild_id) or str(guild_id)

    # --- overview ------------------------------------------------------------------------------

    async def overview(self, request: web.Request, session: AdminSession) -> web.Response:
        since = self._midnight()
        admin = self.ctx.store.admin
        unfinished = await admin.unfinished_by_status()
        latency, proxy_problem = self.ctx.proxy_latency()
        credits = self.ctx.jobs.credits
        spend = await self.ctx.store.credits.spend(None, since) if credits.enabled else None
        health = self.ctx.health
        return self._render(
            request,
            "overview.html",
            session,
            nav="overview",
            gateway=health.gateway_connected,
            tracker_age=health.tracker_age(),
            problem=health.problem(),
            latency_ms=None if latency is None else round(latency * 1000),
            proxy_problem=proxy_problem,
            running=unfinished.get(Status.IN_PROGRESS.value, 0),
            queued=sum(unfinished.get(status, 0) for status in WAITING),
            by_action=await admin.jobs_by_action(since),
            failures=await admin.failures_by_reason(since),
            spend=spend,
            unit=credits.unit,
            active=await admin.find_jobs(JobFilter(status=UNFINISHED, limit=10)),
            pages=self,
        )

    # --- jobs ----------------------------------------------------------------------------------

    async def jobs(self, request: web.Request, session: AdminSession) -> web.Response:
        problems: list[str] = []
        query = request.query
        member = _number(query.get("member", ""), "Member must be a Discord user id (a number).", problems)
        guild = _number(query.get("guild", ""), "Server must be a Discord server id (a number).", problems)
        before = _cursor(query.get("before", ""), problems)
        status = query.get("status", "") or None
        if status is not None and status not in STATUSES:
            problems.append(f"There is no status {status[:30]!r}; pick one from the list.")
            status = None
        action = query.get("action", "") or None
        if action is not None and action not in ACTIONS:
            problems.append(f"There is no action {action[:30]!r}; pick one from the list.")
            action = None
        wanted = JobFilter(member, guild, status, action, before, PAGE_ROWS)
        found = await self.ctx.store.admin.find_jobs(wanted)
        more = None
        if len(found) == PAGE_ROWS:
            last = found[-1]
            more = {
                **{k: v for k, v in query.items() if k != "before"},
                "before": f"{last.created_at!r}_{last.task_id}",
            }
        return self._render(
            request,
            "jobs.html",
            session,
            nav="jobs",
            jobs=found,
            query=query,
            problems=problems,
            statuses=STATUSES,
            actions=ACTIONS,
            more=more,
            live=before is None,
            pages=self,
        )

    async def job(self, request: web.Request, session: AdminSession) -> web.Response:
        task_id = request.match_info["task_id"][:100]
        job = await self.ctx.store.get_job(task_id)
        if job is None:
            response = page(
                self.env,
                request,
                "error.html",
                status=404,
                session=session,
                nav="jobs",
                message=f"No job {task_id!r}: it never existed here, or it was pruned after [storage] keep_days.",
            )
            return response
        costs = await self.ctx.jobs.credits.costs([job])
        return self._render(
            request,
            "job.html",
            session,
            nav="jobs",
            job=job,
            events=await self.ctx.store.admin.events(task_id),
            children=await self.ctx.store.child_jobs(task_id),
            cost=costs.get(task_id),
            message_url=_message_url(job.guild_id, job.channel_id, job.message_id),
            pages=self,
        )

    # --- members -------------------------------------------------------------------------------

    async def members(self, request: web.Request, session: AdminSession) -> web.Response:
        problems: list[str] = []
        member = _number(request.query.get("member", ""), "Member must be a Discord user id (a number).", problems)
        guild = _number(request.query.get("guild", ""), "Server must be a Discord server id (a number).", problems)
        rows = await self.ctx.store.admin.members(self._midnight(), guild_id=guild, member_id=member, limit=PAGE_ROWS)
        return self._render(
            request,
            "members.html",
            session,
            nav="members",
            rows=rows,
            query=request.query,
            problems=problems,
            credits=self.ctx.jobs.credits.enabled,
            limits=self.ctx.settings.limits,
            pages=self,
        )

    async def member(self, request: web.Request, session: AdminSession) -> web.Response:
        guild_id, member_id = _ids(request)
        roles = await self.ctx.directory.member_roles(guild_id, member_id)
        credits = self.ctx.jobs.credits
        account = await credits.look(guild_id, member_id, roles, last=20) if credits.enabled else None
        flash = self._signer().open(request.cookies.get(FLASH_COOKIE), now=self.ctx.clock())
        store = self.ctx.store
        return self._render(
            request,
            "member.html",
            session,
            nav="members",
            guild_id=guild_id,
            member_id=member_id,
            in_server=roles is not None,
            account=account,
            unit=credits.unit,
            admin=self.ctx.policy.is_admin(member_id),
            limits=self.ctx.settings.limits,
            jobs_today=await store.count_created_since(member_id, self._midnight()),
            running=await store.count_unfinished(member_id),
            recent=await store.admin.find_jobs(JobFilter(member_id=member_id, guild_id=guild_id, limit=10)),
            flash=flash if flash and flash.get("kind") == "flash" else None,
            nonce=secrets.token_urlsafe(16),  # the form's own: sent twice, it changes the balance once
            pages=self,
        )

    async def adjust(self, request: web.Request, session: AdminSession) -> web.StreamResponse:
        guild_id, member_id = _ids(request)
        form = await request.post()
        give = form.get("direction") != "take"
        amount, reason = str(form.get("amount", ""))[:40], str(form.get("reason", ""))[:200]
        nonce = str(form.get("nonce", ""))
        key = f"adjust:page:{nonce}" if _NONCE.fullmatch(nonce) else None
        # The refill a change tops up first depends on the member's roles: never guess them.
        roles = await self.ctx.directory.member_roles(guild_id, member_id)
        try:
            if roles is None:
                raise LookupError("roles unknown")
            units, balance = await self.ctx.jobs.credits.adjust_checked(
                session.user_id,
                guild_id,
                member_id,
                roles,
                amount,
                f"{reason} (admin page)".strip(),
                give=give,
                key=key,
            )
        except (UserInputError, CreditsOff, LookupError) as exc:
            text, ok = _refusal(exc, amount), False
        else:
            verb = "Gave" if give else "Took"
            text, ok = f"{verb} {format_amount(units)}; the balance is now {format_amount(balance)}.", True
            log.info(
                "admin page: %s %s %s %s member %s in guild %s",
                session.who,
                verb.lower(),
                format_amount(units),
                "to" if give else "from",
                member_id,
                guild_id,
            )
        response = web.HTTPSeeOther(f"/admin/members/{guild_id}/{member_id}")
        flash = self._signer().seal({"kind": "flash", "text": text, "ok": ok, "exp": self.ctx.clock() + 120})
        self._cookie(response, FLASH_COOKIE, flash, max_age=120)
        raise response

    # --- settings ------------------------------------------------------------------------------

    async def settings_page(self, request: web.Request, session: AdminSession) -> web.Response:
        return self._render(
            request, "settings.html", session, nav="settings", sections=settings_rows(self.ctx.settings)
        )


def _number(text: str, problem: str, problems: list[str]) -> int | None:
    text = text.strip()
    if not text:
        return None
    if _ID.fullmatch(text) and int(text) <= MAX_ID:
        return int(text)
    problems.append(problem)
    return None


def _ids(request: web.Request) -> tuple[int, int]:
    """The server and member ids of a member's URL; a clear 404 for one no Discord id can be."""
    guild_id, member_id = int(request.match_info["guild_id"]), int(request.match_info["member_id"])
    if guild_id > MAX_ID or member_id > MAX_ID:
        raise web.HTTPNotFound(text="No such member: Discord ids are at most 19 digits.")
    return guild_id, member_id


def _cursor(text: str, problems: list[str]) -> tuple[float, str] | None:
    """``<created_at>_<task_id>`` of the last job a page showed."""
    if not text:
        return None
    created, _, task_id = text.partition("_")
    try:
        at = float(created)
    except ValueError:
        at = math.nan
    if not math.isfinite(at) or not task_id:
        problems.append("That page link is broken; start from the first page.")
        return None
    return at, task_id[:100]


def _message_url(guild_id: int | None, channel_id: int, message_id: int | None) -> str | None:
    if message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def _refusal(exc: Exception, amount: str) -> str:
    if isinstance(exc, CreditsOff):
        return "Credits are off ([credits] enabled = false): nothing was changed."
    if isinstance(exc, LookupError):
        return "Discord did not say which roles they have (not in the server, or busy): nothing was changed. Try again."
    if isinstance(exc, TakeTooMuch):
        return f"They have only {exc.params.get('balance', '?')}: nothing was taken."
    if isinstance(exc, BadAmount):
        limit = f"{MAX_AMOUNT:,}"
        return f"{amount.strip()[:40]!r} is not an amount above 0 and up to {limit}, with at most four decimals. Nothing was changed."
    return "That change was refused: nothing was changed."
