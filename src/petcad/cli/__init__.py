"""The ``petcad`` command line.

Each subcommand lives in its own module in this package and defines::

    NAME = "series"                      # the subcommand
    HELP = "one line for petcad --help"
    def add_arguments(parser): ...       # argparse options (no heavy imports here)
    def run(args) -> int: ...            # does the work; heavy imports inside

Modules are discovered automatically. :class:`petcad.errors.InputError` raised
anywhere becomes one line on stderr and exit status 2, with no traceback; warnings are printed as one line on stderr
(``petcad: warning: ...``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from typing import Sequence

from petcad.errors import InputError


def _command_modules():
    import petcad.cli as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"petcad.cli.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    from petcad import __version__

    parser = argparse.ArgumentParser(
        prog="petcad",
        description="Computer-aided diagnosis of lesions on 18F-FDG PET/CT: readers, SUV, "
        "synthetic cohorts, 2.5D patches, CNNs and classical classifiers, and the comparison study.",
    )
    parser.add_argument("--version", action="version", version=f"petcad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"petcad: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    formatwarning = warnings.formatwarning
    warnings.formatwarning = _format_warning  # one line on stderr, no source line (pytest.warns still records)
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"petcad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("petcad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        warnings.formatwarning = formatwarning
