"""The application command routes of the REST half: global and per-guild commands, validated like Discord.

Commands are stored as Discord returns them (ids, version, defaults) in
``State.commands``, by guild id (None: global); the driver offers only these.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .errors import ApiError, invalid_form
from .records import RequestRecord, snapshot
from .responses import json_response, no_content
from .state import State

COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


class CommandRoutes:
    """Mixed into ``RestApi``."""

    state: State

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.state.application_id:
            raise ApiError(404, 10002, "Unknown Application")

    def _command_list(self, app_id: str, guild_id: str | None) -> list[dict[str, Any]]:
        self._check_app(app_id)
        if guild_id is None:
            return self.state.commands[None]
        return self.state.commands.setdefault(self.state.guild_by_id(int(guild_id)).id, [])

    def _stored_command(
        self, data: dict[str, Any], guild_id: str | None, previous: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Validate a command like Discord does (the usual reasons a sync fails) and give it ids."""
        name = data.get("name", "")
        command_type = data.get("type", 1)
        if not COMMAND_NAME.match(name) or (command_type == 1 and name != name.lower()):
            raise invalid_form("name", "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
        if command_type == 1 and not 1 <= len(data.get("description", "")) <= 100:
            raise invalid_form("description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        self._validate_options(data.get("options") or [])
        old = next((c for c in previous if c["name"] == name and c.get("type", 1) == command_type), None)
        stored = snapshot(data)
        stored.setdefault("type", 1)
        stored.setdefault("options", [])
        stored.setdefault("default_member_permissions", None)
        stored.setdefault("nsfw", False)
        stored.update(
            # Discord keeps a command's id across overwrites of the same name.
            id=old["id"] if old else str(self.state.new_id()),
            application_id=str(self.state.application_id),
            version=str(self.state.new_id()),
        )
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored

    def _validate_options(self, options: list[dict[str, Any]]) -> None:
        if len(options) > 25:
            raise invalid_form("options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names = [o.get("name") for o in options]
        if len(set(names)) != len(names):
            raise invalid_form("options", "APPLICATION_COMMAND_OPTIONS_DUPLICATE_NAME", "Option names must be unique")
        seen_optional = False
        for option in options:
            if option.get("type") in (1, 2):
                self._validate_options(option.get("options") or [])
                continue
            if not 1 <= len(option.get("description", "")) <= 100:
                raise invalid_form("options", "BASE_TYPE_BAD_LENGTH", "Option description must be 1-100 long.")
            if option.get("required"):
                if seen_optional:
                    raise invalid_form(
                        "options",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True

    async def list_commands(self, req: RequestRecord, app_id: str, guild_id: str | None = None) -> web.Response:
        return json_response(self._command_list(app_id, guild_id))

    async def put_commands(self, req: RequestRecord, app_id: str, guild_id: str | None = None) -> web.Response:
        current = self._command_list(app_id, guild_id)
        stored = [self._stored_command(c, guild_id, current) for c in req.payload or []]
        current[:] = stored  # bulk overwrite: whatever is not in the list is gone
        return json_response(stored)

    async def upsert_command(self, req: RequestRecord, app_id: str, guild_id: str | None = None) -> web.Response:
        current = self._command_list(app_id, guild_id)
        stored = self._stored_command(req.payload, guild_id, current)
        replaced = [i for i, c in enumerate(current) if c["id"] == stored["id"]]
        if replaced:
            current[replaced[0]] = stored
        else:
            current.append(stored)
        return json_response(stored, status=200 if replaced else 201)

    def _find_command(self, app_id: str, guild_id: str | None, command_id: str) -> tuple[list[dict[str, Any]], int]:
        current = self._command_list(app_id, guild_id)
        for index, command in enumerate(current):
            if command["id"] == command_id:
                return current, index
        raise ApiError(404, 10063, "Unknown application command")

    async def get_command(
        self, req: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None
    ) -> web.Response:
        current, index = self._find_command(app_id, guild_id, command_id)
        return json_response(current[index])

    async def edit_command(
        self, req: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None
    ) -> web.Response:
        current, index = self._find_command(app_id, guild_id, command_id)
        current[index] = self._stored_command({**current[index], **req.payload}, guild_id, current)
        return json_response(current[index])

    async def delete_command(
        self, req: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None
    ) -> web.Response:
        current, index = self._find_command(app_id, guild_id, command_id)
        del current[index]
        return no_content()
