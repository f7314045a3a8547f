"""A folder tree of DICOM studies with SEG or RTSTRUCT beside CT and PET, to a lesion manifest.

* ``ROOT/<patient>/...``: each folder directly under ROOT is one patient (its name is the ``patient_id``;
  DICOM files directly in ROOT make one patient named after ROOT). Any depth below it.
* Every DICOM SEG segment and every RTSTRUCT ROI is one manifest row: ``mask`` = the SEG / RTSTRUCT file,
  ``mask_label`` = the segment / ROI number, ``x, y, z`` empty (petcad takes the centroid of the mask's
  largest connected component when loading), ``lesion_id`` = ``M<k>-<number>`` (k-th mask object of the
  patient), and the name in ``segment_name``.
* ``ct`` / ``pet``: the patient's CT and PT series in the mask's frame of reference (the most slices when
  several); a PT series in another frame is not used. Without a PT series the mask's rows are skipped
  (reported); without a CT they are PET-only (empty ``ct``, reported).
* ``label``: from the optional labels CSV (columns ``patient_id, name, label``; ``name`` is a segment label
  / ROI name, or ``*`` for every one of that patient), else ``default_label``. Objects and names the CSV
  names but the tree lacks are reported.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from petcad.cohorts.common import ImportResult
from petcad.errors import InputError

EXTRA_COLUMNS = ("segment_name", "mask_type")


def read_labels(path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """``{(patient_id, name): label}`` from the labels CSV (``name`` ``*`` = any)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read the labels CSV ({type(exc).__name__})") from None
    need = {"patient_id", "name", "label"}
    if not rows or not need <= {c.strip().lower() for c in rows[0]}:
        raise InputError(path, "expected the columns patient_id, name, label (name: segment / ROI name or *)")
    out = {}
    for n, r in enumerate(rows, start=2):
        r = {k.strip().lower(): (v or "").strip() for k, v in r.items() if k}
        if not all(r[c] for c in need):
            raise InputError(f"{path}: row {n}", "empty patient_id, name or label")
        out[(r["patient_id"], r["name"])] = r["label"]
    return out


def _patient_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root).parts
    return rel[0] if len(rel) > 1 else root.name


def _mask_objects(series, root: Path) -> list[tuple[str, Path, str, str]]:
    """``(patient, file, kind, frame_of_reference_uid)`` for every SEG / RTSTRUCT file."""
    out = []
    for s in series:
        if s.modality not in ("SEG", "RTSTRUCT"):
            continue
        for f in sorted(s.files):
            frame = s.frame_of_reference_uid
            if s.modality == "RTSTRUCT":
                from petcad.io.rtstruct import read_structure_set

                frame = read_structure_set(f, contours=False).frame_of_reference_uid
            out.append((_patient_of(f, root), f, s.modality, frame))
    return out


def _pick(series, patient: str, root: Path, modality: str, frame: str):
    cands = [s for s in series if s.modality == modality and _patient_of(s.files[0], root) == patient
             and s.frame_of_reference_uid == frame]
    return max(cands, key=lambda s: s.n_slices) if cands else None


def import_dicom_tree(root: str | os.PathLike, *, labels_csv: str | os.PathLike | None = None,
                      default_label: str = "lesion") -> ImportResult:
    """One manifest row per SEG segment / RTSTRUCT ROI under ``root`` (see the module text)."""
    from petcad.io.dicom import list_series
    from petcad.io.masks import list_labels

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    labels = read_labels(labels_csv) if labels_csv else {}
    if not default_label.strip():
        raise InputError("--default-label", "must not be empty")
    series = list_series(root)
    masks = _mask_objects(series, root)
    if not masks:
        raise InputError(root, "no DICOM SEG or RTSTRUCT file under the folder")
    res = ImportResult(extra_columns=EXTRA_COLUMNS)
    used: set[tuple[str, str]] = set()
    per_patient: dict[str, int] = {}
    for patient, f, kind, frame in masks:
        pet = _pick(series, patient, root, "PT", frame)
        if pet is None:
            res.notes.append(f"{f}: no PT series in its frame of reference; its segments are skipped")
            res.count("mask objects without PET (skipped)")
            continue
        ct = _pick(series, patient, root, "CT", frame)
        if ct is None:
            res.notes.append(f"{f}: no CT series in its frame of reference; its rows are PET-only (empty ct)")
            res.count("mask objects without CT (PET-only rows)")
        per_patient[patient] = per_patient.get(patient, 0) + 1
        for number, name in list_labels(f):
            key = (patient, name) if (patient, name) in labels else (patient, "*")
            used.add(key)
            res.rows.append({"patient_id": patient, "ct": None if ct is None else ct.folder, "pet": pet.folder,
                             "lesion_id": f"M{per_patient[patient]}-{number}", "x": None, "y": None, "z": None,
                             "label": labels.get(key, default_label), "mask": f, "mask_label": number,
                             "segment_name": name, "mask_type": kind})
            res.count("segments / ROIs")
            if key not in labels and labels:
                res.count(f"segments / ROIs not in the labels CSV (labelled '{default_label}')")
    unused = set(labels) - used
    if unused:
        res.notes.append(f"{len(unused)} entries of {labels_csv} match no segment or ROI in the tree")
    return res
