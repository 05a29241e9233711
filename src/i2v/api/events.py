"""Server-sent events: a prediction's progress as it happens, ending with its outcome.

`GET .../events` answers `text/event-stream`. While the prediction waits or runs, an
`event: progress` comes whenever its status, progress or message changes (data: the
dialect's status view, the same JSON a poll returns). When it finishes, one last event
named by its outcome (`completed`, `succeeded`, `failed`, `cancelled`; data: the dialect's
result view), and the stream ends. A client gets everything a poll loop would, without
the loop. The row is re-read every POLL_SECONDS (a local read on SQLite); comment lines
keep idle proxies from closing a stream that is waiting in the queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from i2v.api.deps import read, rendered
from i2v.dialects.views import Views
from i2v.domain.errors import NotFound
from i2v.domain.prediction import Prediction
from i2v.store import Store

POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0
DESCRIPTION = (
    "`text/event-stream`: `progress` events (data: the status JSON) whenever status or "
    "progress changes, then one event named by the outcome (data: the result JSON)."
)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def route(router: APIRouter, path: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    """Declares a dialect's events endpoint (which calls `stream`) on `router`."""
    return router.get(
        path, summary=summary, description=DESCRIPTION, response_class=StreamingResponse
    )


async def stream(store: Store, prediction_id: str, owner: str, views: Views) -> StreamingResponse:
    """The event stream of the owner's prediction; `NotFound` (before any byte) if absent."""

    def look() -> tuple[Prediction, int | None]:
        return store.predictions.get_placed(prediction_id, owner=owner)

    first = await read(store, look)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    events = _events(store, look, first, views)
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _events(
    store: Store,
    look: Callable[[], tuple[Prediction, int | None]],
    first: tuple[Prediction, int | None],
    views: Views,
) -> AsyncIterator[bytes]:
    p, place = first
    number = 0
    last: tuple[object, ...] | None = None
    quiet = 0.0
    while not p.is_terminal:
        state = (p.status, place, round(p.progress, 4), p.progress_message)
        if state != last:
            number += 1
            yield _event("progress", views.progress(p, place), number)
            last, quiet = state, 0.0
        elif quiet >= KEEPALIVE_SECONDS:
            yield b": waiting\n\n"
            quiet = 0.0
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        try:
            p, place = await read(store, look)
        except NotFound:  # deleted meanwhile (its owner asked to)
            yield _event("deleted", {"id": p.id}, number + 1)
            return
    data = await rendered(views, p, views.result)
    yield _event(str(data["status"]), data, number + 1)


def _event(name: str, data: dict[str, Any], number: int) -> bytes:
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {number}\nevent: {name}\ndata: {body}\n\n".encode()
