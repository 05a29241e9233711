"""Probes for orchestrators: `/healthz` (the process answers) and `/readyz` (it can serve:
the database answers with the newest schema and the object storage answers).

Neither needs a key, both are cheap, and `/healthz` touches nothing outside the process,
so a database outage makes instances unready (taken out of rotation) but not unhealthy
(restarted for nothing).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from i2v.api.deps import ServicesDep
from i2v.api.services import Services
from i2v.domain.errors import I2VError
from i2v.store.readiness import database_problem

# An object no one writes: asking whether it exists is a round trip to the storage.
PROBE_KEY = "readyz/probe"

routes = APIRouter(tags=["service"])


@routes.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@routes.get(
    "/readyz",
    summary="Readiness: the database and the storage answer, the schema is current",
    responses={503: {"description": "Not ready; `problems` says why"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    problems = await run_in_threadpool(_problems, services)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "problems": []})


def _problems(services: Services) -> list[str]:
    problems = []
    database = database_problem(services.store.database)
    if database is not None:
        problems.append(database)
    try:
        services.storage.exists(PROBE_KEY)
    except (I2VError, OSError) as exc:
        problems.append(f"storage: does not answer ({exc})")
    return problems
