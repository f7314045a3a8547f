"""``petcad serve``: the local viewer (study browser, fused PET/CT, 2.5D patches, saliency)."""

from __future__ import annotations

NAME = "serve"
HELP = "local web viewer: fused PET/CT, lesion patches, probabilities, saliency (http://127.0.0.1:8000)"
DESCRIPTION = (
    "Serve a viewer for the studies of the manifests given (--data, a manifest CSV or a folder with "
    "manifest.csv; repeatable): fused tri-planar CT/PET (NiiVue) with SUV and HU read-outs, PET MIP, "
    "the six labelled 2.5D patch panels of a lesion or clicked point with the 2.5D slicing dialog, "
    "class probabilities from --model with and without test-time augmentation, Captum saliency, "
    "segmentation overlays (--segmentation, a petcad segment output) and petcad compare reports "
    "(--report). Listens on 127.0.0.1 unless --host says otherwise (then it warns). See docs/viewer.md."
)


def add_arguments(parser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="MANIFEST_OR_DIR",
                        help="manifest CSV or a folder holding manifest.csv (repeatable)")
    parser.add_argument("--model", metavar="RUN_DIR", help="run directory written by petcad train")
    parser.add_argument("--segmentation", metavar="DIR", help="petcad segment output (DIR/<patient_id>/labels.nii.gz, lesions.csv)")
    parser.add_argument("--report", action="append", default=[], metavar="DIR",
                        help="petcad compare report folder to show (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--lang", default="en", choices=("en", "zh"), help="initial page language")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto for the model (default cpu)")
    parser.add_argument("--max-studies", type=int, default=3, help="studies kept in memory (default 3)")
    parser.add_argument("--rate-limit", type=int, default=120,
                        help="compute requests per client and minute (default 120)")


def _require_web() -> None:
    import importlib.util

    from petcad.errors import InputError

    missing = [m for m in ("fastapi", "uvicorn", "captum") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError("serve", f"needs {', '.join(missing)}: pip install 'petcad[web]'")


def config_from_args(args):
    """The :class:`petcad.web.app.ServeConfig` of parsed arguments (InputError for bad values)."""
    from petcad.errors import InputError

    _require_web()
    from petcad.web.app import ServeConfig

    if not args.data:
        raise InputError("--data", "give at least one manifest CSV or folder with manifest.csv")
    if not 0 < args.port < 65536:
        raise InputError("--port", f"must be 1-65535, got {args.port}")
    if args.max_studies < 1:
        raise InputError("--max-studies", f"must be at least 1, got {args.max_studies}")
    if args.rate_limit < 1:
        raise InputError("--rate-limit", f"must be at least 1, got {args.rate_limit}")
    return ServeConfig(data=list(args.data), model=args.model, segmentation=args.segmentation,
                       reports=list(args.report), host=args.host, port=args.port, lang=args.lang,
                       device=args.device, max_studies=args.max_studies, rate_limit=args.rate_limit)


def run(args) -> int:
    from petcad.web.server import serve

    serve(config_from_args(args))
    return 0
