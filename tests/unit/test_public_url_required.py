"""`i2v serve` beyond loopback needs a public URL: media links are capabilities, and
without one they would be built from the Host header any client sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from i2v.cli.app import app
from i2v.domain.errors import ConfigError
from i2v.domain.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.8.9.10"])
def test_loopback_needs_no_public_url(host: str) -> None:
    Settings(host=host).check_public_url()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "i2v.internal"])
def test_an_open_interface_needs_one(host: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings(host=host).check_public_url()
    assert "public_url" in refused.value.message
    assert "I2V_PUBLIC_URL" in refused.value.message
    Settings(host=host, public_url="https://i2v.example.com").check_public_url()


def test_serve_refuses_to_start(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "data").exists()  # refused before opening anything
