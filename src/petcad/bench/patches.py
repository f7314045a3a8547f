"""``petcad bench patches``: augmented tri-planar patches per second, petcad vs torch ``grid_sample``
on the same lesion crops, vs rotating the whole volume; memory; the training loader.

In one run on one cohort (a small phantom cohort by default, or ``--manifest``):

* **petcad**: :class:`PatchSampler` on a :class:`LesionCache`, the original study's grid of
  729 transforms for every lesion, in chunks of ``--chunk`` patches (nothing kept), at two
  variant counts (81 and 729 per lesion) with the process's peak RSS after each, to show
  that memory does not grow with the number of variants;
* **grid_sample** (the fair baseline): ``torch.nn.functional.grid_sample`` (trilinear,
  ``align_corners=True``) on the same lesion crops (CT and PET, each on its own grid) for the
  same transforms, one call per lesion and modality, with the sampling grids precomputed
  (not timed); its patches are compared with petcad's. ``--rounds`` rounds alternate
  petcad and grid_sample, so that both see the same machine load;
* **whole volume** (the naive way): for a few (lesion, transform) pairs, rotate/translate the
  whole CT and PET with a SimpleITK resample onto a 1 mm isotropic grid over the CT's extent
  (trilinear), then slice the three planes; its patches are compared with petcad's;
* **torch path**: :class:`petcad.patches.torch_sampler.TorchPatchSampler` (the sampler used
  on CUDA) on this machine's device (the CPU here), compared with petcad's patches;
* **loader**: ``LesionData.sample`` (what training calls per batch: sample, normalise), batches of 128;
* ``--profile``: where the sampler's time goes (index tables, kernel with and without the
  lesion ordering, one thread vs all, fresh vs reused output).

The numba kernels are compiled (or loaded from their cache) once before timing.
"""

from __future__ import annotations

from petcad.io.options import add_on_irregular_option

HELP = "patch sampling speed: petcad sampler vs torch grid_sample on the same crops, vs the whole volume; memory, loader"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--manifest", default=None, help="cohort manifest (default: a phantom cohort)")
    add_on_irregular_option(parser)
    parser.add_argument("--patients", type=int, default=3, help="phantom patients when no --manifest (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="phantom and loader seed (default 0)")
    parser.add_argument("--chunk", type=int, default=512, help="patches per sampler call (default 512)")
    parser.add_argument("--naive", type=int, default=3, help="patches made the naive way (default 3)")
    parser.add_argument("--loader-batches", type=int, default=20, help="loader batches of 128 timed (default 20)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating petcad / grid_sample rounds; rates are their medians (default 3)")
    parser.add_argument("--grid-sample-patches", type=int, default=1024,
                        help="patches made by torch grid_sample per round (default 1024)")
    parser.add_argument("--torch-patches", type=int, default=256,
                        help="patches made by the torch sampling path (default 256)")
    parser.add_argument("--profile", action="store_true", help="also time the sampler's steps (tables, ordering, threads)")
    parser.add_argument("--against", default=None, metavar="REV[,REV...]",
                        help="also time the sampler of these git revisions of this checkout against the current one, "
                             "in interleaved rounds (needs git and a petcad git checkout)")


def _rss_mb() -> tuple[float, float]:
    """(peak RSS, current RSS) of this process in MB."""
    import os
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            cur = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        cur = float("nan")
    return peak, cur


def _cohort(args, tmpdir):
    """The cohort and a line saying where it came from."""
    from petcad.io.manifest import load_cohort

    if args.manifest:
        return load_cohort(args.manifest, on_irregular=args.on_irregular), f"manifest {args.manifest}"
    try:
        from petcad.phantom import generate_cohort
    except ImportError:
        generate_cohort = None
    if generate_cohort is not None:
        man = generate_cohort(f"{tmpdir}/phantom", n_patients=args.patients, seed=args.seed, fmt="nifti")
        return load_cohort(man), f"phantom cohort ({args.patients} patients, seed {args.seed}, petcad.phantom)"
    return _synthetic(args.seed), "in-memory synthetic study (petcad.phantom not importable)"


def _synthetic(seed: int):
    import numpy as np

    from petcad.study import Cohort, Lesion, Study, Volume

    rng = np.random.default_rng(seed)
    ct = Volume(rng.normal(0, 50, (120, 256, 256)).astype(np.float32), [-192, -192, -150], [1.5, 1.5, 2.5])
    pet = Volume(rng.gamma(2, 0.5, (90, 96, 96)).astype(np.float32), [-190, -190, -148], [4.0, 4.0, 3.3])
    les = [Lesion(f"S-L{i:02d}", rng.uniform(-60, 60, 3), ("benign", "malignant")[i % 2], "S") for i in range(20)]
    return Cohort([Study("S", ct, pet, les)])


def _naive(study, center, t, size, spacing):
    """Rotate/translate the whole CT and PET (SimpleITK, linear) onto a 1 mm grid, then slice."""
    import numpy as np
    import SimpleITK as sitk

    from petcad.patches.geometry import rotation_matrices

    r = rotation_matrices(t[None, :3])[0]
    tr = sitk.AffineTransform(3)
    tr.SetMatrix(tuple(float(v) for v in r.reshape(-1)))
    tr.SetCenter(tuple(float(v) for v in center))
    tr.SetTranslation(tuple(float(v) for v in t[3:] * spacing))
    lo, hi = study.ct.bounds_world()
    # an isotropic grid over the CT's extent with the lesion centre on a voxel centre
    n_lo = np.floor((center - lo) / spacing).astype(int)
    n_hi = np.floor((hi - center) / spacing).astype(int)
    origin = center - n_lo * spacing
    shape = n_lo + n_hi + 1
    h = (size - 1) // 2
    i0, j0, k0 = n_lo
    planes = []
    for vol, fill in ((study.ct, -1024.0), (study.pet, 0.0)):
        out = sitk.Resample(vol.to_sitk(), [int(v) for v in shape], tr, sitk.sitkLinear,
                            tuple(float(v) for v in origin), (spacing,) * 3, tuple(np.eye(3).reshape(-1)), fill,
                            sitk.sitkFloat32)
        a = sitk.GetArrayFromImage(out)
        planes += [a[k0, j0 - h : j0 + h + 1, i0 - h : i0 + h + 1],
                   a[k0 + h : k0 - h - 1 : -1, j0, i0 - h : i0 + h + 1],
                   a[k0 + h : k0 - h - 1 : -1, j0 - h : j0 + h + 1, i0]]
        planes = [p.copy() for p in planes]
    return np.stack(planes).astype(np.float32)


def _grid_sample_patches(cache, sampler, lesion, transforms, timed: list):
    """Patches made by torch ``grid_sample`` on the lesion crops, one call per (lesion, modality);
    the grids are built before each call and only the calls (and the fill offset) are timed
    (seconds appended to ``timed``)."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    from petcad.patches.cache import FILL_VALUES, MODALITIES

    size, n_mod = sampler.size, 2
    out = np.empty((len(lesion), 3 * n_mod, size, size), np.float32)
    lesion_c, t = sampler._check(cache, lesion, transforms)
    base, drow, dcol, _ = sampler._tables(cache, lesion_c, t)
    rc = np.arange(size, dtype=np.float64)
    seconds = 0.0
    for li in np.unique(lesion_c):
        sel = np.flatnonzero(lesion_c == li)
        for m in range(n_mod):
            crop = cache.crops[li][m].array  # [k, j, i]
            fill = FILL_VALUES[MODALITIES[m]]
            vol = torch.from_numpy(crop - np.float32(fill))[None, None]  # zero padding = the fill value
            idx = (base[sel, m, :, None, None, :] + rc[:, None, None] * drow[sel, m, :, None, None, :]
                   + rc[None, :, None] * dcol[sel, m, :, None, None, :])  # (g, 3, S rows, S cols, (i, j, k))
            n_ijk = np.array(crop.shape[::-1], dtype=np.float64)
            grid = torch.from_numpy((2.0 * idx / (n_ijk - 1.0) - 1.0).astype(np.float32)).reshape(1, -1, size, size, 3)
            t0 = time.perf_counter()
            res = F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            res = res.reshape(len(sel), 3, size, size) + fill
            seconds += time.perf_counter() - t0
            out[sel, 3 * m : 3 * m + 3] = res.numpy()
    timed.append(seconds)
    return out


def _petcad_run(sampler, cache, lesion, transforms) -> tuple[float, float, float]:
    """(seconds, CPU seconds, checksum) for sampling every (lesion, transform) in chunks."""
    import time

    checksum = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for _, chunk in sampler.sample_iter(cache, lesion, transforms):
        checksum += float(chunk[:, :, 25 % chunk.shape[2], 25 % chunk.shape[3]].sum())
    return time.perf_counter() - t0, time.process_time() - c0, checksum


def _versus_grid_sample(args, sampler, cache, grid) -> dict:
    """petcad (729 variants per lesion) and grid_sample (a subset of the same patches), alternating."""
    import numpy as np

    lesion = np.repeat(np.arange(len(cache)), len(grid))
    transforms = np.tile(grid, (len(cache), 1))
    # grid_sample on an evenly spread subset of the same (lesion, transform) pairs
    pick = np.linspace(0, len(lesion) - 1, min(args.grid_sample_patches, len(lesion))).round().astype(int)
    rounds, gs_seconds = [], []
    gs = None
    for _ in range(args.rounds):
        dt, cpu, _ = _petcad_run(sampler, cache, lesion, transforms)
        gs = _grid_sample_patches(cache, sampler, lesion[pick], transforms[pick], gs_seconds)
        rounds.append({"petcad_patches_per_s": round(lesion.size / dt, 1),
                       "petcad_patches_per_cpu_s": round(lesion.size / max(cpu, 1e-9), 1),
                       "grid_sample_patches_per_s": round(len(pick) / gs_seconds[-1], 1)})
    ours = sampler.sample(cache, lesion[pick], transforms[pick])
    diff = np.abs(gs - ours)
    pet = float(np.median([r["petcad_patches_per_s"] for r in rounds]))
    gsr = float(np.median([r["grid_sample_patches_per_s"] for r in rounds]))
    return {"rounds": rounds, "petcad_patches_per_s": pet, "grid_sample_patches_per_s": gsr,
            "ratio_vs_grid_sample": round(pet / gsr, 2), "grid_sample_patches": int(len(pick)),
            "grid_sample_vs_petcad_max_abs_diff": {"CT_HU": float(diff[:, :3].max()), "PET_SUV": float(diff[:, 3:].max())},
            "petcad_patches_per_cpu_s": float(np.median([r["petcad_patches_per_cpu_s"] for r in rounds]))}


def _memory_runs(sampler, cache, grid) -> dict:
    """The 81- and 729-variant runs with the peak RSS after each (memory flat in the variants)."""
    import numpy as np

    runs = {}
    for n_var in (81, 729):
        sel = grid[np.linspace(0, len(grid) - 1, n_var).round().astype(int)]
        lesion = np.repeat(np.arange(len(cache)), n_var)
        dt, cpu, _ = _petcad_run(sampler, cache, lesion, np.tile(sel, (len(cache), 1)))
        peak, cur = _rss_mb()
        runs[n_var] = {"patches": int(lesion.size), "seconds": round(dt, 3),
                       "patches_per_s": round(lesion.size / dt, 1), "cpu_seconds": round(cpu, 3),
                       "patches_per_cpu_s": round(lesion.size / max(cpu, 1e-9), 1),
                       "peak_rss_mb": round(peak, 1), "rss_mb": round(cur, 1)}
    return runs


def _naive_check(args, cohort, cache, sampler, grid) -> dict:
    """The whole-volume way on a few pairs, and its difference from petcad away from the borders."""
    import time

    import numpy as np

    from petcad.patches.geometry import pixel_world

    size, spacing = sampler.size, sampler.spacing_mm
    rng = np.random.default_rng(args.seed)
    pairs = [(int(rng.integers(len(cache))), grid[int(rng.integers(len(grid)))]) for _ in range(args.naive)]
    studies = {s.patient_id: s for s in cohort.studies}
    t0 = time.perf_counter()
    naive = [_naive(studies[cache.patient_ids[li]], cache.centers_mm[li], t, size, spacing) for li, t in pairs]
    dt = time.perf_counter() - t0
    ours = sampler.sample(cache, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    diff = np.abs(np.stack(naive) - ours)
    # compare where every trilinear neighbour lies inside the volume (SimpleITK clamps to the edge
    # voxel within half a voxel of the border, petcad blends with the fill value there)
    pos = pixel_world(cache.centers_mm[[p[0] for p in pairs]], np.array([p[1] for p in pairs]), size, spacing)
    for m, vols in enumerate(([studies[cache.patient_ids[li]].ct for li, _ in pairs],
                              [studies[cache.patient_ids[li]].pet for li, _ in pairs])):
        for q, vol in enumerate(vols):
            inside = vol.contains(pos[q], margin_voxels=-1.0)
            diff[q, 3 * m : 3 * m + 3][~inside] = 0.0
    return {"naive_patches": len(pairs), "naive_patches_per_s": round(len(pairs) / dt, 4),
            "naive_vs_petcad_max_abs_diff": {"CT_HU": float(diff[:, :3].max()), "PET_SUV": float(diff[:, 3:].max())}}


def _torch_path(args, sampler, cache, grid) -> dict:
    """TorchPatchSampler (the CUDA sampling path) on the CPU: rate and difference from petcad."""
    import time

    import numpy as np

    from petcad.patches.torch_sampler import TorchPatchSampler

    n = min(args.torch_patches, len(cache) * len(grid))
    lesion = np.arange(n) % len(cache)
    transforms = grid[(np.arange(n) * 7) % len(grid)]
    ts = TorchPatchSampler(cache, size=sampler.size, spacing_mm=sampler.spacing_mm)
    ts.sample(lesion[:2], transforms[:2])
    t0 = time.perf_counter()
    x = ts.sample(lesion, transforms)
    dt = time.perf_counter() - t0
    diff = float(np.abs(x.cpu().numpy() - sampler.sample(cache, lesion, transforms)).max())
    return {"torch_path_device": str(ts.device), "torch_path_patches": int(n),
            "torch_path_patches_per_s": round(n / dt, 1), "torch_path_vs_petcad_max_abs_diff": diff}


def _loader(args, cache) -> dict:
    """LesionData.sample (sample + fixed normalisation, random policy), batches of 128."""
    import time

    import numpy as np

    from petcad.models.data import LesionData
    from petcad.patches.augment import AugmentPolicy

    data = LesionData(cache=cache, y=np.zeros(len(cache), np.int64), groups=np.zeros(len(cache)))
    rng = np.random.default_rng(args.seed)
    policy = AugmentPolicy("random")
    seen, t0 = 0, time.perf_counter()
    for _ in range(args.loader_batches):
        idx = rng.integers(0, len(cache), 128)
        x = data.sample(idx, policy.draw(rng, 128))
        seen += x.shape[0]
    return {"loader_patches_per_s": round(seen / (time.perf_counter() - t0), 1)}


def _profile(sampler, cache, grid, passes: int = 3) -> dict:
    """Where the time goes, on the 729-variant grid in chunks of 512: the checks and index tables,
    then the kernel alone under variations (patches grouped by lesion or shuffled, visited sorted or
    not, output reused or fresh per chunk, all threads or one), ``passes`` interleaved passes each;
    per variation the median wall-clock rate and the median rate per CPU-second."""
    import time

    import numpy as np

    from petcad.patches.cache import FILL_VALUES
    from petcad.patches.sampler import _default_threads, _run_kernel

    lesion = np.repeat(np.arange(len(cache)), len(grid))
    transforms = np.tile(grid, (len(cache), 1))
    shuffled = np.random.default_rng(0).permutation(len(lesion))
    fills = np.array([FILL_VALUES["CT"], FILL_VALUES["PET"]], np.float32)
    buf = np.empty((512, 6, sampler.size, sampler.size), np.float32)
    samples = 6 * sampler.size**2
    res: dict = {"patches": int(len(lesion)), "samples_per_patch": samples, "output_bytes_per_patch": int(buf[0].nbytes),
                 "gathered_bytes_per_patch": 8 * 4 * samples, "crop_bytes_per_lesion": int(cache.data.nbytes / len(cache))}
    t0 = time.perf_counter()
    tables = []
    for a in range(0, len(lesion), 512):
        les, t = sampler._check(cache, lesion[a : a + 512], transforms[a : a + 512])
        tables.append((les, sampler._tables(cache, les, t)[:3]))
    res["checks_and_tables_us_per_patch"] = round(1e6 * (time.perf_counter() - t0) / len(lesion), 2)
    threads = _default_threads()
    variants = {"grouped_by_lesion": (tables, True, False, threads),
                "shuffled_sorted_per_chunk": (_permuted(tables, shuffled), True, False, threads),
                "shuffled_unsorted": (_permuted(tables, shuffled), False, False, threads),
                "grouped_fresh_output_per_chunk": (tables, True, True, threads),
                "grouped_by_lesion_1_thread": (tables, True, False, 1)}
    rates: dict = {k: ([], []) for k in variants}
    for _ in range(passes):
        for name, (chunks, sort, fresh, n_threads) in variants.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for les, (base, drow, dcol) in chunks:
                out = np.empty((len(les), 6, sampler.size, sampler.size), np.float32) if fresh else buf[: len(les)]
                order = np.argsort(les, kind="stable") if sort else np.arange(len(les))
                _run_kernel((cache.data, cache.offsets, cache.shapes, fills, les, order, base, drow, dcol, out),
                            len(les), n_threads)
            rates[name][0].append(len(lesion) / (time.perf_counter() - w0))
            rates[name][1].append(len(lesion) / max(time.process_time() - c0, 1e-9))
    res["kernel_patches_per_s"] = {k: round(float(np.median(v[0])), 1) for k, v in rates.items()}
    res["kernel_patches_per_cpu_s"] = {k: round(float(np.median(v[1])), 1) for k, v in rates.items()}
    res["threads"] = threads
    res["passes"] = passes
    return res


def _revision_samplers(revs: str) -> dict:
    """``{rev: PatchSampler class}`` loaded from ``git show REV:src/petcad/patches/sampler.py`` of this checkout."""
    import importlib.util
    import subprocess
    import tempfile
    from pathlib import Path

    from petcad.errors import InputError

    root = Path(__file__).resolve().parents[3]
    out, tmp = {}, Path(tempfile.mkdtemp(prefix="petcad-ab-"))
    for i, rev in enumerate(r.strip() for r in revs.split(",") if r.strip()):
        try:
            src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/petcad/patches/sampler.py"],
                                 capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InputError("--against", f"cannot read the sampler of revision {rev!r} from {root}: "
                             f"{getattr(exc, 'stderr', '') or exc}".strip()) from None
        path = tmp / f"petcad_sampler_rev{i}.py"
        path.write_text(src, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.warm_up()
        out[rev] = mod.PatchSampler
    return out


def _against(args, cache, grid, others: dict) -> list[dict]:
    """Interleaved rounds of this sampler and those of ``--against`` on the 729-variant grid, patches
    grouped by lesion and shuffled; per sampler and order the median rates."""
    import time

    import numpy as np

    from petcad.patches.sampler import PatchSampler

    samplers = {"current": PatchSampler(chunk=args.chunk)}
    samplers.update({rev: cls(chunk=args.chunk) for rev, cls in others.items()})
    lesion = np.repeat(np.arange(len(cache)), len(grid))
    transforms = np.tile(grid, (len(cache), 1))
    perm = np.random.default_rng(args.seed).permutation(len(lesion))
    orders = {"grouped": (lesion, transforms), "shuffled": (lesion[perm], transforms[perm])}
    rates = {(k, o): ([], []) for k in samplers for o in orders}
    for s in samplers.values():
        s.sample(cache, lesion[:64], transforms[:64])
    for _ in range(args.rounds):
        for k, s in samplers.items():
            for o, (les, t) in orders.items():
                w0, c0 = time.perf_counter(), time.process_time()
                for _, _chunk in s.sample_iter(cache, les, t):
                    pass
                rates[(k, o)][0].append(len(les) / (time.perf_counter() - w0))
                rates[(k, o)][1].append(len(les) / max(time.process_time() - c0, 1e-9))
    return [{"sampler": k, "order": o, "patches_per_s": round(float(np.median(w)), 1),
             "patches_per_cpu_s": round(float(np.median(c)), 1)} for (k, o), (w, c) in rates.items()]


def _permuted(tables, perm):
    """The chunks' tables with the patches in the order ``perm`` (over all chunks)."""
    import numpy as np

    les = np.concatenate([t[0] for t in tables])[perm]
    parts = [np.concatenate([t[1][i] for t in tables])[perm] for i in range(3)]
    return [(les[a : a + 512], tuple(p[a : a + 512] for p in parts)) for a in range(0, len(les), 512)]


def run(args) -> int:
    import json
    import os
    import tempfile
    import time

    import numpy as np
    import torch

    from petcad.errors import InputError
    from petcad.patches.augment import grid_transforms
    from petcad.patches.cache import LesionCache
    from petcad.patches.sampler import PatchSampler, _default_threads, warm_up
    from petcad.provenance import software_versions

    if min(args.chunk, args.naive, args.loader_batches, args.patients, args.rounds, args.grid_sample_patches,
           args.torch_patches) < 1:
        raise InputError("petcad bench patches", "--chunk, --naive, --loader-batches, --patients, --rounds, "
                         "--grid-sample-patches and --torch-patches must be >= 1")
    others = _revision_samplers(args.against) if args.against else {}
    size, spacing = 51, 1.0
    res: dict = {"load_average_start": [round(v, 2) for v in os.getloadavg()], "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="petcad-bench-") as tmp:
        t0 = time.perf_counter()
        cohort, source = _cohort(args, tmp)
        res["cohort"] = source
        res["load_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    cache = LesionCache.from_cohort(cohort, size=size, spacing_mm=spacing)
    res.update(n_lesions=len(cache), cache_s=round(time.perf_counter() - t0, 2), cache_mb=round(cache.memory_mb, 1))
    sampler = PatchSampler(size=size, spacing_mm=spacing, chunk=args.chunk)
    warm_up()
    sampler.sample(cache, np.zeros(2, np.int64), np.zeros((2, 6)))
    res["rss_before_mb"] = round(_rss_mb()[0], 1)
    grid = grid_transforms()
    res.update(_versus_grid_sample(args, sampler, cache, grid))
    res["variants"] = _memory_runs(sampler, cache, grid)
    res.update(_naive_check(args, cohort, cache, sampler, grid))
    res["ratio"] = round(res["petcad_patches_per_s"] / res["naive_patches_per_s"], 1)  # vs the whole volume
    res.update(_torch_path(args, sampler, cache, grid))
    res.update(_loader(args, cache))
    if args.profile:
        res["profile"] = _profile(sampler, cache, grid)
    if args.against:
        res["against"] = _against(args, cache, grid, others)
    res["peak_rss_mb"] = round(_rss_mb()[0], 1)
    res["settings"] = {"size": size, "spacing_mm": spacing, "channels": 6, "grid": "rotations -10,0,10 deg x shifts "
                       "-2,0,2 px on X, Y, Z", "chunk": args.chunk, "seed": args.seed, "rounds": args.rounds,
                       "sampler_threads": _default_threads(), "torch_threads": torch.get_num_threads()}
    res["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    res["versions"] = software_versions()
    if args.json:
        print(json.dumps(res))
    else:
        _print(res)
    return 0


def _print(res: dict) -> None:
    print(f"cohort: {res['cohort']}: {res['n_lesions']} lesions, cache {res['cache_mb']} MB "
          f"(load {res['load_s']} s, crop {res['cache_s']} s)")
    for i, r in enumerate(res["rounds"], start=1):
        print(f"round {i}: petcad {r['petcad_patches_per_s']:9.1f} patches/s ({r['petcad_patches_per_cpu_s']:.0f} per "
              f"CPU-second), grid_sample {r['grid_sample_patches_per_s']:8.1f} patches/s")
    print(f"petcad sampler: {res['petcad_patches_per_s']:.1f} augmented 6-channel 51x51 patches/s (median of rounds, "
          f"{res['n_lesions'] * 729} patches each)")
    gd = res["grid_sample_vs_petcad_max_abs_diff"]
    print(f"torch grid_sample on the same crops (grids precomputed): {res['grid_sample_patches_per_s']:.1f} patches/s "
          f"({res['grid_sample_patches']} patches); max |grid_sample - petcad| CT {gd['CT_HU']:.3g} HU, "
          f"PET {gd['PET_SUV']:.3g} SUV")
    print(f"ratio petcad / grid_sample: {res['ratio_vs_grid_sample']}x")
    for n_var, r in res["variants"].items():
        print(f"memory, {n_var:3d} variants/lesion: {r['patches']:7d} patches in {r['seconds']:.2f} s = "
              f"{r['patches_per_s']:9.1f} patches/s; peak RSS {r['peak_rss_mb']} MB, RSS {r['rss_mb']} MB")
    nd = res["naive_vs_petcad_max_abs_diff"]
    print(f"whole volume (SimpleITK resample of the whole CT and PET to 1 mm, then slice): {res['naive_patches']} "
          f"patches, {res['naive_patches_per_s']} patches/s; max |naive - petcad| CT {nd['CT_HU']:.3g} HU, "
          f"PET {nd['PET_SUV']:.3g} SUV; ratio petcad / whole volume: {res['ratio']}x")
    print(f"torch path (TorchPatchSampler, the CUDA sampler) on {res['torch_path_device']}: "
          f"{res['torch_path_patches_per_s']} patches/s ({res['torch_path_patches']} patches); max |torch - petcad| "
          f"{res['torch_path_vs_petcad_max_abs_diff']:.3g}")
    print(f"training loader (LesionData.sample: random policy, fixed normalisation, batch 128): "
          f"{res['loader_patches_per_s']} patches/s")
    if "profile" in res:
        pr = res["profile"]
        print(f"profile: {pr['patches']} patches of {pr['samples_per_patch']} samples; per patch "
              f"{pr['output_bytes_per_patch']} bytes written, {pr['gathered_bytes_per_patch']} bytes gathered (8 "
              f"neighbours x 4 bytes per sample) from crops of {pr['crop_bytes_per_lesion']} bytes per lesion; checks + "
              f"index tables {pr['checks_and_tables_us_per_patch']} us/patch")
        for k, v in pr["kernel_patches_per_s"].items():
            print(f"  kernel, {k:<32s} {v:9.1f} patches/s, {pr['kernel_patches_per_cpu_s'][k]:9.1f} per CPU-second "
                  f"(median of {pr['passes']} interleaved passes)")
    for r in res.get("against", []):
        print(f"sampler of {r['sampler']:<10s} patches {r['order']:<8s}: {r['patches_per_s']:9.1f} patches/s, "
              f"{r['patches_per_cpu_s']:9.1f} per CPU-second (median of {res['settings']['rounds']} interleaved rounds)")
    print(f"peak RSS: {res['peak_rss_mb']} MB (before sampling {res['rss_before_mb']} MB)")
    print(f"machine: {res['cpu_count']} CPUs, load average {res['load_average_start'][0]} at start, "
          f"{res['load_average_end'][0]} at end (above the CPU count, the CPUs were shared with other processes)")
