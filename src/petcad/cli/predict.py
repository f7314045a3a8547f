"""``petcad predict --model RUN_DIR``: probability of malignancy at points, or for every lesion of a manifest."""

from __future__ import annotations

from petcad.cli._batch_options import add_batch_options
from petcad.io.options import add_on_irregular_option

NAME = "predict"
HELP = "probability of malignancy (or of each label of a K-class run) from a trained CNN run directory"
DESCRIPTION = (
    "Either --ct CT --pet PET --at x,y,z [--at ...] (world mm, LPS) to classify points of one study, "
    "or --manifest M --out predictions.csv (columns patient_id, lesion_id, label, probability; a run trained "
    "on more than two labels writes p_<label> per label and predicted). A manifest label the run does not "
    "know stops with exit status 2. --tta averages the softmax over the 729-variant augmentation grid."
)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory written by petcad train")
    parser.add_argument("--ct", help="CT (DICOM folder or image file)")
    parser.add_argument("--pet", help="PET (DICOM folder or image file in SUV)")
    parser.add_argument("--at", action="append", default=[], metavar="x,y,z", help="lesion centre in mm (repeatable)")
    parser.add_argument("--manifest", help="cohort manifest CSV (manifest mode)")
    parser.add_argument("--out", help="predictions CSV (manifest mode)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation over the 729-variant grid")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_on_irregular_option(parser)
    add_batch_options(parser)


def run(args) -> int:
    import json

    from petcad.errors import InputError
    from petcad.models import predict as P

    if args.manifest:
        if args.ct or args.pet or args.at:
            raise InputError("--manifest", "give either --manifest or --ct/--pet/--at, not both")
        if not args.out:
            raise InputError("--out", "the manifest mode needs --out predictions.csv")
        rows = P.predict_manifest(args.model, args.manifest, args.out, tta=args.tta, device=args.device,
                                  threads=args.threads, on_irregular=args.on_irregular, shard=args.shard,
                                  scheduler=args.scheduler, progress=not args.json)
        if args.json:
            print(json.dumps(rows, indent=2))
        elif rows:
            print(f"{len(rows)} lesions -> {args.out}")
        else:
            print(f"shard {args.shard} done; {args.out} is written when every study has its part (other shards)")
        return 0
    if args.shard or args.scheduler:
        raise InputError("--shard" if args.shard else "--scheduler", "only with --manifest")
    if not (args.ct and args.pet and args.at):
        raise InputError("--at", "give --ct, --pet and at least one --at x,y,z (or --manifest and --out)")
    pts = [P.parse_point(a) for a in args.at]
    rows = P.predict_points(args.model, args.ct, args.pet, pts, tta=args.tta, device=args.device, threads=args.threads,
                             on_irregular=args.on_irregular)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            probs = ([f"P({r['positive']}) = {r['probability']:.4f}"] if "probability" in r else
                     [f"P({k[2:]}) = {v:.4f}" for k, v in r.items() if k.startswith("p_")])
            print(f"{r['x']:.1f},{r['y']:.1f},{r['z']:.1f}\t" + "  ".join(probs) + f"\t{r['label']}")
    return 0
