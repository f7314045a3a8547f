"""Segment a study (or every study of a manifest) with a trained segmentation run directory.

Output, one folder per study, ``OUT/<patient_id>/``:

* ``labels.nii.gz``: uint8 on the CT grid, 0 = no tumour, ``n`` = class ``n`` of ``meta.json`` ``classes``;
* ``prob_<class>.nii.gz``: float32 probability of each class on the CT grid;
* ``lesions.csv``, ``lesions.json``: the lesion list (:mod:`petcad.segment.lesions`);
* ``meta.json``: model, classes, the evaluation lattice and region, counts, timings, device;
* ``seg.dcm``: a DICOM SEG of the labels referencing the CT series, when the CT is a DICOM folder;
* with ``pet_grid``: ``labels_pet.nii.gz`` and ``prob_<class>_pet.nii.gz`` on the PET grid.

How the CT-grid maps are made: the network is evaluated exactly (:mod:`petcad.segment.dense`) at
the points of a world lattice of pitch ``stride x spacing`` mm inside the region; outside the
region the probability of ``none`` is 1. The lattice maps are interpolated linearly onto the CT
grid and each CT voxel takes the class of highest probability. The folder is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import write_text
from petcad.segment.roi import DEFAULT_SUV_LEVEL

NONE_CLASS = "none"
TASK = "segment"


@dataclass
class SegmentSettings:
    """How to segment: region (``avid``, ``body`` or a mask file), PET level of ``avid`` (SUV),
    lattice stride (patch pixels), z planes per slab, device, CPU threads, PET-grid copies,
    smallest lesion kept (mL; smaller components are removed from labels and list), lowest lesion
    score kept (mean tumour probability, :func:`petcad.segment.lesions.lesion_score`; lower-scoring
    lesions are removed likewise: the operating point of ``evaluate-segmentation``'s FROC)."""

    roi: str = "avid"
    suv_level: float = DEFAULT_SUV_LEVEL
    stride: int = 2
    slab: int = 32
    device: str = "auto"
    threads: int | None = None
    pet_grid: bool = False
    min_volume_ml: float = 0.0
    min_score: float = 0.0


def load_segmenter(run_dir, device: str = "auto"):
    """(model in eval mode on ``device``, config) of a segmentation run; InputError for anything else."""
    from petcad.models import checkpoint as ckpt
    from petcad.models.registry import build_model
    from petcad.models.train import resolve_device

    run_dir = Path(run_dir)
    cfg = ckpt.read_config(run_dir)
    if cfg.get("task") != TASK:
        raise InputError(run_dir, "is a lesion classification model; segment needs a model trained with "
                                  "petcad train --task segment")
    if cfg.get("model") != "multiview" or int(cfg.get("in_channels", 0)) != 6:
        raise InputError(run_dir, "dense segmentation needs a 6-channel multiview network")
    if cfg.get("normalization") != "fixed":
        raise InputError(run_dir, "dense segmentation needs the fixed HU/SUV normalisation (a per-patch z-score "
                                  "cannot be evaluated densely)")
    classes = list(cfg.get("classes") or [])
    if len(classes) < 2 or classes[0] != NONE_CLASS:
        raise InputError(run_dir / "config.json", f"classes must start with {NONE_CLASS!r}, got {classes}")
    weights = run_dir / "model.safetensors"
    if not weights.exists():
        raise InputError(run_dir, "no model.safetensors (training did not finish an epoch)")
    model = build_model("multiview", in_channels=6, patch_size=int(cfg["patch_size"]),
                        dropout=float(cfg.get("dropout", 0.0)), n_classes=len(classes))
    ckpt.load_weights_into(model, weights, strict=True)
    dev = resolve_device(device)
    return model.to(dev).eval(), cfg, dev


def _check_overlap(study, ct_path, pet_path) -> None:
    clo, chi = study.ct.bounds_world()
    plo, phi = study.pet.bounds_world()
    lo, hi = np.maximum(clo, plo), np.minimum(chi, phi)
    if np.any(hi <= lo):
        raise InputError(pet_path, f"the PET does not overlap the CT {ct_path} (no common world box)")


def _grid_maps(lat_probs: np.ndarray, lat, like, classes):
    """Probability maps on ``like``'s grid (linear) and the argmax labels (uint8)."""
    from petcad.study import Volume

    maps, best, labels = [], None, None
    for c, name in enumerate(classes):
        v = lat.volume(lat_probs[c]).resample_to(like, "linear", default_value=1.0 if c == 0 else 0.0)
        arr = v.array.astype(np.float32, copy=False)
        if best is None:
            best, labels = arr.copy(), np.zeros(arr.shape, dtype=np.uint8)
        else:
            better = arr > best
            best[better] = arr[better]
            labels[better] = c
        maps.append(arr)
    lab = Volume(array=labels, origin=like.origin.copy(), spacing=like.spacing.copy(), direction=like.direction.copy())
    return maps, lab


def segment_study(model, cfg: dict, device, ct, pet, out_root, patient_id: str, settings: SegmentSettings,
                  run_dir=None) -> dict:
    """Segment one study and write ``out_root/<patient_id>/``; returns the ``meta.json`` content."""
    from petcad.io.loader import load_study
    from petcad.segment.dense import DenseSegmenter
    from petcad.segment.lattice import covering_lattice
    from petcad.segment.roi import region

    t_start = time.perf_counter()
    classes = list(cfg["classes"])
    study = load_study(ct, pet, patient_id=patient_id)
    if study.ct is None:
        raise InputError(pet, "segmentation needs a CT and a PET")
    _check_overlap(study, ct, pet)
    seg = DenseSegmenter(model, spacing_mm=float(cfg["spacing_mm"]), stride=settings.stride, slab=settings.slab,
                         device=device, threads=settings.threads)
    lat = covering_lattice(study.ct, seg.pitch_mm)
    t0 = time.perf_counter()
    roi = region(settings.roi, study.ct, study.pet, lat, suv_level=settings.suv_level)
    if not roi.any():
        raise InputError("--roi", f"the region of interest ({settings.roi}) is empty for {ct}")
    t_roi = time.perf_counter() - t0
    _check_memory(roi, lat, study.ct, len(classes), seg, ct)
    res = seg.evaluate(study.ct, study.pet, lat, roi)
    t_dense = time.perf_counter() - t0 - t_roi
    lat_probs = np.zeros((len(classes),) + tuple(lat.shape), dtype=np.float32)
    lat_probs[0] = 1.0
    k, j, i = res.points.T
    lat_probs[:, k, j, i] = res.probs.T
    del res
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{patient_id}.", dir=out_root))
    try:
        meta = _write_outputs(tmp, study, lat, lat_probs, roi, classes, settings, ct)
        meta.update({
            "patient_id": patient_id, "model": str(run_dir) if run_dir is not None else None,
            "model_config": {k: cfg.get(k) for k in ("model", "classes", "patch_size", "spacing_mm", "normalization",
                                                     "data_hash", "seed")},
            "device": str(device), "evaluated_points": int(roi.sum()),
            "seconds": {"region": round(t_roi, 3), "dense": round(t_dense, 3),
                        "total": round(time.perf_counter() - t_start, 3)},
        })
        write_text(tmp / "meta.json", json.dumps(meta, indent=2, sort_keys=True))
        _replace_dir(tmp, out_root / patient_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def available_bytes() -> int | None:
    """Physical memory available now (Linux ``SC_AVPHYS_PAGES``), or None where unknown."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(roi, lat, ct_vol, n_classes: int, seg, where) -> None:
    """InputError when the slab block plus the outputs clearly exceed the memory available now."""
    pts = np.argwhere(roi.any(axis=0))
    if len(pts) == 0:
        return
    (y0, x0), (y1, x1) = pts.min(axis=0), pts.max(axis=0)
    g, fine = seg.stride, 51
    block = 2 * (seg.slab * g + fine) * ((y1 - y0) * g + fine) * ((x1 - x0) * g + fine) * 4
    outputs = (n_classes + 1) * ct_vol.array.size * 4 + n_classes * int(np.prod(lat.shape)) * 4
    need, have = block + outputs, available_bytes()
    if have is not None and need > have:
        raise InputError("--slab", f"{where}: needs about {need / 2**30:.1f} GiB (slab block {block / 2**30:.1f} GiB, "
                                   f"outputs {outputs / 2**30:.1f} GiB) but {have / 2**30:.1f} GiB are available; "
                                   "use a smaller --slab or a larger --stride")


def _replace_dir(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_outputs(tmp: Path, study, lat, lat_probs, roi, classes, settings: SegmentSettings, ct_path) -> dict:
    from petcad.io.volumes import write_image
    from petcad.segment.lesions import columns, lesion_score, lesion_table

    t0 = time.perf_counter()
    maps, labels = _grid_maps(lat_probs, lat, study.ct, classes)
    rows, comp = lesion_table(labels, maps, study.pet, classes)
    if (settings.min_volume_ml > 0 or settings.min_score > 0) and rows:
        small = [r["lesion"] for r in rows
                 if r["volume_ml"] < settings.min_volume_ml or lesion_score(r, classes) < settings.min_score]
        if small:
            labels.array[np.isin(comp, small)] = 0
            rows, comp = lesion_table(labels, maps, study.pet, classes)
    del comp
    write_image(labels, tmp / "labels.nii.gz")
    for name, arr in zip(classes, maps):
        write_image(labels.__class__(array=arr, origin=labels.origin, spacing=labels.spacing,
                                     direction=labels.direction), tmp / f"prob_{name}.nii.gz")
    _write_lesions(tmp, rows, columns(classes))
    outputs = ["labels.nii.gz"] + [f"prob_{c}.nii.gz" for c in classes] + ["lesions.csv", "lesions.json"]
    if settings.pet_grid:
        pmaps, plabels = _grid_maps(lat_probs, lat, study.pet, classes)
        write_image(plabels, tmp / "labels_pet.nii.gz")
        for name, arr in zip(classes, pmaps):
            write_image(plabels.__class__(array=arr, origin=plabels.origin, spacing=plabels.spacing,
                                          direction=plabels.direction), tmp / f"prob_{name}_pet.nii.gz")
        outputs += ["labels_pet.nii.gz"] + [f"prob_{c}_pet.nii.gz" for c in classes]
    seg_note = _maybe_seg(tmp, labels, classes, ct_path)
    if seg_note is None:
        outputs.append("seg.dcm")
    return {
        "classes": classes,
        "lattice": {"origin_mm": [float(v) for v in lat.origin], "pitch_mm": lat.pitch, "shape_zyx": list(lat.shape),
                    "stride_px": settings.stride,
                    "rule": "the network is evaluated exactly at these world points (patch centred on each); "
                            "maps on the CT grid are linear interpolations of the lattice maps, labels their argmax"},
        "region": {"kind": settings.roi, "suv_level": settings.suv_level if settings.roi == "avid" else None,
                   "body_hu": -500.0, "outside": "probability of none = 1",
                   "may_miss": "lesion voxels whose PET stays below the SUV level (avid region)"
                   if settings.roi == "avid" else None},
        "min_volume_ml": settings.min_volume_ml, "min_score": settings.min_score, "n_lesions": len(rows),
        "lesions_by_class": {c: sum(r["predicted"] == c for r in rows) for c in classes[1:]},
        "outputs": outputs, "seg_dcm": seg_note or "written",
        "write_seconds": round(time.perf_counter() - t0, 3),
    }


def _write_lesions(tmp: Path, rows: list[dict], cols: list[str]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text(tmp / "lesions.csv", buf.getvalue())
    write_text(tmp / "lesions.json", json.dumps({"columns": cols, "lesions": rows}, indent=2))


def _maybe_seg(tmp: Path, labels, classes, ct_path) -> str | None:
    """Write ``seg.dcm`` when the CT is a DICOM folder; returns None when written, else why not."""
    if not Path(ct_path).is_dir():
        return "not written: the CT is not a DICOM series"
    try:
        from petcad.io.seg import write_seg
    except ImportError as exc:  # pragma: no cover - highdicom is an optional extra
        return f"not written: {exc}"
    names = {c: name for c, name in enumerate(classes) if c > 0}
    write_seg(labels, names, ct_path, tmp / "seg.dcm", description="petcad segmentation")
    return None


def manifest_studies(manifest) -> list[tuple[str, Path | None, Path]]:
    """(patient_id, ct, pet) of every study of a manifest, in first-row order."""
    from petcad.io.manifest import read_manifest

    seen: dict[str, tuple] = {}
    for r in read_manifest(manifest, allowed_labels=None):
        seen.setdefault(r.patient_id, (r.patient_id, r.ct, r.pet))
    return list(seen.values())


@dataclass(frozen=True)
class SegmentJob:
    """One study of ``segment --manifest`` (picklable, for Dask workers)."""

    run_dir: str
    manifest: str
    patient_id: str
    ct: Path | None
    pet: Path
    settings: SegmentSettings


def _segmenter(run_dir: str, device: str):
    """The run's model, loaded once per process while its files are unchanged."""
    p = Path(run_dir)
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(p.glob("*")) if f.is_file())
    return _load_segmenter_cached(str(run_dir), device, stamp)


@functools.lru_cache(maxsize=2)
def _load_segmenter_cached(run_dir: str, device: str, stamp: tuple):
    return load_segmenter(run_dir, device)


def segment_study_task(task) -> dict:
    """Segment one study of a manifest into ``out_root/<patient_id>/`` (the task's outputs' folder)."""
    job: SegmentJob = task.payload
    if job.ct is None:
        raise InputError(job.manifest, f"patient {job.patient_id!r} has no CT: segmentation needs CT and PET")
    model, cfg, dev = _segmenter(job.run_dir, job.settings.device)
    out_root = Path(task.outputs[0]).parent.parent
    return segment_study(model, cfg, dev, job.ct, job.pet, out_root, job.patient_id, job.settings, run_dir=job.run_dir)


def segment_manifest(run_dir, manifest, out_root, settings: SegmentSettings, log=None, shard: str | None = None,
                     scheduler: str | None = None) -> list[dict]:
    """Segment every study of ``manifest`` not yet done (``out_root/<pid>/meta.json`` present = done),
    one at a time, through :mod:`petcad.batch` (``shard`` ``"K/N"``, a Dask ``scheduler``)."""
    from petcad.batch import StudyTask, parse_shard, run_tasks

    say = log or (lambda m: None)
    load_segmenter(run_dir, settings.device)  # a wrong model is refused before any study is read
    tasks = [StudyTask(pid, (Path(out_root) / pid / "meta.json",),
                       SegmentJob(str(run_dir), str(manifest), pid, ct, pet, settings))
             for pid, ct, pet in manifest_studies(manifest)]
    report = run_tasks(segment_study_task, tasks, shard=parse_shard(shard), scheduler=scheduler)
    say(report.summary())
    done = [{"patient_id": pid, "skipped": True} for pid in report.skipped]
    for pid, meta in report.results.items():
        say(f"{pid}: {meta['evaluated_points']} points, {meta['n_lesions']} lesions, {meta['seconds']['total']:.1f} s")
        done.append(meta)
    return done
