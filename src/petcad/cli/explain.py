"""``petcad explain --model RUN --manifest M --out DIR``: what the network looks at, as PNG panels."""

from __future__ import annotations

NAME = "explain"
HELP = "saliency panels (Captum) of every lesion of a manifest, with the CT vs PET attribution share"
DESCRIPTION = (
    "For every lesion of MANIFEST: the six labelled patch panels of the original study (CT and PET; "
    "axial, coronal, sagittal; nine with mask channels) with the attribution of the malignant-class "
    "probability on top (red raises it, blue lowers it), written as DIR/<patient>_<lesion>.png, and "
    "DIR/saliency.csv with the probability and the share of attribution on CT, PET (and mask). "
    "--method ig: integrated gradients (--steps steps); occlusion: 5 x 5 squares set to the baseline."
)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory written by petcad train")
    parser.add_argument("--manifest", required=True, help="cohort manifest CSV")
    parser.add_argument("--out", required=True, help="output folder for the PNGs and saliency.csv")
    parser.add_argument("--method", default="ig", choices=("ig", "occlusion"), help="attribution method (default ig)")
    parser.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N lesions")
    parser.add_argument("--lang", default="en", choices=("en", "zh"), help="panel language")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")


def run(args) -> int:
    import sys

    from petcad.errors import InputError
    from petcad.explain.batch import explain_manifest

    import importlib.util

    if importlib.util.find_spec("captum") is None:
        raise InputError("explain", "needs captum: pip install 'petcad[web]'")
    if args.steps < 2:
        raise InputError("--steps", f"must be at least 2, got {args.steps}")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be at least 1, got {args.limit}")
    rows = explain_manifest(args.model, args.manifest, args.out, method=args.method, steps=args.steps,
                            lang=args.lang, device=args.device, limit=args.limit)
    print(f"{len(rows)} lesions -> {args.out} (PNG panels and saliency.csv)", file=sys.stderr)
    return 0
