"""`i2v worker`: workers without the API, for scale-out.

Point any number of them (on GPU machines, say) at the database and media folder an
`i2v serve --workers 0` uses: they claim from the same queue, fenced by leases.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def worker(
    data_dir: Annotated[Path | None, typer.Option(help="The server's data directory.")] = None,
    workers: Annotated[int, typer.Option(help="Worker threads in this process.")] = 1,
    engine: Annotated[
        list[str] | None,
        typer.Option(help="Only claim jobs for this engine (repeatable); default: any."),
    ] = None,
    lease_seconds: Annotated[float | None, typer.Option(help="Worker lease length.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this process's Prometheus metrics on this port (/metrics)."),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
    gpus: Annotated[
        str | None,
        typer.Option(
            help="CUDA devices for each job, e.g. 0,1,2,3 (counted among CUDA_VISIBLE_DEVICES "
            "when set): one render runs across all of them (context parallelism), and one GPU "
            "engine is kept warm at a time. Default: each route's own device."
        ),
    ] = None,
) -> None:
    """Run workers against a server's queue (I2V_DATABASE_URL / I2V_MEDIA_DIR to share)."""
    from i2v.cli import logs, wiring

    devices = _parse_gpus(gpus) if gpus is not None else ()
    if len(devices) > 1 and workers > 1:
        # each worker thread keeps its own engines: two groups would share the GPUs
        raise typer.BadParameter(
            f"--gpus {gpus} gives every job all of these GPUs, so one worker thread uses them; "
            f"got --workers {workers} (run one `i2v worker` per set of GPUs instead)",
            param_hint="--gpus",
        )
    from i2v.metrics import Metrics

    settings = wiring.settings_from({"data_dir": data_dir, "lease_seconds": lease_seconds})
    logs.configure(settings.log_format, settings.log_level)
    if devices:
        # a route that cannot run on several GPUs (say offload = "model") fails now, by name
        wiring.load_catalog(settings.catalog, gpus=devices)
    store = wiring.open_store(settings)
    storage = wiring.build_storage(settings)
    engines = frozenset(engine) if engine else None
    metrics = Metrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        # prometheus_client's own server, in a daemon thread: it ends with the process.
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        console.print(f"metrics: http://{metrics_host}:{metrics_port}/metrics")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"worker-{i}")
        for i, w in enumerate(
            wiring.build_workers(
                settings, store, storage, workers, engines, metrics=metrics, gpus=devices
            )
        )
    ]
    for thread in threads:
        thread.start()
    console.print(
        f"i2v worker: {workers} worker(s) on {settings.resolved_database_url}"
        f" for {', '.join(sorted(engines)) if engines else 'every engine'}"
        + (f", each job on GPUs {', '.join(map(str, devices))}" if devices else "")
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


def _parse_gpus(value: str) -> tuple[int, ...]:
    """`0,1,2,3` -> (0, 1, 2, 3), checked as the catalog's `gpus` list is."""
    from i2v.engines.diffusers.options import gpu_ids

    parts = [part.strip() for part in value.split(",")]
    try:
        return gpu_ids([int(part) if part.isdigit() else part for part in parts])
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (--gpus {value})", param_hint="--gpus") from exc
