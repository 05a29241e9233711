"""HTTP byte ranges (RFC 9110 §14) for media served from remote storage: video players
seek with `Range: bytes=...`, and a 10 s 1080p MP4 should not be sent whole for that.
(Local files go through Starlette's FileResponse, which does this itself.)"""

from __future__ import annotations

import re

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range starts past the end: answer 416 with `Content-Range: bytes */size`."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`(start, end)` (end exclusive) for a single-range header, or None to send it all:
    no header, a syntax we do not follow, or several ranges (a server may ignore those)."""
    if not header:
        return None
    match = _SINGLE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if size == 0:
        raise Unsatisfiable  # no byte of an empty object can be asked for
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return max(size - length, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or end <= start:
        raise Unsatisfiable
    return start, end
