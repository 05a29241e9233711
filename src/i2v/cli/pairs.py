"""KEY=VALUE pairs from the command line: `i2v generate --option` and `i2v submit --input`.

One rule for both, so that a value means the same wherever it is typed: VALUE is read as
a TOML value (the syntax of the catalog's option tables) when it is one JSON can also
carry, otherwise it is the text as typed.
"""

from __future__ import annotations

import datetime
import math
import tomllib
from collections.abc import Iterable
from typing import Any

# The --help wording of the rule, shared by the commands that take pairs.
VALUE_HELP = (
    'VALUE is read as TOML: 2, 0.1, true, "text", [1, 2]; anything else (a bare word '
    "such as model) is text"
)


def parse_pair(pair: str) -> tuple[str, Any]:
    """KEY and the value of one KEY=VALUE; ValueError naming the pair when it is not one."""
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {pair!r}")
    return key, parse_value(raw)


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """Every pair as KEY -> value (a later KEY wins); ValueError at the first malformed."""
    return dict(parse_pair(pair) for pair in pairs)


def parse_value(raw: str) -> Any:
    """`raw` as a TOML value (2, 0.1, true, "text", [1, 2], {a = 1}); text as typed when it
    is not one, or is one JSON cannot carry (a date, inf, nan)."""
    try:
        table = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    # A newline in `raw` can make further keys, which would drop part of what was typed.
    if table.keys() != {"v"} or not _json_like(table["v"]):
        return raw
    return table["v"]


def _json_like(value: Any) -> bool:
    # `i2v submit` sends the value as JSON, and no engine option is a date or infinite.
    if isinstance(value, datetime.date | datetime.time):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_like(item) for item in value)
    if isinstance(value, dict):
        return all(_json_like(item) for item in value.values())
    return True
