"""`i2v serve`: the API with in-process workers on the embedded default (SQLite, local files)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, media and secrets live here.")
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="Catalog TOML, or `gpu` (built in); default: built in.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="In-process workers (0: API only).")] = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL clients use.")] = None,
    allow_fetch: Annotated[
        list[str] | None, typer.Option(help="Host or network URL fetches may reach (repeatable).")
    ] = None,
    lease_seconds: Annotated[float | None, typer.Option(help="Worker lease length.")] = None,
) -> None:
    """Serve the WaveSpeed v3 and RunComfy APIs, with workers in this process."""
    import uvicorn

    from i2v.api import connection
    from i2v.api.app import create_app
    from i2v.cli import logs, wiring

    settings = wiring.settings_from(
        {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "catalog": catalog,
            "workers": workers,
            "public_url": public_url,
            "allow_fetch": allow_fetch,
            "lease_seconds": lease_seconds,
        }
    )
    settings.check_public_url()  # before anything opens: refused outright, with the fix
    logs.configure(settings.log_format, settings.log_level)
    store = wiring.open_store(settings)
    services = wiring.build_services(settings, store)
    key = wiring.ensure_key(settings, store)

    # Workers share this process with the API; hand the GIL over sooner than the 5 ms
    # default so a busy render thread does not add milliseconds to every request.
    sys.setswitchinterval(0.001)
    stop = threading.Event()
    in_process = wiring.build_workers(
        settings, store, services.storage, settings.workers, metrics=services.metrics
    )
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"worker-{i}", daemon=True)
        for i, w in enumerate(in_process)
    ]
    for thread in threads:
        thread.start()

    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]i2v[/bold] serving on {base}")
    console.print(f"  playground: {base}/   API docs: {base}/docs")
    console.print(f"  data: {settings.data_dir.resolve()}  workers: {settings.workers}")
    if key:
        console.print(
            f"  API key: [bold]{key}[/bold]  (kept in {settings.data_dir / wiring.KEY_FILE})"
        )
    console.print(f"  try: curl -H 'Authorization: Bearer <key>' {base}/api/v3/models")
    try:
        uvicorn.run(
            create_app(services),
            host=settings.host,
            port=settings.port,
            log_config=None,  # our handlers (logs.configure), for uvicorn's access log too
            log_level=settings.log_level,
            access_log=settings.access_log,
            timeout_graceful_shutdown=5,
            **connection.uvicorn_options(),  # header cap (431) and head deadline (408)
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        store.close()
