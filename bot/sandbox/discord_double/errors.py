"""Discord's error answers: ``ApiError`` and the nested "Invalid Form Body" (50035) shape.

Discord reports every invalid field of a payload at once, nested by path::

    {"code": 50035, "message": "Invalid Form Body",
     "errors": {"data": {"components": {"0": {"components": {"0": {"emoji": {"name":
         {"_errors": [{"code": "BUTTON_COMPONENT_INVALID_EMOJI", "message": "Invalid emoji"}]}}}}}}}}}

``FormErrors`` collects such errors by path; ``flatten_form_errors`` turns a body back into
``FormError(path, code, message)`` rows (path dotted, e.g. "data.components.0.components.0.emoji.name").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

INVALID_FORM_BODY = 50035

Path = tuple[str | int, ...]


class ApiError(Exception):
    """A Discord-style error answer: HTTP status plus JSON ``{"message", "code"}`` (and ``errors``)."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class FormError(NamedTuple):
    """One invalid field: its dotted path, Discord's error code name and its message."""

    path: str  # e.g. "content", "components.0.components.1.label", "data.title"
    code: str  # e.g. "BASE_TYPE_MAX_LENGTH"
    message: str  # e.g. "Must be 2000 or fewer in length."


class FormErrors:
    """Collects invalid fields by path; ``raise_if_any`` raises the 400 Invalid Form Body."""

    def __init__(self, prefix: Path = ()):
        self.prefix = prefix
        self.errors: dict[str, Any] = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.errors
        for part in (*self.prefix, *path):
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.errors)

    def error(self) -> ApiError:
        return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise self.error()


def invalid_form(path: str | Path, code: str, message: str) -> ApiError:
    """A 400 Invalid Form Body for one field; ``path`` is dotted ("attachments.0") or a tuple."""
    errors = FormErrors()
    errors.add(tuple(path.split(".")) if isinstance(path, str) else path, code, message)
    return errors.error()


def flatten_form_errors(errors: dict[str, Any] | None, _prefix: str = "") -> list[FormError]:
    """The leaves of a nested ``errors`` object, in document order."""
    return list(_walk(errors or {}, _prefix))


def _walk(node: dict[str, Any], prefix: str) -> Iterator[FormError]:
    for key, value in node.items():
        if key == "_errors":
            for item in value:
                yield FormError(prefix, item.get("code", ""), item.get("message", ""))
        elif isinstance(value, dict):
            yield from _walk(value, f"{prefix}.{key}" if prefix else key)
