"""``petcad demo``: the default phantom cohort, then the whole comparison with every method, in minutes."""

from __future__ import annotations

NAME = "demo"
HELP = "generate the default synthetic cohort and run the comparison study with all methods (about 10 minutes)"
DESCRIPTION = (
    "Generate the default phantom cohort (about 40 patients) into OUT/cohort, then run `petcad compare` with "
    "every method (four classical classifiers on the 13 diagnostic features, the wang2017 CNN, the multi-view "
    "and hybrid networks, and the CNN deep features fed to SVM and RF) into OUT/report, with a protocol reduced "
    "to fit about 10 minutes on 2 CPU cores (the report says so). Prints the table and the report path."
)

DEMO_FOLDS = 3
DEMO_REPEATS = 1
DEMO_EPOCHS = 10
DEMO_SAMPLES_PER_EPOCH = 1024


def add_arguments(parser) -> None:
    from petcad.cli.compare import add_common_arguments

    parser.add_argument("--out", default="demo_out", help="output folder (default ./demo_out)")
    parser.add_argument("--patients", type=int, default=40, help="phantom patients (default 40)")
    add_common_arguments(parser, folds=DEMO_FOLDS, repeats=DEMO_REPEATS, methods="all", cnn_epochs=DEMO_EPOCHS,
                         cnn_samples=DEMO_SAMPLES_PER_EPOCH)


def run(args) -> int:
    import time
    import warnings
    from pathlib import Path

    from petcad.cli.compare import run_and_report, settings_from_args
    from petcad.io.manifest import load_cohort
    from petcad.cli.phantom import format_summary
    from petcad.phantom import generate_cohort
    from petcad.phantom.cohort import read_truth

    t0 = time.perf_counter()
    settings = settings_from_args(args)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"petcad: warning: {msg}\n"
    out = Path(args.out)
    progress = not args.no_progress
    print(f"petcad demo: generating {args.patients} phantom patients (preset default, seed {args.seed}) ...", flush=True)
    manifest = generate_cohort(out / "cohort", n_patients=args.patients, seed=args.seed, preset="default",
                               fmt="dicom", progress=progress)
    t_gen = time.perf_counter() - t0
    print(format_summary(read_truth(Path(manifest).parent / "truth.csv"), args.patients, t_gen), flush=True)
    cohort = load_cohort(manifest, allowed_labels=None, progress=progress)
    t_load = time.perf_counter() - t0 - t_gen
    notes = [
        f"Reduced protocol for the demo: {settings.n_splits} folds x {settings.n_repeats} repeat(s) and "
        f"{settings.cnn_epochs} CNN epochs of {settings.cnn_samples_per_epoch} samples per fold, instead of the study's 10 x 10 folds (use petcad compare "
        "for the full protocol). The CNNs are trained far less than in the study, so their figures here "
        "show the machinery, not their accuracy.",
        f"Cohort: petcad phantom, preset default, {args.patients} patients, seed {args.seed} "
        f"(generated in {t_gen:.0f} s, read in {t_load:.0f} s).",
    ]
    rc = run_and_report(cohort, settings, out / "report", args.lang, progress=progress, extra_notes=notes)
    print(f"demo total: {time.perf_counter() - t0:.0f} s")
    return rc
