"""Request-scoped helpers shared by the dialect routers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api.auth import KeyRing
from i2v.api.services import Services
from i2v.api.views import Views
from i2v.domain.settings import Settings
from i2v.store.sql import Store

T = TypeVar("T")


def owner_dependency(keys: KeyRing) -> Callable[[Request], Awaitable[str]]:
    async def owner(request: Request) -> str:
        header = request.headers.get("authorization")
        # Configured and recently seen keys are answered on the event loop; only a
        # database lookup goes to the thread pool.
        known = keys.known_owner(header)
        return known if known is not None else await run_in_threadpool(keys.owner, header)

    return owner


def base_url_getter(settings: Settings) -> Callable[[Request], str]:
    """Where clients reach us: the configured public URL, else this request's own base."""

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    return base_url


def views_getter(
    services: Services, base_url: Callable[[Request], str]
) -> Callable[[Request], Views]:
    def views(request: Request) -> Views:
        return Views(base_url(request), services.signer, services.storage)

    return views


async def read(store: Store, fn: Callable[[], T]) -> T:
    """Run a store read: inline where reads are local and quick (SQLite), else in a thread."""
    if store.reads_are_local:
        return fn()
    return await run_in_threadpool(fn)


def with_body(endpoint: Callable[..., Any], body_model: type[BaseModel]) -> Callable[..., Any]:
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
