"""A member's own side of the bot: their preferences (/settings, /prefer), what the prompt box
suggests them, and /info (their jobs today, their limits, their credits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from bot.core.access import AccessPolicy, Requester
from bot.core.config import Settings
from bot.core.errors import BadSetting, OptionNotFound
from bot.core.preferences import SPEEDS, STYLIZE, Preferences, check_option, check_suffix
from bot.core.prompt_help import Suggestion, suggestions
from bot.jobs.credits import Credits
from bot.storage import Store
from bot.storage.credit_book import Account


@dataclass(frozen=True)
class MemberInfo:
    jobs_today: int
    running: int  # unfinished jobs: queued or running at the proxy
    max_running: int  # 0: no limit
    max_per_day: int
    account: Account | None  # None when credits are off


class Members:
    def __init__(self, settings: Settings, store: Store, policy: AccessPolicy, credits: Credits) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy
        self.credits = credits

    async def preferences(self, who: Requester) -> Preferences:
        return await self.store.preferences.get(who.guild_id or 0, who.user_id)

    async def set_setting(self, who: Requester, name: str, value: str) -> Preferences:
        """One /settings choice: ``version``, ``stylize``, ``speed`` ("" for the default), ``remix``
        ("on"/"off"), or ``reset``. Only what this server offers is taken."""
        bot = self.settings.bot
        allowed: dict[str, Callable[[str], bool]] = {
            "version": lambda v: v in ("", *bot.versions),
            "stylize": lambda v: v in ("", *STYLIZE),
            "speed": lambda v: v in ("", *SPEEDS) and (not v or v in self.settings.proxy.speeds),
            # Remix rides on the server's own buttons (/submit/action): not with api = "change".
            "remix": lambda v: v in ("on", "off") and self.settings.proxy.api != "change",
            "reset": lambda v: True,
        }
        if name not in allowed or not allowed[name](value):
            raise BadSetting(f"setting {name}={value!r}", limit=0)

        def change(current: Preferences) -> Preferences:
            if name == "reset":
                return current.settings_only()
            if name == "remix":
                return replace(current, remix=value == "on")
            return replace(current, **{name: value})

        return await self._change(who, change)

    async def set_suffix(self, who: Requester, suffix: str) -> Preferences:
        suffix = check_suffix(suffix, self.settings.access.banned_words)
        return await self._change(who, lambda current: replace(current, suffix=suffix))

    async def set_option(self, who: Requester, name: str, value: str) -> Preferences:
        banned = self.settings.access.banned_words

        def change(current: Preferences) -> Preferences:
            key, checked = check_option(name, value, current.options, banned)
            return replace(current, options={**current.options, key: checked})

        return await self._change(who, change)

    async def delete_option(self, who: Requester, name: str) -> Preferences:
        key = name.strip().lower().removeprefix("--")

        def change(current: Preferences) -> Preferences:
            if key not in current.options:
                raise OptionNotFound(f"no option {key!r}", name=key[:20] or "(nothing)")
            return replace(current, options={k: v for k, v in current.options.items() if k != key})

        return await self._change(who, change)

    async def suggestions(self, who: Requester, typed: str) -> list[Suggestion]:
        """The prompt box's choices: two reads from the database, no proxy call."""
        guild = who.guild_id or 0
        preferences = await self.store.preferences.get(guild, who.user_id)
        recent = await self.store.preferences.recent_prompts(guild, who.user_id)
        return suggestions(typed, recent=recent, options=preferences.options, versions=self.settings.bot.versions)

    async def info(self, who: Requester, now: float) -> MemberInfo:
        midnight = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        limits = self.settings.limits
        admin = self.policy.is_admin(who.user_id)
        return MemberInfo(
            jobs_today=await self.store.count_created_since(who.user_id, midnight.timestamp()),
            running=await self.store.count_unfinished(who.user_id),
            max_running=0 if admin else limits.max_running_per_user,
            max_per_day=0 if admin else limits.max_jobs_per_user_per_day,
            account=await self.credits.account(who) if self.settings.credits.enabled else None,
        )

    async def _change(self, who: Requester, change: Callable[[Preferences], Preferences]) -> Preferences:
        return await self.store.preferences.change(who.guild_id or 0, who.user_id, change)
