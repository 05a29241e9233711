"""KEY=VALUE on the command line: one rule for `generate --option` and `submit --input`."""

from __future__ import annotations

from typing import Any

import pytest

from i2v.cli.pairs import parse_pair, parse_pairs


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("steps=2", ("steps", 2)),
        ("shift=0.1", ("shift", 0.1)),
        ("camera_fixed=true", ("camera_fixed", True)),
        ('prompt="a quoted text"', ("prompt", "a quoted text")),
        ("sizes=[1, 2]", ("sizes", [1, 2])),
        ("cache={threshold = 0.1}", ("cache", {"threshold": 0.1})),
        ("offload=model", ("offload", "model")),  # a bare word stays text
        ("note=two words", ("note", "two words")),
        ("empty=", ("empty", "")),
        ("url=https://host/a?b=c", ("url", "https://host/a?b=c")),  # split at the first =
        (" spaced =3", ("spaced", 3)),
        # TOML values JSON cannot carry (`submit` sends JSON) stay as typed.
        ("day=2026-11-30", ("day", "2026-11-30")),
        ("x=inf", ("x", "inf")),
        ("x=nan", ("x", "nan")),
        ("x=[1, inf]", ("x", "[1, inf]")),
        # a newline must not let part of the value become another key
        ("x=1\ny = 2", ("x", "1\ny = 2")),
    ],
)
def test_values_read_as_toml_else_text(pair: str, expected: tuple[str, Any]) -> None:
    assert parse_pair(pair) == expected


@pytest.mark.parametrize("pair", ["steps", "=2", " =2", ""])
def test_a_pair_without_a_key_is_refused(pair: str) -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE, got"):
        parse_pair(pair)


def test_pairs_make_one_table_and_a_later_key_wins() -> None:
    assert parse_pairs(["a=1", "b=x", "a=2"]) == {"a": 2, "b": "x"}
    with pytest.raises(ValueError, match="'oops'"):
        parse_pairs(["a=1", "oops"])
