"""``petcad patches``: export tri-planar 2.5D patches (and labelled panels) per lesion."""

from __future__ import annotations

from petcad.io.options import add_on_irregular_option

NAME = "patches"
HELP = "export 2.5D tri-planar CT/PET patches per lesion (npz, optional labelled PNG panels)"
DESCRIPTION = (
    "Sample the axial, coronal and sagittal planes through every lesion of a manifest from CT and PET "
    "(trilinear, physical space), under no, grid or random rotations/shifts of the plane triplet, and write "
    "DIR/<lesion_id>.npz with patches (variants x channels x N x N), channels and transforms "
    "(rot_x, rot_y, rot_z in degrees, shift_x, shift_y, shift_z in pixels or mm)."
)


def _floats(text: str) -> list[float]:
    import argparse

    try:
        return [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_arguments(parser) -> None:
    parser.add_argument("manifest", help="cohort manifest CSV (see petcad.io.manifest)")
    parser.add_argument("--out", required=True, help="output folder (one <lesion_id>.npz per lesion)")
    parser.add_argument("--augment", choices=("none", "grid", "random"), default="none",
                        help="transforms of the plane triplet (default none)")
    parser.add_argument("--rotations", type=_floats, default=[-10.0, 0.0, 10.0],
                        help="grid rotation angles in degrees, used for X, Y and Z (default -10,0,10)")
    parser.add_argument("--shifts", type=_floats, default=[-2.0, 0.0, 2.0],
                        help="grid shifts along X, Y and Z (default -2,0,2; unit --shift-unit)")
    parser.add_argument("--max-rotation", type=float, default=10.0,
                        help="random: each angle uniform in +-this many degrees (default 10)")
    parser.add_argument("--max-shift", type=float, default=2.0,
                        help="random: each shift uniform in +-this much (default 2; unit --shift-unit)")
    parser.add_argument("--n-random", type=int, default=10, help="random: variants per lesion (default 10)")
    parser.add_argument("--shift-unit", choices=("px", "mm"), default="px",
                        help="shifts in patch pixels (default; mm = pixels x spacing) or in mm")
    parser.add_argument("--size", type=int, default=51, help="patch side in pixels, odd (default 51)")
    parser.add_argument("--spacing", type=float, default=1.0, help="pixel spacing in mm (default 1.0)")
    parser.add_argument("--no-normalize", action="store_true", help="keep HU and SUV (default: per-patch z-score)")
    parser.add_argument("--ct-window", type=_floats, default=None, help="clip CT to LOW,HIGH HU before normalising")
    parser.add_argument("--suv-clip", type=_floats, default=None, help="clip PET to LOW,HIGH SUV before normalising")
    parser.add_argument("--mask", action="store_true", help="add the 3 lesion-mask planes (9 channels)")
    parser.add_argument("--png", action="store_true", help="also write DIR/<lesion_id>.png (first variant)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="panel language (default en)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random policy (default 0)")
    add_on_irregular_option(parser)


def run(args) -> int:
    import json
    import re
    import sys
    import time
    from pathlib import Path

    import numpy as np

    from petcad.errors import InputError
    from petcad.io.atomic import atomic_path, write_text
    from petcad.io.manifest import load_cohort, require_ct
    from petcad.patches.augment import AugmentPolicy
    from petcad.patches.cache import LesionCache
    from petcad.patches.normalize import normalize_patches
    from petcad.patches.panels import save_panel
    from petcad.patches.sampler import PatchSampler
    from petcad.provenance import software_versions

    if args.n_random < 1:
        raise InputError("--n-random", f"must be >= 1, got {args.n_random}")
    for opt, val in (("--ct-window", args.ct_window), ("--suv-clip", args.suv_clip)):
        if val is not None and len(val) != 2:
            raise InputError(opt, f"expected LOW,HIGH, got {val}")
    try:
        policy = AugmentPolicy(args.augment, rotations=args.rotations, shifts=args.shifts,
                               max_rotation_deg=args.max_rotation, max_shift=args.max_shift)
    except ValueError as exc:
        raise InputError("--augment", str(exc)) from None
    sampler = PatchSampler(size=args.size, spacing_mm=args.spacing, with_mask=args.mask, shift_unit=args.shift_unit)
    if args.augment == "random":
        transforms = policy.draw(np.random.default_rng(args.seed), args.n_random)
    else:
        transforms = policy.all()
    max_rot, max_shift = float(np.abs(transforms[:, :3]).max()), float(np.abs(transforms[:, 3:]).max())
    max_shift_mm = max_shift * args.spacing if args.shift_unit == "px" else max_shift

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    t0 = time.perf_counter()
    cohort = load_cohort(args.manifest, on_irregular=args.on_irregular)
    require_ct(cohort, args.manifest, "2.5D tri-planar patches (CT and PET planes)")
    cache = LesionCache.from_cohort(cohort, size=args.size, spacing_mm=args.spacing, max_rotation_deg=max_rot,
                                    max_shift_mm=max_shift_mm, with_mask=args.mask)
    n_var = len(transforms)
    bad = [lid for lid in cache.lesion_ids if not re.fullmatch(r"[A-Za-z0-9._-]+", lid)]
    if bad:
        raise InputError(args.manifest, f"{len(bad)} lesion id(s) are not safe file names (letters, digits, . _ -)")
    for li, lid in enumerate(cache.lesion_ids):
        patches = np.empty((n_var, sampler.n_channels, args.size, args.size), dtype=np.float32)
        for a, chunk in sampler.sample_iter(cache, np.full(n_var, li, dtype=np.int64), transforms):
            patches[a : a + len(chunk)] = chunk
        if not args.no_normalize:
            normalize_patches(patches, ct_window=args.ct_window, suv_clip=args.suv_clip, out=patches)
        with atomic_path(out / f"{lid}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, patches=patches, channels=np.array(sampler.channels), transforms=transforms,
                         label=np.array(cache.labels[li]))
        if args.png:
            save_panel(out / f"{lid}.png", patches[0], sampler.channels, lid, cache.labels[li], lang=args.lang,
                       normalized=not args.no_normalize)
    settings = {
        "manifest": str(args.manifest), "augment": policy.settings(), "n_variants": n_var,
        "size": args.size, "spacing_mm": args.spacing, "shift_unit": args.shift_unit,
        "normalize": not args.no_normalize, "ct_window": args.ct_window, "suv_clip": args.suv_clip,
        "mask": args.mask, "seed": args.seed, "channels": list(sampler.channels), "n_lesions": len(cache),
        "cache_mb": round(cache.memory_mb, 1), "seconds": round(time.perf_counter() - t0, 2),
        "versions": software_versions(),
    }
    write_text(out / "patches.json", json.dumps(settings, indent=2))
    print(f"wrote {len(cache)} lesion(s) x {n_var} variant(s) x {sampler.n_channels} channels "
          f"({args.size}x{args.size} at {args.spacing:g} mm) to {out} in {settings['seconds']} s", file=sys.stderr)
    return 0
