"""Prompt checks: normalising, length, banned words, and Midjourney parameter syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.errors import BadParameter, BannedWord, EmptyPrompt, MjBotError, PromptTooLong
from bot.core.prompt import MAX_PROMPT_LENGTH, check_prompt, normalize_prompt

EN = json.loads((Path(__file__).resolve().parent.parent / "bot" / "locales" / "en.json").read_text("utf-8"))


def assert_message_ok(error: MjBotError) -> str:
    """The error's key is in the catalogue and its params fill the message completely."""
    assert error.key in EN, error.key
    text = EN[error.key].format(**error.params)
    assert "{" not in text and "}" not in text
    return text


def raises(prompt: str, **kwargs) -> MjBotError:
    with pytest.raises(MjBotError) as info:
        check_prompt(prompt, **kwargs)
    assert_message_ok(info.value)
    return info.value


# --- valid prompts -------------------------------------------------------------------------------

VALID = [
    "a cat",
    "a red fox in the snow, cinematic lighting --ar 16:9 --v 6.1",
    "portrait of an old fisherman, 85mm, film grain --ar 2:3 --style raw --s 250 --q 2",
    "https://s.mj.run/abc123 https://cdn.example.com/b.png a cat in a hat --ar 2:3 --iw 1.5",
    "space ship::2 hot dog::-0.5 --no text, watermark --c 20 --seed 12345",
    "anime girl, cherry blossoms --niji 6 --ar 9:16",
    "anime girl --niji",
    "a castle --v 7 --draft --turbo",
    "a castle --v 5.2 --relax",
    "a castle --version 5.0 --fast",
    "seamless floral pattern --tile --v 5",
    "a dancer --video --q .5",
    "a dancer --q 0.25",
    "a dancer --quality 4 --stylize 1000 --chaos 100 --weird 3000",
    "a dancer --q 1 --s 0 --c 0 --w 0",
    "a dancer --seed 0 --sameseed 4294967295",
    "a dancer --stop 10",
    "a dancer --stop 100 --iw 0 --iw 3 --iw .5",
    "a dancer --r 1 --repeat 40",
    "a knight --sref https://x.com/a.png --sw 100 --cref https://x.com/b.png --cw 0",
    "a knight --sref 1234567890 2345678901 --sw 1000",
    "a knight --sref random",
    "a knight --oref https://x.com/o.png --ow 1 --ow 1000 --exp 0 --exp 100",
    "a knight --p --profile abc123 def456",
    "a knight --p abc123",
    "a knight --ar 16:9 --ar 1:1",  # twice: Midjourney takes the last
    "a knight --AR 16:9 --V 6 --Q 2 --Stylize 100",  # names are case-insensitive
    "a knight --aspect 4:5",
    "a knight --futureparam whatever it takes --brandnew",  # unknown: passed on
    "a knight --motion high --bs 2 --loop --raw",
    "a knight --ar16:9",  # no space: an unknown parameter named "ar16:9", not ours to judge
    "一只可爱的猫咪，水墨画风格 --ar 3:4 --v 6",
    "東京の夜景、ネオン --niji 5",
    "🐱🚀 a cat astronaut ✨ --s 750",
    "café crème, naïve art, Ærø --no people",
    "a cat -- ar 16:9",  # "--" alone is text
    "a cat --",
    "--",
    "a cat - with a dash - and a -5 temperature",
    "a cat --ar {16:9, 1:1} --c {0, 50}",  # permutation prompts: Midjourney checks each
    "a {red, blue} bird --v {5.2, 6}",
]


@pytest.mark.parametrize("prompt", VALID)
def test_valid_prompts_pass_unchanged(prompt):
    assert check_prompt(prompt) == prompt


# --- normalising ---------------------------------------------------------------------------------

NORMALISED = [
    ("  a cat  ", "a cat"),
    ("a\n\ncat\t\tin  a hat", "a cat in a hat"),
    ("a cat\r\n--ar 16:9", "a cat --ar 16:9"),
    ("a\u3000cat\xa0here", "a cat here"),  # ideographic and no-break spaces
    ("a cat —ar 16:9", "a cat --ar 16:9"),  # em dash
    ("a cat –v 6", "a cat --v 6"),  # en dash
    ("a cat ——ar 16:9 ––no text", "a cat --ar 16:9 --no text"),
    ("—ar 16:9 a cat", "--ar 16:9 a cat"),
    ("a cat\n—ar 16:9\n–v 6", "a cat --ar 16:9 --v 6"),
    ("a cat —AR 16:9", "a cat --AR 16:9"),
    ("a cat — a dog", "a cat — a dog"),  # a dash between words stays a dash
    ("pre—war house", "pre—war house"),  # inside a word too
    ("1990–2000", "1990–2000"),
    ("a cat —16:9", "a cat —16:9"),  # not followed by a name
    ("", ""),
    (" \n\t ", ""),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalize_prompt(raw, expected):
    assert normalize_prompt(raw) == expected


def test_check_prompt_returns_the_normalised_prompt():
    assert check_prompt("  a cat\n —ar 16:9  –v 6.1 ") == "a cat --ar 16:9 --v 6.1"


def test_em_dash_parameters_are_validated_too():
    error = raises("a cat —ar 3")
    assert isinstance(error, BadParameter)
    assert error.params["parameter"] == "--ar"


# --- empty and length ----------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", " ", "\n\n", "\t \u3000 \xa0"])
def test_empty_prompt(prompt):
    assert isinstance(raises(prompt), EmptyPrompt)


def test_length_limit_boundary():
    assert len(check_prompt("a" * MAX_PROMPT_LENGTH)) == MAX_PROMPT_LENGTH
    error = raises("a" * (MAX_PROMPT_LENGTH + 1))
    assert isinstance(error, PromptTooLong)
    assert error.params == {"limit": MAX_PROMPT_LENGTH, "length": MAX_PROMPT_LENGTH + 1}


def test_length_is_counted_after_normalising():
    assert check_prompt("a" * 10 + " " * 50 + "b" * 9, max_length=20) == "a" * 10 + " " + "b" * 9


def test_custom_max_length():
    assert check_prompt("abcde", max_length=5) == "abcde"
    error = raises("abcdef", max_length=5)
    assert isinstance(error, PromptTooLong)
    assert error.params == {"limit": 5, "length": 6}


# --- banned words --------------------------------------------------------------------------------

BANNED_MATCHES = [
    # (banned list, prompt, the word named in the error)
    (["ass"], "ass", "ass"),
    (["ass"], "a big ASS!", "ass"),
    (["ass"], "big-ass truck", "ass"),  # a hyphen is a boundary
    (["ass"], "(ass) 'ass' \"ass\"", "ass"),
    (["ass"], "a cat --no ass", "ass"),
    (["Ass"], "an ass", "Ass"),  # named as the admin spelled it
    (["ass"], "一个ass女孩", "ass"),  # CJK letters next to a Latin word are a boundary
    (["blood bath"], "a Blood  Bath scene", "blood bath"),  # whitespace folded
    (["blood bath"], "a blood\nbath", "blood bath"),
    (["  Blood   Bath  "], "a blood bath", "Blood Bath"),
    (["gore", "nude"], "nude and gore", "gore"),  # the first in the list
    (["", "   ", "nude"], "nude", "nude"),  # empty entries ignored
    (["暴力"], "血腥暴力的场景", "暴力"),  # CJK: substring
    (["暴力"], "暴力", "暴力"),
    (["ヌード"], "美しいヌード写真", "ヌード"),
    (["폭력"], "폭력을 묘사한", "폭력"),
    (["AV女优"], "一个av女优", "AV女优"),  # mixed: substring, case-insensitive
    (["c++"], "learn C++ now", "c++"),  # regex characters are literal
    (["naïve"], "NAÏVE art", "naïve"),
]


@pytest.mark.parametrize(("banned", "prompt", "word"), BANNED_MATCHES)
def test_banned_words_match(banned, prompt, word):
    error = raises(prompt, banned_words=banned)
    assert isinstance(error, BannedWord)
    assert error.params == {"word": word}
    assert f'"{word}"' in assert_message_ok(error)


BANNED_NO_MATCH = [
    (["ass"], "a class in a passage"),
    (["ass"], "assassin, bass, grass, mass"),
    (["ass"], "ass_hat ass2"),  # underscore and digits are word characters
    (["blood bath"], "bloodbath, blood, bath"),
    (["blood bath"], "blood-bath"),
    (["暴力"], "和平的场景"),
    (["", " ", "\n"], "anything at all"),
    ([], "anything at all"),
]


@pytest.mark.parametrize(("banned", "prompt"), BANNED_NO_MATCH)
def test_banned_words_do_not_match(banned, prompt):
    assert check_prompt(prompt, banned_words=banned) == prompt


def test_banned_words_accept_any_sequence():
    with pytest.raises(BannedWord):
        check_prompt("a nude", banned_words=("nude",))


# --- malformed parameters ------------------------------------------------------------------------

BAD_PARAMETERS = [
    # (prompt, parameter, value shown)
    ("a cat --ar 3", "--ar", "3"),
    ("a cat --ar 16/9", "--ar", "16/9"),
    ("a cat --ar 0:1", "--ar", "0:1"),
    ("a cat --ar 1:0", "--ar", "1:0"),
    ("a cat --ar a:b", "--ar", "a:b"),
    ("a cat --ar -16:9", "--ar", "-16:9"),
    ("a cat --ar 16:9:1", "--ar", "16:9:1"),
    ("a cat --ar １６:９", "--ar", "１６:９"),  # full-width digits
    ("a cat --ar", "--ar", "(nothing)"),
    ("a cat --ar --v 6", "--ar", "(nothing)"),
    ("a cat --aspect 3", "--aspect", "3"),
    ("a cat --AR 3", "--ar", "3"),
    ("a cat --ar 16:9 in a hat", "--ar", "16:9 in a hat"),  # text after a parameter
    ("a cat --v 10", "--v", "10"),
    ("a cat --v 0.5", "--v", "0.5"),
    ("a cat --v 0", "--v", "0"),
    ("a cat --v v6", "--v", "v6"),
    ("a cat --v 6.", "--v", "6."),
    ("a cat --v", "--v", "(nothing)"),
    ("a cat --version latest", "--version", "latest"),
    ("a cat --niji 3", "--niji", "3"),
    ("a cat --niji 6.5", "--niji", "6.5"),
    ("a cat --niji anime", "--niji", "anime"),
    ("a cat --q 3", "--q", "3"),
    ("a cat --q 0.3", "--q", "0.3"),
    ("a cat --q", "--q", "(nothing)"),
    ("a cat --quality high", "--quality", "high"),
    ("a cat --s 1001", "--s", "1001"),
    ("a cat --s -1", "--s", "-1"),
    ("a cat --s 2.5", "--s", "2.5"),
    ("a cat --stylize", "--stylize", "(nothing)"),
    ("a cat --c 101", "--c", "101"),
    ("a cat --chaos lots", "--chaos", "lots"),
    ("a cat --w 3001", "--w", "3001"),
    ("a cat --weird", "--weird", "(nothing)"),
    ("a cat --seed 4294967296", "--seed", "4294967296"),
    ("a cat --seed -1", "--seed", "-1"),
    ("a cat --sameseed x", "--sameseed", "x"),
    ("a cat --stop 9", "--stop", "9"),
    ("a cat --stop 101", "--stop", "101"),
    ("a cat --iw 3.5", "--iw", "3.5"),
    ("a cat --iw", "--iw", "(nothing)"),
    ("a cat --r 0", "--r", "0"),
    ("a cat --repeat 41", "--repeat", "41"),
    ("a cat --no", "--no", "(nothing)"),
    ("a cat --no --ar 16:9", "--no", "(nothing)"),
    ("a cat --style", "--style", "(nothing)"),
    ("a cat --tile 1", "--tile", "1"),
    ("a cat --relax now", "--relax", "now"),
    ("a cat --fast 2", "--fast", "2"),
    ("a cat --turbo yes", "--turbo", "yes"),
    ("a cat --draft 1", "--draft", "1"),
    ("a cat --video 1", "--video", "1"),
    ("a cat --sref", "--sref", "(nothing)"),
    ("a cat --cref", "--cref", "(nothing)"),
    ("a cat --oref --ow 100", "--oref", "(nothing)"),
    ("a cat --sw 1001", "--sw", "1001"),
    ("a cat --cw -5", "--cw", "-5"),
    ("a cat --ow 0", "--ow", "0"),
    ("a cat --ow 1001", "--ow", "1001"),
    ("a cat --exp 101", "--exp", "101"),
    ("a cat --v 6 --ar 16:9 --ar 3", "--ar", "3"),  # each occurrence is checked
    ("a cat --ar 16:9 —v 99", "--v", "99"),
]


@pytest.mark.parametrize(("prompt", "parameter", "value"), BAD_PARAMETERS)
def test_bad_parameters(prompt, parameter, value):
    error = raises(prompt)
    assert isinstance(error, BadParameter)
    assert error.params["parameter"] == parameter
    assert error.params["value"] == value
    expected = error.params["expected"]
    # It ends a sentence the template finishes: short, and no full stop of its own.
    assert expected and len(expected) <= 50 and not expected.endswith(".")
    text = assert_message_ok(error)
    assert f"{parameter} {value} is not valid: {expected}." in text


def test_bad_parameter_message_reads_well():
    error = raises("a cat --ar 3")
    assert assert_message_ok(error) == (
        "The parameter --ar 3 is not valid: a ratio like 16:9. Please fix it and try again."
    )


def test_a_long_bad_value_is_shortened_in_the_message():
    error = raises("a cat --ar 16:9 " + "very long text " * 100)
    value = error.params["value"]
    assert len(value) == 40 and value.startswith("16:9 very long") and value.endswith("…")


def test_errors_come_in_order_empty_length_banned_parameter():
    with pytest.raises(PromptTooLong):
        check_prompt("nude " * 1000 + "--ar 3", banned_words=["nude"])
    with pytest.raises(BannedWord):
        check_prompt("nude --ar 3", banned_words=["nude"])
