"""The cohort manifest: a CSV with one row per lesion, validated row by row.

Columns (header row required, order free, extra columns ignored):

``patient_id, ct, pet, lesion_id, x, y, z, label`` and optional ``mask``,
``mask_label``.

* ``ct`` / ``pet``: DICOM folder or NIfTI/NRRD/MHA file, relative to the
  manifest's folder (absolute paths allowed). All rows of a patient must name
  the same ``ct`` and ``pet``. ``ct`` may be empty: a PET-only study
  (``Study.ct is None``; what needs a CT says so).
* ``x, y, z``: the lesion centre in mm, DICOM patient frame (LPS). All three
  may be empty when a ``mask`` is given: the centre is then the centroid of the
  mask's largest connected component (26-connectivity; the component voxel
  nearest the centroid when the centroid falls outside it), and
  ``Lesion.center_source`` is ``"mask"``.
* ``label``: one of ``allowed_labels`` (``benign`` / ``malignant`` by default).
* ``mask``: that lesion's mask (nonzero = lesion): a NIfTI/NRRD/MHA image on
  any grid (for example cropped to a box with its own origin; handled in
  physical space), or a DICOM SEG or RTSTRUCT file (read by
  :func:`petcad.io.masks.load_mask` onto the CT grid, or the PET grid of a
  PET-only study, and cropped to its extent).
* ``mask_label``: which segment / ROI of a SEG or RTSTRUCT ``mask`` (number or
  name; may be empty when the object holds one only), or which voxel value of a
  label image.
* ``study_id``: for patients with several studies (e.g. baseline and
  follow-up): the rows of one ``(patient_id, study_id)`` name the same ``ct``
  and ``pet``; each pair is loaded as one :class:`~petcad.study.Study`, and
  cross-validation still groups by ``patient_id``.

A given centre must lie on a voxel of its own mask. Other columns are kept
out of the way and ignored, except names so close to a known column that they
are taken for a typo (``masks``, ``lable``): those are an error naming the
known columns.

Errors name the manifest and the row number as a spreadsheet shows it (the
header is row 1): ``manifest.csv: row 7: unknown label 'maybe' ...``.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from petcad.errors import InputError
from petcad.io.suv import SUVSettings
from petcad.study import DEFAULT_LABELS, Cohort, Lesion, Study, Volume

REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "ct", "pet", "lesion_id", "x", "y", "z", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("mask", "mask_label", "study_id")
#: columns that may be empty (``x, y, z`` only together, and only with a mask)
MAY_BE_EMPTY: tuple[str, ...] = ("ct", "x", "y", "z")


@dataclass(frozen=True)
class ManifestRow:
    """One validated manifest row; paths are absolute, centre in mm (LPS)."""

    row: int  # 1-based row number in the file (header = row 1)
    patient_id: str
    ct: Path | None  # None: a PET-only study
    pet: Path
    lesion_id: str
    center_mm: tuple[float, float, float] | None  # None: the centroid of the mask (found when loading)
    label: str
    mask: Path | None = None
    mask_label: str | int | None = None
    study_id: str = ""


def _check_header(path: Path, header: list[str]) -> None:
    """Missing, duplicate or mistyped columns (a name close to a known one) are errors."""
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(path, f"row 1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)}; "
                         f"optional {', '.join(OPTIONAL_COLUMNS)})")
    if len(set(header)) != len(header):
        raise InputError(path, "row 1: duplicate column names")
    for name in header:
        if name in known:
            continue
        squashed = "".join(ch for ch in name if ch.isalnum())
        close = [k for k in known if k.replace("_", "") == squashed]
        close = close or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            raise InputError(path, f"row 1: unknown column {name!r} (did you mean {close[0]!r}?); known columns: "
                             f"{', '.join(known)}")


def _parse_centre(where: str, get: dict, has_mask: bool) -> tuple[float, float, float] | None:
    raw = [get[c] for c in ("x", "y", "z")]
    if not any(raw):
        if not has_mask:
            raise InputError(where, "empty x, y, z: give the lesion centre in mm, or a mask to take its centroid from")
        return None
    if not all(raw):
        raise InputError(where, "x, y, z must be all given or all empty (empty: centre from the mask)")
    try:
        center = tuple(float(v) for v in raw)
    except ValueError:
        raise InputError(where, f"x, y, z must be numbers in mm, got {raw[0]!r}, {raw[1]!r}, {raw[2]!r}") from None
    if not all(math.isfinite(v) for v in center):
        raise InputError(where, "x, y, z must be finite numbers (mm)")
    return center


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
    _check_header(path, header)
    col = {name: header.index(name) for name in header}
    allowed = None if allowed_labels is None else tuple(allowed_labels)

    rows: list[ManifestRow] = []
    seen: dict[tuple[str, str], int] = {}
    patient_files: dict[tuple[str, str], tuple[Path | None, Path, int]] = {}
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
            if not get[c] and c not in MAY_BE_EMPTY:
                raise InputError(where, f"empty {c}" + (": every lesion needs a PET (a study without PET cannot be "
                                                        "used; give its PET or remove the row)" if c == "pet" else ""))
        center = _parse_centre(where, get, bool(get.get("mask")))
        if get.get("mask_label") and not get.get("mask"):
            raise InputError(where, "mask_label given without a mask")
        mask_label = get.get("mask_label") or None
        if mask_label is not None and mask_label.isdigit():
            mask_label = int(mask_label)
        label = get["label"]
        if allowed is not None and label not in allowed:
            raise InputError(where, f"unknown label {label!r}; allowed: {', '.join(allowed)}")
        key = (get["patient_id"], get["lesion_id"])
        if key in seen:
            raise InputError(where, f"lesion {get['lesion_id']!r} of patient {get['patient_id']!r} repeats row {seen[key]}")
        seen[key] = n
        ct = (base / get["ct"]).resolve() if get["ct"] else None
        pet = (base / get["pet"]).resolve()
        mask = None
        if get.get("mask"):
            mask = (base / get["mask"]).resolve()
        if check_files:
            for name, p in (("ct", ct), ("pet", pet), ("mask", mask)):
                if p is not None and not exists(p):
                    raise InputError(where, f"{name} file not found: {p}")
        study_key = (get["patient_id"], get.get("study_id", ""))
        prev = patient_files.get(study_key)
        if prev is None:
            patient_files[study_key] = (ct, pet, n)
        elif (prev[0], prev[1]) != (ct, pet):
            which = f"study {study_key[1]!r} of patient" if study_key[1] else "patient"
            raise InputError(where, f"{which} {get['patient_id']!r} names other ct/pet than in row {prev[2]}"
                             + ("" if study_key[1] else " (several studies of a patient: give a study_id column)"))
        rows.append(ManifestRow(row=n, patient_id=get["patient_id"], ct=ct, pet=pet, lesion_id=get["lesion_id"],
                                center_mm=center, label=label, mask=mask, mask_label=mask_label,
                                study_id=get.get("study_id", "")))
    if not rows:
        raise InputError(path, "manifest has no lesion rows")
    return rows


def _read_mask(row: ManifestRow, manifest: Path, study: Study) -> Volume:
    """The row's mask as uint8 0/1: an image file on its own grid, a SEG / RTSTRUCT on the CT (else PET) grid,
    cropped to its nonzero extent."""
    from petcad.io.volumes import is_image_file, read_image

    where = f"{manifest}: row {row.row}"
    if is_image_file(row.mask):
        try:
            m = read_image(row.mask, modality="mask" if row.mask_label is None else "CT")
        except InputError as exc:
            raise InputError(where, f"mask {row.mask}: {exc.problem}") from None
        if row.mask_label is not None:  # a label image: the voxels of that value
            if not isinstance(row.mask_label, int):
                raise InputError(where, f"mask_label {row.mask_label!r}: an image mask's label is a voxel value (a number)")
            m = Volume((m.array == row.mask_label).astype(np.uint8), m.origin, m.spacing, m.direction)
    else:
        try:
            from petcad.io.masks import load_mask
        except ImportError:
            raise InputError(where, f"mask {row.mask} is not a NIfTI/NRRD/MHA image, and this build has no DICOM SEG / "
                             "RTSTRUCT reader (petcad.io.masks)") from None
        like = study.ct if study.ct is not None else study.pet
        try:
            m = load_mask(row.mask, like, row.mask_label, frame_of_reference_uid=study.frame_of_reference_uid or None)
        except InputError as exc:
            raise InputError(where, f"mask {exc.where or row.mask}: {exc.problem}") from None
        m = Volume((np.asarray(m.array) != 0).astype(np.uint8), m.origin, m.spacing, m.direction)
    if not m.array.any():
        raise InputError(where, f"mask {row.mask} is empty (no nonzero voxel)")
    return crop_to_mask(m)


def crop_to_mask(mask: Volume, margin: int = 1) -> Volume:
    """``mask`` cropped to the bounding box of its nonzero voxels plus ``margin`` voxels (same grid)."""
    nz = np.nonzero(mask.array)
    lo = [max(int(a.min()) - margin, 0) for a in nz]
    hi = [min(int(a.max()) + margin + 1, n) for a, n in zip(nz, mask.array.shape)]
    arr = np.ascontiguousarray(mask.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    return Volume(arr, origin=mask.index_to_world([lo[2], lo[1], lo[0]]), spacing=mask.spacing,
                  direction=mask.direction)


def mask_centre(mask: Volume) -> np.ndarray:
    """Centroid (mm, LPS) of the largest connected component (26-connectivity) of a binary mask.

    When the centroid does not fall on a voxel of that component (a crescent), the component's voxel
    nearest to it is returned instead, so that the centre always lies in the lesion.
    """
    from scipy import ndimage

    labels, n = ndimage.label(mask.array != 0, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())[1:]
    biggest = labels == (int(np.argmax(sizes)) + 1)
    kji = np.argwhere(biggest)
    world = mask.index_to_world(kji[:, ::-1].astype(np.float64))
    centre = world.mean(axis=0)
    if not _on_mask(biggest, mask, centre):
        centre = world[int(np.argmin(((world - centre) ** 2).sum(axis=1)))]
    return centre


def _on_mask(arr: np.ndarray, mask: Volume, centre: np.ndarray) -> bool:
    """Whether ``centre`` falls in a nonzero voxel of ``arr`` (on ``mask``'s grid)."""
    ijk = np.rint(mask.world_to_index(centre)).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.asarray(mask.shape_ijk)):
        return False
    return bool(arr[ijk[2], ijk[1], ijk[0]])


def _lesion_centre(row: ManifestRow, manifest: Path, mask: Volume | None) -> tuple[np.ndarray, str]:
    """The row's centre (given, checked to lie on its mask; or the mask's centroid) and where it came from."""
    where = f"{manifest}: row {row.row}"
    if row.center_mm is None:
        return mask_centre(mask), "mask"
    centre = np.asarray(row.center_mm, dtype=np.float64)
    if mask is not None:
        c = ", ".join(f"{v:.1f}" for v in centre)
        if not bool(mask.contains(centre)):
            raise InputError(where, f"lesion centre ({c}) mm lies outside the mask image {row.mask}")
        if not _on_mask(mask.array, mask, centre):
            kji = np.argwhere(mask.array != 0)
            d = np.sqrt(((mask.index_to_world(kji[:, ::-1].astype(np.float64)) - centre) ** 2).sum(axis=1)).min()
            raise InputError(where, f"lesion {row.lesion_id!r} centre ({c}) mm lies outside its own mask {row.mask} "
                             f"(nearest mask voxel {d:.1f} mm away); fix x, y, z or leave them empty to use the "
                             "mask's centroid")
    return centre, "manifest"


def load_cohort(
    path: str | os.PathLike,
    *,
    suv: SUVSettings = SUVSettings(),
    allowed_labels: Sequence[str] | None = DEFAULT_LABELS,
    check_inside: bool = True,
    progress: bool = False,
    allow_frame_mismatch: bool = False,
    on_irregular: str = "error",
    only: Collection[tuple[str, str]] | None = None,
) -> Cohort:
    """Read the manifest and load every patient's study once, with its lesions.

    ``only``: load just these ``(patient_id, study_id)`` studies (:func:`study_keys`), for
    commands that stream a cohort one study at a time.

    Each lesion centre must lie inside both the CT and the PET (voxel centres
    +- half a voxel) when ``check_inside``; masks are read when given and
    attached to ``Lesion.mask`` (their own grid, uint8 0/1). ``on_irregular``
    (``error`` / ``resample`` / ``stack``) is passed to the DICOM reader.

    Patients are read one after the other: header parsing is pure Python
    (GIL-bound), a thread pool measured slower, and a process pool needs the
    caller's ``if __name__ == "__main__"`` guard (spawn) or risks fork with
    torch threads; serial loading of 40 phantom patients costs 20 s of CPU.
    """
    manifest = Path(path)
    rows = read_manifest(manifest, allowed_labels=allowed_labels)
    by_study: dict[tuple[str, str], list[ManifestRow]] = {}
    for r in rows:
        by_study.setdefault((r.patient_id, r.study_id), []).append(r)
    if only is not None:
        unknown = set(only) - set(by_study)
        if unknown:
            raise InputError(manifest, f"no study {sorted(unknown)[0]!r} in this manifest")
        by_study = {k: v for k, v in by_study.items() if k in only}
    items = [(key[0], prow) for key, prow in by_study.items()]
    jobs = [(pid, None if prow[0].ct is None else str(prow[0].ct), str(prow[0].pet), suv, allow_frame_mismatch,
             on_irregular) for pid, prow in items]
    results = map(_load_one, jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc="loading studies", unit="patient")
    studies = [_attach_lesions(result, pid, prow, manifest, check_inside) for (pid, prow), result in zip(items, results)]
    return Cohort(studies=studies)


def study_keys(path: str | os.PathLike, *, allowed_labels: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The ``(patient_id, study_id)`` of every study of the manifest, in the order of their first rows."""
    keys: dict[tuple[str, str], None] = {}
    for r in read_manifest(path, allowed_labels=allowed_labels):
        keys.setdefault((r.patient_id, r.study_id), None)
    return list(keys)


def study_key_text(key: tuple[str, str]) -> str:
    """``patient_id`` or ``patient_id/study_id``: a study's name in batch runs (shards, part files)."""
    return key[0] if not key[1] else f"{key[0]}/{key[1]}"


def _load_one(job) -> Study | tuple[str, str]:
    """One patient's study, or ("error", message)."""
    from petcad.io.loader import load_study

    pid, ct, pet, suv, allow, on_irregular = job
    try:
        return load_study(ct, pet, patient_id=pid, suv=suv, allow_frame_mismatch=allow, on_irregular=on_irregular)
    except InputError as exc:
        return ("error", str(exc))


def _attach_lesions(result, pid: str, prow: list[ManifestRow], manifest: Path, check_inside: bool) -> Study:
    first = prow[0]
    if isinstance(result, tuple):
        raise InputError(f"{manifest}: row {first.row}", result[1])
    study = result
    for r in prow:
        if check_inside and r.center_mm is not None:
            _check_inside(study, r, np.asarray(r.center_mm, dtype=np.float64), manifest)
        mask = _read_mask(r, manifest, study) if r.mask is not None else None
        centre, centre_source = _lesion_centre(r, manifest, mask)
        if check_inside and r.center_mm is None:
            _check_inside(study, r, centre, manifest)
        study.lesions.append(Lesion(lesion_id=r.lesion_id, center_mm=centre, label=r.label, patient_id=pid, mask=mask,
                                    center_source=centre_source))
    return study


def _check_inside(study: Study, r: ManifestRow, centre: np.ndarray, manifest: Path) -> None:
    """InputError unless ``centre`` lies inside the CT (when there is one) and the PET."""
    for name, vol in (("CT", study.ct), ("PET", study.pet)):
        if vol is None or bool(vol.contains(centre)):
            continue
        lo, hi = vol.bounds_world()
        raise InputError(
            f"{manifest}: row {r.row}",
            f"lesion {r.lesion_id!r} centre ({centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f}) mm is outside "
            f"the {name} volume (x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f} mm)",
        )


#: what to tell a user whose cohort has PET-only studies and who asked for something that needs a CT
PET_ONLY_WORKS = ("PET-only studies work with petcad suv, manifest, features and the classical methods of "
                  "compare (--methods rf,svm,adaboost,mlp)")


def require_ct(cohort: Cohort, manifest: str | os.PathLike, what: str, option: str = "the ct column") -> None:
    """InputError naming the manifest and ``option`` when any study of ``cohort`` has no CT (PET-only)."""
    missing = cohort.without_ct()
    if missing:
        raise InputError(manifest, f"{len(missing)} of {len(cohort)} studies have no CT (empty ct column): {what} "
                         f"need CT and PET; fill in {option}, or leave those studies out. {PET_ONLY_WORKS}")
