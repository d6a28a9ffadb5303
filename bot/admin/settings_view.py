"""The effective configuration as the settings page shows it: every section and key, with every
secret masked (SecretStr fields, and anything whose name says it is one, in case a plain field ever
holds one)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import SecretStr

from bot.core.config import Settings, redacted_url

MASK = "••••••••"
_SECRET_NAME = re.compile(r"secret|token|password|passwd|key$|credential", re.IGNORECASE)


def settings_rows(settings: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    sections = []
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        rows = [(key, _shown(key, getattr(section, key))) for key in type(section).model_fields]
        sections.append((name, rows))
    return sections


def _shown(key: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        if key == "url" and value.get_secret_value():
            return redacted_url(value.get_secret_value())  # the database URL, its password masked
        return MASK if value.get_secret_value() else "(not set)"
    if _SECRET_NAME.search(key) and value:
        return MASK
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [item.model_dump(mode="json") if hasattr(item, "model_dump") else item for item in value]
    return json.dumps(value, ensure_ascii=False, default=str)
