"""The root `i2v` command, whose subcommands are imported when they are used.

`i2v --help` lists every command, but the commands pull in the API, SQLAlchemy, PyAV
or torch. So the root knows each command by its name, its module and its one-line
summary only, and imports the module when that command runs or prints its own help:
`i2v --help` costs typer and rich, `i2v generate` costs what generating costs.

A command module defines a plain function with typer-annotated parameters (or a
`typer.Typer` for a group such as `keys`), keeps its module-level imports to typer,
rich and the standard library, and imports the rest in the function body.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command

if TYPE_CHECKING:
    # typer vendors click; these are the types its groups and commands are built on.
    from typer._click import Command, Context


@dataclass(frozen=True)
class CommandEntry:
    """Where a command lives and the line `i2v --help` shows for it (the first line of
    its docstring, or the group's help; a unit test holds the two equal)."""

    module: str
    attribute: str
    summary: str


# In the order `i2v --help` lists them.
COMMANDS: dict[str, CommandEntry] = {
    "generate": CommandEntry(
        "i2v.cli.generate",
        "generate",
        "Generate a video from IMAGE and a prompt, with a progress bar.",
    ),
    "models": CommandEntry(
        "i2v.cli.models",
        "models",
        "List catalog routes, their engine and whether their weights are present.",
    ),
    "serve": CommandEntry(
        "i2v.cli.serve",
        "serve",
        "Serve the WaveSpeed v3 and RunComfy APIs, with workers in this process.",
    ),
    "worker": CommandEntry(
        "i2v.cli.worker",
        "worker",
        "Run workers against a server's queue (I2V_DATABASE_URL / I2V_MEDIA_DIR to share).",
    ),
    "keys": CommandEntry(
        "i2v.cli.keys", "keys_app", "Manage API keys (stored hashed; shown once on creation)."
    ),
    "submit": CommandEntry(
        "i2v.cli.remote",
        "submit",
        "Submit IMAGE and a prompt to a server; with --wait, follow it and download the video.",
    ),
    "status": CommandEntry(
        "i2v.cli.remote", "status", "Show a prediction's status, progress and output."
    ),
    "cancel": CommandEntry(
        "i2v.cli.remote",
        "cancel",
        "Cancel a prediction: a queued one at once, a running one at its next step.",
    ),
    "history": CommandEntry("i2v.cli.remote", "history", "List your predictions, newest first."),
}


def load_command(name: str) -> Command:
    """Import command `name`'s module and build its click command."""
    entry = COMMANDS[name]
    target: typer.Typer | Callable[..., Any] = getattr(
        importlib.import_module(entry.module), entry.attribute
    )
    if not isinstance(target, typer.Typer):
        function = target
        target = typer.Typer(add_completion=False)
        target.command(name)(function)
    return get_command(target)


class _Summary(TyperCommand):
    """Stands in for a command not imported yet: enough for `i2v --help` to list it."""


class LazyGroup(TyperGroup):
    """A typer group that lists `COMMANDS` by their summaries and imports a command's
    module only when the command line names it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in COMMANDS.items():
            self.commands[name] = _Summary(name=name, help=entry.summary)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Summary):
            command = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="i2v",
    cls=LazyGroup,
    help="Self-hosted image-to-video: generate locally or serve the WaveSpeed/RunComfy APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    # A callback makes typer build a group even though no command is registered on `app`.
    pass
