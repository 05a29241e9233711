"""What the command line imports: help and `generate` never pull in the service.

Each probe is a fresh interpreter doing what the `i2v` console script does (call
`i2v.cli.main` with the arguments), then reporting the modules it ended up with.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from i2v.cli.app import COMMANDS, load_command
from i2v.cli.samples import sample_photo

# The API, the database layer and the GPU stack: a command that does not serve or
# render on a GPU must not pay for them.
SERVICE = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic")
GPU = ("torch", "diffusers", "onnxruntime")

PROBE = """
import json, sys
args, report = json.loads(sys.argv[1]), sys.argv[2]
sys.argv = ["i2v", *args]
from i2v.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open(report, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def run_cli(args: list[str], report: Path) -> tuple[int, str, set[str]]:
    """Exit code, stdout and the names of every module imported by `i2v ARGS`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), str(report)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.exists(), done.stderr
    result = json.loads(report.read_text())
    return result["code"], done.stdout, set(result["modules"])


def top_level(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted({m.partition(".")[0] for m in modules} & set(names))


def test_root_help_imports_no_command(tmp_path: Path) -> None:
    code, out, modules = run_cli(["--help"], tmp_path / "report.json")
    assert code == 0
    for name in COMMANDS:
        assert name in out
    assert top_level(modules, (*SERVICE, *GPU, "numpy", "av", "PIL", "pydantic")) == []
    loaded = sorted(entry.module for entry in COMMANDS.values() if entry.module in modules)
    assert loaded == []


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "--help"],
        ["models", "--help"],
        ["serve", "--help"],
        ["worker", "--help"],
        ["keys", "--help"],
        ["keys", "create", "--help"],
    ],
    ids=" ".join,
)
def test_command_help_imports_no_service(args: list[str], tmp_path: Path) -> None:
    code, out, modules = run_cli(args, tmp_path / "report.json")
    assert code == 0
    assert f"Usage: i2v {' '.join(args[:-1])}" in " ".join(out.split())
    assert top_level(modules, (*SERVICE, *GPU)) == []


def test_generate_on_the_builtin_engine_imports_no_service(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    args = [str(sample_photo()), "-p", "slow push in", "-o", str(out), "--resolution", "480p"]
    code, _, modules = run_cli(["generate", *args, "--seed", "1"], tmp_path / "report.json")
    assert code == 0
    assert out.stat().st_size > 0
    assert top_level(modules, (*SERVICE, *GPU)) == []


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    code, _, modules = run_cli(["generat"], tmp_path / "report.json")
    assert code == 2
    assert top_level(modules, SERVICE) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_summary_is_the_commands_own_help(name: str) -> None:
    """`i2v --help` shows a summary written beside the command's module name; it must
    say what the command's own help says."""
    command = load_command(name)
    assert command.help is not None
    assert inspect.cleandoc(command.help).splitlines()[0] == COMMANDS[name].summary
