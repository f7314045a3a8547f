"""``petcad compare MANIFEST --out REPORT_DIR``: the comparison study, one command."""

from __future__ import annotations

from petcad.io.options import add_on_irregular_option

NAME = "compare"
HELP = "compare classifiers (RF, SVM, AdaBoost, BP-ANN, CNNs) on a cohort with one fair cross-validation"
DESCRIPTION = (
    "Compute lesion features, run every method through the same repeated patient-grouped stratified "
    "k-fold cross-validation and write REPORT_DIR/table.csv, table.md, predictions.csv, roc.png, "
    "calibration.png, settings.json and report.html (self-contained). The table is printed at the end. "
    "Every label of the manifest takes part (or those of --labels; the rest are left out, said in the report): "
    "two labels are the binary comparison (--positive, default malignant); more than two a K-class one "
    "(one-vs-rest and macro AUC with DeLong intervals, per-class sensitivity, K x K confusion table, "
    "confusion.csv). Stops with exit status 2 on a manifest with one class only or fewer patients than folds."
)

DEFAULT_METHODS = "rf,svm,adaboost,mlp"
# kept in step with petcad.evaluation.compare.ALL_METHODS (tested); not imported here to keep --help fast
METHOD_CHOICES = ("rf", "svm", "adaboost", "mlp", "cnn", "multiview", "hybrid", "cnn-svm", "cnn-rf")


def add_common_arguments(parser, folds: int, repeats: int, methods: str, cnn_epochs: int,
                         cnn_samples: int = 2048) -> None:
    parser.add_argument("--methods", default=methods,
                        help=f"comma-separated, from {','.join(METHOD_CHOICES)}, or 'all' (default {methods})")
    parser.add_argument("--folds", type=int, default=folds, help=f"outer folds (default {folds})")
    parser.add_argument("--repeats", type=int, default=repeats, help=f"repeats of the k-fold split (default {repeats})")
    parser.add_argument("--features", choices=("diagnostic", "ibsi", "all"), default="diagnostic",
                        help="feature set for the classical methods (default diagnostic; ibsi/all need mirp)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="report language (default en)")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, classifiers and CNNs (default 0)")
    parser.add_argument("--cnn-epochs", type=int, default=cnn_epochs, help=f"CNN epochs per fold (default {cnn_epochs})")
    parser.add_argument("--cnn-samples-per-epoch", type=int, default=cnn_samples,
                        help=f"at least this many augmented samples per CNN epoch (default {cnn_samples})")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers for the classical methods (default 2)")
    parser.add_argument("--delineation", choices=("auto", "mask", "suv", "fraction"), default="auto",
                        help="lesion delineation for features (default auto: the manifest mask, else PET 40%% SUVmax)")
    parser.add_argument("--suv-threshold", type=float, default=2.5, help="SUV threshold of --delineation suv (default 2.5)")
    parser.add_argument("--fraction", type=float, default=0.40, help="fraction of SUVmax of --delineation fraction (default 0.40)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="patient-cluster bootstrap replicates (default 2000)")
    parser.add_argument("--labels", default=None, metavar="A,B[,C...]",
                        help="only these labels take part (default: every label of the manifest); more than two = K-class")
    parser.add_argument("--positive", default=None, metavar="LABEL",
                        help="the positive label of a two-label comparison (default malignant)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_arguments(parser) -> None:
    parser.add_argument("manifest", help="cohort manifest CSV (patient_id, ct, pet, lesion_id, x, y, z, label[, mask])")
    parser.add_argument("--out", required=True, help="report folder (created)")
    add_common_arguments(parser, folds=10, repeats=10, methods=DEFAULT_METHODS, cnn_epochs=10)
    add_on_irregular_option(parser)


def settings_from_args(args):
    from petcad.errors import InputError
    from petcad.evaluation.compare import ALL_METHODS, CompareSettings
    from petcad.features.delineation import DelineationSettings

    methods = ALL_METHODS if args.methods.strip() == "all" else tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.cnn_epochs < 1:
        raise InputError("--cnn-epochs", f"must be at least 1, got {args.cnn_epochs}")
    if args.cnn_samples_per_epoch < 1:
        raise InputError("--cnn-samples-per-epoch", f"must be at least 1, got {args.cnn_samples_per_epoch}")
    if args.jobs < 1:
        raise InputError("--jobs", f"must be at least 1, got {args.jobs}")
    try:
        dl = DelineationSettings(method=args.delineation, suv_threshold=args.suv_threshold, fraction=args.fraction)
    except ValueError as exc:
        raise InputError("--fraction", str(exc)) from None
    labels = tuple(x.strip() for x in (args.labels or "").split(",") if x.strip())
    if args.labels is not None and len(labels) < 2:
        raise InputError("--labels", f"give at least two labels, comma-separated (got {args.labels!r})")
    return CompareSettings(methods=methods, n_splits=args.folds, n_repeats=args.repeats, seed=args.seed,
                           features=args.features, cnn_epochs=args.cnn_epochs,
                           cnn_samples_per_epoch=args.cnn_samples_per_epoch, n_jobs=args.jobs,
                           n_boot=args.bootstrap, delineation=dl, labels=labels, positive=args.positive)


def run_and_report(cohort, settings, out, lang: str, progress: bool, extra_notes=None) -> int:
    from petcad.evaluation.compare import compare
    from petcad.evaluation.report import table_text, write_report

    result = compare(cohort, settings, progress=progress)
    paths = write_report(result, out, lang=lang, extra_notes=extra_notes)
    print()
    if result.multiclass:
        from petcad.evaluation.report_multiclass import table_text as multiclass_text

        print(multiclass_text(result))
    else:
        print(table_text(result.table))
    counts = result.summary["class_counts"]
    what = (f"{counts[result.classes[1]]} {result.classes[1]}" if len(result.classes) == 2
            else ", ".join(f"{c} {n}" for c, n in counts.items()))
    print(f"\nbest: {result.best}; {result.summary['patients']} patients, {result.summary['lesions']} lesions "
          f"({what}); {settings.n_splits} folds x {settings.n_repeats} repeats")
    print(f"report: {paths['report.html']}")
    return 0


def run(args) -> int:
    import warnings
    from pathlib import Path

    from petcad.errors import InputError
    from petcad.io.manifest import load_cohort

    settings = settings_from_args(args)
    if not Path(args.manifest).is_file():
        raise InputError(args.manifest, "manifest not found")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"petcad: warning: {msg}\n"
    cohort = load_cohort(args.manifest, allowed_labels=None, progress=not args.no_progress,
                         on_irregular=args.on_irregular)
    _check_pet_only(cohort, settings, args.manifest)
    return run_and_report(cohort, settings, args.out, args.lang, progress=not args.no_progress)


def _check_pet_only(cohort, settings, manifest) -> None:
    """The CNN methods need CT and PET: on a cohort with PET-only studies, say so naming --methods."""
    from petcad.evaluation.compare import CNN_METHODS
    from petcad.io.manifest import require_ct

    cnn = [m for m in settings.methods if m in CNN_METHODS]
    if cnn and cohort.without_ct():
        require_ct(cohort, manifest, f"the 2.5D CNN methods ({','.join(cnn)})",
                   option="the ct column or leave the CNN methods out of --methods")
