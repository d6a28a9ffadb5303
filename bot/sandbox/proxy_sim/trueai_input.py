"""How trueai reads a request: ASP.NET Core's JSON binding (types, refusals) and its DataUrl class
(the images a submit carries). Facts from trueai-org/midjourney-proxy:

- Program.cs: controllers use System.Text.Json with the web defaults (property names in any case,
  numbers also from strings); ``InvalidModelStateResponseFactory`` answers a body it cannot bind
  with ``JsonResult(Result.Fail(error))``: HTTP 200 ``{"success": false, "code": -1, "message":
  <the first error>, "timestamp": ...}``, the error being System.Text.Json's text.
- Dto/DataUrl.cs ``Parse``: blank is no image; ``http...`` is kept as a link; else
  ``data:<type>;base64,<data>`` or bare base64 (taken as image/png); bad base64 throws.
- Services/MjImageHelper.cs ``GuessFileSuffix``: the stored file's suffix, from the MIME type.

The ``BytePositionInLine`` of a binding error is the end of the offending top-level value: close
to, not always exactly, what System.Text.Json reports.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

_DTO_NAMESPACE = "Midjourney.Base.Dto."
# The DTO each route binds its body to (Controllers/SubmitController.cs, TaskController.cs).
DTO_NAMES = {
    "imagine": "SubmitImagineDTO",
    "shorten": "SubmitImagineDTO",
    "action": "SubmitActionDTO",
    "modal": "SubmitModalDTO",
    "describe": "SubmitDescribeDTO",
    "blend": "SubmitBlendDTO",
    "video": "SubmitVideoDTO",
    "upload-discord-images": "SubmitUploadDiscordDto",
    "list-by-condition": "TaskConditionDTO",
}

_TYPE_NAMES = {
    "string": "System.String",
    "bool": "System.Boolean",
    "bool?": "System.Nullable`1[System.Boolean]",
    "int?": "System.Nullable`1[System.Int32]",
    "strings": "System.Collections.Generic.List`1[System.String]",
    "filter": _DTO_NAMESPACE + "AccountFilter",
}
_BASE = {"state": "string", "notifyHook": "string"}  # Dto/BaseSubmitDTO.cs
# The fields the sim binds strictly, by route (Dto/SubmitImagineDTO.cs, SubmitVideoDTO.cs,
# SubmitUploadDiscordDto.cs); other routes are read as they come.
SPECS: dict[str, dict[str, str]] = {
    "imagine": {
        **_BASE,
        "botType": "string",
        "prompt": "string",
        "base64Array": "strings",
        "accountFilter": "filter",
    },
    "video": {
        **_BASE,
        "prompt": "string",
        "motion": "string",
        "image": "string",
        "endImage": "string",
        "loop": "bool",
        "action": "string",
        "index": "int?",
        "taskId": "string",
        "videoType": "string",
        "batchSize": "int?",
    },
    "upload-discord-images": {**_BASE, "base64Array": "strings", "accountFilter": "filter"},
    # Dto/SubmitDescribeDTO.cs, Dto/SubmitActionDTO.cs (its "tools" list is not simulated).
    "describe": {
        **_BASE,
        "botType": "string",
        "base64": "string",
        "link": "string",
        "accountFilter": "filter",
        "language": "string",
    },
    "action": {**_BASE, "taskId": "string", "customId": "string", "enableRemix": "bool?", "strong": "bool?"},
}
SPECS["shorten"] = SPECS["imagine"]  # Controllers/SubmitController.cs Shorten binds SubmitImagineDTO
_INT32 = range(-(2**31), 2**31)
_WHITESPACE = re.compile(r"\s*")


def _position(text: str, end: int) -> str:
    """``LineNumber: n | BytePositionInLine: m`` for a character offset (bytes, as UTF-8)."""
    line = text.count("\n", 0, end)
    start = text.rfind("\n", 0, end) + 1
    return f"LineNumber: {line} | BytePositionInLine: {len(text[start:end].encode())}"


def _value_ends(text: str) -> dict[str, int]:
    """Where each top-level value of a JSON object ends (character offsets)."""
    decoder, ends = json.JSONDecoder(), {}
    try:
        i = _WHITESPACE.match(text).end()
        if text[i : i + 1] != "{":
            return ends
        i = _WHITESPACE.match(text, i + 1).end()
        while i < len(text) and text[i] != "}":
            key, i = decoder.raw_decode(text, i)
            i = _WHITESPACE.match(text, _WHITESPACE.match(text, i).end() + 1).end()  # past ':'
            _, i = decoder.raw_decode(text, i)
            ends[key] = i
            i = _WHITESPACE.match(text, i).end()
            if text[i : i + 1] == ",":
                i = _WHITESPACE.match(text, i + 1).end()
    except (ValueError, IndexError):
        pass
    return ends


def body_error(kind: str, raw: bytes) -> str:
    """System.Text.Json's error for a body that is empty, not JSON, or not a JSON object."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return "A non-empty request body is required."
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        char = text[error.pos] if error.pos < len(text) else ""
        where = _position(text, error.pos)
        if error.msg == "Expecting value":
            return f"'{char}' is an invalid start of a value. Path: $ | {where}."
        return f"'{char}' is invalid after a value. Expected either ',', '}}', or ']'. Path: $ | {where}."
    start = _WHITESPACE.match(text).end()
    end = start + 1 if text[start] in "[{" else json.JSONDecoder().raw_decode(text, start)[1]
    dto = _DTO_NAMESPACE + DTO_NAMES.get(kind, "SubmitImagineDTO")
    return f"The JSON value could not be converted to {dto}. Path: $ | {_position(text, end)}."


def _convert(kind: str, value: Any) -> tuple[bool, Any]:
    """(ok, value as the DTO holds it) for one field of type ``kind``."""
    if kind == "string":
        return value is None or isinstance(value, str), value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "bool?":
        return value is None or isinstance(value, bool), value
    if kind == "int?":
        if value is None:
            return True, None
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):  # NumberHandling.AllowReadingFromString
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and value in _INT32, value
    if kind == "strings":
        return value is None or isinstance(value, list), value
    return value is None or isinstance(value, dict), value  # an object (AccountFilter)


def bind(route: str, body: dict[str, Any], raw: bytes | None = None) -> tuple[dict[str, Any], str | None]:
    """The body as trueai's DTO for ``route`` holds it (canonical field names, numbers read from
    strings), or the binding error's text. Routes without a spec come back unchanged."""
    spec = SPECS.get(route)
    if spec is None:
        return body, None
    names = {name.lower(): name for name in spec}
    if raw is None:  # relayed by new-api: Go's json.Marshal of the body as a map, keys sorted, compact
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    text = raw.decode("utf-8", "replace")
    bound: dict[str, Any] = {}
    for key, value in body.items():
        name = names.get(key.lower())
        if name is None:
            continue  # System.Text.Json skips what the DTO does not have
        ok, converted = _convert(spec[name], value)
        path, type_name = f"$.{key}", _TYPE_NAMES[spec[name]]
        if ok and spec[name] == "strings" and value is not None:
            bad = next((i for i, item in enumerate(value) if item is not None and not isinstance(item, str)), None)
            if bad is not None:
                ok, path, type_name = False, f"$.{key}[{bad}]", "System.String"
        if not ok:
            end = _value_ends(text).get(key, len(text))
            return body, f"The JSON value could not be converted to {type_name}. Path: {path} | {_position(text, end)}."
        bound[name] = converted
    return bound, None


@dataclass(frozen=True)
class DataUrl:
    """One image of a submit, as Dto/DataUrl.cs holds it: a link, or a MIME type and bytes."""

    mime: str | None = None
    data: bytes | None = None
    url: str | None = None


_DATA_URL = re.compile(r"data:(?P<type>.+?);base64,(?P<data>.+)")  # not anchored, as in Parse


def parse_image(value: str | None) -> DataUrl | None:
    """DataUrl.Parse: None for blank, a link for ``http...``, else the decoded bytes; raises
    ValueError for what Convert.FromBase64String refuses (the caller answers base64格式错误)."""
    if value is None or not value.strip():
        return None
    if value[:4].lower() == "http":
        return DataUrl(url=value)
    match = _DATA_URL.search(value)
    mime, data = (match.group("type"), match.group("data")) if match else ("image/png", value)
    try:  # Convert.FromBase64String skips white space, and wants whole 4-character groups
        return DataUrl(mime=mime, data=base64.b64decode(re.sub(r"\s", "", data), validate=True))
    except (binascii.Error, ValueError) as error:
        raise ValueError("base64格式错误") from error


def parse_images(values: list[str | None]) -> list[DataUrl]:
    """DataUrl.ConvertBase64Array: blank entries are skipped."""
    return [image for image in map(parse_image, values) if image is not None]


_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
}
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"))


def file_suffix(image: DataUrl) -> str:
    """MjImageHelper.GuessFileSuffix: from the MIME type, else the bytes, else ``.jpg``."""
    suffix = _SUFFIXES.get((image.mime or "").lower())
    if suffix:
        return suffix
    data = image.data or b""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".jpg")
