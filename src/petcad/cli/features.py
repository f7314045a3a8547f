"""``petcad features MANIFEST --out features.csv``: one row per lesion with its delineation and features."""

from __future__ import annotations

from petcad.cli._suv_options import add_suv_options
from petcad.io.options import add_on_irregular_option

NAME = "features"
HELP = "lesion features (diagnostic, IBSI) of a manifest: one CSV row per lesion with its delineation and voxel count"
DESCRIPTION = (
    "Delineate every lesion of MANIFEST (its mask used whole when the manifest gives one, else the PET rule) and "
    "write one CSV row per lesion: patient_id, lesion_id, label, centre (mm LPS) and where it came from, "
    "modalities, the delineation source (mask, pet, ct, sphere), its voxel counts on the PET and CT grids, then "
    "the features. Works on PET-only studies (empty ct in the manifest): the CT features are left empty there."
)


def add_arguments(parser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST",
                        help="cohort CSV (patient_id, ct, pet, lesion_id, x, y, z, label[, mask, mask_label])")
    parser.add_argument("--out", required=True, metavar="CSV", help="features table to write (CSV)")
    parser.add_argument("--set", dest="feature_set", choices=("diagnostic", "ibsi", "all"), default="diagnostic",
                        help="diagnostic (13 features, default), ibsi (MIRP texture families) or all")
    parser.add_argument("--delineation", choices=("auto", "mask", "suv", "fraction"), default="auto",
                        help="auto (default: the manifest mask, else PET 40%% of SUVmax), mask, suv or fraction")
    parser.add_argument("--suv-threshold", type=float, default=2.5, help="SUV threshold of --delineation suv (default 2.5)")
    parser.add_argument("--fraction", type=float, default=0.40,
                        help="fraction of SUVmax of --delineation fraction (default 0.40)")
    parser.add_argument("--allow-frame-mismatch", action="store_true",
                        help="accept CT and PET with different FrameOfReferenceUIDs")
    add_on_irregular_option(parser)
    add_suv_options(parser)
    parser.add_argument("--progress", action="store_true", help="show progress bars")


def run(args) -> int:
    import sys
    import time
    import warnings
    from pathlib import Path

    from petcad.cli._suv_options import settings_from_args
    from petcad.errors import InputError
    from petcad.features.delineation import DelineationSettings
    from petcad.features.table import lesion_feature_table
    from petcad.io.atomic import write_text
    from petcad.io.manifest import load_cohort

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InputError("--out", f"{out}: the features table is a CSV file (name it .csv)")
    try:
        dl = DelineationSettings(method=args.delineation, suv_threshold=args.suv_threshold, fraction=args.fraction)
    except ValueError as exc:
        raise InputError("--fraction", str(exc)) from None
    t0 = time.perf_counter()
    warnings.formatwarning = lambda msg, cat, *a, **k: f"petcad: warning: {msg}\n"
    cohort = load_cohort(args.manifest, suv=settings_from_args(args), allowed_labels=None, progress=args.progress,
                         allow_frame_mismatch=args.allow_frame_mismatch, on_irregular=args.on_irregular)
    table = lesion_feature_table(cohort, args.feature_set, dl, progress=args.progress)
    write_text(out, table.to_csv_text())
    for note in table.warnings:
        print(f"petcad: warning: {note}", file=sys.stderr)
    n_pet_only = sum(r["modalities"] == "PET" for r in table.rows)
    sources = {}
    for r in table.rows:
        sources[r["delineation"]] = sources.get(r["delineation"], 0) + 1
    print(f"{out}: {len(table.rows)} lesions of {len(cohort)} studies, {args.feature_set} features; delineation "
          + ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
          + (f"; {n_pet_only} lesions in PET-only studies (CT features left empty)" if n_pet_only else "")
          + f" ({time.perf_counter() - t0:.1f} s)")
    return 0
