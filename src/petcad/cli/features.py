"""``petcad features MANIFEST --out features.csv``: one row per lesion with its delineation and features."""

from __future__ import annotations

from petcad.cli._batch_options import add_batch_options
from petcad.cli._suv_options import add_suv_options
from petcad.io.options import add_on_irregular_option

NAME = "features"
HELP = "lesion features (diagnostic, IBSI) of a manifest: one CSV row per lesion with its delineation and voxel count"
DESCRIPTION = (
    "Delineate every lesion of MANIFEST (its mask used whole when the manifest gives one, else the PET rule) and "
    "write one CSV row per lesion: patient_id, lesion_id, label, centre (mm LPS) and where it came from, "
    "modalities, the delineation source (mask, pet, ct, sphere), its voxel counts on the PET and CT grids, then "
    "the features. Works on PET-only studies (empty ct in the manifest): the CT features are left empty there. "
    "Studies are processed one at a time, each into OUT.parts/<study>.csv; studies already there are skipped "
    "(resume), --shard K/N splits the cohort between jobs, and the table is written once every study has its part."
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
    add_batch_options(parser)
    parser.add_argument("--progress", action="store_true", help="print each study as it is done")


def run(args) -> int:
    import sys
    import time
    import warnings
    from pathlib import Path

    from petcad.batch import merge_parts
    from petcad.errors import InputError
    from petcad.features.delineation import DelineationSettings
    from petcad.cli._batch_options import run_batch
    from petcad.features.table import feature_study_task

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InputError("--out", f"{out}: the features table is a CSV file (name it .csv)")
    try:
        dl = DelineationSettings(method=args.delineation, suv_threshold=args.suv_threshold, fraction=args.fraction)
    except ValueError as exc:
        raise InputError("--fraction", str(exc)) from None
    t0 = time.perf_counter()
    warnings.formatwarning = lambda msg, cat, *a, **k: f"petcad: warning: {msg}\n"
    tasks, keys = _tasks(args, out, dl)
    report = run_batch(feature_study_task, tasks, args, progress=args.progress)
    results = list(report.results.values())
    for note in (n for r in results for n in r["warnings"]):
        print(f"petcad: warning: {note}", file=sys.stderr)
    missing = merge_parts(out, keys)
    n_les = sum(r["lesions"] for r in results)
    sources: dict[str, int] = {}
    for r in results:
        for k, v in r["sources"].items():
            sources[k] = sources.get(k, 0) + v
    n_pet_only = sum(r["pet_only"] for r in results)
    done = (f"{n_les} lesions of {len(results)} studies computed now, {args.feature_set} features"
            + ("; delineation " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())) if sources else "")
            + (f"; {n_pet_only} lesions in PET-only studies (CT features left empty)" if n_pet_only else ""))
    if missing:
        print(f"{done}; {missing} of {len(keys)} studies still to do (other shards): {out} not written yet "
              f"({time.perf_counter() - t0:.1f} s)")
    else:
        print(f"{out}: {done}; table of all {len(keys)} studies written ({time.perf_counter() - t0:.1f} s)")
    return 0


def _tasks(args, out, dl):
    import hashlib
    from pathlib import Path

    from petcad.batch import StudyTask, check_parts_settings, part_path
    from petcad.cli._suv_options import settings_from_args
    from petcad.features.table import FeatureJob
    from petcad.io.manifest import study_key_text, study_keys

    suv = settings_from_args(args)
    keys = study_keys(args.manifest)
    check_parts_settings(out, {"manifest_sha256": hashlib.sha256(Path(args.manifest).read_bytes()).hexdigest(),
                               "set": args.feature_set, "delineation": dl, "suv": suv,
                               "on_irregular": args.on_irregular, "allow_frame_mismatch": args.allow_frame_mismatch})
    names = [study_key_text(k) for k in keys]
    tasks = [StudyTask(n, (part_path(out, n),),
                       FeatureJob(str(Path(args.manifest).resolve()), k, args.feature_set, dl, suv, args.on_irregular,
                                  args.allow_frame_mismatch))
             for n, k in zip(names, keys)]
    return tasks, names
