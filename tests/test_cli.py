"""The command line as a user meets it: help everywhere, python -m, clean errors."""

import subprocess
import sys

import pytest

from petcad.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_subcommand_has_help(capsys):
    commands = _subcommands()
    assert {"series", "info", "suv"} <= set(commands), sorted(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert f"petcad {name}" in out


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "petcad", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "COMMAND" in r.stdout


def test_no_command_exits_2(capsys):
    assert main([]) == 2
