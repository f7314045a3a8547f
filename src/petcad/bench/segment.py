"""``petcad bench segment``: dense whole-study segmentation against one patch at a time.

A phantom study (``default`` preset, one patient, written as NIfTI by a separate ``petcad phantom``
process so that its memory does not count) is segmented densely with the default region (body and
SUV >= 1.0) on the default 2 mm lattice: ``dense_s`` is the network part, ``voxels_evaluated`` the
points. ``per_voxel_s`` is **measured on a sample** of ``--sample`` of those points, each classified
alone (``PatchSampler`` + normalisation + the network, batch of one), and **extrapolated** to all
points: ``per_voxel_total_s = per_voxel_s x voxels_evaluated``, ``ratio = per_voxel_total_s / dense_s``.
The sample's probabilities are compared with the dense ones (``max_abs_diff``). A second sample
(``--batched``, default 512 points) is classified in batches of 256 (``per_voxel_batched_s``,
``ratio_vs_batched``): the fairer baseline for a program that batches. ``peak_rss_mb`` is
this process's peak resident memory. ``realistic_study_s``: the whole ``petcad segment`` of one
``realistic`` phantom study (512 x 512 x 260; reading, region, dense evaluation, CT-grid maps, lesion
list, NIfTI writing), unless ``--no-realistic``; ``realistic`` also holds that study's own ``ratio``
(one patch at a time on ``--sample`` of its points, extrapolated, over its dense seconds) and the
sample's ``max_abs_diff``. Without ``--model`` the network has untrained
(seeded) weights: speed does not depend on them.
"""

from __future__ import annotations

HELP = "time dense whole-study segmentation vs one patch at a time"


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=None, metavar="RUN_DIR", help="a petcad train --task segment run (default: untrained)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--sample", type=int, default=64, help="points classified one at a time (default 64)")
    parser.add_argument("--batched", type=int, default=512,
                        help="points classified in batches of 256 for the batched patch figure (default 512)")
    parser.add_argument("--stride", type=int, default=2, choices=(1, 2, 4, 8), help="lattice pitch in patch pixels (default 2)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-realistic", action="store_true", help="skip the realistic-study timing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _phantom(out, preset: str, seed: int):
    import subprocess
    import sys

    from petcad.errors import InputError

    cmd = [sys.executable, "-m", "petcad", "phantom", "--out", str(out), "--patients", "1", "--seed", str(seed),
           "--preset", preset, "--format", "nifti", "--workers", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError("bench segment", f"phantom generation failed: {res.stderr.strip()[-200:]}")
    return out / "P0001" / "ct.nii.gz", out / "P0001" / "pet.nii.gz"


def _model(args):
    import torch

    from petcad.models.registry import build_model
    from petcad.models.train import resolve_device
    from petcad.segment.run import load_segmenter

    if args.model:
        return load_segmenter(args.model, args.device)
    torch.manual_seed(args.seed)
    model = build_model("multiview", n_classes=3).eval()
    cfg = {"classes": ["none", "benign", "malignant"], "spacing_mm": 1.0, "patch_size": 51, "model": "multiview",
           "normalization": "fixed"}
    dev = resolve_device(args.device)
    return model.to(dev), cfg, dev


def _one_at_a_time(model, study, world, dev):
    """Seconds per point, classifying each alone; and the probabilities."""
    import time

    import numpy as np
    import torch

    from petcad.patches.normalize import fixed_normalize
    from petcad.patches.cache import LesionCache
    from petcad.patches.sampler import PatchSampler

    sampler = PatchSampler(51, 1.0)
    out = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        for w in world:
            cache = LesionCache.from_study(study, w[None, :], size=51, spacing_mm=1.0)
            x = fixed_normalize(sampler.sample(cache, np.zeros(1, np.int64), np.zeros((1, 6))))
            out.append(torch.softmax(model(torch.from_numpy(x).to(dev)), 1).cpu().numpy()[0])
        secs = (time.perf_counter() - t0) / len(world)
    return secs, np.array(out)


def _batched(model, study, world, dev, batch: int = 256):
    """Seconds per point classifying ``world`` in batches (one crop cache, one sampler call and one
    network call per batch); and the probabilities."""
    import time

    import numpy as np
    import torch

    from petcad.models.data import fixed_normalize
    from petcad.patches.cache import LesionCache
    from petcad.patches.sampler import PatchSampler

    sampler = PatchSampler(51, 1.0)
    out = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        for a in range(0, len(world), batch):
            w = world[a : a + batch]
            cache = LesionCache.from_study(study, w, size=51, spacing_mm=1.0)
            x = fixed_normalize(sampler.sample(cache, np.arange(len(w)), np.zeros((len(w), 6))))
            out.append(torch.softmax(model(torch.from_numpy(x).to(dev)), 1).cpu().numpy())
        secs = (time.perf_counter() - t0) / len(world)
    return secs, np.concatenate(out)


def _realistic_ratio(model, dev, seg, paths, meta, args, rng) -> dict:
    """One-patch-at-a-time seconds per point on a sample of the realistic study's evaluated points,
    extrapolated to all of them and divided by that study's dense seconds; the sample's dense
    probabilities (the same segmenter on those points alone) against the patch path's."""
    import numpy as np

    from petcad.io.loader import load_study
    from petcad.segment.lattice import covering_lattice
    from petcad.segment.roi import region

    study = load_study(paths[0], paths[1], patient_id="realistic")
    lat = covering_lattice(study.ct, seg.pitch_mm)
    pts = np.argwhere(region("avid", study.ct, study.pet, lat))
    pick = pts[rng.choice(len(pts), size=min(args.sample, len(pts)), replace=False)]
    per, probs = _one_at_a_time(model, study, lat.world(pick), dev)
    only = np.zeros(lat.shape, dtype=bool)
    only[tuple(pick.T)] = True
    dense = seg.evaluate(study.ct, study.pet, lat, only)
    order = {tuple(p): n for n, p in enumerate(dense.points)}
    diff = np.abs(probs - dense.probs[[order[tuple(p)] for p in pick]]).max()
    n, dense_s = len(pts), float(meta["seconds"]["dense"])
    return {"per_voxel_s": per, "per_voxel_sampled": int(len(pick)), "per_voxel_total_s": round(per * n, 1),
            "ratio": round(per * n / dense_s, 1), "ratio_note": "per_voxel_total_s / seconds.dense (region excluded)",
            "max_abs_diff": float(diff)}


def run(args) -> int:
    import json
    import os
    import resource
    import tempfile
    import time
    from pathlib import Path

    import numpy as np

    from petcad.io.loader import load_study
    from petcad.segment.dense import DenseSegmenter
    from petcad.segment.lattice import covering_lattice
    from petcad.segment.roi import region
    from petcad.segment.run import SegmentSettings, segment_study

    res = {}
    with tempfile.TemporaryDirectory(prefix="petcad_bench_segment_") as tmp:
        tmp = Path(tmp)
        ct, pet = _phantom(tmp / "default", "default", args.seed)
        realistic = None if args.no_realistic else _phantom(tmp / "realistic", "realistic", args.seed)
        model, cfg, dev = _model(args)
        study = load_study(ct, pet, patient_id="bench")
        seg = DenseSegmenter(model, spacing_mm=1.0, stride=args.stride, device=dev, threads=args.threads)
        lat = covering_lattice(study.ct, seg.pitch_mm)
        t0 = time.perf_counter()
        roi = region("avid", study.ct, study.pet, lat)
        res["region_s"] = round(time.perf_counter() - t0, 3)
        dense_probs = None
        # warm-up on a few points (numba / torch first-call costs), then the timed run
        warm = np.zeros_like(roi)
        warm[tuple(np.argwhere(roi)[:4].T)] = True
        seg.evaluate(study.ct, study.pet, lat, warm)
        t0 = time.perf_counter()
        dense = seg.evaluate(study.ct, study.pet, lat, roi)
        res["dense_s"] = round(time.perf_counter() - t0, 3)
        dense_probs = dense.probs
        n = len(dense.points)
        rng = np.random.default_rng(args.seed)
        pick = rng.choice(n, size=min(args.sample, n), replace=False)
        per, probs = _one_at_a_time(model, study, lat.world(dense.points[pick]), dev)
        pick_b = rng.choice(n, size=min(args.batched, n), replace=False)
        per_b, probs_b = _batched(model, study, lat.world(dense.points[pick_b]), dev)
        res.update({
            "voxels_evaluated": int(n), "lattice_mm": seg.pitch_mm, "region": "avid (body and SUV >= 1.0)",
            "per_voxel_s": per, "per_voxel_sampled": int(len(pick)),
            "per_voxel_total_s": round(per * n, 1), "per_voxel_note": "measured on the sample, extrapolated to all points",
            "ratio": round(per * n / res["dense_s"], 1),
            "per_voxel_batched_s": per_b, "per_voxel_batched_sampled": int(len(pick_b)),
            "ratio_vs_batched": round(per_b * n / res["dense_s"], 2),
            "max_abs_diff_batched": float(np.abs(probs_b - dense_probs[pick_b]).max()),
            "max_abs_diff": float(np.abs(probs - dense_probs[pick]).max()),
            "dense_points_per_s": round(n / res["dense_s"], 1),
            "device": str(dev), "threads": args.threads, "load_average": os.getloadavg()[0],
        })
        del dense, dense_probs
        res["peak_rss_mb_default_study"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
        if realistic is not None:
            settings = SegmentSettings(stride=args.stride, device=str(dev), threads=args.threads)
            t0 = time.perf_counter()
            meta = segment_study(model, cfg, dev, realistic[0], realistic[1], tmp / "out", "realistic", settings)
            res["realistic_study_s"] = round(time.perf_counter() - t0, 2)
            res["realistic"] = {"evaluated_points": meta["evaluated_points"], "seconds": meta["seconds"],
                                "write_seconds": meta["write_seconds"], "lattice_shape_zyx": meta["lattice"]["shape_zyx"]}
            res["realistic"].update(_realistic_ratio(model, dev, seg, realistic, meta, args, rng))
        res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"dense: {res['voxels_evaluated']:,} points ({res['lattice_mm']:g} mm lattice, {res['region']}) in "
              f"{res['dense_s']:.1f} s ({res['dense_points_per_s']:,.0f} points/s, {res['device']})")
        print(f"one patch at a time: {res['per_voxel_s'] * 1e3:.2f} ms per point (measured on {res['per_voxel_sampled']}, "
              f"extrapolated: {res['per_voxel_total_s']:,.0f} s); ratio {res['ratio']:,.0f} x; max |p dense - p patch| "
              f"{res['max_abs_diff']:.2e}")
        print(f"patches in batches of 256: {res['per_voxel_batched_s'] * 1e3:.2f} ms per point (measured on "
              f"{res['per_voxel_batched_sampled']}); dense is {res['ratio_vs_batched']:.1f} x faster than that")
        if "realistic_study_s" in res:
            r = res["realistic"]
            print(f"realistic study (512 x 512 x 260): {res['realistic_study_s']:.1f} s in all "
                  f"({r['evaluated_points']:,} points, dense {r['seconds']['dense']:.1f} s); one patch at a time "
                  f"{r['per_voxel_s'] * 1e3:.2f} ms per point (measured on {r['per_voxel_sampled']}); ratio "
                  f"{r['ratio']:,.0f} x; max |p dense - p patch| {r['max_abs_diff']:.2e}")
        print(f"peak RSS {res['peak_rss_mb']:.0f} MB; load average {res['load_average']:.1f}")
    return 0
