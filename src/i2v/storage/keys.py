"""Object keys: where each object lives, and the check every key passes before a
store touches it. The layout is spelled here and nowhere else:

    inputs/{prediction id}{.jpg|.png|.webp}        the input image, as the client sent it
    inputs/{prediction id}-last{.ext}              the last frame, when one was given
    outputs/{prediction id}/{attempt}.mp4          one video per attempt
    uploads/{upload id}/{file name}                media uploads, before any prediction
"""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath

from i2v.domain.errors import InputError
from i2v.domain.prediction import Prediction

MAX_KEY_LENGTH = 1024


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative object key; `InputError` naming the rule if not."""
    if not key:
        raise InputError("must not be empty", field="key", value=key)
    if len(key) > MAX_KEY_LENGTH:
        raise InputError(
            f"must be at most {MAX_KEY_LENGTH} characters, got {len(key)}", field="key", value=key
        )
    if "\\" in key or "\x00" in key:
        raise InputError(
            f"must not contain backslashes or NUL, got {key!r}", field="key", value=key
        )
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise InputError(f"must be a relative path, got {key!r}", field="key", value=key)
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InputError(
                f"segments must be non-empty and not '.' or '..', got {key!r}",
                field="key",
                value=key,
            )
    return key


def input_key(prediction_id: str, extension: str, *, last: bool = False) -> str:
    """Where a prediction's input image lives. Flat: no folder to create per submit."""
    return f"inputs/{prediction_id}{'-last' if last else ''}{extension}"


def output_key(prediction_id: str, attempt: int) -> str:
    """Where an attempt's video lives: one key per attempt, so a late write from a
    replaced worker can never overwrite the attempt that replaced it."""
    return f"outputs/{prediction_id}/{attempt}.mp4"


def upload_key(filename: str) -> str:
    """A fresh key for an upload, keeping a cleaned-up form of the client's file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(filename).name).strip("._")
    return f"uploads/{uuid.uuid4().hex}/{(stem or 'upload')[-100:]}"


def upload_id(key: str) -> str | None:
    """The id of the upload `key` is (the random part its owner deletes it by); None for
    other keys."""
    match = _UPLOAD_KEY.fullmatch(key)
    return None if match is None else match.group(1)


# An upload's id: the random folder of its key (`upload_key`: a uuid4's hex).
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_UPLOAD_KEY = re.compile(rf"uploads/({UPLOAD_ID.pattern})/[^/]+")


def upload_prefix(upload_id: str) -> str:
    """The start every key of upload `upload_id` has."""
    return f"uploads/{upload_id}/"


def prediction_of(key: str) -> str | None:
    """The id of the prediction whose input or output `key` is; None for other keys."""
    match = _PREDICTION_KEY.fullmatch(key)
    return None if match is None else match.group(1) or match.group(2)


_PREDICTION_KEY = re.compile(r"(?:inputs/([^/]+?)(?:-last)?\.[a-z]+|outputs/([^/]+)/\d+\.mp4)")


def prediction_keys(p: Prediction) -> tuple[str, ...]:
    """Every object a prediction may own: its inputs and every attempt's output (a worker
    killed after writing its output leaves one behind)."""
    outputs = tuple(output_key(p.id, n) for n in range(1, p.attempt + 1))
    return (*p.spec.input_keys, *outputs)
