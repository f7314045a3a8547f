"""Simulate patients and write a cohort (DICOM or NIfTI) with its manifest and truth.

``simulate_patient(seed, preset)`` returns the in-memory truth of one patient
(CT in HU, PET in SUV, lesion masks, every drawn value); ``generate_cohort``
writes many in parallel (one process per core, per-patient seeds from
``numpy.random.SeedSequence(seed).spawn(n)``, so the output does not depend on
the number of workers) into a temporary folder renamed into place at the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.provenance import software_versions
from petcad.phantom import anatomy as A
from petcad.phantom import lesions as L
from petcad.phantom.dicom_writer import ScanInfo
from petcad.phantom.presets import Preset, get_preset
from petcad.phantom.scanner import ct_acquire, pet_acquire
from petcad.study import Volume

MARKER = ".petcad-phantom"
MANIFEST_HEADER = ["patient_id", "ct", "pet", "lesion_id", "x", "y", "z", "label", "mask"]
TRUTH_HEADER = [
    "patient_id", "lesion_id", "index", "label", "station", "x", "y", "z", "true_suv", "suvmax_pet",
    "short_axis_mm", "long_axis_mm", "volume_ml", "hu", "calcified", "necrotic", "fatty_hilum",
    "patient_p_malignant", "patient_suv_log_effect", "patient_granulomatous",
]
FORMATS = ("dicom", "nifti")


@dataclass
class LesionTruth:
    """One lesion as generated: centre in mm (LPS), sizes in mm, volume in mL, SUV, HU, flags."""

    lesion_id: str
    index: int  # 1-based value in the patient's lesion label map
    label: str
    station: str
    center_mm: np.ndarray
    true_suv: float
    suvmax_pet: float  # SUVmax of the reconstructed PET inside the mask (partial volume + noise)
    short_axis_mm: float
    long_axis_mm: float
    volume_ml: float
    hu: float
    calcified: bool
    necrotic: bool
    fatty_hilum: bool
    mask: Volume  # uint8, CT grid cropped to a box around the lesion


@dataclass
class PatientTruth:
    """One synthetic patient in memory: ``ct`` (HU), ``pet`` (SUVbw, own grid), ``lesion_map`` (CT grid)."""

    patient_id: str
    info: ScanInfo
    ct: Volume
    pet: Volume
    activity: Volume  # noise-free true activity (SUV) on the CT grid, before the PSF
    lesion_map: Volume
    tissue: Volume  # uint8 tissue codes (petcad.phantom.anatomy.TISSUE_NAMES)
    lesions: list[LesionTruth] = field(default_factory=list)
    effect: L.PatientEffect | None = None
    anatomy: A.AnatomyParams | None = None


def patient_seeds(seed: int, n_patients: int) -> list[np.random.SeedSequence]:
    """The per-patient seed sequences of a cohort (patient i gets child i)."""
    return np.random.SeedSequence(int(seed)).spawn(int(n_patients))


def _demographics(rng: np.random.Generator, number: int, uid_seed: int) -> tuple[ScanInfo, float]:
    male = rng.random() < 0.62  # NSCLC cohorts are about 60-70 % male
    h = float(np.clip(rng.normal(1.70 if male else 1.58, 0.065), 1.45, 1.95))
    bmi = float(np.clip(rng.normal(23.5, 3.3), 16.5, 38.0))
    w = round(bmi * h * h, 1)
    dose = float(round(w * rng.uniform(3.7, 4.4) * 1e6, -4))  # about 4 MBq/kg (Bq, whole 10 kBq)
    day = dt.datetime(2026, 1, 5) + dt.timedelta(days=number - 1)
    inj = day + dt.timedelta(hours=7, seconds=int(rng.integers(0, 5 * 3600)))
    start = inj + dt.timedelta(seconds=int(rng.integers(55 * 60, 80 * 60)))  # uptake 55-80 min
    info = ScanInfo(number, "M" if male else "F", int(rng.integers(42, 82)), w, round(h, 2), dose, inj, start, uid_seed)
    return info, bmi


def simulate_patient(seed, preset: str | Preset = "default", patient_number: int = 1) -> PatientTruth:
    """Simulate one patient in memory.

    ``seed`` is an int or a ``numpy.random.SeedSequence`` (a cohort uses
    :func:`patient_seeds`); the result is a pure function of (seed, preset, patient_number).
    """
    pre = get_preset(preset)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    rng = np.random.default_rng(ss)
    uid_seed = int(ss.generate_state(1, np.uint64)[0])
    info, bmi = _demographics(rng, patient_number, uid_seed)
    ap = A.sample_anatomy_params(rng, bmi)

    # CT grid in the anatomical frame (carina at the origin), then a table offset for the world frame
    sp = np.asarray(pre.ct_spacing, float)
    a, b = A.body_half_axes(ap, np.array([0.0]))
    if pre.fixed_matrix:
        ni = nj = int(pre.fixed_matrix)
    else:
        ni = int(np.ceil(2 * (a[0] + pre.margin_mm) / sp[0])) + 1
        nj = int(np.ceil(2 * (b[0] + pre.margin_mm) / sp[1])) + 1
    nk = int(round((pre.z_above_carina + pre.z_below_carina) / sp[2])) + 1
    o_anat = np.array([-(ni - 1) * sp[0] / 2, -(nj - 1) * sp[1] / 2 + 4.0, -pre.z_below_carina])
    anat = A.build_anatomy((nk, nj, ni), o_anat, sp, ap, rng)

    effect = L.sample_patient_effect(rng, pre.lesions)
    specs = L.sample_nodes(rng, pre.lesions, effect)
    if pre.lesions.primary:
        specs.append(L.primary_tumour(rng))
    placed = L.place_and_paint(specs, anat, o_anat, sp, rng, pre.lesions)

    noise_hu = rng.uniform(*pre.ct_noise_hu)
    ct_arr = ct_acquire(anat.hu, rng, noise_hu)
    activity = Volume(anat.suv, o_anat, sp)
    liver_cv = rng.uniform(*pre.pet_liver_cv)
    pet = pet_acquire(activity, pre.pet_spacing, rng, pre.psf_fwhm_mm, ap.suv_liver, liver_cv, pre.pet_noise_corr_mm)

    shift = np.array([rng.uniform(-15, 15), rng.uniform(-20, 20) + 150.0, rng.uniform(-260.0, -140.0)])
    shift = np.round(shift, 2)
    o_world = o_anat + shift
    pet.origin = pet.origin + shift
    activity.origin = o_world
    lmap = np.zeros(anat.hu.shape, np.uint8)
    pid = info.patient_id
    lesions = []
    inv_pet = np.linalg.inv(pet.direction * pet.spacing[None, :])
    for idx, pl in enumerate(placed, start=1):
        lmap[pl.box][pl.mask] = idx
        # the mask crop: the node box plus 2 voxels, on the CT grid
        starts = [max(s.start - 2, 0) for s in pl.box]
        stops = [min(s.stop + 2, n) for s, n in zip(pl.box, lmap.shape)]
        crop = tuple(slice(a_, b_) for a_, b_ in zip(starts, stops))
        m = np.zeros([b_ - a_ for a_, b_ in zip(starts, stops)], np.uint8)
        inner = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(pl.box, crop))
        m[inner][pl.mask] = 1
        m_origin = o_world + sp * np.array([crop[2].start, crop[1].start, crop[0].start])
        # SUVmax of the reconstructed PET in the mask: nearest PET voxel of each mask voxel centre
        zz, yy, xx = np.nonzero(pl.mask)
        world = o_world + sp * np.stack([xx + pl.box[2].start, yy + pl.box[1].start, zz + pl.box[0].start], -1)
        ijk = np.rint((world - pet.origin) @ inv_pet.T).astype(int)
        ijk = np.clip(ijk, 0, np.array(pet.shape_ijk) - 1)
        suvmax = float(pet.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]].max())
        s = pl.spec
        lesions.append(LesionTruth(
            lesion_id=f"{pid}-L{idx:02d}", index=idx, label=s.label, station=s.station,
            center_mm=pl.center + shift, true_suv=s.true_suv, suvmax_pet=suvmax, short_axis_mm=s.short_axis,
            long_axis_mm=s.long_axis, volume_ml=pl.volume_ml, hu=s.hu, calcified=s.calcified, necrotic=s.necrotic,
            fatty_hilum=s.fatty_hilum, mask=Volume(m, m_origin, sp),
        ))
    return PatientTruth(
        patient_id=pid, info=info, ct=Volume(ct_arr, o_world, sp), pet=pet, activity=activity,
        lesion_map=Volume(lmap, o_world, sp), tissue=Volume(anat.tissue, o_world, sp),
        lesions=lesions, effect=effect, anatomy=ap,
    )


# ----------------------------------------------------------------------------- writing
def _write_nifti(vol: Volume, path: Path, dtype) -> None:
    import SimpleITK as sitk

    img = Volume(vol.array.astype(dtype, copy=False), vol.origin, vol.spacing, vol.direction).to_sitk()
    sitk.WriteImage(img, str(path), useCompression=True)


def write_patient(truth: PatientTruth, root: Path, fmt: str) -> tuple[list[list], list[list]]:
    """Write one patient's images, masks and label map under ``root/<patient_id>``; return its manifest and truth rows."""
    from petcad.phantom.dicom_writer import write_ct_series, write_pet_series

    pid = truth.patient_id
    pdir = root / pid
    (pdir / "masks").mkdir(parents=True, exist_ok=True)
    if fmt == "dicom":
        write_ct_series(pdir / "CT", truth.ct, truth.info)
        write_pet_series(pdir / "PT", truth.pet, truth.info)
        ct_rel, pet_rel = f"{pid}/CT", f"{pid}/PT"
    else:
        ct_i16 = Volume(np.rint(truth.ct.array), truth.ct.origin, truth.ct.spacing)
        _write_nifti(ct_i16, pdir / "ct.nii.gz", np.int16)
        _write_nifti(truth.pet, pdir / "pet.nii.gz", np.float32)
        ct_rel, pet_rel = f"{pid}/ct.nii.gz", f"{pid}/pet.nii.gz"
    _write_nifti(truth.lesion_map, pdir / "lesions.nii.gz", np.uint8)
    man, tru = [], []
    e = truth.effect
    for les in truth.lesions:
        mrel = f"{pid}/masks/{les.lesion_id}.nii.gz"
        _write_nifti(les.mask, root / mrel, np.uint8)
        x, y, z = (f"{v:.3f}" for v in les.center_mm)
        man.append([pid, ct_rel, pet_rel, les.lesion_id, x, y, z, les.label, mrel])
        tru.append([
            pid, les.lesion_id, les.index, les.label, les.station, x, y, z, f"{les.true_suv:.4f}",
            f"{les.suvmax_pet:.4f}", f"{les.short_axis_mm:.2f}", f"{les.long_axis_mm:.2f}", f"{les.volume_ml:.4f}",
            f"{les.hu:.1f}", int(les.calcified), int(les.necrotic), int(les.fatty_hilum),
            f"{e.p_malignant:.4f}", f"{e.suv_log_effect:.4f}", int(e.granulomatous),
        ])
    return man, tru


def _make_patient(job):
    ss, preset, number, root, fmt = job
    t0 = time.process_time()
    truth = simulate_patient(ss, preset, number)
    man, tru = write_patient(truth, Path(root), fmt)
    return man, tru, time.process_time() - t0


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(out, "output exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(out, "output folder is not empty and is not a previous petcad phantom; choose another --out")


def generate_cohort(
    out_dir,
    n_patients: int,
    seed: int,
    preset: str = "default",
    fmt: str = "dicom",
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write ``n_patients`` synthetic patients to ``out_dir``; return the path of ``out_dir/manifest.csv``.

    Also writes ``truth.csv`` (one row per lesion), ``cohort.json`` (settings,
    software versions, summary) and per patient ``lesions.nii.gz`` (CT grid,
    voxel value = 1-based lesion index) and ``masks/<lesion_id>.nii.gz``.
    The cohort is built in a hidden temporary folder beside ``out_dir`` and
    renamed into place at the end; an existing ``out_dir`` must be empty or a
    previous phantom (it is replaced).
    """
    pre = get_preset(preset)
    if fmt not in FORMATS:
        raise InputError("--format", f"unknown format {fmt!r}; choose dicom or nifti")
    if int(n_patients) < 1 or int(n_patients) > 9999:
        raise InputError("--patients", f"number of patients must be 1-9999, got {n_patients}")
    if workers is not None and int(workers) < 1:
        raise InputError("--workers", f"workers must be >= 1, got {workers}")
    out = Path(out_dir).resolve()
    _check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        seeds = patient_seeds(seed, n_patients)
        jobs = [(s, pre, i + 1, str(tmp), fmt) for i, s in enumerate(seeds)]
        nw = min(int(workers or os.cpu_count() or 1), len(jobs))
        if nw <= 1:
            results_iter = map(_make_patient, jobs)
            results = _collect(results_iter, len(jobs), progress)
        else:
            with ProcessPoolExecutor(max_workers=nw, mp_context=get_context("forkserver")) as ex:
                results = _collect(ex.map(_make_patient, jobs), len(jobs), progress)
        man = [r for m, _, _ in results for r in m]
        tru = [r for _, t, _ in results for r in t]
        (tmp / "manifest.csv").write_text(_csv_text(MANIFEST_HEADER, man))
        (tmp / "truth.csv").write_text(_csv_text(TRUTH_HEADER, tru))
        summary = summarize(tru, n_patients)
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        summary["cpu_seconds_patients"] = round(sum(c for _, _, c in results), 2)  # simulation + writing, all workers
        meta = {"generator": "petcad.phantom", "preset": asdict(pre), "seed": int(seed), "n_patients": int(n_patients),
                "format": fmt, "workers": nw, "versions": software_versions(), "summary": summary,
                "lesion_map": "lesions.nii.gz: CT grid, uint8, voxel value = 1-based lesion index (column index of truth.csv)"}
        (tmp / "cohort.json").write_text(json.dumps(meta, indent=2, default=str))
        (tmp / MARKER).write_text("petcad synthetic cohort\n")
        _check_out_dir(out)
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, trash)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "manifest.csv"


def _collect(it, n, progress):
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=n, desc="patients", unit="pt")
    return list(it)


def summarize(truth_rows: list[list], n_patients: int) -> dict:
    """Cohort figures from truth rows: lesions, malignant share, medians by class."""
    col = {h: i for i, h in enumerate(TRUTH_HEADER)}
    labels = np.array([r[col["label"]] for r in truth_rows])
    out = {"patients": int(n_patients), "lesions": int(len(truth_rows))}
    nodes = labels != "primary"
    out["malignant_share"] = round(float(np.mean(labels[nodes] == "malignant")), 4) if nodes.any() else float("nan")
    for cls in ("benign", "malignant"):
        sel = labels == cls
        if not sel.any():
            continue
        for key in ("true_suv", "suvmax_pet", "short_axis_mm"):
            v = np.array([float(r[col[key]]) for r, s in zip(truth_rows, sel) if s])
            out[f"median_{key}_{cls}"] = round(float(np.median(v)), 3)
    return out


def read_truth(path) -> list[dict]:
    """Rows of a ``truth.csv`` as dicts of strings."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
