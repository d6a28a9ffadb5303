"""One error hierarchy for the whole bot.

Every error a user can cause or see carries ``key``: the name of its message in the locale catalogue
(``bot/locales/*.json``), and ``params`` to fill it. ``str(error)`` is the log text; it never
contains a token or a proxy secret because no layer puts one there.
"""

from __future__ import annotations

from typing import Any


class MjBotError(Exception):
    key = "error.internal"

    def __init__(self, message: str = "", *, detail: str | None = None, **params: Any) -> None:
        super().__init__(message or self.__class__.__name__)
        self.detail = detail
        self.params = params


class ConfigError(MjBotError):
    key = "error.config"


class BotRestarting(MjBotError):
    """The bot is stopping: a member's request that arrives now is not started."""

    key = "bot.restarting"


# --- the proxy -----------------------------------------------------------------------------------


class ProxyError(MjBotError):
    """Anything that went wrong talking to the Midjourney proxy."""

    key = "proxy.error"


class ProxyUnreachable(ProxyError):
    key = "proxy.unreachable"


class ProxyTimeout(ProxyError):
    key = "proxy.timeout"


class ProxyBusy(ProxyError):
    """The bot's own connections to the proxy were all in use for too long: nothing was sent."""

    key = "proxy.busy"


class ProxyAuthFailed(ProxyError):
    key = "proxy.auth"


class ProxyRateLimited(ProxyError):
    key = "proxy.rate_limited"


class ProxyBadResponse(ProxyError):
    """An answer that is not the API's: HTML from a reverse proxy, truncated JSON, an empty body."""

    key = "proxy.bad_response"


class EmptyAnswer(ProxyBadResponse):
    """HTTP 200 with nothing in it: what trueai's cancel answers (and, elsewhere, a broken proxy)."""


class ProxyEndpointMissing(ProxyError):
    """The server has no such endpoint (404/405, or new-api's web page on HTTP 200)."""

    key = "proxy.unsupported"


class ProxyActionNotAllowed(ProxyError):
    """The proxy's key may not use this action's model (new-api: 403 "无权访问模型 mj_blend"). A
    permission of the key, not wrong credentials: the member is told the server can't do it."""

    key = "proxy.action_not_allowed"  # params: model (may be "")


class SubmitUnconfirmed(ProxyTimeout):
    """A submit whose answer never came: the proxy may have taken it. The bot looks for it a while
    (the member is told how long), then lets the member try again."""

    key = "submit.unconfirmed"  # params: minutes


class SubmitRefused(ProxyError):
    """The proxy answered a submit with a code other than accepted (1, 21, 22)."""

    key = "submit.refused"

    def __init__(
        self,
        code: int,
        description: str,
        properties: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(
            f"proxy refused the submit: code {code}: {description}",
            detail=description or None,
            code=code,
            **params,
        )
        self.code = code
        self.description = description
        self.properties = properties or {}
        if type(self) is SubmitRefused and description:
            # A refusal without a code we know (trueai's {"success": false, "message": ...}): the
            # server's own words are the reason the member must see.
            self.key = "submit.refused_reason"
            self.params["reason"] = description
            self.detail = None


class ParentNotFound(SubmitRefused):
    key = "submit.not_found"


class InvalidSubmit(SubmitRefused):
    key = "submit.invalid"


class ProxySystemError(SubmitRefused):
    key = "submit.system"


class QueueFull(SubmitRefused):
    key = "submit.queue_full"


class QuotaExhausted(SubmitRefused):
    key = "submit.quota"


class BannedPrompt(SubmitRefused):
    key = "submit.banned"


# --- what the user gave us -----------------------------------------------------------------------


class UserInputError(MjBotError):
    key = "input.invalid"


class EmptyPrompt(UserInputError):
    key = "input.empty_prompt"


class PromptTooLong(UserInputError):
    key = "input.prompt_too_long"  # params: limit, length


class BadParameter(UserInputError):
    key = "input.bad_parameter"  # params: parameter (e.g. "--ar"), value, expected


class BannedWord(UserInputError):
    """A word the server's admins banned (``[access] banned_words``), found before submitting."""

    key = "input.banned_word"  # params: word


class NotAnImage(UserInputError):
    key = "input.not_image"

    def __init__(self, message: str = "", *, option: str = "", **params: Any) -> None:
        super().__init__(message, option=option, **params)
        if option:  # a command with several images: say which one
            self.key = "input.not_image_option"


class ImageTooLarge(UserInputError):
    key = "input.image_too_large"


class JobNotFound(UserInputError):
    key = "job.not_found"


class JobTooOld(JobNotFound):
    """The job was pruned (``[storage] keep_days``); its message may still be on Discord."""

    key = "show.too_old"


class JobNotReady(UserInputError):
    key = "job.not_ready"


class ButtonInvalid(UserInputError):
    key = "button.invalid"


# --- delivering to Discord (raised by the Discord layer, handled by the jobs service) -------------


class DeliveryError(MjBotError):
    key = "discord.error"


class MessageGone(DeliveryError):
    """The job's message (or its channel) was deleted: stop editing it."""

    key = "discord.message_gone"


class DeliveryForbidden(DeliveryError):
    """The bot lacks a permission in the channel."""

    key = "discord.missing_permission"


# --- access and limits ---------------------------------------------------------------------------


class NotAllowed(UserInputError):
    key = "access.denied"


class GuildNotAllowed(NotAllowed):
    key = "access.guild"


class ChannelNotAllowed(NotAllowed):
    key = "access.channel"  # params: channels (mentions)


class RoleNotAllowed(NotAllowed):
    key = "access.role"  # params: roles (mentions)


class NotJobOwner(NotAllowed):
    key = "access.not_owner"  # params: owner_id


class AdminOnly(NotAllowed):
    key = "access.admin_only"


class TooManyRunning(UserInputError):
    key = "limits.running"  # params: limit


class DailyLimitReached(UserInputError):
    key = "limits.daily"  # params: limit


class ButtonAlreadyUsed(UserInputError):
    key = "button.already_used"  # params: link


class ButtonBusy(UserInputError):
    key = "button.busy"


class ButtonUnsupported(UserInputError):
    key = "button.unsupported"


class VideoUnsupported(UserInputError):
    """The server cannot make videos (novicezk has no /submit/video; trueai with video off)."""

    key = "video.unsupported"


# --- credits -------------------------------------------------------------------------------------


class NotEnoughCredits(UserInputError):
    """The member's balance does not cover the job's price: nothing is submitted."""

    key = "credits.not_enough"  # params: price, balance, unit, refill, refill_at (0: no allowance)

    def __init__(self, message: str = "", **params: object) -> None:
        super().__init__(message, **params)
        if not params.get("refill_at"):
            self.key = "credits.not_enough_no_refill"


class BadAmount(UserInputError):
    """An amount that is not a number, not finite, too precise or too large."""

    key = "credits.bad_amount"  # params: amount, limit (maybe absent)


class MemberNotInGuild(UserInputError):
    key = "credits.not_member"  # params: user_id


class TakeTooMuch(UserInputError):
    """An admin asked to take more credits than the member has."""

    key = "credits.take_too_much"  # params: amount, balance


class CreditsOff(UserInputError):
    key = "credits.off"


class AnimateNeedsOneImage(UserInputError):
    """/animate takes an image or a job, exactly one of them."""

    key = "animate.one_image"


class BadVideoBatch(UserInputError):
    """A video batch is 1, 2 or 4 clips (Dto/SubmitVideoDTO.cs)."""

    key = "animate.batch"


class NotAnImageJob(UserInputError):
    """/animate job:<id> names a job whose result is not one image (a video, a describe)."""

    key = "animate.not_image_job"


class ReferenceTwice(UserInputError):
    """``--sref`` (or --cref, --oref) both written in the prompt and attached."""

    key = "input.reference_twice"  # params: parameter


class ReferenceUploadUnsupported(UserInputError):
    """An attached --sref/--cref/--oref image needs the server's image upload, which it lacks."""

    key = "input.reference_upload"  # params: parameters


class TooManyImages(UserInputError):
    key = "input.too_many_images"


class NotYourImage(NotJobOwner):
    """/animate job:<id> names another member's job."""

    key = "animate.not_owner"


class ButtonNotRelayed(UserInputError):
    """A server button the gateway in front of the server cannot press (new-api refuses a video
    batch's U1-U4, PicReader, BOOKMARK: middleware/distributor.go)."""

    key = "button.not_relayed"


class BadSetting(UserInputError):
    """A suffix (or option value) too long to add to every prompt."""

    key = "prefer.too_long"  # params: limit


class BadOptionName(UserInputError):
    """An option name that is not a plain word, or one of Midjourney's own parameters."""

    key = "prefer.bad_name"  # params: name, reason

    def __init__(self, message: str = "", *, name: str, reason: str) -> None:
        super().__init__(message, name=name)
        if reason == "parameter":
            self.key = "prefer.name_is_parameter"


class TooManyOptions(UserInputError):
    key = "prefer.too_many"  # params: limit


class OptionNotFound(UserInputError):
    key = "prefer.no_option"  # params: name


class CancelRefused(ProxyError):
    """The server would not cancel the task (trueai cancels only with an admin's token)."""

    key = "cancel.refused"


class SeedUnavailable(ProxyError):
    """The server has no seed for the task (not finished on Discord, or none found)."""

    key = "seed.unavailable"


class DescribeNeedsOneImage(UserInputError):
    key = "describe.one_image"


class BadImageLink(UserInputError):
    key = "describe.bad_link"


class LinkUnsupported(UserInputError):
    """The server describes attached images only (novicezk reads only base64)."""

    key = "describe.link_unsupported"


class ShortenUnsupported(UserInputError):
    """The server has no /submit/shorten (novicezk)."""

    key = "shorten.unsupported"


class CancelUnsupported(UserInputError):
    key = "cancel.unsupported"


class SeedUnsupported(UserInputError):
    key = "seed.unsupported"
