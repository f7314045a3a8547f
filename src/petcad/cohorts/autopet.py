"""autoPET (TCIA FDG-PET-CT-Lesions, NIfTI release) to a lesion manifest.

Layout: ``ROOT/<patient>/<study>/SUV.nii.gz`` (PET in SUVbw), ``CTres.nii.gz`` (CT on the PET grid),
``SEG.nii.gz`` (binary lesion mask on the PET grid), and ``fdg_metadata.csv`` (in ROOT or given) with the
diagnosis per study (LYMPHOMA, MELANOMA, LUNG_CANCER, NEGATIVE).

* Lesions are the connected components of SEG with 18-connectivity (faces and edges, as the challenge's
  own evaluation counts them). Each becomes one manifest row: ``pet`` = SUV.nii.gz, ``ct`` = CTres.nii.gz,
  ``mask`` = that component alone, written cropped to ``<manifest stem>_masks/<patient>/<study>/lesion_NN.nii.gz``,
  ``x, y, z`` = the component's centroid (moved onto the component when it falls outside), ``label`` = the
  diagnosis in lower case (``lymphoma``, ``melanoma``, ``lung_cancer``), or ``lesion`` without metadata;
  ``study_id`` = the study folder (a patient may have several studies), ``lesion_id`` = ``S<k>-L<nn>``
  (k-th study of the patient in folder order, lesions largest first).
* A study without lesions (an empty SEG: the negative controls) cannot be a row of a lesion manifest (it has
  no lesion to classify); it is listed in ``<manifest stem>_negatives.csv`` (patient_id, study, ct, pet,
  diagnosis) and counted.
* A study folder missing SUV.nii.gz or SEG.nii.gz is skipped and named; one missing CTres.nii.gz becomes a
  PET-only study (empty ``ct``), with a warning. A SEG on another grid than the SUV is skipped.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from petcad.cohorts.common import ImportResult, masks_dir
from petcad.errors import InputError
from petcad.study import Volume

FILES = ("SUV.nii.gz", "CTres.nii.gz", "SEG.nii.gz")
#: 18-connectivity: neighbours sharing a face or an edge
STRUCTURE_18 = None  # built on first use (scipy.ndimage.generate_binary_structure(3, 2))
EXTRA_COLUMNS = ("diagnosis", "volume_ml")
NEGATIVE_COLUMNS = ("patient_id", "study_id", "ct", "pet", "diagnosis")


def find_studies(root: Path) -> list[Path]:
    """Folders ``<patient>/<study>`` under ``root`` holding at least one of the autoPET files."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        if any(f in files for f in FILES):
            out.append(Path(dirpath))
    return out


def read_metadata(path: Path) -> dict[tuple[str, str], str]:
    """``{(subject, study folder name): diagnosis}`` from fdg_metadata.csv; study "" = any study of the subject.

    The study folder is the path component after the subject in "File Location"
    (``./FDG-PET-CT-Lesions/<subject>/<study>/<series>``).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read the metadata CSV ({type(exc).__name__})") from None
    if not rows or not {"Subject ID", "diagnosis"} <= set(rows[0]):
        raise InputError(path, "expected the columns 'Subject ID' and 'diagnosis' (autoPET fdg_metadata.csv)")
    out: dict[tuple[str, str], str] = {}
    per_subject: dict[str, set[str]] = {}
    for r in rows:
        subject, diag = r["Subject ID"].strip(), r["diagnosis"].strip()
        if not subject or not diag:
            continue
        parts = Path(r.get("File Location", "").replace("\\", "/")).parts
        study = parts[parts.index(subject) + 1] if subject in parts and parts.index(subject) + 1 < len(parts) else ""
        out[(subject, study)] = diag
        per_subject.setdefault(subject, set()).add(diag)
    for subject, diags in per_subject.items():
        if len(diags) == 1:
            out.setdefault((subject, ""), next(iter(diags)))
    return out


def _components(seg: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    global STRUCTURE_18
    if STRUCTURE_18 is None:
        STRUCTURE_18 = ndimage.generate_binary_structure(3, 2)
    return ndimage.label(seg != 0, structure=STRUCTURE_18)


def _study_lesions(seg: Volume) -> list[Volume]:
    """One cropped uint8 mask per 18-connected component of ``seg``, largest first."""
    from scipy import ndimage

    from petcad.io.manifest import crop_to_mask

    labels, n = _components(seg.array)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    out = []
    for idx, box in sorted(enumerate(ndimage.find_objects(labels), start=1), key=lambda t: -sizes[t[0] - 1]):
        sub = np.zeros(seg.array.shape, np.uint8)
        sub[box] = labels[box] == idx
        out.append(crop_to_mask(Volume(sub, seg.origin, seg.spacing, seg.direction)))
    return out


def import_autopet(root: str | os.PathLike, out: str | os.PathLike, *, metadata: str | os.PathLike | None = None,
                   min_voxels: int = 1) -> ImportResult:
    """Lesion manifest rows for every autoPET study under ``root`` (see the module text)."""
    from petcad.io.manifest import mask_centre
    from petcad.io.volumes import read_image

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    meta_path = Path(metadata) if metadata else root / "fdg_metadata.csv"
    if metadata and not meta_path.is_file():
        raise InputError("--metadata", f"{meta_path}: no such file")
    meta = read_metadata(meta_path) if meta_path.is_file() else None
    res = ImportResult(extra_columns=EXTRA_COLUMNS, negative_columns=NEGATIVE_COLUMNS)
    if meta is None:
        res.notes.append(f"no fdg_metadata.csv in {root}: every lesion is labelled 'lesion' (give --metadata)")
    studies = find_studies(root)
    if not studies:
        raise InputError(root, "no autoPET study folders (<patient>/<study>/SUV.nii.gz, CTres.nii.gz, SEG.nii.gz)")
    mdir = masks_dir(out)
    index: dict[str, int] = {}
    for sdir in studies:
        patient, study = sdir.parent.name, sdir.name
        index[patient] = index.get(patient, 0) + 1
        missing = [f for f in ("SUV.nii.gz", "SEG.nii.gz") if not (sdir / f).is_file()]
        if missing:
            res.notes.append(f"{sdir / missing[0]}: missing; study skipped")
            res.count("studies skipped (file missing)")
            continue
        ct = sdir / "CTres.nii.gz"
        if not ct.is_file():
            res.notes.append(f"{ct}: missing; study imported PET-only (empty ct)")
            res.count("studies PET-only (CTres.nii.gz missing)")
            ct = None
        seg = read_image(sdir / "SEG.nii.gz", modality="mask")
        if not _same_grid_as_suv(sdir, seg):
            res.notes.append(f"{sdir / 'SEG.nii.gz'}: not on the grid of SUV.nii.gz; study skipped")
            res.count("studies skipped (SEG grid)")
            continue
        diagnosis = _diagnosis(meta, patient, study)
        lesions = [m for m in _study_lesions(seg) if int(m.array.sum()) >= min_voxels]
        res.count("studies")
        if not lesions:
            res.negatives.append({"patient_id": patient, "study_id": study, "ct": ct, "pet": sdir / "SUV.nii.gz",
                                  "diagnosis": diagnosis or ""})
            res.count("studies without lesions (listed as negatives)")
            if diagnosis and diagnosis.upper() != "NEGATIVE":
                res.count("studies without lesions although the diagnosis is not NEGATIVE")
            continue
        if diagnosis and diagnosis.upper() == "NEGATIVE":
            res.count("studies with lesions although the diagnosis is NEGATIVE (labelled 'negative')")
        label = (diagnosis or "lesion").strip().lower().replace(" ", "_")
        ml = float(np.prod(seg.spacing)) / 1000.0
        for n, m in enumerate(lesions, start=1):
            path = mdir / patient / study / f"lesion_{n:02d}.nii.gz"
            res.files[path] = m
            x, y, z = (float(v) for v in mask_centre(m))
            res.rows.append({"patient_id": patient, "ct": ct, "pet": sdir / "SUV.nii.gz",
                             "lesion_id": f"S{index[patient]}-L{n:02d}", "x": x, "y": y, "z": z, "label": label,
                             "mask": path, "study_id": study, "diagnosis": diagnosis or "",
                             "volume_ml": float(m.array.sum()) * ml})
            res.count("lesions")
    return res


def _same_grid_as_suv(sdir: Path, seg: Volume) -> bool:
    import SimpleITK as sitk

    r = sitk.ImageFileReader()
    r.SetFileName(str(sdir / "SUV.nii.gz"))
    try:
        r.ReadImageInformation()
    except RuntimeError:
        raise InputError(sdir / "SUV.nii.gz", "cannot read the image header") from None
    size = tuple(int(v) for v in r.GetSize()[:3])
    return (size == seg.shape_ijk and np.allclose(r.GetOrigin()[:3], seg.origin, atol=1e-3)
            and np.allclose(r.GetSpacing()[:3], seg.spacing, atol=1e-4))


def _diagnosis(meta, patient: str, study: str) -> str | None:
    if meta is None:
        return None
    return meta.get((patient, study)) or meta.get((patient, ""))
