"""Credits: what each job costs, what members are allowed, and amounts kept exact.

Amounts are integers of :data:`SCALE` parts of a unit (0.05 credits = 500), so sums never drift the
way floats do. The ``[credits]`` settings section lives here with the rules it feeds.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation, localcontext
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bot.core.errors import BadAmount
from bot.core.models import Action, TaskButton

SCALE = 10_000  # parts of a unit an amount is counted in: four decimal places
MAX_AMOUNT = 1_000_000_000  # the largest amount an admin may give, take or set (in units)

# What each action costs by default. The names are the new-api gateway's model names, so its price
# list can be copied here; the values are its defaults (docs/ and setting/ratio_setting in
# QuantumNous/new-api), except where the gateway bills one press as two models: a Custom Zoom or
# Vary (Region) is mj_custom_zoom/mj_inpaint (0) plus mj_modal (0.1), charged here as one 0.1.
DEFAULT_PRICES: dict[str, str] = {
    "mj_imagine": "0.1",
    "mj_variation": "0.1",
    "mj_reroll": "0.1",
    "mj_blend": "0.1",
    "mj_describe": "0.05",
    "mj_upscale": "0.05",
    "mj_upscale_subtle": "0.05",  # new-api bills Upscale (Subtle)/(Creative) as mj_upscale
    "mj_upscale_creative": "0.05",
    "mj_high_variation": "0.1",  # Vary (Strong)
    "mj_low_variation": "0.1",  # Vary (Subtle)
    "mj_inpaint": "0.1",  # Vary (Region)
    "mj_zoom": "0.1",  # Zoom Out 2x / 1.5x
    "mj_custom_zoom": "0.1",
    "mj_pan": "0.1",
    "mj_video": "0.8",  # Animate, Extend, a video batch's U1-U4
    "mj_shorten": "0.1",
    "mj_other": "0.1",  # any other button of the server's
}


def to_units(value: Any, *, what: str = "amount") -> int:
    """``value`` (a number or its text, e.g. "0.05" or "1,000") as whole parts of a unit; raises
    :class:`BadAmount` for anything else: text that is not a number, NaN, infinity, more than four
    decimals, or more than :data:`MAX_AMOUNT`."""
    text = str(value).strip().replace(",", "").replace("_", "")

    def bad(problem: str) -> BadAmount:
        shown = text[:40]  # bounded in messages; parsed whole
        return BadAmount(f"{what}: {shown!r} {problem}", amount=shown, limit=f"{MAX_AMOUNT:,}")

    if isinstance(value, bool):
        raise bad("is not a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(text)
    except InvalidOperation:
        raise bad("is not a number") from None
    if not number.is_finite():
        raise bad("is not a finite number")
    if abs(number) > MAX_AMOUNT:
        raise bad(f"is over {MAX_AMOUNT:,}")
    with localcontext() as exact:
        exact.prec = len(number.as_tuple().digits) + 8  # no rounding: 1.00000000001 is not 1
        units = number * SCALE
    if units != units.to_integral_value():
        raise bad("has more than 4 decimal places")
    return int(units)


def format_amount(units: int) -> str:
    """``500`` -> ``"0.05"``, ``10000`` -> ``"1"``, ``-25000`` -> ``"-2.5"``."""
    text = f"{Decimal(units) / SCALE:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def price_name(action: Action, button: TaskButton | None = None) -> str:
    """The price list's name for a job: its action, or the server's button that makes it."""
    if button is not None:
        kind = button.custom_id.split("::")
        detail = "::".join(kind[1:3]).lower()
        if button.makes_video:
            return "mj_video"
        if button.needs_mask:
            return "mj_inpaint"
        if button.needs_prompt:
            return "mj_custom_zoom"
        if "upsample" in detail and "subtle" in detail:
            return "mj_upscale_subtle"
        if "upsample" in detail and "creative" in detail:
            return "mj_upscale_creative"
        if "high_variation" in detail:
            return "mj_high_variation"
        if "low_variation" in detail:
            return "mj_low_variation"
    return {
        Action.IMAGINE: "mj_imagine",
        Action.UPSCALE: "mj_upscale",
        Action.VARIATION: "mj_variation",
        Action.REROLL: "mj_reroll",
        Action.DESCRIBE: "mj_describe",
        Action.BLEND: "mj_blend",
        Action.ZOOM: "mj_zoom",
        Action.PAN: "mj_pan",
        Action.VIDEO: "mj_video",
        Action.SHORTEN: "mj_shorten",
    }.get(action, "mj_other")


# --- allowance periods ---------------------------------------------------------------------------

Period = Literal["day", "week", "month"]
PERIOD_DAYS: dict[str, float] = {"day": 1, "week": 7, "month": 30}


def period_start(period: str, when: float) -> float:
    """When the ``period`` (UTC: days from midnight, weeks from Monday, months from the 1st) holding
    ``when`` began, as a timestamp."""
    moment = datetime.fromtimestamp(when, timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    return day.timestamp()


def next_period_start(period: str, when: float) -> float:
    start = datetime.fromtimestamp(period_start(period, when), timezone.utc)
    if period == "day":
        return (start + timedelta(days=1)).timestamp()
    if period == "week":
        return (start + timedelta(days=7)).timestamp()
    days = calendar.monthrange(start.year, start.month)[1]
    return (start + timedelta(days=days)).timestamp()


def periods_between(period: str, earlier: float, later: float) -> int:
    """How many period starts lie after the period of ``earlier``, up to the one of ``later``."""
    first, last = period_start(period, earlier), period_start(period, later)
    if period == "month":
        a, b = datetime.fromtimestamp(first, timezone.utc), datetime.fromtimestamp(last, timezone.utc)
        return max(0, (b.year - a.year) * 12 + b.month - a.month)
    return max(0, round((last - first) / 86400 / PERIOD_DAYS[period]))


@dataclass(frozen=True)
class Allowance:
    """What a member gets: ``amount`` each ``every``, up to a balance of ``cap`` (units)."""

    amount: int
    every: str
    cap: int
    role_id: int = 0

    @property
    def daily_rate(self) -> float:
        return self.amount / PERIOD_DAYS[self.every]


# --- settings ------------------------------------------------------------------------------------


def _amount(value: Any) -> int:
    try:
        return to_units(value)
    except BadAmount as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


def _non_negative(value: Any) -> int:
    units = _amount(value)
    if units < 0:
        raise ValueError("must not be negative")
    return units


Amount = Annotated[int, BeforeValidator(_non_negative)]


class AllowanceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role_id: int = Field(ge=0)  # the @everyone role's id is the server's id
    amount: Amount
    every: Period = "day"
    cap: Amount | None = None  # the balance a refill never goes past; default: amount

    def allowance(self) -> Allowance:
        return Allowance(self.amount, self.every, self.amount if self.cap is None else self.cap, self.role_id)


class CreditsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    unit: str = Field(default="credits", min_length=1, max_length=20)
    # Credits a member starts with, the first time they use the bot in a server.
    starting_balance: Amount = 0
    # Post to the alerts channel when a day's spend (UTC) passes this; 0 = never.
    daily_alert: Amount = 0
    # What each action costs (see DEFAULT_PRICES); the ones not named keep their default.
    prices: dict[str, Amount] = Field(default_factory=dict)
    allowances: list[AllowanceSettings] = Field(default_factory=list)

    @field_validator("prices", mode="before")
    @classmethod
    def _known_actions(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(DEFAULT_PRICES))
            if unknown:
                raise ValueError(f"unknown action {', '.join(unknown)}; known: {', '.join(DEFAULT_PRICES)}")
        return value

    def price_of(self, name: str) -> int:
        return self.prices[name] if name in self.prices else to_units(DEFAULT_PRICES[name])

    def allowance_for(self, role_ids: frozenset[int] | set[int], guild_id: int | None) -> Allowance | None:
        """The best allowance among the member's roles (the @everyone role included): the highest
        amount per day, then the highest cap."""
        held = set(role_ids) | ({guild_id} if guild_id else set())
        mine = [a.allowance() for a in self.allowances if a.role_id in held]
        return max(mine, key=lambda a: (a.daily_rate, a.cap), default=None)
