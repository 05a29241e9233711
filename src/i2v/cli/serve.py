"""`i2v serve`: the API with in-process workers on the embedded default (SQLite, local files)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from i2v.api.app import create_app
from i2v.cli import wiring
from i2v.cli.app import app

console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, media and secrets live here.")
    ] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalog TOML; default: built in.")] = None,
    workers: Annotated[int | None, typer.Option(help="In-process workers (0: API only).")] = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL clients use.")] = None,
    allow_fetch: Annotated[
        list[str] | None, typer.Option(help="Host or network URL fetches may reach (repeatable).")
    ] = None,
    lease_seconds: Annotated[float | None, typer.Option(help="Worker lease length.")] = None,
) -> None:
    """Serve the WaveSpeed v3 and RunComfy APIs, with workers in this process."""
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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = wiring.open_store(settings)
    services = wiring.build_services(settings, store)
    key = wiring.ensure_key(settings, store)

    # Workers share this process with the API; hand the GIL over sooner than the 5 ms
    # default so a busy render thread does not add milliseconds to every request.
    sys.setswitchinterval(0.001)
    stop = threading.Event()
    in_process = wiring.build_workers(settings, store, services.storage, settings.workers)
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
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        store.close()
