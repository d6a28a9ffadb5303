"""What Discord refuses in a message or modal, answered 400 Invalid Form Body (50035).

``validate_message`` checks a create or edit payload (channel messages, interaction
callbacks 4/7, webhook follow-ups and their edits); ``validate_modal`` the data of a
type 9 callback (autocomplete answers, type 8: autocomplete.py).  Both collect every
invalid field, like Discord, and raise one ``ApiError`` whose ``errors`` nest by path.  Only
fields present are checked, so an edit that leaves ``content`` out is not refused for the old
content.

Rules (Discord's limits, https://discord.com/developers/docs):

- ``content`` at most 2000 characters;
- at most 10 embeds; title 256, description 4096, at most 25 fields (name 256, value 1024),
  footer text 2048, author name 256; all embeds' text together at most 6000;
- an ``attachments`` array of at most 10 (uploads and their sizes: message_files.py);
- components (not components v2): at most 5 action rows, each with 1-5 components; a select
  menu fills a whole row; buttons: label at most 80, a custom_id of 1-100 characters unless a
  link (url, no custom_id) or premium (sku_id) button; selects: custom_id 1-100, placeholder
  150, string selects 1-25 options (label/value/description 100 each); every custom_id unique
  in the message; an emoji without ``id`` must be a Unicode emoji (see emoji.py);
- modals: custom_id 1-100, title 1-45, 1-5 rows (or labels), each row one text input; text
  input custom_id 1-100, label 1-45, placeholder 100, min_length 0-4000, max_length 1-4000
  and its prefilled ``value`` at most max_length (4000 by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .emoji import is_unicode_emoji
from .errors import FormErrors, Path

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_EMBED_FIELDS = 25
MAX_ATTACHMENTS = 10  # per message; more uploads without this array: 30015 (message_files.py)
MAX_ROWS = 5
MAX_ROW_WIDTH = 5
MAX_BUTTON_LABEL = 80
CUSTOM_ID = (1, 100)
MAX_SELECT_OPTIONS = 25
MAX_SELECT_PLACEHOLDER = 150
MAX_OPTION_TEXT = 100
MAX_MODAL_TITLE = 45
MAX_MODAL_ROWS = 5
MAX_INPUT_LABEL = 45
MAX_INPUT_PLACEHOLDER = 100
MAX_INPUT_LENGTH = 4000

IS_COMPONENTS_V2 = 1 << 15

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
SELECTS = frozenset({3, 5, 6, 7, 8})
SECTION, CONTAINER, LABEL = 9, 17, 18
LINK, PREMIUM = 5, 6


def _max_length(errors: FormErrors, path: Path, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(errors: FormErrors, path: Path, value: Any, low: int, high: int) -> None:
    if len(value) < low or len(value) > high:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _required(errors: FormErrors, path: Path, value: Any) -> bool:
    if value is None:
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return False
    return True


def _emoji(errors: FormErrors, path: Path, emoji: Any) -> None:
    if emoji is None:
        return
    if not isinstance(emoji, dict):
        errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    if emoji.get("id"):
        return  # a custom emoji: Discord resolves it by id
    # Discord names the code after buttons, for select options too.
    if not is_unicode_emoji(emoji.get("name") or ""):
        errors.add((*path, "name"), "BUTTON_COMPONENT_INVALID_EMOJI", "Invalid emoji")


class _Components:
    """Checks one message's components; remembers custom_ids to refuse duplicates."""

    def __init__(self, errors: FormErrors):
        self.errors = errors
        self.custom_ids: set[str] = set()

    def custom_id(self, path: Path, component: dict[str, Any], *, missing_code: str, missing_message: str) -> None:
        value = component.get("custom_id")
        if value is None:
            self.errors.add((*path, "custom_id"), missing_code, missing_message)
            return
        value = str(value)
        low, high = CUSTOM_ID
        _bad_length(self.errors, (*path, "custom_id"), value, low, high)
        if value in self.custom_ids:
            self.errors.add(
                (*path, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id was already specified"
            )
        self.custom_ids.add(value)

    def top_level(self, path: Path, components: Any, v2: bool) -> None:
        if not isinstance(components, list):
            return
        if not v2:
            if len(components) > MAX_ROWS:
                self.errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length.")
            for index, row in enumerate(components):
                self.row((*path, index), row)
        else:
            for index, component in enumerate(components):
                self.any((*path, index), component)

    def row(self, path: Path, row: Any) -> None:
        if not isinstance(row, dict):
            return
        children = row.get("components")
        if not isinstance(children, list):
            children = []
        _bad_length(self.errors, (*path, "components"), children, 1, MAX_ROW_WIDTH)
        if any(isinstance(c, dict) and c.get("type") in SELECTS for c in children) and len(children) > 1:
            self.errors.add(
                (*path, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for index, child in enumerate(children):
            self.any((*path, "components", index), child)

    def any(self, path: Path, component: Any) -> None:
        """A component anywhere (v2 layouts nest rows, sections and containers)."""
        if not isinstance(component, dict):
            return
        kind = component.get("type")
        if kind == ACTION_ROW:
            self.row(path, component)
        elif kind == BUTTON:
            self.button(path, component)
        elif kind in SELECTS:
            self.select(path, component)
        else:
            for index, child in enumerate(component.get("components") or []):
                self.any((*path, "components", index), child)
            for key in ("accessory", "component"):
                if isinstance(component.get(key), dict):
                    self.any((*path, key), component[key])

    def button(self, path: Path, button: dict[str, Any]) -> None:
        _max_length(self.errors, (*path, "label"), button.get("label"), MAX_BUTTON_LABEL)
        _emoji(self.errors, (*path, "emoji"), button.get("emoji"))
        style = button.get("style")
        if style == LINK:
            if not button.get("url"):
                self.errors.add((*path, "url"), "BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
            if button.get("custom_id") is not None:
                self.errors.add(
                    (*path, "custom_id"),
                    "BUTTON_COMPONENT_LINK_HAS_CUSTOM_ID",
                    "A link button cannot have a custom id",
                )
        elif style == PREMIUM:
            if not button.get("sku_id"):
                self.errors.add((*path, "sku_id"), "BUTTON_COMPONENT_SKU_ID_REQUIRED", "A sku id is required")
        else:
            self.custom_id(
                path,
                button,
                missing_code="BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
                missing_message="A custom id is required",
            )

    def select(self, path: Path, select: dict[str, Any]) -> None:
        self.custom_id(path, select, missing_code="BASE_TYPE_REQUIRED", missing_message="This field is required")
        _max_length(self.errors, (*path, "placeholder"), select.get("placeholder"), MAX_SELECT_PLACEHOLDER)
        if select.get("type") != STRING_SELECT:
            return
        options = select.get("options")
        if not isinstance(options, list):
            options = []
        _bad_length(self.errors, (*path, "options"), options, 1, MAX_SELECT_OPTIONS)
        for index, option in enumerate(options):
            if not isinstance(option, dict):
                continue
            opath = (*path, "options", index)
            for key in ("label", "value"):
                if _required(self.errors, (*opath, key), option.get(key)):
                    _bad_length(self.errors, (*opath, key), str(option[key]), 1, MAX_OPTION_TEXT)
            _max_length(self.errors, (*opath, "description"), option.get("description"), MAX_OPTION_TEXT)
            _emoji(self.errors, (*opath, "emoji"), option.get("emoji"))


def _embed_text(embed: dict[str, Any]) -> Iterable[Any]:
    yield embed.get("title")
    yield embed.get("description")
    for field in embed.get("fields") or []:
        if isinstance(field, dict):
            yield field.get("name")
            yield field.get("value")
    for key in ("footer", "author"):
        part = embed.get(key)
        if isinstance(part, dict):
            yield part.get("text" if key == "footer" else "name")


def _embeds(errors: FormErrors, embeds: Any) -> None:
    if not isinstance(embeds, list):
        return
    if len(embeds) > MAX_EMBEDS:
        errors.add(("embeds",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            continue
        path: Path = ("embeds", index)
        for key, limit in EMBED_LIMITS.items():
            _max_length(errors, (*path, key), embed.get(key), limit)
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            errors.add((*path, "fields"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBED_FIELDS} or fewer in length.")
        for findex, field in enumerate(fields):
            if isinstance(field, dict):
                _max_length(errors, (*path, "fields", findex, "name"), field.get("name"), 256)
                _max_length(errors, (*path, "fields", findex, "value"), field.get("value"), 1024)
        if isinstance(embed.get("footer"), dict):
            _max_length(errors, (*path, "footer", "text"), embed["footer"].get("text"), 2048)
        if isinstance(embed.get("author"), dict):
            _max_length(errors, (*path, "author", "name"), embed["author"].get("name"), 256)
        total += sum(len(text) for text in _embed_text(embed) if isinstance(text, str))
    if total > MAX_EMBED_TOTAL:
        errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")


def message_errors(payload: Any, *, prefix: Path = (), components_v2: bool = False) -> FormErrors:
    """Every invalid field of a message create/edit payload (empty if it is valid)."""
    errors = FormErrors(prefix)
    if not isinstance(payload, dict):
        return errors
    _max_length(errors, ("content",), payload.get("content"), MAX_CONTENT)
    _embeds(errors, payload.get("embeds"))
    attachments = payload.get("attachments")
    if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
        errors.add(("attachments",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
    v2 = components_v2 or bool(int(payload.get("flags") or 0) & IS_COMPONENTS_V2)
    _Components(errors).top_level(("components",), payload.get("components"), v2)
    return errors


def validate_message(payload: Any, *, prefix: Path = (), components_v2: bool = False) -> None:
    """Raise 400 Invalid Form Body if Discord would refuse this message payload."""
    message_errors(payload, prefix=prefix, components_v2=components_v2).raise_if_any()


def _text_input(
    errors: FormErrors, components: _Components, path: Path, text_input: dict[str, Any], *, needs_label: bool
) -> None:
    components.custom_id(path, text_input, missing_code="BASE_TYPE_REQUIRED", missing_message="This field is required")
    label = text_input.get("label")
    if needs_label and _required(errors, (*path, "label"), label):
        _bad_length(errors, (*path, "label"), str(label), 1, MAX_INPUT_LABEL)
    elif label is not None:
        _max_length(errors, (*path, "label"), label, MAX_INPUT_LABEL)
    _max_length(errors, (*path, "placeholder"), text_input.get("placeholder"), MAX_INPUT_PLACEHOLDER)
    min_length, max_length = text_input.get("min_length"), text_input.get("max_length")
    if isinstance(min_length, int) and not 0 <= min_length <= MAX_INPUT_LENGTH:
        errors.add(
            (*path, "min_length"),
            "NUMBER_TYPE_MAX" if min_length > 0 else "NUMBER_TYPE_MIN",
            f"Int value should be between 0 and {MAX_INPUT_LENGTH}.",
        )
    if isinstance(max_length, int) and not 1 <= max_length <= MAX_INPUT_LENGTH:
        errors.add(
            (*path, "max_length"),
            "NUMBER_TYPE_MAX" if max_length > 1 else "NUMBER_TYPE_MIN",
            f"Int value should be between 1 and {MAX_INPUT_LENGTH}.",
        )
    limit = max_length if isinstance(max_length, int) and 1 <= max_length <= MAX_INPUT_LENGTH else MAX_INPUT_LENGTH
    _max_length(errors, (*path, "value"), text_input.get("value"), limit)


def modal_errors(data: Any, *, prefix: Path = ("data",)) -> FormErrors:
    """Every invalid field of a modal (interaction callback type 9 ``data``)."""
    errors = FormErrors(prefix)
    if not isinstance(data, dict):
        errors.add((), "BASE_TYPE_REQUIRED", "This field is required")
        return errors
    components = _Components(errors)
    components.custom_id((), data, missing_code="BASE_TYPE_REQUIRED", missing_message="This field is required")
    if _required(errors, ("title",), data.get("title")):
        title = str(data["title"])
        if not title:
            errors.add(("title",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_MODAL_TITLE} in length.")
        _max_length(errors, ("title",), title, MAX_MODAL_TITLE)
    rows = data.get("components")
    if not isinstance(rows, list):
        rows = []
    _bad_length(errors, ("components",), rows, 1, MAX_MODAL_ROWS)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        path: Path = ("components", index)
        kind = row.get("type")
        if kind == ACTION_ROW:
            children = row.get("components") or []
            _bad_length(errors, (*path, "components"), children, 1, 1)
            for cindex, child in enumerate(children):
                if isinstance(child, dict) and child.get("type") == TEXT_INPUT:
                    _text_input(errors, components, (*path, "components", cindex), child, needs_label=True)
        elif kind == LABEL:
            if _required(errors, (*path, "label"), row.get("label")):
                _bad_length(errors, (*path, "label"), str(row["label"]), 1, MAX_INPUT_LABEL)
            child = row.get("component")
            if isinstance(child, dict) and child.get("type") == TEXT_INPUT:
                _text_input(errors, components, (*path, "component"), child, needs_label=False)
            elif isinstance(child, dict):
                components.any((*path, "component"), child)
    return errors


def validate_modal(data: Any, *, prefix: Path = ("data",)) -> None:
    """Raise 400 Invalid Form Body if Discord would refuse this modal."""
    modal_errors(data, prefix=prefix).raise_if_any()
