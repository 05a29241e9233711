"""Command line: the composition root. Only this package wires concrete classes."""

from __future__ import annotations

from i2v.cli.app import app

# Each module registers its commands on `app` when imported.
from i2v.cli import generate, keys, models, serve  # noqa: F401  isort: skip


def main() -> None:
    app()


__all__ = ["app", "main"]
