"""The cohort manifest: a CSV with one row per lesion, validated row by row.

Columns (header row required, order free, extra columns ignored):

``patient_id, ct, pet, lesion_id, x, y, z, label`` and optional ``mask``.

* ``ct`` / ``pet``: DICOM folder or NIfTI/NRRD/MHA file, relative to the
  manifest's folder (absolute paths allowed). All rows of a patient must name
  the same ``ct`` and ``pet``.
* ``x, y, z``: the lesion centre in mm, DICOM patient frame (LPS).
* ``label``: one of ``allowed_labels`` (``benign`` / ``malignant`` by default).
* ``mask``: a binary image of that lesion (nonzero = lesion), on any grid (for
  example cropped to a box with its own origin); handled in physical space.

Errors name the manifest and the row number as a spreadsheet shows it (the
header is row 1): ``manifest.csv: row 7: unknown label 'maybe' ...``.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from petcad.errors import InputError
from petcad.io.suv import SUVSettings
from petcad.study import DEFAULT_LABELS, Cohort, Lesion, Study, Volume

REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "ct", "pet", "lesion_id", "x", "y", "z", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("mask",)


@dataclass(frozen=True)
class ManifestRow:
    """One validated manifest row; paths are absolute, centre in mm (LPS)."""

    row: int  # 1-based row number in the file (header = row 1)
    patient_id: str
    ct: Path
    pet: Path
    lesion_id: str
    center_mm: tuple[float, float, float]
    label: str
    mask: Path | None = None


def read_manifest(
    path: str | os.PathLike,
    *,
    allowed_labels: Sequence[str] | None = DEFAULT_LABELS,
    check_files: bool = True,
) -> list[ManifestRow]:
    """Read and validate a manifest. ``allowed_labels=None`` accepts any non-empty label."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "manifest not found")
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read manifest ({type(exc).__name__})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(path, "manifest is empty (expected a header row: " + ", ".join(REQUIRED_COLUMNS) + ")")
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        raise InputError(path, f"row 1: unreadable CSV header ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(path, f"row 1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)}, optional mask)")
    if len(set(header)) != len(header):
        raise InputError(path, "row 1: duplicate column names")
    col = {name: header.index(name) for name in header}
    allowed = None if allowed_labels is None else tuple(allowed_labels)

    rows: list[ManifestRow] = []
    seen: dict[tuple[str, str], int] = {}
    patient_files: dict[str, tuple[Path, Path, int]] = {}
    exists_cache: dict[Path, bool] = {}

    def exists(p: Path) -> bool:
        if p not in exists_cache:
            exists_cache[p] = p.exists()
        return exists_cache[p]

    n = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(path, f"row {n + 1}: unreadable CSV ({exc})") from None
        n += 1
        if not values or all(not v.strip() for v in values):
            continue
        where = f"{path}: row {n}"
        if len(values) != len(header):
            raise InputError(where, f"{len(values)} fields, the header has {len(header)}")
        get = {k: values[i].strip() for k, i in col.items()}
        for c in REQUIRED_COLUMNS:
            if not get[c]:
                raise InputError(where, f"empty {c}")
        try:
            center = tuple(float(get[c]) for c in ("x", "y", "z"))
        except ValueError:
            raise InputError(where, f"x, y, z must be numbers in mm, got {get['x']!r}, {get['y']!r}, {get['z']!r}") from None
        if not all(math.isfinite(v) for v in center):
            raise InputError(where, "x, y, z must be finite numbers (mm)")
        label = get["label"]
        if allowed is not None and label not in allowed:
            raise InputError(where, f"unknown label {label!r}; allowed: {', '.join(allowed)}")
        key = (get["patient_id"], get["lesion_id"])
        if key in seen:
            raise InputError(where, f"lesion {get['lesion_id']!r} of patient {get['patient_id']!r} repeats row {seen[key]}")
        seen[key] = n
        ct, pet = (base / get["ct"]).resolve(), (base / get["pet"]).resolve()
        mask = None
        if get.get("mask"):
            mask = (base / get["mask"]).resolve()
        if check_files:
            for name, p in (("ct", ct), ("pet", pet), ("mask", mask)):
                if p is not None and not exists(p):
                    raise InputError(where, f"{name} file not found: {p}")
        prev = patient_files.get(get["patient_id"])
        if prev is None:
            patient_files[get["patient_id"]] = (ct, pet, n)
        elif (prev[0], prev[1]) != (ct, pet):
            raise InputError(where, f"patient {get['patient_id']!r} names other ct/pet than in row {prev[2]}")
        rows.append(ManifestRow(row=n, patient_id=get["patient_id"], ct=ct, pet=pet, lesion_id=get["lesion_id"],
                                center_mm=center, label=label, mask=mask))
    if not rows:
        raise InputError(path, "manifest has no lesion rows")
    return rows


def _load_mask(row: ManifestRow, manifest: Path) -> Volume:
    from petcad.io.volumes import read_image

    where = f"{manifest}: row {row.row}"
    try:
        m = read_image(row.mask, modality="mask")
    except InputError as exc:
        raise InputError(where, f"mask {row.mask}: {exc.problem}") from None
    if not m.array.any():
        raise InputError(where, f"mask {row.mask} is empty (no nonzero voxel)")
    if not bool(m.contains(row.center_mm)):
        raise InputError(where, f"lesion centre {row.center_mm} mm lies outside the mask image {row.mask}")
    return m


def load_cohort(
    path: str | os.PathLike,
    *,
    suv: SUVSettings = SUVSettings(),
    allowed_labels: Sequence[str] | None = DEFAULT_LABELS,
    check_inside: bool = True,
    progress: bool = False,
    allow_frame_mismatch: bool = False,
) -> Cohort:
    """Read the manifest and load every patient's study once, with its lesions.

    Each lesion centre must lie inside both the CT and the PET (voxel centres
    +- half a voxel) when ``check_inside``; masks are read when given and
    attached to ``Lesion.mask`` (their own grid, uint8 0/1).

    Patients are read one after the other: header parsing is pure Python
    (GIL-bound), a thread pool measured slower, and a process pool needs the
    caller's ``if __name__ == "__main__"`` guard (spawn) or risks fork with
    torch threads; serial loading of 40 phantom patients costs 20 s of CPU.
    """
    manifest = Path(path)
    rows = read_manifest(manifest, allowed_labels=allowed_labels)
    by_patient: dict[str, list[ManifestRow]] = {}
    for r in rows:
        by_patient.setdefault(r.patient_id, []).append(r)
    items = list(by_patient.items())
    jobs = [(pid, str(prow[0].ct), str(prow[0].pet), suv, allow_frame_mismatch) for pid, prow in items]
    results = map(_load_one, jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc="loading studies", unit="patient")
    studies = [_attach_lesions(result, pid, prow, manifest, check_inside) for (pid, prow), result in zip(items, results)]
    return Cohort(studies=studies)


def _load_one(job) -> Study | tuple[str, str]:
    """One patient's study, or ("error", message)."""
    from petcad.io.loader import load_study

    pid, ct, pet, suv, allow = job
    try:
        return load_study(ct, pet, patient_id=pid, suv=suv, allow_frame_mismatch=allow)
    except InputError as exc:
        return ("error", str(exc))


def _attach_lesions(result, pid: str, prow: list[ManifestRow], manifest: Path, check_inside: bool) -> Study:
    first = prow[0]
    if isinstance(result, tuple):
        raise InputError(f"{manifest}: row {first.row}", result[1])
    study = result
    for r in prow:
        centre = np.asarray(r.center_mm, dtype=np.float64)
        if check_inside:
            for name, vol in (("CT", study.ct), ("PET", study.pet)):
                if not bool(vol.contains(centre)):
                    lo, hi = vol.bounds_world()
                    raise InputError(
                        f"{manifest}: row {r.row}",
                        f"lesion {r.lesion_id!r} centre ({centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f}) mm is outside "
                        f"the {name} volume (x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f} mm)",
                    )
        mask = _load_mask(r, manifest) if r.mask is not None else None
        study.lesions.append(Lesion(lesion_id=r.lesion_id, center_mm=centre, label=r.label, patient_id=pid, mask=mask))
    return study
