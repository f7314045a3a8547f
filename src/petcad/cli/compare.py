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
    "confusion.csv). Stops with exit status 2 on a manifest with one class only or fewer patients than folds. "
    "Every row of the table sees the same information: by default the images only (classical features from "
    "petcad's PET delineation of the images, 40%% of SUVmax with a CT fallback; CNNs on the CT and PET planes); "
    "with --with-masks the manifest's lesion masks (classical features inside the masks; CNNs with the mask "
    "planes as well). The estimated run time is printed before the methods run."
)

# the original study's table: the four classical methods and the 2.5D CNN (petcad.evaluation.compare.DEFAULT_METHODS)
DEFAULT_METHODS = "rf,svm,adaboost,mlp,cnn"
# kept in step with petcad.evaluation.compare.ALL_METHODS (tested); not imported here to keep --help fast
METHOD_CHOICES = ("rf", "svm", "adaboost", "mlp", "cnn", "multiview", "hybrid", "cnn-svm", "cnn-rf")


def add_common_arguments(parser, folds: int, repeats: int, methods: str, cnn_epochs: int,
                         cnn_samples: int = 2048) -> None:
    from petcad.models.options import add_embedding_arguments  # torch-free

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
    add_embedding_arguments(parser, prefix="cnn-")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers for the classical methods (default 2)")
    parser.add_argument("--delineation", choices=("auto", "mask", "suv", "fraction"), default="auto",
                        help="lesion delineation for the classical features (default auto: PET 40%% of SUVmax with "
                             "a CT fallback, or with --with-masks the manifest's masks)")
    parser.add_argument("--suv-threshold", type=float, default=2.5, help="SUV threshold of --delineation suv (default 2.5)")
    parser.add_argument("--fraction", type=float, default=0.40, help="fraction of SUVmax of --delineation fraction (default 0.40)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="patient-cluster bootstrap replicates (default 2000)")
    parser.add_argument("--labels", default=None, metavar="A,B[,C...]",
                        help="only these labels take part (default: every label of the manifest); more than two = K-class")
    parser.add_argument("--positive", default=None, metavar="LABEL",
                        help="the positive label of a two-label comparison (default malignant)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_mode_argument(parser) -> None:
    parser.add_argument("--with-masks", action="store_true",
                        help="the with-masks table: classical features from the manifest's masks and CNNs on 9 "
                             "channels (CT, PET, mask); every lesion needs a mask (default: images only)")


def add_arguments(parser) -> None:
    parser.add_argument("manifest", help="cohort manifest CSV (patient_id, ct, pet, lesion_id, x, y, z, label[, mask])")
    parser.add_argument("--out", required=True, help="report folder (created)")
    add_common_arguments(parser, folds=10, repeats=10, methods=DEFAULT_METHODS, cnn_epochs=10)
    add_mode_argument(parser)
    add_on_irregular_option(parser)


def settings_from_args(args, mode: str | None = None):
    """CompareSettings of the parsed options; ``mode`` overrides ``--with-masks`` (the demo's two tables)."""
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
    if mode is None:
        mode = "masks" if getattr(args, "with_masks", False) else "images"
    return CompareSettings(methods=methods, n_splits=args.folds, n_repeats=args.repeats, seed=args.seed,
                           features=args.features, cnn_epochs=args.cnn_epochs,
                           cnn_samples_per_epoch=args.cnn_samples_per_epoch, n_jobs=args.jobs,
                           n_boot=args.bootstrap, delineation=dl, labels=labels, positive=args.positive, mode=mode,
                           cnn_embedding_loss=args.cnn_embedding_loss, cnn_embedding_weight=args.cnn_embedding_weight)


def run_and_report(cohort, settings, out, lang: str, progress: bool, extra_notes=None):
    """Run the comparison, write the report, print the titled table; returns ``(result, printed table block)``."""
    from petcad.evaluation.compare import compare

    from petcad.evaluation.report import write_report

    def say(line: str) -> None:
        print(f"petcad compare: {line}", flush=True)

    result = compare(cohort, settings, progress=progress, on_estimate=say)
    paths = write_report(result, out, lang=lang, extra_notes=extra_notes)
    block = printed_block(result)
    print()
    print(block)
    print(f"report: {paths['report.html']}")
    return result, block


def printed_block(result, legend: bool = True) -> str:
    """The table as printed (and as the README shows it): the mode title, the table, the best-method line,
    then (``legend``) what the abbreviations and the two AUC intervals mean."""
    from petcad.evaluation.report import TEXT_LEGEND, table_text, table_title

    if result.multiclass:
        from petcad.evaluation.report_multiclass import table_text as multiclass_text

        text = multiclass_text(result)
    else:
        text = table_text(result.table, legend=False)
    s = result.settings
    counts = result.summary["class_counts"]
    what = (f"{counts[result.classes[1]]} {result.classes[1]}" if len(result.classes) == 2
            else ", ".join(f"{c} {n}" for c, n in counts.items()))
    out = (f"{table_title(result)}\n\n{text}\n\nbest: {result.best}; {result.summary['patients']} patients, "
           f"{result.summary['lesions']} lesions ({what}); {s.n_splits} folds x {s.n_repeats} repeats")
    return f"{out}\n\n{TEXT_LEGEND}" if legend and not result.multiclass else out


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
    notes = []
    if settings.mode == "images" and any(les.mask is not None for _, les in cohort.iter_lesions()):
        notes.append("The manifest has lesion masks; this table does not use them (images only). "
                     "--with-masks gives the table with them.")
        print(f"petcad compare: {notes[-1]}", flush=True)
    run_and_report(cohort, settings, args.out, args.lang, progress=not args.no_progress, extra_notes=notes)
    return 0


def _check_pet_only(cohort, settings, manifest) -> None:
    """The CNN methods need CT and PET: on a cohort with PET-only studies, say so naming --methods."""
    from petcad.evaluation.compare import CNN_METHODS
    from petcad.io.manifest import require_ct

    cnn = [m for m in settings.methods if m in CNN_METHODS]
    if cnn and cohort.without_ct():
        require_ct(cohort, manifest, f"the 2.5D CNN methods ({','.join(cnn)})",
                   option="the ct column or leave the CNN methods out of --methods")
