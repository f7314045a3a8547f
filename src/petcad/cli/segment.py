"""``petcad segment --model RUN (--ct CT --pet PET | --manifest M) --out DIR``: whole-study 3-class segmentation."""

from __future__ import annotations

from petcad.cli._batch_options import add_batch_options

NAME = "segment"
HELP = "segment a whole PET/CT study (no tumour / benign / malignant) and list its lesions"
DESCRIPTION = (
    "Evaluate a segmentation model (petcad train --task segment) exactly at every point of a world lattice "
    "(pitch = stride x the model's patch spacing, 2 mm by default) inside the region of interest, in slabs, and "
    "write per study OUT/<patient_id>/: labels.nii.gz and prob_<class>.nii.gz on the CT grid, lesions.csv / "
    "lesions.json, meta.json, and seg.dcm (DICOM SEG) when the CT is a DICOM series. Default region: the body "
    "with PET SUV >= 1.0 (it may miss lesions whose uptake stays below that level; --roi body evaluates the "
    "whole body). With --manifest, studies whose OUT/<patient_id>/meta.json exists are skipped. See docs/segmentation.md."
)


def add_arguments(parser) -> None:
    from petcad.segment.roi import DEFAULT_SUV_LEVEL

    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory of petcad train --task segment")
    parser.add_argument("--ct", help="CT (DICOM folder or image file)")
    parser.add_argument("--pet", help="PET (DICOM folder or image file in SUV)")
    parser.add_argument("--patient-id", default="study", help="output folder name for --ct/--pet (default: study)")
    parser.add_argument("--manifest", help="cohort manifest CSV: segment each of its studies")
    parser.add_argument("--out", required=True, help="output folder (one sub-folder per study)")
    parser.add_argument("--roi", default="avid", help="avid (default: body and SUV >= --suv-level) | body | MASK file")
    parser.add_argument("--suv-level", type=float, default=DEFAULT_SUV_LEVEL,
                        help=f"PET level of the avid region, SUV (default {DEFAULT_SUV_LEVEL:g})")
    parser.add_argument("--stride", type=int, default=2, choices=(1, 2, 4, 8),
                        help="evaluation lattice pitch in patch pixels (default 2: 2 mm for 1 mm patches)")
    parser.add_argument("--slab", type=int, default=32, help="lattice planes along z per slab (default 32; bounds memory)")
    parser.add_argument("--min-volume-ml", type=float, default=0.0,
                        help="remove predicted lesions smaller than this (mL; default 0 = keep all)")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="remove lesions whose mean tumour probability is below this (default 0: keep all; "
                             "evaluate-segmentation's FROC prints the threshold of each operating point)")
    parser.add_argument("--pet-grid", action="store_true", help="also write labels_pet / prob_<class>_pet on the PET grid")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print the meta.json of each study")
    add_batch_options(parser)


def run(args) -> int:
    import json
    import sys

    from petcad.errors import InputError
    from petcad.segment.run import SegmentSettings, load_segmenter, segment_manifest, segment_study

    if args.slab < 1:
        raise InputError("--slab", "must be at least 1")
    if args.min_volume_ml < 0:
        raise InputError("--min-volume-ml", "must be >= 0")
    if not 0.0 <= args.min_score <= 1.0:
        raise InputError("--min-score", f"must be a probability between 0 and 1, got {args.min_score}")
    settings = SegmentSettings(roi=args.roi, suv_level=args.suv_level, stride=args.stride, slab=args.slab,
                               device=args.device, threads=args.threads, pet_grid=args.pet_grid,
                               min_volume_ml=args.min_volume_ml, min_score=args.min_score)
    if args.manifest:
        if args.ct or args.pet:
            raise InputError("--manifest", "give either --manifest or --ct/--pet, not both")
        metas = segment_manifest(args.model, args.manifest, args.out, settings,
                                 log=lambda m: print(m, file=sys.stderr), shard=args.shard, scheduler=args.scheduler)
    else:
        if not (args.ct and args.pet):
            raise InputError("--ct", "give --ct and --pet (or --manifest)")
        if args.shard or args.scheduler:
            raise InputError("--shard" if args.shard else "--scheduler", "only with --manifest")
        if not args.patient_id or "/" in args.patient_id or args.patient_id.startswith("."):
            raise InputError("--patient-id", f"not a usable folder name: {args.patient_id!r}")
        model, cfg, dev = load_segmenter(args.model, args.device)
        metas = [segment_study(model, cfg, dev, args.ct, args.pet, args.out, args.patient_id, settings,
                               run_dir=args.model)]
    if args.json:
        print(json.dumps(metas, indent=2))
    else:
        for m in metas:
            if m.get("skipped"):
                print(f"{m['patient_id']}: skipped (outputs exist)")
                continue
            by = ", ".join(f"{n} {c}" for c, n in m["lesions_by_class"].items())
            print(f"{m['patient_id']}: {m['evaluated_points']:,} points evaluated on a {m['lattice']['pitch_mm']:g} mm "
                  f"lattice in {m['seconds']['dense']:.1f} s (total {m['seconds']['total']:.1f} s, {m['device']}); "
                  f"{m['n_lesions']} lesions ({by}) -> {args.out}/{m['patient_id']}")
    return 0
