"""`i2v keys create --max-queued N --max-running N --rate N --weight W` stores the key's
own limits; `i2v keys list` shows them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from i2v.cli.keys import keys_app
from i2v.store import Store


def test_create_stores_the_keys_limits(tmp_path: Path) -> None:
    runner = CliRunner()
    limits = ["--max-queued", "5", "--max-running", "2", "--rate", "30", "--weight", "0.5"]
    made = runner.invoke(
        keys_app, ["create", "--name", "batch", *limits, "--data-dir", str(tmp_path)]
    )
    assert made.exit_code == 0, made.output
    with Store.open(f"sqlite:///{tmp_path / 'i2v.db'}") as store:
        (record,) = store.keys.list()
    assert (record.max_queued, record.max_running, record.rate_per_minute, record.weight) == (
        5,
        2,
        30,
        0.5,
    )
    listed = runner.invoke(keys_app, ["list", "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert "max-queued=5 max-running=2 rate=30 weight=0.5" in listed.output


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    refused = CliRunner().invoke(
        keys_app, ["create", "--max-running", "0", "--data-dir", str(tmp_path)]
    )
    assert refused.exit_code != 0
