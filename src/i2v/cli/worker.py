"""`i2v worker`: workers without the API, for scale-out.

Point any number of them (on GPU machines, say) at the database and media folder an
`i2v serve --workers 0` uses: they claim from the same queue, fenced by leases.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from i2v.cli import wiring
from i2v.cli.app import app

console = Console(stderr=True)


@app.command()
def worker(
    data_dir: Annotated[Path | None, typer.Option(help="The server's data directory.")] = None,
    workers: Annotated[int, typer.Option(help="Worker threads in this process.")] = 1,
    engine: Annotated[
        list[str] | None,
        typer.Option(help="Only claim jobs for this engine (repeatable); default: any."),
    ] = None,
    lease_seconds: Annotated[float | None, typer.Option(help="Worker lease length.")] = None,
) -> None:
    """Run workers against a server's queue (I2V_DATABASE_URL / I2V_MEDIA_DIR to share)."""
    settings = wiring.settings_from({"data_dir": data_dir, "lease_seconds": lease_seconds})
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = wiring.open_store(settings)
    storage = wiring.build_storage(settings)
    engines = frozenset(engine) if engine else None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"worker-{i}")
        for i, w in enumerate(wiring.build_workers(settings, store, storage, workers, engines))
    ]
    for thread in threads:
        thread.start()
    console.print(
        f"i2v worker: {workers} worker(s) on {settings.resolved_database_url}"
        f" for {', '.join(sorted(engines)) if engines else 'every engine'}"
    )
    try:
        while any(t.is_alive() for t in threads):
            stop.wait(0.5)
            if stop.is_set():
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        store.close()
