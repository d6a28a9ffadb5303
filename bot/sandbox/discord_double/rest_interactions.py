"""The interaction routes of the REST half: callbacks, and the follow-up webhooks of an interaction's token.

Callbacks are checked like Discord checks them (a second one gets 40060, a
late one 10062 when ``interaction_ack_timeout`` is set, a callback type the
interaction does not allow 50035, an invalid message, modal or autocomplete
result 50035) and each accepted one is recorded on the interaction.  An
autocomplete (type 4) is answered with its choices only (callback 8): it has no
message, and its token opens no follow-up webhook.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .autocomplete import validate_autocomplete
from .driver import STRING, focused_option
from .errors import ApiError, invalid_form
from .messages import IS_COMPONENTS_V2, unknown_message
from .records import LOADING, CallbackRecord, InteractionRecord, MessageRecord, RequestRecord, UploadedFile, snapshot
from .responses import json_response, no_content
from .state import State
from .validation import validate_message, validate_modal


class InteractionRoutes:
    """Mixed into ``RestApi``."""

    state: State

    async def interaction_callback(self, req: RequestRecord, interaction_id: str, token: str) -> web.Response:
        state = self.state
        interaction = state.interactions.get(int(interaction_id))
        if interaction is None or interaction.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        if (
            state.interaction_ack_timeout is not None
            and time.monotonic() - interaction.at > state.interaction_ack_timeout
        ):
            raise ApiError(404, 10062, "Unknown interaction")  # Discord's 3 second window
        if interaction.callbacks:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")

        body = req.payload or {}
        callback_type = int(body.get("type", 0))
        data = body.get("data") or {}
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}.get(interaction.type, set())
        if callback_type not in allowed:
            raise invalid_form(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Callback type {callback_type} is not valid here"
            )

        # A refused callback does not acknowledge the interaction: the bot may answer again.
        if callback_type == 4:
            validate_message(data, prefix=("data",))
        elif callback_type == 7:
            source = state.messages.get(interaction.source_message_id or 0)
            v2 = source is not None and bool(source.current.flags & IS_COMPONENTS_V2)
            validate_message(data, prefix=("data",), components_v2=v2)
        elif callback_type == 9:
            validate_modal(data, prefix=("data",))
        elif callback_type == 8:
            focused = focused_option(interaction.payload) or {}
            validate_autocomplete(body.get("data"), int(focused.get("type", STRING)), prefix=("data",))

        callback = CallbackRecord(callback_type, snapshot(data), tuple(req.files), time.monotonic())
        interaction.callbacks.append(callback)
        interaction.acked_at = req.at
        message: MessageRecord | None = None
        try:
            if callback_type == 4:
                message = await self._respond_with_message(interaction, data, req.files)
            elif callback_type == 5:
                # The "is thinking..." placeholder; its ephemerality is fixed here.
                message = await self._respond_with_message(interaction, {"flags": data.get("flags", 0)}, [], LOADING)
            elif callback_type == 7:
                source_message = self._source_message(interaction)
                message = await state.edit_message(source_message, data, req.files, via="interaction")
            elif callback_type == 6:
                message = self._source_message(interaction)
        except ApiError:
            interaction.callbacks.remove(callback)  # e.g. an empty message: nothing was answered
            interaction.acked_at = None
            raise
        await state.notify()

        if req.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        resource: dict[str, Any] = {"type": callback_type}
        if message is not None:
            info.update(
                response_message_id=str(message.id),
                response_message_loading=message.current.loading,
                response_message_ephemeral=message.ephemeral,
            )
            if callback_type != 6:
                resource["message"] = state.message_payload(message)
        return json_response({"interaction": info, "resource": resource})

    async def _respond_with_message(
        self, interaction: InteractionRecord, data: dict[str, Any], files: list[UploadedFile], extra_flags: int = 0
    ) -> MessageRecord:
        message = await self.state.create_message(
            channel_id=interaction.channel_id,
            author_id=self.state.bot.id,
            payload=data,
            files=files,
            via="interaction",
            interaction=interaction,
            message_type=20 if interaction.type == 2 else 0,  # 20: CHAT_INPUT_COMMAND
            extra_flags=extra_flags,
        )
        interaction.original_message_id = message.id
        return message

    def _source_message(self, interaction: InteractionRecord) -> MessageRecord:
        message = self.state.messages.get(interaction.source_message_id or 0)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    def _webhook_interaction(self, app_id: str, token: str) -> InteractionRecord:
        """The interaction an interaction-webhook URL belongs to (it needs an answer first)."""
        if int(app_id) == self.state.application_id:
            for interaction in self.state.interactions.values():
                # An autocomplete's token is only good for its choices.
                if interaction.token == token and interaction.callbacks and interaction.type != 4:
                    return interaction
        raise ApiError(404, 10015, "Unknown Webhook")

    def _webhook_message(self, interaction: InteractionRecord, message_id: str) -> MessageRecord:
        mid = interaction.original_message_id if message_id == "@original" else int(message_id)
        if mid is None or (mid != interaction.original_message_id and mid not in interaction.followup_ids):
            raise unknown_message()
        message = self.state.messages.get(mid)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    async def create_followup(self, req: RequestRecord, app_id: str, token: str) -> web.Response:
        interaction = self._webhook_interaction(app_id, token)
        payload = req.payload or {}
        original = interaction.original
        if original is not None and not original.deleted and original.current.loading:
            # Discord: the first follow-up after a "thinking" defer replaces the placeholder,
            # which keeps the ephemerality chosen at defer time.
            message = await self.state.edit_message(original, payload, req.files, via="interaction")
        else:
            message = await self.state.create_message(
                channel_id=interaction.channel_id,
                author_id=self.state.bot.id,
                payload=payload,
                files=req.files,
                via="interaction",
                interaction=interaction,
            )
            interaction.followup_ids.append(message.id)
            await self.state.notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return json_response(self.state.message_payload(message))
        return no_content()

    async def get_webhook_message(self, req: RequestRecord, app_id: str, token: str, message_id: str) -> web.Response:
        message = self._webhook_message(self._webhook_interaction(app_id, token), message_id)
        return json_response(self.state.message_payload(message))

    async def edit_webhook_message(self, req: RequestRecord, app_id: str, token: str, message_id: str) -> web.Response:
        message = self._webhook_message(self._webhook_interaction(app_id, token), message_id)
        await self.state.edit_message(message, req.payload or {}, req.files, via="interaction")
        return json_response(self.state.message_payload(message))

    async def delete_webhook_message(
        self, req: RequestRecord, app_id: str, token: str, message_id: str
    ) -> web.Response:
        message = self._webhook_message(self._webhook_interaction(app_id, token), message_id)
        await self.state.delete_message(message, by="interaction")
        return no_content()
