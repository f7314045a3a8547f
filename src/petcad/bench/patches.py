"""``petcad bench patches``: augmented tri-planar patches per second, petcad vs the naive way, memory.

In one run on one cohort (a small phantom cohort by default, or ``--manifest``):

* **petcad**: :class:`PatchSampler` on a :class:`LesionCache`, the original study's grid of
  729 transforms for every lesion, in chunks of ``--chunk`` patches (nothing kept), at two
  variant counts (81 and 729 per lesion) with the process's peak RSS after each, to show
  that memory does not grow with the number of variants;
* **naive**: for a few (lesion, transform) pairs, rotate/translate the whole CT and PET with
  a SimpleITK resample onto a 1 mm isotropic grid over the CT's extent (trilinear), then
  slice the three planes; its patches are compared with petcad's;
* **loader**: :class:`PatchDataset` (random policy, normalised) through a torch DataLoader
  (``num_workers=0``, batch 128) and through :class:`PatchBatchIterator`.

The numba kernel is compiled (or loaded from its cache) once before timing.
"""

from __future__ import annotations

from petcad.io.options import add_on_irregular_option

HELP = "patch sampling speed: petcad sampler vs rotating the whole volume, memory, loader rate"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--manifest", default=None, help="cohort manifest (default: a phantom cohort)")
    add_on_irregular_option(parser)
    parser.add_argument("--patients", type=int, default=3, help="phantom patients when no --manifest (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="phantom and loader seed (default 0)")
    parser.add_argument("--chunk", type=int, default=512, help="patches per sampler call (default 512)")
    parser.add_argument("--naive", type=int, default=3, help="patches made the naive way (default 3)")
    parser.add_argument("--loader-batches", type=int, default=20, help="DataLoader batches of 128 timed (default 20)")


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


def run(args) -> int:
    import json
    import os
    import tempfile
    import time

    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from petcad.errors import InputError
    from petcad.patches.augment import AugmentPolicy, grid_transforms
    from petcad.patches.cache import LesionCache
    from petcad.patches.dataset import PatchBatchIterator, PatchDataset
    from petcad.patches.geometry import pixel_world
    from petcad.patches.sampler import PatchSampler, warm_up
    from petcad.provenance import software_versions

    if args.chunk < 1 or args.naive < 1 or args.loader_batches < 1 or args.patients < 1:
        raise InputError("petcad bench patches", "--chunk, --naive, --loader-batches and --patients must be >= 1")
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
    runs = {}
    for n_var in (81, 729):
        sel = grid[np.linspace(0, len(grid) - 1, n_var).round().astype(int)]
        lesion = np.repeat(np.arange(len(cache)), n_var)
        transforms = np.tile(sel, (len(cache), 1))
        checksum = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        for _, chunk in sampler.sample_iter(cache, lesion, transforms):
            checksum += float(chunk[:, :, 25, 25].sum())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak, cur = _rss_mb()
        runs[n_var] = {"patches": int(lesion.size), "seconds": round(dt, 3),
                       "patches_per_s": round(lesion.size / dt, 1), "cpu_seconds": round(cpu, 3),
                       "patches_per_cpu_s": round(lesion.size / max(cpu, 1e-9), 1),
                       "peak_rss_mb": round(peak, 1), "rss_mb": round(cur, 1)}
    res["variants"] = runs
    res["petcad_patches_per_s"] = runs[729]["patches_per_s"]
    res["petcad_patches_per_cpu_s"] = runs[729]["patches_per_cpu_s"]

    # the naive way, on a few (lesion, transform) pairs, checked against petcad
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
    res["naive_patches"] = len(pairs)
    res["naive_patches_per_s"] = round(len(pairs) / dt, 4)
    res["naive_vs_petcad_max_abs_diff"] = {"CT_HU": float(diff[:, :3].max()), "PET_SUV": float(diff[:, 3:].max())}
    res["ratio"] = round(res["petcad_patches_per_s"] / res["naive_patches_per_s"], 1)

    # the training-time path
    ds = PatchDataset(cache, np.arange(len(cache)), AugmentPolicy("random"), seed=args.seed, variants_per_epoch=10000)
    n_items = min(len(ds), 128 * args.loader_batches)
    loader = DataLoader(torch.utils.data.Subset(ds, range(n_items)), batch_size=128, shuffle=False, num_workers=0)
    t0 = time.perf_counter()
    seen = sum(int(x.shape[0]) for x, _ in loader)
    res["loader_patches_per_s"] = round(seen / (time.perf_counter() - t0), 1)
    it = PatchBatchIterator(ds, batch_size=128, seed=args.seed)
    t0 = time.perf_counter()
    seen = 0
    for b, (x, _) in enumerate(it.epoch(0)):
        seen += int(x.shape[0])
        if b + 1 >= args.loader_batches:
            break
    res["batch_iterator_patches_per_s"] = round(seen / (time.perf_counter() - t0), 1)
    peak, _ = _rss_mb()
    res["peak_rss_mb"] = round(peak, 1)
    import numba

    res["settings"] = {"size": size, "spacing_mm": spacing, "channels": 6, "grid": "rotations -10,0,10 deg x shifts "
                       "-2,0,2 px on X, Y, Z", "chunk": args.chunk, "seed": args.seed,
                       "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads()}
    res["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    res["versions"] = software_versions()
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"cohort: {res['cohort']}: {res['n_lesions']} lesions, cache {res['cache_mb']} MB "
          f"(load {res['load_s']} s, crop {res['cache_s']} s)")
    for n_var, r in runs.items():
        print(f"petcad sampler, {n_var:3d} variants/lesion: {r['patches']:7d} patches in {r['seconds']:.2f} s = "
              f"{r['patches_per_s']:9.1f} patches/s (CPU {r['cpu_seconds']:.2f} s: {r['patches_per_cpu_s']:.0f} per CPU-second); peak RSS {r['peak_rss_mb']} MB, RSS {r['rss_mb']} MB")
    print(f"naive (SimpleITK resample of the whole CT and PET to 1 mm, then slice): {res['naive_patches']} patches, "
          f"{res['naive_patches_per_s']} patches/s; max |naive - petcad| CT "
          f"{res['naive_vs_petcad_max_abs_diff']['CT_HU']:.3g} HU, PET {res['naive_vs_petcad_max_abs_diff']['PET_SUV']:.3g} SUV")
    print(f"ratio petcad / naive: {res['ratio']}x")
    print(f"PatchDataset via DataLoader (batch 128, workers 0, normalised): {res['loader_patches_per_s']} patches/s; "
          f"via PatchBatchIterator: {res['batch_iterator_patches_per_s']} patches/s")
    print(f"peak RSS: {res['peak_rss_mb']} MB (before sampling {res['rss_before_mb']} MB)")
    print(f"machine: {res['cpu_count']} CPUs, load average {res['load_average_start'][0]} at start, "
          f"{res['load_average_end'][0]} at end (above the CPU count, the CPUs were shared with other processes)")
    return 0
