"""The options every cohort-scale command shares: ``--shard K/N`` and ``--scheduler`` (see :mod:`petcad.batch`)."""

from __future__ import annotations


def add_batch_options(parser) -> None:
    g = parser.add_argument_group("cohort runs (resumable: studies whose outputs exist are skipped)")
    g.add_argument("--shard", metavar="K/N", default=None,
                   help="run only shard K of N (1-based; a study's shard is a hash of its key), e.g. "
                        "--shard ${SLURM_ARRAY_TASK_ID}/10 in a SLURM array job")
    g.add_argument("--scheduler", metavar="ADDRESS|local[:N]", default=None,
                   help="run the studies on a Dask distributed cluster: a scheduler address (tcp://host:8786) "
                        "or local[:N] for N local worker processes (needs petcad[dask])")


def run_batch(fn, tasks, args, progress: bool = True):
    """Run ``tasks`` with the shard and scheduler of ``args``; print and return the report."""
    import sys

    from petcad.batch import parse_shard, run_tasks

    report = run_tasks(fn, tasks, shard=parse_shard(args.shard), scheduler=args.scheduler, progress=progress)
    print(report.summary(), file=sys.stderr)
    return report
