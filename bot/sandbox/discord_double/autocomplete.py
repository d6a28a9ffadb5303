"""What Discord refuses in an autocomplete answer (callback type 8), answered 400 Invalid Form Body (50035).

``validate_autocomplete`` checks the data of a type 8 callback against the focused option's type;
like the checks of validation.py, it collects every invalid field and raises one ``ApiError`` whose
``errors`` nest by path.

Rules (Discord's limits, https://discord.com/developers/docs/interactions/receiving-and-responding
#interaction-response-object-autocomplete and application-commands#application-command-object-
application-command-option-choice-structure): ``choices`` required, at most 25; each choice a
``name`` of 1-100 characters, optional ``name_localizations`` (values 1-100 too), and a ``value``
of the focused option's type: a string of at most 100 characters for STRING, an integer in
+-(2^53 - 1) for INTEGER, a number in +-2^53 for NUMBER (numeric strings pass, as Discord
coerces them; a bool never does).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import FormErrors, Path
from .validation import _bad_length, _max_length, _required

MAX_CHOICES = 25
CHOICE_NAME = (1, 100)
MAX_CHOICE_STRING = 100
MAX_INTEGER = 2**53 - 1  # Discord's INTEGER option range, both ways
MAX_NUMBER = 2**53  # and its NUMBER range

OPTION_STRING, OPTION_INTEGER, OPTION_NUMBER = 3, 4, 10


def _choice_value(errors: FormErrors, path: Path, value: Any, option_type: int) -> None:
    """A choice's ``value`` must be of its option's type (Discord coerces numeric strings)."""
    if option_type == OPTION_STRING:
        if not isinstance(value, str):
            errors.add(path, "BASE_TYPE_STRING", f'Could not interpret "{json.dumps(value)}" as string.')
        else:
            _max_length(errors, path, value, MAX_CHOICE_STRING)
        return
    integer = option_type == OPTION_INTEGER
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            number = None
    not_integral = integer and isinstance(number, float) and not number.is_integer()  # 1.5 for an int
    if number is None or number != number or not_integral:  # number != number: NaN
        errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not {"int" if integer else "a valid number"}.')
        return
    limit = MAX_INTEGER if integer else MAX_NUMBER
    if number > limit:
        errors.add(path, "NUMBER_TYPE_MAX", f"{'int' if integer else 'float'} value should be {limit} or less.")
    elif number < -limit:
        errors.add(path, "NUMBER_TYPE_MIN", f"{'int' if integer else 'float'} value should be {-limit} or more.")


def autocomplete_errors(data: Any, option_type: int, *, prefix: Path = ("data",)) -> FormErrors:
    """Every invalid field of an autocomplete result (callback type 8 ``data``) for an option
    of ``option_type`` (3 STRING, 4 INTEGER, 10 NUMBER)."""
    errors = FormErrors(prefix)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        errors.add(("choices",), "BASE_TYPE_REQUIRED", "This field is required")
        return errors
    if len(choices) > MAX_CHOICES:
        errors.add(("choices",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
    low, high = CHOICE_NAME
    for index, choice in enumerate(choices):
        path: Path = ("choices", index)
        if not isinstance(choice, dict):
            errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        if _required(errors, (*path, "name"), choice.get("name")):
            _bad_length(errors, (*path, "name"), str(choice["name"]), low, high)
        localizations = choice.get("name_localizations")
        if isinstance(localizations, dict):
            for locale, localized in localizations.items():
                if localized is not None:
                    _bad_length(errors, (*path, "name_localizations", locale), str(localized), low, high)
        if _required(errors, (*path, "value"), choice.get("value")):
            _choice_value(errors, (*path, "value"), choice["value"], option_type)
    return errors


def validate_autocomplete(data: Any, option_type: int, *, prefix: Path = ("data",)) -> None:
    """Raise 400 Invalid Form Body if Discord would refuse these autocomplete choices."""
    autocomplete_errors(data, option_type, prefix=prefix).raise_if_any()
