"""Members' credits as the commands see them: a member's account, what their jobs cost, an admin's
give or take, and who spent what. The holds, settles and refunds happen with the jobs themselves
(``submit`` holds, the store settles or refunds with the final state)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.core.access import AccessPolicy, Requester
from bot.core.config import Settings
from bot.core.credits import MAX_AMOUNT, format_amount, period_start, to_units
from bot.core.errors import BadAmount, CreditsOff
from bot.core.models import Job
from bot.storage import Store
from bot.storage.credit_book import Account, Cost, Spend

log = logging.getLogger(__name__)

PERIODS = ("today", "week", "month", "all")


class Credits:
    def __init__(self, settings: Settings, store: Store, policy: AccessPolicy, *, clock: Callable[[], float]) -> None:
        self.settings = settings.credits
        self.store = store
        self.policy = policy
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def unit(self) -> str:
        return self.settings.unit

    def _check_on(self) -> None:
        if not self.settings.enabled:
            raise CreditsOff("credits are off ([credits] enabled = false)")

    async def account(self, who: Requester, *, last: int = 10) -> Account:
        """The member's balance in this server, allowance, next refill and last entries (with the
        starting balance and this period's refill granted first)."""
        self._check_on()
        return await self.store.credits.account(
            who.guild_id or 0,
            who.user_id,
            allowance=self.settings.allowance_for(who.role_ids, who.guild_id),
            starting=self.settings.starting_balance,
            now=self._clock(),
            last=last,
        )

    async def costs(self, jobs: Sequence[Job]) -> dict[str, Cost]:
        """What each job cost, by task id (jobs made with credits off have none)."""
        found = await self.store.credits.costs([job.nonce for job in jobs if job.nonce])
        return {job.task_id: found[job.nonce] for job in jobs if job.nonce in found}

    async def adjust(
        self, admin: Requester, member_id: int, member_roles: frozenset[int], amount: str, reason: str, *, give: bool
    ) -> tuple[int, int]:
        """``/mj credits give|take``: (the amount, the member's new balance), both in units."""
        self.policy.check_admin(admin)
        return await self.adjust_checked(
            admin.user_id, admin.guild_id, member_id, member_roles, amount, reason, give=give
        )

    async def adjust_checked(
        self,
        admin_id: int,
        guild_id: int | None,
        member_id: int,
        member_roles: frozenset[int],
        amount: str,
        reason: str,
        *,
        give: bool,
        key: str | None = None,
    ) -> tuple[int, int]:
        """A give or take by an admin the caller has checked (the admin page checks its session;
        ``admin_id`` 0 is its token login). The same ``key`` twice makes one change."""
        self._check_on()
        units = to_units(amount)
        if units <= 0:
            raise BadAmount(f"amount {amount!r} is not above 0", amount=amount.strip()[:40], limit=f"{MAX_AMOUNT:,}")
        balance = await self.store.credits.adjust(
            guild_id or 0,
            member_id,
            units if give else -units,
            reason=reason.strip()[:200] or ("given" if give else "taken"),
            admin_id=admin_id,
            allowance=self.settings.allowance_for(member_roles, guild_id),
            starting=self.settings.starting_balance,
            now=self._clock(),
            key=key,
        )
        log.info(
            "credits: admin %s %s %s %s member %s in guild %s (%s); balance now %s",
            admin_id,
            "gave" if give else "took",
            format_amount(units),
            "to" if give else "from",
            member_id,
            guild_id,
            reason.strip()[:100],
            format_amount(balance),
        )
        return units, balance

    async def look(self, guild_id: int, member_id: int, roles: frozenset[int] | None, *, last: int = 10) -> Account:
        """A member's account as the admin page shows it, writing nothing (``roles`` None: unknown,
        so no allowance is shown)."""
        self._check_on()
        allowance = self.settings.allowance_for(roles, guild_id or None) if roles is not None else None
        return await self.store.credits.view(guild_id, member_id, allowance=allowance, now=self._clock(), last=last)

    async def spend(self, admin: Requester, period: str) -> Spend:
        """``/mj spend``: this server's charges since the start of ``period`` (UTC)."""
        self.policy.check_admin(admin)
        self._check_on()
        return await self.store.credits.spend(admin.guild_id, self.since(period))

    def since(self, period: str) -> float:
        if period not in PERIODS:
            raise ValueError(f"period {period!r} is not one of {PERIODS}")
        if period == "all":
            return 0.0
        return period_start({"today": "day", "week": "week", "month": "month"}[period], self._clock())
