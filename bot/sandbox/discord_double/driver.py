"""Builds the INTERACTION_CREATE payloads a Discord client would cause.

Slash commands are checked against what the bot registered (as the Discord
client only offers registered commands and validates the options), so are
autocompletes (only of options registered with ``autocomplete``), and
component interactions carry the message they came from, with its current
components: discord.py needs that to route a click to a persistent
``DynamicItem``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .records import InteractionRecord, MessageRecord
from .state import State

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2

# An attachment option value: (filename, bytes, content type)
AttachmentSpec = tuple[str, bytes, str]


def base_interaction(
    state: State,
    *,
    interaction_type: int,
    user_id: int,
    channel_id: int,
    locale: str,
    app_permissions: int | None,
) -> dict[str, Any]:
    """The fields every guild interaction carries; the channel decides the guild."""
    channel = state.channel(channel_id)
    guild = state.guild_of(channel_id)
    if user_id not in guild.members:
        raise ValueError(f"user {user_id} is not a member of guild {guild.id}")
    member_permissions = str(guild.permissions(user_id))
    return {
        "id": str(state.new_id()),
        "application_id": str(state.application_id),
        "type": interaction_type,
        "token": secrets.token_urlsafe(48),
        "version": 1,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
        "channel_id": str(channel.id),
        "channel": {**state.channel_payload(channel), "permissions": member_permissions},
        "member": guild.member_payload(user_id, with_permissions=True),
        "locale": locale,
        "guild_locale": guild.locale,
        "app_permissions": str(state.app_permissions if app_permissions is None else app_permissions),
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,  # GUILD
        # Per file, the most of the guild's (boost tier) and the user's (no Nitro in the double) limits.
        "attachment_size_limit": guild.upload_limit(state.attachment_size_limit),
    }


def find_command(
    state: State, name: str, guild_id: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Resolve "cmd", "cmd sub" or "cmd group sub" to (command, leaf option schema, path) as offered
    in ``guild_id`` (default: the main guild)."""
    top, *path = name.split()
    for scope in (state.guild.id if guild_id is None else guild_id, None):  # a guild command shadows a global one
        command = next((c for c in state.commands.get(scope, []) if c["name"] == top and c.get("type", 1) == 1), None)
        if command is not None:
            break
    else:
        registered = sorted({c["name"] for cmds in state.commands.values() for c in cmds})
        raise LookupError(f"/{top} is not registered with the double (registered: {registered}); did the bot sync?")
    schema = command.get("options") or []
    for part in path:
        sub = next((o for o in schema if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
        if sub is None:
            raise LookupError(f"/{name}: {part!r} is not a subcommand of /{top}")
        schema = sub.get("options") or []
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        raise LookupError(f"/{name} needs a subcommand")
    return command, schema, path


def command_options(
    state: State,
    name: str,
    schema: list[dict[str, Any]],
    options: dict[str, Any],
    attachments: dict[str, AttachmentSpec],
    channel_id: int,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Typed option values plus the ``resolved`` map, validated like the Discord client would."""
    by_name = {o["name"]: o for o in schema}
    given = {**options, **attachments}
    unknown = set(given) - set(by_name)
    if unknown:
        raise ValueError(f"/{name} has no option(s) {sorted(unknown)}; it has {sorted(by_name)}")
    missing = [o["name"] for o in schema if o.get("required") and o["name"] not in given]
    if missing:
        raise ValueError(f"/{name} is missing required option(s) {missing}")

    values: list[dict[str, Any]] = []
    resolved: dict[str, dict[str, Any]] = {}
    for option_name, raw in given.items():
        option = by_name[option_name]
        value = option_value(state, name, option, raw, channel_id, resolved)
        values.append({"name": option_name, "type": option["type"], "value": value})
    return values, resolved


def option_value(
    state: State,
    name: str,
    option: dict[str, Any],
    raw: Any,
    channel_id: int,
    resolved: dict[str, dict[str, Any]],
) -> Any:
    """One option's value as Discord sends it, checked like the Discord client checks a submitted
    command (length, bounds, choices, existing users...); what it refers to goes into ``resolved``."""
    option_name, kind = option["name"], option["type"]
    guild = state.guild_of(channel_id)
    if kind == ATTACHMENT:
        filename, data, content_type = raw
        stored = state.store_file(channel_id, filename, data, content_type, ephemeral=True)
        resolved.setdefault("attachments", {})[str(stored.id)] = stored.to_payload()
        value: Any = str(stored.id)
    elif kind == STRING:
        value = str(raw)
        if not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
            raise ValueError(f"/{name} {option_name}: length {len(value)} is out of bounds")
    elif kind in (INTEGER, NUMBER):
        if isinstance(raw, bool) or (kind == INTEGER and int(raw) != raw):
            raise ValueError(f"/{name} {option_name}: {raw!r} is not an {'integer' if kind == INTEGER else 'number'}")
        value = int(raw) if kind == INTEGER else float(raw)
        if option.get("min_value") is not None and value < option["min_value"]:
            raise ValueError(f"/{name} {option_name}: {value} < min_value {option['min_value']}")
        if option.get("max_value") is not None and value > option["max_value"]:
            raise ValueError(f"/{name} {option_name}: {value} > max_value {option['max_value']}")
    elif kind == BOOLEAN:
        value = bool(raw)
    elif kind in (USER, MENTIONABLE) and int(raw) in guild.members:
        value = str(raw)
        resolved.setdefault("users", {})[value] = state.user_payload(int(raw))
        member = guild.member_payload(int(raw), with_permissions=True)
        del member["user"]  # resolved members come without their user, which is in "users"
        resolved.setdefault("members", {})[value] = member
    elif kind == USER and int(raw) in state.users:
        # Someone not in this server (left it, or picked by id): Discord resolves the user alone.
        value = str(raw)
        resolved.setdefault("users", {})[value] = state.user_payload(int(raw))
    elif kind in (ROLE, MENTIONABLE):
        value = str(raw)
        resolved.setdefault("roles", {})[value] = state.role(int(raw)).to_payload()
    elif kind == CHANNEL:
        value = str(raw)
        channel = state.channel(int(raw))
        resolved.setdefault("channels", {})[value] = {
            "id": value, "name": channel.name, "type": channel.type, "permissions": str(state.app_permissions)
        }  # fmt: skip
    else:
        raise ValueError(f"/{name} {option_name}: option type {kind} is not supported by the double")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"/{name} {option_name}: {value!r} is not one of the choices {[c['value'] for c in choices]}")
    return value


def slash_interaction(
    state: State,
    name: str,
    options: dict[str, Any],
    attachments: dict[str, AttachmentSpec],
    *,
    user_id: int,
    channel_id: int,
    locale: str,
    app_permissions: int | None,
) -> InteractionRecord:
    command, schema, path = find_command(state, name, state.guild_of(channel_id).id)
    values, resolved = command_options(state, name, schema, options, attachments, channel_id)
    data = _command_data(command, path, values)
    if resolved:
        data["resolved"] = resolved
    payload = base_interaction(
        state,
        interaction_type=2,
        user_id=user_id,
        channel_id=channel_id,
        locale=locale,
        app_permissions=app_permissions,
    )
    payload["data"] = data
    return _record(state, payload, name=name)


def _command_data(command: dict[str, Any], path: list[str], values: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``data`` of a command interaction; subcommands nest the values:
    ``[{group, options: [{sub, options: values}]}]``."""
    for depth in reversed(range(len(path))):
        kind = SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP
        values = [{"name": path[depth], "type": kind, "options": values}]
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": values}
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return data


def autocomplete_interaction(
    state: State,
    name: str,
    options: dict[str, Any],
    focused: str,
    *,
    user_id: int,
    channel_id: int,
    locale: str,
) -> InteractionRecord:
    """The member is typing ``focused`` of /``name`` (an APPLICATION_COMMAND_AUTOCOMPLETE, type 4).

    As Discord documents it (application-commands#autocomplete): the options typed so far are
    sent, the one being typed with ``"focused": true``, required ones may be missing, and the
    values are partial: strings and the focused value go as typed (the focused one always as a
    string, even for an INTEGER or NUMBER option, as the client sends what is in the box), while
    other filled options passed the client's checks as in ``slash``.  No ``resolved`` map (discord.py
    documents that Discord sends none here).  Only an option registered with ``autocomplete: true``
    can be focused: anything else is a test's mistake (ValueError); an unregistered command or
    subcommand, LookupError.
    """
    command, schema, path = find_command(state, name, state.guild_of(channel_id).id)
    by_name = {o["name"]: o for o in schema}
    unknown = ({*options, focused}) - set(by_name)
    if unknown:
        raise ValueError(f"/{name} has no option(s) {sorted(unknown)}; it has {sorted(by_name)}")
    if not by_name[focused].get("autocomplete"):
        with_autocomplete = [o["name"] for o in schema if o.get("autocomplete")]
        raise ValueError(
            f"/{name} {focused}: not registered with autocomplete, so Discord sends no autocomplete"
            f" interaction for it (options with autocomplete: {with_autocomplete})"
        )
    values: list[dict[str, Any]] = []
    given = options if focused in options else {**options, focused: ""}  # focused on an empty box
    for option_name, raw in given.items():
        option = by_name[option_name]
        kind = option["type"]
        if option_name == focused:
            values.append({"name": option_name, "type": kind, "value": str(raw), "focused": True})
            continue
        if kind == ATTACHMENT:
            raise ValueError(f"/{name} {option_name}: the double sends no attachment in an autocomplete")
        value = str(raw) if kind == STRING else option_value(state, name, option, raw, channel_id, {})
        values.append({"name": option_name, "type": kind, "value": value})
    payload = base_interaction(
        state, interaction_type=4, user_id=user_id, channel_id=channel_id, locale=locale, app_permissions=None
    )
    payload["data"] = {**_command_data(command, path, values), "version": command["version"]}
    return _record(state, payload, name=name, focused=focused)


def focused_option(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The option marked ``focused`` in an autocomplete interaction's data, however deep."""
    pending = list(payload.get("data", {}).get("options") or [])
    while pending:
        option = pending.pop()
        if option.get("focused"):
            return option
        pending.extend(option.get("options") or [])
    return None


def component_interaction(
    state: State,
    message: MessageRecord,
    custom_id: str,
    values: list[str] | None,
    *,
    user_id: int,
    locale: str,
    app_permissions: int | None,
) -> InteractionRecord:
    if message.deleted:
        raise LookupError(f"message {message.id} is deleted; nobody can click on it")
    component = message.current.component(custom_id)
    if component is None:
        raise LookupError(f"message {message.id} has no component {custom_id!r}; it has {message.current.custom_ids}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} on message {message.id} is disabled")
    is_select = component["type"] in (3, 5, 6, 7, 8)
    if is_select != (values is not None):
        raise ValueError(
            f"component {custom_id!r} is type {component['type']}: use {'select' if is_select else 'click'}"
        )
    payload = base_interaction(
        state,
        interaction_type=3,
        user_id=user_id,
        channel_id=message.channel_id,
        locale=locale,
        app_permissions=app_permissions,
    )
    payload["message"] = state.message_payload(message)
    payload["data"] = {"custom_id": custom_id, "component_type": component["type"]}
    if values is not None:
        payload["data"]["values"] = list(values)
    return _record(state, payload, custom_id=custom_id, source_message_id=message.id)


def modal_submit_interaction(
    state: State,
    opened_by: InteractionRecord,
    values: dict[str, str],
    *,
    user_id: int,
    locale: str,
) -> InteractionRecord:
    """The member fills in and submits the modal the bot opened in answer to ``opened_by``."""
    modal = opened_by.modal
    if modal is None:
        raise LookupError(f"interaction {opened_by.id} was not answered with a modal")
    inputs = [c for row in modal.get("components", []) for c in row.get("components", [])]
    unknown = set(values) - {c["custom_id"] for c in inputs}
    if unknown:
        raise LookupError(f"the modal has no inputs {sorted(unknown)}; it has {[c['custom_id'] for c in inputs]}")
    payload = base_interaction(
        state, interaction_type=5, user_id=user_id, channel_id=opened_by.channel_id, locale=locale, app_permissions=None
    )
    if "message" in opened_by.payload:  # opened from a button: Discord sends that message along
        payload["message"] = opened_by.payload["message"]
    payload["data"] = {
        "custom_id": modal["custom_id"],
        "components": [
            {
                "type": 1,
                "components": [
                    {"type": 4, "custom_id": c["custom_id"], "value": values.get(c["custom_id"], c.get("value") or "")}
                ],
            }
            for c in inputs
        ],
    }
    return _record(state, payload, custom_id=modal["custom_id"], source_message_id=opened_by.source_message_id)


def _record(state: State, payload: dict[str, Any], **extra: Any) -> InteractionRecord:
    interaction = InteractionRecord(
        id=int(payload["id"]),
        token=payload["token"],
        type=payload["type"],
        user_id=int(payload["member"]["user"]["id"]),
        channel_id=int(payload["channel_id"]),
        payload=payload,
        at=time.monotonic(),
        _state=state,
        **extra,
    )
    # "@original" of a component interaction is the clicked message until the bot sends a new one.
    interaction.original_message_id = interaction.source_message_id
    state.interactions[interaction.id] = interaction
    return interaction
