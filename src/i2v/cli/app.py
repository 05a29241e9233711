"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="i2v",
    help="Self-hosted image-to-video: generate locally or serve the WaveSpeed/RunComfy APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
