"""The operator page: `/admin` (a static shell) and `GET /api/admin/overview` (its data,
for keys created with `i2v keys create --admin`). Read-only.

The page carries no data and needs no key; its script asks for an admin key (kept in the
browser), then polls the overview with it. Keys in I2V_API_KEYS are never admin: an
operator makes one with the CLI, on the machine that holds the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from i2v.api.deps import OwnerDep, ServicesDep
from i2v.api.services import Services
from i2v.dialects.wavespeed import envelope
from i2v.domain.errors import Forbidden
from i2v.domain.owners import key_id
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store.stats import Stats

PAGE = Path(__file__).resolve().parent / "admin.html"
# Its own script and styles only; it reads only this server; no frames, forms or plugins.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
THROUGHPUT_WINDOW = timedelta(hours=1)
FAILURES_SHOWN = 20
FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

routes = APIRouter()


async def get_admin(services: ServicesDep, owner: OwnerDep) -> str:
    """The owner of an admin key; `Forbidden` for any other valid key."""
    record = await run_in_threadpool(services.store.keys.find, owner)
    if record is None or not record.admin:
        raise Forbidden("this key is not an admin key (create one: i2v keys create --admin)")
    return owner


AdminDep = Annotated[str, Depends(get_admin)]


@routes.get("/admin", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(PAGE, headers=PAGE_HEADERS)


@routes.get(
    "/api/admin/overview",
    tags=["operator"],
    summary="Queue per route, running predictions, recent failures, last hour's throughput",
)
async def overview(services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    return envelope(await run_in_threadpool(_overview, services))


def _overview(services: Services) -> dict[str, Any]:
    stats = Stats(services.store.database)
    now = datetime.now(UTC)
    depth = stats.queue_depth()
    finished = stats.finished_since(now - THROUGHPUT_WINDOW)
    per_route: dict[str, dict[str, int]] = {}
    for count in finished:
        per_route.setdefault(count.route, dict.fromkeys((s.value for s in FINAL), 0))
        per_route[count.route][count.status.value] = count.count
    return {
        "generated_at": now.isoformat(),
        "queue": [{"route": r, "queued": n} for r, n in sorted(depth.items())],
        "queued_total": sum(depth.values()),
        "running": [_running(p, now) for p in stats.running()],
        "failures": [_failure(p) for p in stats.recent_failures(FAILURES_SHOWN)],
        "last_hour": [{"route": route, **counts} for route, counts in sorted(per_route.items())],
        "last_hour_total": sum(c.count for c in finished),
    }


def _running(p: Prediction, now: datetime) -> dict[str, Any]:
    return {
        "id": p.id,
        "route": p.model,
        "key_id": key_id(p.owner),
        "worker": p.lease_owner,
        "attempt": p.attempt,
        "progress": round(p.progress, 4),
        "message": p.progress_message,
        "running_s": round((now - p.started_at).total_seconds(), 1) if p.started_at else None,
    }


def _failure(p: Prediction) -> dict[str, Any]:
    return {
        "id": p.id,
        "route": p.model,
        "key_id": key_id(p.owner),
        "attempts": p.attempt,
        "error": p.error,
        "finished_at": p.finished_at.isoformat() if p.finished_at else None,
    }
