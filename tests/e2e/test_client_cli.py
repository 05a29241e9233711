"""`i2v submit|status|cancel|history` against a real `i2v serve`: --wait to a file, each
refusal's exit code, and no service or GPU module imported by the client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from photos import photo_bytes
from server import Server
from service_api import API_KEY, FAKE_ROUTE, fake_catalog, free_port

HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "torch", "av", "numpy")
# Runs `i2v ARGS` as the console script does, then lists the modules it imported.
PROBE = """
import json, sys
sys.argv = ["i2v", *json.loads(sys.argv[1])]
from i2v.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print("MODULES " + json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))
sys.exit(code)
"""


def i2v(
    *args: str, server: str | None = None, key: str | None = API_KEY
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("I2V_")}
    if server is not None:
        env["I2V_SERVER"] = server
    if key is not None:
        env["I2V_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def imported(done: subprocess.CompletedProcess[str]) -> set[str]:
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def output(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [x for x in done.stdout.splitlines() if not x.startswith("MODULES ")]


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo_bytes())
    return path


@pytest.fixture
def server(tmp_path: Path, start_server: Callable[..., Server]) -> Server:
    return start_server("data", catalog=fake_catalog(tmp_path / "catalog.toml", frames=[9]))


def test_submit_wait_downloads_the_video(server: Server, photo_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "video.mp4"
    done = i2v(
        "submit", str(photo_file), "--prompt", "slow push in", "--model", FAKE_ROUTE,
        "--seed", "4", "--input", "camera_fixed=true", "--wait", "--out", str(out),
        server=server.base_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert output(done)[-1] == str(out)
    assert out.read_bytes()[4:8] == b"ftyp"
    assert "submitted" in done.stderr
    assert "100%" in done.stderr
    assert not imported(done) & set(HEAVY)

    history = i2v("history", server=server.base_url)
    assert history.returncode == 0, history.stderr
    assert FAKE_ROUTE in history.stdout
    assert "completed" in history.stdout


def test_submit_status_cancel(
    photo_file: Path, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # No workers: the prediction stays queued until it is cancelled.
    idle = start_server("idle", catalog=fake_catalog(tmp_path / "idle.toml", frames=[9]), workers=0)
    submitted = i2v(
        "submit", str(photo_file), "-p", "p", "--model", FAKE_ROUTE, server=idle.base_url
    )
    assert submitted.returncode == 0, submitted.stderr
    prediction_id = output(submitted)[-1]

    status = i2v("status", prediction_id, server=idle.base_url)
    assert status.returncode == 0, status.stderr
    assert output(status)[0] == f"{prediction_id}  created  0%"

    cancelled = i2v("cancel", prediction_id, server=idle.base_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"{prediction_id} cancelled" in cancelled.stdout
    again = i2v("cancel", prediction_id, server=idle.base_url)
    assert again.returncode == 1
    assert "already finished" in again.stderr
    assert "cancelled" in output(i2v("status", prediction_id, server=idle.base_url))[0]


def test_refusals_exit_2(server: Server, photo_file: Path, tmp_path: Path) -> None:
    base = ("submit", str(photo_file), "-p", "p", "--model", FAKE_ROUTE)
    refused_input = i2v(*base, "--input", "seed=-5", server=server.base_url)
    assert refused_input.returncode == 2
    assert "the server refused the input: seed:" in " ".join(refused_input.stderr.split())

    wrong_key = i2v(*base, server=server.base_url, key="not-a-key")
    assert wrong_key.returncode == 2
    assert "refused the API key" in wrong_key.stderr

    no_key = i2v(*base, server=server.base_url, key=None)
    assert no_key.returncode == 2
    assert "no API key" in no_key.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = i2v(*base, server=nowhere)
    assert unreachable.returncode == 2
    assert f"cannot reach the server at {nowhere}" in " ".join(unreachable.stderr.split())
    assert i2v("status", "abc", server=nowhere).returncode == 2

    missing = i2v("submit", str(tmp_path / "nope.jpg"), "-p", "p", server=server.base_url)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr

    unknown = i2v("status", "0" * 32, server=server.base_url)
    assert unknown.returncode == 2
    assert "not found" in unknown.stderr
