"""Injected faults and delays: ``FaultRule`` and ``DelayRule``, the requests they take and their hits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import RequestRecord


class _RequestRule:
    """What fault and delay rules share: which requests they take, and how many more."""

    method: str | None
    path_re: re.Pattern[str] | None
    times: int
    hits: list[RequestRecord]

    @property
    def remaining(self) -> int:
        return self.times - len(self.hits)

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_re is None or self.path_re.search(path) is not None


@dataclass
class FaultRule(_RequestRule):
    """An injected failure: the next ``times`` matching requests get ``status``."""

    status: int
    method: str | None = None
    path_re: re.Pattern[str] | None = None  # searched (re.search) in the API-relative path
    times: int = 1
    retry_after: float = 0.2  # for 429s
    is_global: bool = False  # for 429s
    body: dict[str, Any] | None = None  # overrides the default error body
    hits: list[RequestRecord] = field(default_factory=list, repr=False)


@dataclass
class DelayRule(_RequestRule):
    """An injected slow answer: the next ``times`` matching requests are processed at once
    (and recorded: a message is created...) but answered only ``seconds`` later."""

    seconds: float
    method: str | None = None
    path_re: re.Pattern[str] | None = None  # searched (re.search) in the API-relative path
    times: int = 1
    hits: list[RequestRecord] = field(default_factory=list, repr=False)
