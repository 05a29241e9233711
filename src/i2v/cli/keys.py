"""`i2v keys create|list|revoke`: API keys stored hashed in the database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from i2v.domain.settings import Settings
    from i2v.store import KeyRecord

keys_app = typer.Typer(
    help="Manage API keys (stored hashed; shown once on creation).", add_completion=False
)
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="The server's data directory.")]


def _settings(data_dir: Path | None) -> Settings:
    from i2v.domain.settings import Settings

    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "key",
    max_queued: Annotated[
        int | None,
        typer.Option(min=1, help="Predictions it may have queued at once (default: server's)."),
    ] = None,
    max_running: Annotated[
        int | None,
        typer.Option(min=1, help="Predictions it may have rendering at once; more wait."),
    ] = None,
    rate: Annotated[int | None, typer.Option(min=1, help="Submits it may make per minute.")] = None,
    weight: Annotated[
        float | None,
        typer.Option(min=0.01, help="Its share of workers when keys compete (default 1)."),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="It may also see the operator page (/admin).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it (the only time it is shown)."""
    from i2v.api.auth import hash_key, new_key
    from i2v.cli import wiring

    store = wiring.open_store(_settings(data_dir))
    key = new_key()
    store.keys.add(
        hash_key(key),
        name=name,
        prefix=key[:8],
        max_queued=max_queued,
        max_running=max_running,
        rate_per_minute=rate,
        weight=weight,
        admin=admin,
    )
    store.close()
    typer.echo(key)


@keys_app.command("list")
def list_keys(data_dir: DataDir = None) -> None:
    """List keys by name and prefix (never the keys themselves)."""
    from i2v.cli import wiring

    store = wiring.open_store(_settings(data_dir))
    table = Table("name", "prefix", "created", "revoked", "limits", "admin")
    for record in store.keys.list():
        table.add_row(
            record.name,
            record.prefix,
            record.created_at.isoformat(timespec="seconds"),
            record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "",
            _limits(record),
            "yes" if record.admin else "",
        )
    store.close()
    console.print(table)


@keys_app.command("revoke")
def revoke(name_or_prefix: str, data_dir: DataDir = None) -> None:
    """Revoke every key with this name or prefix."""
    from i2v.cli import wiring

    store = wiring.open_store(_settings(data_dir))
    found = store.keys.revoke(name_or_prefix)
    store.close()
    if not found:
        typer.echo(f"no active key named or prefixed {name_or_prefix!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name_or_prefix}")


def _limits(record: KeyRecord) -> str:
    """The limits a key set itself (others are the server's defaults)."""
    own = {
        "max-queued": record.max_queued,
        "max-running": record.max_running,
        "rate": record.rate_per_minute,
        "weight": record.weight,
    }
    return " ".join(f"{name}={value}" for name, value in own.items() if value is not None)
