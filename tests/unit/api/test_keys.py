"""API keys: made by `i2v serve` on a fresh install, managed by `i2v keys`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from i2v.api import auth
from i2v.cli import app
from inprocess import InProcess


def i2v(*args: str) -> str:
    """`i2v ARGS` in this process; its standard output."""
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, (done.output, done.exception)
    return done.stdout


def test_serve_makes_shows_and_keeps_a_key_on_a_fresh_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # start-up only
    monkeypatch.setattr(sys, "setswitchinterval", lambda interval: None)  # serve's own
    monkeypatch.delenv("I2V_API_KEYS", raising=False)
    data = tmp_path / "data"
    done = CliRunner().invoke(app, ["serve", "--data-dir", str(data), "--workers", "0"])
    assert done.exit_code == 0, (done.output, done.exception)
    key = (data / "api-key.txt").read_text().strip()
    assert key.startswith("i2v_")
    assert key in done.output  # shown on start
    assert (data / "api-key.txt").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["serve", "--data-dir", str(data), "--workers", "0"])
    assert key in again.output  # the same key, shown again; no second one made
    assert "default" in i2v("keys", "list", "--data-dir", str(data))


def test_fresh_install_gets_a_key_and_keys_cli_manages_them(
    start_api: Callable[..., InProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "KEY_CACHE_SECONDS", 0.5)  # how long a revoked key still works
    api = start_api(keys=[], workers=0)
    data = api.data_dir
    key = (data / "api-key.txt").read_text().strip()
    assert api.made_key == key
    models = "/api/v3/models"
    assert api.client(key).get(models).status_code == 200
    assert api.client(None).get(models).status_code == 401

    made = i2v("keys", "create", "--name", "ci", "--data-dir", str(data)).strip()
    assert made.startswith("i2v_")
    assert api.client(made).get(models).status_code == 200
    listing = i2v("keys", "list", "--data-dir", str(data))
    assert "ci" in listing
    assert made not in listing  # only prefixes are ever shown
    i2v("keys", "revoke", "ci", "--data-dir", str(data))
    # The server remembers a key for KEY_CACHE_SECONDS; the revoke takes effect within that.
    deadline = time.monotonic() + 10
    while api.client(made).get(models).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.05)
    assert api.client(key).get(models).status_code == 200  # the others still work
