"""``petcad manifest MANIFEST``: validate a cohort manifest and load every study once."""

from __future__ import annotations

from petcad.cli._suv_options import add_suv_options, settings_from_args
from petcad.io.options import add_on_irregular_option

NAME = "manifest"
HELP = "check a cohort manifest (row-numbered errors), load every study, and summarise patients, lesions and labels"


def add_arguments(parser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST", help="cohort CSV: patient_id, ct, pet, lesion_id, x, y, z, label[, mask, mask_label]; "
                        "ct may be empty (PET-only), x, y, z may be empty when a mask is given")
    parser.add_argument("--labels", metavar="A,B", help="allowed labels, comma-separated, or 'any' (default: benign,malignant)")
    parser.add_argument("--rows-only", action="store_true", help="validate the rows and files only; do not load images")
    parser.add_argument("--allow-frame-mismatch", action="store_true",
                        help="accept CT and PET with different FrameOfReferenceUIDs")
    add_on_irregular_option(parser)
    add_suv_options(parser)
    parser.add_argument("--progress", action="store_true", help="show a progress bar while loading")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    import collections
    import json
    import time
    from petcad.cli._options import collected_warnings
    from petcad.io.manifest import load_cohort, read_manifest
    from petcad.study import DEFAULT_LABELS

    labels = DEFAULT_LABELS if not args.labels else tuple(x.strip() for x in args.labels.split(",") if x.strip())
    if labels == ("any",):
        labels = None
    t0 = time.perf_counter()
    rows = read_manifest(args.manifest, allowed_labels=labels)
    out = {
        "manifest": str(args.manifest),
        "rows": len(rows),
        "patients": len({r.patient_id for r in rows}),
        "labels": dict(collections.Counter(r.label for r in rows)),
        "with_mask": sum(r.mask is not None for r in rows),
        "centres_from_mask": sum(r.center_mm is None for r in rows),
        "patients_without_ct": len({r.patient_id for r in rows if r.ct is None}),
    }
    if not args.rows_only:
        with collected_warnings() as warned:  # to stderr, and into the JSON
            cohort = load_cohort(args.manifest, suv=settings_from_args(args), allowed_labels=labels,
                                 progress=args.progress, allow_frame_mismatch=args.allow_frame_mismatch,
                                 on_irregular=args.on_irregular)
        out["warnings"] = warned
        out["studies_loaded"] = len(cohort)
        out["lesions_inside_ct_and_pet"] = cohort.n_lesions
        # the centroids found for rows without x, y, z (row number and lesion id only: no patient id)
        by_key = {(r.patient_id, r.lesion_id): r.row for r in rows}
        out["mask_centres"] = [
            {"row": by_key[(les.patient_id, les.lesion_id)], "lesion_id": les.lesion_id,
             "x": round(float(les.center_mm[0]), 2), "y": round(float(les.center_mm[1]), 2),
             "z": round(float(les.center_mm[2]), 2)}
            for _, les in cohort.iter_lesions() if les.center_source == "mask"]
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    no_ct = out["patients_without_ct"]
    print(f"{args.manifest}: {out['rows']} lesions of {out['patients']} patients, labels "
          + ", ".join(f"{k} {v}" for k, v in out["labels"].items())
          + f", {out['with_mask']} with masks"
          + ("" if args.rows_only else f"; all {out['studies_loaded']} studies loaded, every lesion centre inside "
             + ("the PET" if no_ct == out["patients"] else "CT and PET" if not no_ct else "its CT (if any) and PET"))
          + f" ({out['seconds']:.1f} s)")
    if no_ct:
        print(f"  {no_ct} of {out['patients']} patients have no CT (PET-only): SUV, delineation, features and the "
              "classical methods work; 2.5D patches and the CNNs (patches, train, predict, the CNN methods of "
              "compare) need CT and PET")
    if out["centres_from_mask"]:
        print(f"  {out['centres_from_mask']} centres taken from the mask (centroid of its largest connected component)"
              + ("" if args.rows_only else ":"))
        for c in out.get("mask_centres", []):
            print(f"    row {c['row']} lesion {c['lesion_id']}: ({c['x']:.2f}, {c['y']:.2f}, {c['z']:.2f}) mm")
    return 0
