"""`--help` shows each option's value type (<float>, <int>, <path>, <str>) and none for on/off flags (typer 0.29
printed <bool> for every flag, as if it took a value)."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from foley.cli import app


def _rows(text: str) -> dict[str, str]:
    """{'--option': 'the rest of its help row'} from plain help output (or rich's, with TYPER_USE_RICH=1)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^[│ ]\s*(?:-\w, )?(--[\w-]+)(.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_generate_help_shows_value_types_and_no_bool(foley_cli):
    r = foley_cli("generate", "--help")
    assert r.returncode == 0
    rows = _rows(r.stdout)
    assert "<bool>" not in r.stdout
    assert "<float>" in rows["--duration"] and "<float>" in rows["--guidance"]
    assert "<int>" in rows["--steps"] and "<int>" in rows["--seed"]
    assert "<path>" in rows["--output"] and "<str>" in rows["--model"]
    for flag in ("--plot", "--stream", "--help"):
        assert not re.search(r"<\w+>", rows[flag]), rows[flag]


def test_no_command_shows_bool_for_a_flag():
    root = typer.main.get_command(app)
    runner = CliRunner()

    def walk(cmd, path):
        if getattr(cmd, "commands", None):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path

    paths = list(walk(root, []))
    assert len(paths) > 15
    for path in paths:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, (path, r.output)
        assert "<bool>" not in r.output, path
