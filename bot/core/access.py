"""Who may do what: the ``[access]`` rules, with no Discord import (the Discord layer hands in ids)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.config import AccessSettings
from bot.core.errors import AdminOnly, ChannelNotAllowed, GuildNotAllowed, JobNotFound, NotJobOwner, RoleNotAllowed
from bot.core.models import Job


@dataclass(frozen=True)
class Requester:
    """The member behind a command or click, and where they are."""

    user_id: int
    guild_id: int | None
    channel_id: int
    parent_channel_id: int | None = None  # the channel a thread belongs to
    role_ids: frozenset[int] = field(default_factory=frozenset)
    language: str | None = None  # the member's language (from their Discord locale)


class AccessPolicy:
    def __init__(self, settings: AccessSettings) -> None:
        self.settings = settings

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.settings.admin_user_ids

    def check_admin(self, who: Requester) -> None:
        if not self.is_admin(who.user_id):
            raise AdminOnly(f"user {who.user_id} is not an admin")

    def check_guild(self, who: Requester) -> None:
        allowed = self.settings.allowed_guild_ids
        if allowed and who.guild_id not in allowed:
            raise GuildNotAllowed(f"guild {who.guild_id} is not allowed")

    def check_start(self, who: Requester) -> None:
        """May this member start a job here?"""
        self.check_guild(who)
        if self.is_admin(who.user_id):
            return
        channels = self.settings.allowed_channel_ids
        if channels and who.channel_id not in channels and who.parent_channel_id not in channels:
            raise ChannelNotAllowed(
                f"channel {who.channel_id} is not allowed", channels=", ".join(f"<#{c}>" for c in channels)
            )
        roles = self.settings.allowed_role_ids
        if roles and not who.role_ids.intersection(roles):
            raise RoleNotAllowed(
                f"user {who.user_id} has none of the allowed roles", roles=", ".join(f"<@&{r}>" for r in roles)
            )

    def check_owner(
        self, who: Requester, job: Job | None, task_id: str, what: str, refusal: type[NotJobOwner] = NotJobOwner
    ) -> Job:
        """``job`` if it is from the member's server and theirs (any, for admins): what a member may
        delete, show again, animate, cancel or ask the seed of. ``what``: the act, for the log."""
        if job is None or job.guild_id != who.guild_id:
            raise JobNotFound(f"no job {task_id} here", task_id=task_id)
        if job.owner_id != who.user_id and not self.is_admin(who.user_id):
            raise refusal(f"user {who.user_id} tried to {what} {job.owner_id}'s job", owner_id=job.owner_id)
        return job

    def check_press(self, who: Requester, job: Job) -> None:
        """May this member press a button of ``job``? (A press starts a job, so starting rules apply.)"""
        self.check_start(who)
        if job.guild_id != who.guild_id:
            # A task id from another server: say no more than for an unknown one.
            raise JobNotFound(
                f"task {job.task_id} belongs to guild {job.guild_id}, not {who.guild_id}", task_id=job.task_id
            )
        if self.settings.buttons == "owner" and who.user_id != job.owner_id and not self.is_admin(who.user_id):
            raise NotJobOwner(f"user {who.user_id} pressed a button of {job.owner_id}'s job", owner_id=job.owner_id)
