"""Command line: the composition root. Only this package wires concrete classes.

Importing it is cheap: each command's module is imported when that command runs
(see `i2v.cli.app`).
"""

from __future__ import annotations

import typer

from i2v.cli.app import app
from i2v.domain.errors import I2VError


def main() -> None:
    try:
        app()
    except I2VError as exc:
        # A refusal we raised on purpose (a bad catalog, an unreadable image): its
        # message is for a person, a traceback is not.
        typer.echo(f"i2v: {exc.message}", err=True)
        raise SystemExit(2) from None


__all__ = ["app", "main"]
