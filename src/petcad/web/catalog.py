"""The studies the viewer may show: patients and lesions of the manifests given, segmentation outputs.

Studies get opaque ids (``s0``, ``s1``, ...), so that URLs and the server log carry no patient
identifier. A ``--data`` entry is a manifest CSV or a folder holding ``manifest.csv`` (as
``petcad phantom`` writes it). A ``--segmentation`` folder is a ``petcad segment`` output:
``<patient_id>/labels.nii.gz`` and ``<patient_id>/lesions.csv`` per study (used when present).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from petcad.errors import InputError
from petcad.web.security import safe_file


@dataclass
class LesionEntry:
    lesion_id: str
    center_mm: tuple[float, float, float]
    label: str
    mask: Path | None = None


@dataclass
class StudyEntry:
    sid: str
    patient_id: str  # the manifest's pseudonym (never read from DICOM headers)
    ct: Path
    pet: Path
    lesions: list[LesionEntry] = field(default_factory=list)
    seg_labels: Path | None = None
    seg_lesions: list[dict] = field(default_factory=list)
    seg_classes: list[str] = field(default_factory=list)  # label n of labels.nii.gz = class n (1-based)

    def summary(self) -> dict:
        return {"id": self.sid, "patient_id": self.patient_id, "n_lesions": len(self.lesions),
                "segmentation": self.seg_labels is not None or bool(self.seg_lesions)}


def manifest_path(entry: str | os.PathLike) -> Path:
    """The manifest of a ``--data`` entry (a CSV, or a folder with manifest.csv)."""
    p = Path(entry)
    if p.is_dir():
        if not (p / "manifest.csv").is_file():
            raise InputError("--data", f"{p}: a folder must hold manifest.csv (as petcad phantom writes it)")
        return p / "manifest.csv"
    if not p.is_file():
        raise InputError("--data", f"{p}: no such manifest or folder")
    return p


def build_catalog(data: list, segmentation: str | os.PathLike | None = None) -> list[StudyEntry]:
    """Every study of the manifests in ``data`` (in order), with segmentation results attached."""
    from petcad.io.manifest import read_manifest

    studies: list[StudyEntry] = []
    for entry in data:
        rows = read_manifest(manifest_path(entry), allowed_labels=None)
        by_patient: dict[str, StudyEntry] = {}
        for r in rows:
            st = by_patient.get(r.patient_id)
            if st is None:
                st = StudyEntry(sid=f"s{len(studies)}", patient_id=r.patient_id, ct=r.ct, pet=r.pet)
                by_patient[r.patient_id] = st
                studies.append(st)
            st.lesions.append(LesionEntry(r.lesion_id, tuple(float(v) for v in r.center_mm), r.label, r.mask))
    if segmentation is not None:
        seg = Path(segmentation)
        if not seg.is_dir():
            raise InputError("--segmentation", f"{seg}: no such folder")
        for st in studies:
            attach_segmentation(st, seg)
    return studies


def attach_segmentation(st: StudyEntry, seg_root: Path) -> None:
    """``labels.nii.gz`` and ``lesions.csv`` of ``seg_root/<patient_id>/`` when they exist (safely joined)."""
    st.seg_labels = safe_file(seg_root, f"{st.patient_id}/labels.nii.gz")
    st.seg_classes = _segment_classes(safe_file(seg_root, f"{st.patient_id}/meta.json"))
    csv_path = safe_file(seg_root, f"{st.patient_id}/lesions.csv")
    if csv_path is None:
        return
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(csv_path, f"unreadable lesion list ({type(exc).__name__})") from None
    out = []
    for n, row in enumerate(rows, start=2):
        item = {}
        for k, v in row.items():
            if k is None:
                continue
            item[k] = _number(v)
        if not all(isinstance(item.get(c), float) for c in ("x", "y", "z")):
            raise InputError(csv_path, f"row {n}: x, y, z must be numbers (mm)")
        out.append(item)
    st.seg_lesions = out


def _segment_classes(meta_path: Path | None) -> list[str]:
    """The tumour classes of a segmentation (``meta.json`` ``classes`` without a leading ``none``)."""
    import json

    if meta_path is None:
        return []
    try:
        classes = json.loads(meta_path.read_text(encoding="utf-8")).get("classes") or []
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        raise InputError(meta_path, "unreadable segmentation meta.json") from None
    classes = [str(c) for c in classes]
    return classes[1:] if classes and classes[0] in ("none", "background") else classes


def _number(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None
