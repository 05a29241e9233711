"""`i2v models`: the catalog's routes, their engines and whether their weights are here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def models(
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Catalog TOML, or `gpu` for the built-in GPU catalog; default: built in."
        ),
    ] = None,
    hf_cache: Annotated[
        Path | None,
        typer.Option(help="Hugging Face cache folder; default: huggingface_hub's own."),
    ] = None,
) -> None:
    """List catalog routes, their engine and whether their weights are present."""
    from i2v.domain.catalog import read_catalog
    from i2v.engines import registry
    from i2v.engines.diffusers.weights import find_weights

    routes = read_catalog(catalog)  # unchecked options too: this lists, it does not serve
    rows = [("ROUTE", "ENGINE", "VIDEO", "WEIGHTS", "WHERE")]
    for route in routes:
        weights = route.options.get("weights")
        video = f"{route.fps} fps, {'/'.join(str(n) for n in route.frames)} frames"
        if not registry.info(route.engine).gpu:
            rows.append((route.path, route.engine, video, "built in", "no weights needed"))
        elif not isinstance(weights, str) or not weights:
            rows.append((route.path, route.engine, video, "missing", "options.weights is not set"))
        else:
            cache = hf_cache or route.options.get("cache_dir") or None
            status = find_weights(weights, Path(cache) if cache else None)
            present = "present" if status.present else "missing"
            rows.append((route.path, route.engine, video, present, status.where))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        typer.echo("  ".join([*cells, row[4]]))
