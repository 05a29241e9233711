"""Dependencies the routes declare (`ServicesDep`, `OwnerDep`, ...), and helpers they share.

`create_app` keeps the services and the key ring on `app.state`; routes reach them only
through these.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api.gate import OWNER_STATE
from i2v.api.services import Services
from i2v.dialects.views import Views
from i2v.domain.prediction import Prediction
from i2v.store import Store

T = TypeVar("T")
V = TypeVar("V", bound=Views)


# Dependencies are `async def` even where they never await: FastAPI runs a plain `def`
# dependency in the thread pool, and a thread hop per dependency would cost more than the
# whole result poll.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_owner(request: Request) -> str:
    """The owner of the request's API key. `Gate`, in front of every route under the API
    prefixes, checked the key from the headers before the body was read and left the
    owner in the request state: authentication is decided there, once."""
    owner: str | None = request.scope.get("state", {}).get(OWNER_STATE)
    if owner is None:  # a route outside the gate's prefixes asked for an owner: a bug
        raise RuntimeError(f"{request.url.path} is not behind the API key check (Gate)")
    return owner


ServicesDep = Annotated[Services, Depends(get_services)]
OwnerDep = Annotated[str, Depends(get_owner)]


async def get_base_url(request: Request) -> str:
    """Where clients reach us: the configured public URL, else this request's own base."""
    return base_url_of(request, request.app.state.services)


def base_url_of(request: Request, services: Services) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


BaseUrlDep = Annotated[str, Depends(get_base_url)]


def make_views(kind: type[V], services: Services, base_url: str) -> V:
    return kind(base_url, services.signer, services.storage, services.settings.retention)


def views_dependency(kind: type[V]) -> Callable[[Request], Awaitable[V]]:
    """A dependency giving a route `kind`'s views, with links on the request's base URL."""

    # One dependency on the request alone, not on two others: every level FastAPI solves
    # costs more per poll than building the views.
    async def views(request: Request) -> V:
        services: Services = request.app.state.services
        return make_views(kind, services, base_url_of(request, services))

    return views


async def read(store: Store, fn: Callable[[], T]) -> T:
    """Run a store read: inline where reads are local and quick (SQLite), else in a thread."""
    if store.predictions.reads_are_local:
        return fn()
    return await run_in_threadpool(fn)


async def owned(services: Services, prediction_id: str, owner: str) -> Prediction:
    """The owner's prediction; `NotFound` when there is none or it is another's."""
    store = services.store
    return await read(store, lambda: store.predictions.get(prediction_id, owner=owner))


async def rendered(
    views: Views, p: Prediction, view: Callable[[Prediction], dict[str, Any]]
) -> dict[str, Any]:
    """`view(p)`; in a thread when it must read the video (base64 output)."""
    if views.reads_storage(p):
        return await run_in_threadpool(view, p)
    return view(p)


def with_body(
    endpoint: Callable[..., Awaitable[T]], body_model: type[BaseModel]
) -> Callable[..., Awaitable[T]]:
    """Give `endpoint` a `body` parameter typed with a model built at start-up.

    FastAPI reads parameter types from the signature; a model made per catalog
    route cannot be written in the source, so we set the signature here.
    """
    signature = inspect.signature(endpoint)
    params = [
        p.replace(annotation=body_model) if p.name == "body" else p
        for p in signature.parameters.values()
    ]
    endpoint.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return endpoint
