"""`i2v submit|status|cancel|history`: a client of a running server (this one, or any
speaking the WaveSpeed v3 dialect), over HTTP. It imports httpx and rich, never the API,
the database or an engine.

Exit codes: 0 done; 1 the prediction failed or was cancelled (or could not be cancelled);
2 a refusal: an input or key the server refused, or a server that does not answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from i2v.cli.pairs import VALUE_HELP, parse_pairs

if TYPE_CHECKING:
    from i2v.cli.client import ApiClient

T = TypeVar("T")

DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_MODEL = "bytedance/dreamina-v3.0/image-to-video-720p"
REFUSED = 2  # a refused input or key, or no server: nothing was done
FAILED = 1  # the prediction ran and failed, or was cancelled

console = Console(stderr=True)

Server = Annotated[
    str, typer.Option(envvar="I2V_SERVER", help="The server's base URL.", show_default=True)
]
Key = Annotated[
    str | None, typer.Option(envvar="I2V_API_KEY", help="API key (Authorization: Bearer).")
]


def submit(
    image: Annotated[str, typer.Argument(help="A local image file, or an http(s) URL.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What should happen.")],
    model: Annotated[str, typer.Option(help="The model path (route).")] = DEFAULT_MODEL,
    server: Server = DEFAULT_SERVER,
    key: Key = None,
    seed: Annotated[int | None, typer.Option(help="Seed; default: random.")] = None,
    duration: Annotated[int | None, typer.Option(help="Seconds of video: 5 or 10.")] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help=f"Another model input, KEY=VALUE, e.g. camera_fixed=true; {VALUE_HELP}. "
            "Repeatable.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow progress, then download the video.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where --wait saves it; default: ID.mp4.")
    ] = None,
) -> None:
    """Submit IMAGE and a prompt to a server; with --wait, follow it and download the video."""
    body: dict[str, Any] = {"prompt": prompt}
    if seed is not None:
        body["seed"] = seed
    if duration is not None:
        body["duration"] = duration
    body.update(_parse_inputs(inputs or []))
    with _client(server, key) as client:
        body["image"] = (
            image if image.startswith(("http://", "https://")) else _upload(client, Path(image))
        )
        prediction = _guard(lambda: client.submit(model, body))
        prediction_id = str(prediction["id"])
        console.print(f"submitted [bold]{prediction_id}[/bold] ({model})")
        if not wait:
            typer.echo(prediction_id)
            return
        final = _follow(client, prediction_id)
        if final.get("status") != "completed":
            _fail(final, prediction_id)
        target = out or Path(f"{prediction_id}.mp4")
        size = _guard(lambda: client.download(str(final["outputs"][0]), target))
        console.print(f"saved {target} ({size / 1e6:.1f} MB, seed {final.get('seed')})")
        typer.echo(str(target))


def status(
    prediction_id: Annotated[str, typer.Argument(metavar="ID", help="The prediction id.")],
    server: Server = DEFAULT_SERVER,
    key: Key = None,
) -> None:
    """Show a prediction's status, progress and output."""
    with _client(server, key) as client:
        data = _guard(lambda: client.result(prediction_id))
    typer.echo(f"{data['id']}  {data['status']}  {round(100 * float(data.get('progress', 0)))}%")
    for url in data.get("outputs") or []:
        typer.echo(url if len(url) < 300 else f"<base64 video, {len(url)} characters>")
    if data.get("error"):
        typer.echo(f"error: {data['error']}")


def cancel(
    prediction_id: Annotated[str, typer.Argument(metavar="ID", help="The prediction id.")],
    server: Server = DEFAULT_SERVER,
    key: Key = None,
) -> None:
    """Cancel a prediction: a queued one at once, a running one at its next step."""
    with _client(server, key) as client:
        outcome = _guard(lambda: client.cancel(prediction_id))
    if outcome != "cancelled":
        console.print(f"{prediction_id} had already finished: nothing to cancel")
        raise typer.Exit(FAILED)
    typer.echo(f"{prediction_id} cancelled")


def history(
    server: Server = DEFAULT_SERVER,
    key: Key = None,
    page: Annotated[int, typer.Option(min=1, help="Page, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Predictions a page.")] = 20,
) -> None:
    """List your predictions, newest first."""
    from rich.table import Table

    with _client(server, key) as client:
        data = _guard(lambda: client.history(page, page_size))
    table = Table("id", "model", "status", "created", "output")
    for item in data["items"]:
        outputs = item.get("outputs") or []
        table.add_row(
            item["id"],
            item["model"],
            item["status"],
            str(item.get("created_at", "")),
            outputs[0] if outputs and len(outputs[0]) < 300 else "",
        )
    Console().print(table)
    console.print(f"page {data['page']}, {len(data['items'])} of {data['total']}")


def _client(server: str, key: str | None) -> ApiClient:
    from i2v.cli.client import ApiClient

    if not key:
        _refuse("no API key: pass --key or set I2V_API_KEY")
    return ApiClient(server, key)


def _upload(client: ApiClient, path: Path) -> str:
    if not path.is_file():
        _refuse(f"image: no such file {path}")
    return _guard(lambda: client.upload(path))


def _follow(client: ApiClient, prediction_id: str) -> dict[str, Any]:
    """Show the events stream as a progress bar (queue position, then progress and time
    left) until the outcome; its data."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from i2v.cli.client import FINAL_EVENTS, ClientError

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("queued", total=1.0)
            for event in client.events(prediction_id):
                data = event.data
                if event.name in FINAL_EVENTS:
                    if event.name == "completed":
                        bar.update(task, description="completed", completed=1.0)
                    return data
                position = data.get("queue_position")
                label = f"queued, position {position}" if position is not None else data["status"]
                bar.update(task, description=label, completed=float(data.get("progress", 0.0)))
    except ClientError as exc:
        _refuse(exc.message)
    _refuse(f"the event stream of {prediction_id} ended early; see `i2v status {prediction_id}`")


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    try:
        return parse_pairs(pairs)
    except ValueError as exc:
        _refuse(f"--input: {exc}")


def _guard(call: Callable[[], T]) -> T:
    """`call()`; a `ClientError` ends the command with its message and exit code 2."""
    from i2v.cli.client import ClientError

    try:
        return call()
    except ClientError as exc:
        _refuse(exc.message)


def _fail(data: dict[str, Any], prediction_id: str) -> NoReturn:
    error = data.get("error") or data.get("status")
    console.print(f"[red]{prediction_id} {data.get('status')}[/red]: {error}")
    raise typer.Exit(FAILED)


def _refuse(message: str) -> NoReturn:
    console.print(f"[red]i2v:[/red] {message}")
    raise typer.Exit(REFUSED)
