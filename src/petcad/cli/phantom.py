"""``petcad phantom``: write a synthetic thorax FDG PET/CT cohort (DICOM or NIfTI) with manifest and truth."""

from __future__ import annotations

NAME = "phantom"
HELP = "write a synthetic thorax PET/CT cohort with labelled lymph nodes (manifest.csv, truth.csv)"
DESCRIPTION = (
    "Write a synthetic thorax 18F-FDG PET/CT cohort: per patient a CT (HU) and a PET (BQML, SUVbw-ready) as DICOM "
    "series (or NIfTI), mediastinal/hilar lymph nodes labelled benign/malignant, DIR/manifest.csv (one row per "
    "lesion), DIR/truth.csv (every drawn value) and lesion masks. Deterministic for a seed. See docs/phantom.md."
)


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (new, empty, or a previous phantom: replaced)")
    parser.add_argument("--patients", type=int, default=None, help="number of patients (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--preset", default="default", help="default (40 pts), paper (168 pts) or realistic (512x512)")
    parser.add_argument("--format", dest="fmt", default="dicom", choices=("dicom", "nifti"), help="image format")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--primary", action="store_true", help="add a primary lung tumour per patient (label primary)")
    parser.add_argument("--preview", action="store_true",
                        help="also write DIR/preview/*.png: CT, PET and fused planes through a lesion")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args) -> int:
    import time
    from dataclasses import replace
    from pathlib import Path

    from petcad.phantom.cohort import generate_cohort, read_truth
    from petcad.phantom.presets import get_preset

    preset = get_preset(args.preset)
    if args.primary:
        preset = replace(preset, lesions=replace(preset.lesions, primary=True))
    n = args.patients if args.patients is not None else preset.n_patients
    t0 = time.perf_counter()
    manifest = generate_cohort(args.out, n_patients=n, seed=args.seed, preset=preset, fmt=args.fmt,
                               workers=args.workers, progress=args.progress)
    out = Path(manifest).parent
    written = []
    if args.preview:
        from petcad.phantom.preview import write_cohort_preview

        written = write_cohort_preview(out, seed=args.seed, preset=preset, n_patients=min(n, 2))
    dt = time.perf_counter() - t0
    import json

    cpu = json.loads((out / "cohort.json").read_text())["summary"].get("cpu_seconds_patients")
    print(format_summary(read_truth(out / "truth.csv"), n, dt, cpu))
    print(f"manifest: {manifest}")
    for p in written:
        print(f"preview: {p}")
    return 0


def format_summary(rows: list[dict], n_patients: int, seconds: float, cpu_seconds: float | None = None) -> str:
    import numpy as np

    labels = np.array([r["label"] for r in rows])
    nodes = labels != "primary"
    share = float(np.mean(labels[nodes] == "malignant")) if nodes.any() else float("nan")
    lines = [f"patients {n_patients}, lesions {len(rows)} ({len(rows) / max(n_patients, 1):.1f} per patient), "
             f"malignant share {share:.1%}"]
    for cls in ("benign", "malignant", "primary"):
        sel = [r for r in rows if r["label"] == cls]
        if not sel:
            continue
        true = np.median([float(r["true_suv"]) for r in sel])
        pet = np.median([float(r["suvmax_pet"]) for r in sel])
        sa = np.median([float(r["short_axis_mm"]) for r in sel])
        lines.append(f"  {cls:9s} n={len(sel):4d}  median true SUV {true:5.2f}  median SUVmax (PET, in mask) {pet:5.2f}"
                     f"  median short axis {sa:5.1f} mm")
    cpu = f" (patients' CPU time {cpu_seconds:.1f} s over all workers)" if cpu_seconds is not None else ""
    lines.append(f"time {seconds:.1f} s{cpu}")
    return "\n".join(lines)
