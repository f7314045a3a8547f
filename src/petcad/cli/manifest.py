"""``petcad manifest MANIFEST``: validate a cohort manifest and load every study once."""

from __future__ import annotations

from petcad.cli._suv_options import add_suv_options, settings_from_args

NAME = "manifest"
HELP = "check a cohort manifest (row-numbered errors), load every study, and summarise patients, lesions and labels"


def add_arguments(parser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST", help="cohort CSV: patient_id, ct, pet, lesion_id, x, y, z, label[, mask]")
    parser.add_argument("--labels", metavar="A,B", help="allowed labels, comma-separated (default: benign,malignant)")
    parser.add_argument("--rows-only", action="store_true", help="validate the rows and files only; do not load images")
    parser.add_argument("--allow-frame-mismatch", action="store_true",
                        help="accept CT and PET with different FrameOfReferenceUIDs")
    add_suv_options(parser)
    parser.add_argument("--progress", action="store_true", help="show a progress bar while loading")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    import collections
    import json
    import time
    import warnings

    from petcad.io.manifest import load_cohort, read_manifest
    from petcad.study import DEFAULT_LABELS

    labels = DEFAULT_LABELS if not args.labels else tuple(x.strip() for x in args.labels.split(",") if x.strip())
    t0 = time.perf_counter()
    rows = read_manifest(args.manifest, allowed_labels=labels)
    out = {
        "manifest": str(args.manifest),
        "rows": len(rows),
        "patients": len({r.patient_id for r in rows}),
        "labels": dict(collections.Counter(r.label for r in rows)),
        "with_mask": sum(r.mask is not None for r in rows),
    }
    if not args.rows_only:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cohort = load_cohort(args.manifest, suv=settings_from_args(args), allowed_labels=labels,
                                 progress=args.progress, allow_frame_mismatch=args.allow_frame_mismatch)
        out["studies_loaded"] = len(cohort)
        out["lesions_inside_ct_and_pet"] = cohort.n_lesions
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.manifest}: {out['rows']} lesions of {out['patients']} patients, labels "
              + ", ".join(f"{k} {v}" for k, v in out["labels"].items())
              + f", {out['with_mask']} with masks"
              + ("" if args.rows_only else f"; all {out['studies_loaded']} studies loaded, every lesion centre inside CT and PET")
              + f" ({out['seconds']:.1f} s)")
    return 0
