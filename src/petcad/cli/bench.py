"""``petcad bench NAME``: speed figures, printed (``--json`` for one JSON object)."""

from __future__ import annotations

import importlib

from petcad.bench import BENCHMARKS

NAME = "bench"
HELP = "measure speed: patch sampling (patches) or networks (model)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name in BENCHMARKS:
        try:
            mod = importlib.import_module(f"petcad.bench.{name}")
        except ModuleNotFoundError as exc:  # only while the benchmark module itself is absent
            if exc.name != f"petcad.bench.{name}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_bench_run=mod.run)


def run(args) -> int:
    return int(args._bench_run(args) or 0)
