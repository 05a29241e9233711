"""`i2v keys create|list|revoke`: API keys stored hashed in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from i2v.api.auth import hash_key, new_key
from i2v.cli import wiring
from i2v.cli.app import app
from i2v.domain.settings import Settings

keys_app = typer.Typer(help="Manage API keys (stored hashed; shown once on creation).")
app.add_typer(keys_app, name="keys")
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="The server's data directory.")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "key",
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it (the only time it is shown)."""
    store = wiring.open_store(_settings(data_dir))
    key = new_key()
    store.add_key(hash_key(key), name=name, prefix=key[:8])
    store.close()
    typer.echo(key)


@keys_app.command("list")
def list_keys(data_dir: DataDir = None) -> None:
    """List keys by name and prefix (never the keys themselves)."""
    store = wiring.open_store(_settings(data_dir))
    table = Table("name", "prefix", "created", "revoked")
    for record in store.list_keys():
        table.add_row(
            record.name,
            record.prefix,
            record.created_at.isoformat(timespec="seconds"),
            record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "",
        )
    store.close()
    console.print(table)


@keys_app.command("revoke")
def revoke(name_or_prefix: str, data_dir: DataDir = None) -> None:
    """Revoke every key with this name or prefix."""
    store = wiring.open_store(_settings(data_dir))
    found = store.revoke_key(name_or_prefix)
    store.close()
    if not found:
        typer.echo(f"no active key named or prefixed {name_or_prefix!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name_or_prefix}")
