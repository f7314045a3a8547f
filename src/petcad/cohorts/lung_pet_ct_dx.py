"""Lung-PET-CT-Dx (TCIA) to a lesion manifest: PASCAL-VOC boxes per slice joined into lesions.

Layout (docs/cohorts.md): the TCIA download tree
``manifest-*/Lung-PET-CT-Dx/Lung_Dx-<id>/<study>/<series>/1-01.dcm ...`` and the separate annotations
``Annotation/<id>/<SOPInstanceUID>.xml``, one PASCAL-VOC file per annotated slice.

* Folder and file names are not trusted: every DICOM header under ROOT is read (no pixels) and each box
  file is matched to its slice by SOPInstanceUID. A box whose slice is not in the tree is counted and
  reported, never fatal; an unreadable box file is named and skipped.
* Box coordinates are pixel indices of that slice (``xmin``/``xmax`` columns, ``ymin``/``ymax`` rows, taken
  as voxel centres, inclusive) and go to mm (LPS) through the slice's ImagePositionPatient,
  ImageOrientationPatient and PixelSpacing.
* Boxes of one series on consecutive slices (positions along the slice normal at most 1.5 slice spacings
  apart) that overlap in the slice plane are joined into one lesion (connected components of that
  relation). Its centre is the centre of the box on the slice nearest the middle of its slice range (so it
  always lies in a box); ``extent_x_mm`` / ``extent_y_mm`` / ``extent_z_mm`` span every box, plus half a
  slice on each side along the normal.
* The label is the histology letter of the subject id (from the header's PatientID, else the folder
  ``Lung_Dx-<letter><digits>``; else the box's ``name``): A adenocarcinoma, B small_cell_carcinoma,
  E large_cell_carcinoma, G squamous_cell_carcinoma. Other letters are counted and skipped.
* ``ct`` is the boxed CT series' folder; ``pet`` the patient's PT series: the one in the same frame of
  reference, else the same study, else the one with most slices. A patient without any PT series keeps its
  rows with an empty ``pet`` and a warning (``without_pet="skip"`` leaves them out). Boxes drawn on a PT
  series make it the ``pet``, with the CT of the same frame of reference (if any) as ``ct``.
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petcad.cohorts.common import ImportResult
from petcad.errors import InputError

HISTOLOGY: dict[str, str] = {
    "A": "adenocarcinoma",
    "B": "small_cell_carcinoma",
    "E": "large_cell_carcinoma",
    "G": "squamous_cell_carcinoma",
}
EXTRA_COLUMNS = ("histology", "boxes", "extent_x_mm", "extent_y_mm", "extent_z_mm")
_SUBJECT = re.compile(r"Lung_Dx-([A-Za-z])\d+")
_TAGS = ["SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Modality", "PatientID", "FrameOfReferenceUID",
         "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"]


@dataclass(frozen=True)
class SliceRef:
    series_uid: str
    position: np.ndarray  # ImagePositionPatient (mm)
    row_dir: np.ndarray  # direction of increasing column index (first IOP triplet)
    col_dir: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns) mm

    def world(self, col: float, row: float) -> np.ndarray:
        return self.position + col * self.spacing[1] * self.row_dir + row * self.spacing[0] * self.col_dir

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)


@dataclass
class SeriesRef:
    uid: str
    modality: str
    subject: str
    study_uid: str
    frame_uid: str
    files: list[Path] = field(default_factory=list)
    positions: list[float] = field(default_factory=list)  # along the slice normal

    @property
    def folder(self) -> Path:
        return Path(os.path.commonpath([str(p.parent) for p in self.files]))

    @property
    def slice_spacing(self) -> float:
        z = np.unique(np.round(np.asarray(self.positions), 3))
        return float(np.median(np.diff(z))) if z.size > 1 else 1.0


@dataclass(frozen=True)
class Box:
    sop: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    name: str


# ----------------------------------------------------------------------------- reading
def _subject(ds, path: Path) -> str:
    pid = str(getattr(ds, "PatientID", "") or "")
    if _SUBJECT.fullmatch(pid):
        return pid
    for part in reversed(path.parts):
        m = _SUBJECT.search(part)
        if m:
            return m.group(0)
    return pid


def scan_tree(root: Path, skip: Path | None) -> tuple[dict[str, SliceRef], dict[str, SeriesRef]]:
    """Every image slice under ``root`` (headers only): ``{SOPInstanceUID: SliceRef}``, ``{series UID: SeriesRef}``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    slices: dict[str, SliceRef] = {}
    series: dict[str, SeriesRef] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        if skip is not None and Path(dirpath).resolve() == skip.resolve():
            dirs[:] = []
            continue
        for name in sorted(files):
            if name.startswith(".") or name.lower().endswith((".xml", ".csv", ".zip", ".txt")):
                continue
            path = Path(dirpath) / name
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_TAGS)
                sop = str(ds.SOPInstanceUID)
                ref = SliceRef(str(ds.SeriesInstanceUID), np.asarray(ds.ImagePositionPatient, float),
                               np.asarray(ds.ImageOrientationPatient[:3], float),
                               np.asarray(ds.ImageOrientationPatient[3:], float),
                               (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])))
            except (InvalidDicomError, AttributeError, KeyError, TypeError, ValueError, IndexError, OSError, EOFError):
                continue  # not an image slice (or not DICOM): nothing a box can point to
            slices[sop] = ref
            s = series.setdefault(ref.series_uid, SeriesRef(
                ref.series_uid, str(getattr(ds, "Modality", "") or ""), _subject(ds, path),
                str(getattr(ds, "StudyInstanceUID", "") or ""), str(getattr(ds, "FrameOfReferenceUID", "") or "")))
            s.files.append(path)
            s.positions.append(float(ref.position @ ref.normal))
    return slices, series


def read_voc(path: Path) -> list[Box]:
    """The boxes of one PASCAL-VOC file (named after its slice's SOPInstanceUID); InputError if malformed."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(path, f"not a readable PASCAL-VOC XML file ({type(exc).__name__})") from None
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise InputError(path, "an object without numeric bndbox xmin, ymin, xmax, ymax") from None
        if not (x0 <= x1 and y0 <= y1) or min(x0, y0) < 0:
            raise InputError(path, f"bndbox ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not a box (need 0 <= min <= max)")
        boxes.append(Box(path.stem, x0, y0, x1, y1, (obj.findtext("name") or "").strip()))
    if not boxes:
        raise InputError(path, "no object with a bndbox")
    return boxes


def find_annotations(root: Path, given: str | os.PathLike | None) -> Path:
    if given:
        p = Path(given)
        if not p.is_dir():
            raise InputError("--annotations", f"{p}: not a folder")
        return p
    if (root / "Annotation").is_dir():
        return root / "Annotation"
    for dirpath, dirs, _ in os.walk(root):
        dirs.sort()
        if "Annotation" in dirs:
            return Path(dirpath) / "Annotation"
        if len(Path(dirpath).relative_to(root).parts) >= 2:
            dirs[:] = []
    raise InputError(root, "no Annotation folder (the PASCAL-VOC boxes); give it with --annotations")


# ----------------------------------------------------------------------------- joining boxes into lesions
def _plane_interval(ref: SliceRef, b: Box) -> tuple[np.ndarray, np.ndarray]:
    """The box's world corners projected on the slice's row and column directions: (lo, hi) mm."""
    corners = np.array([ref.world(x, y) for x in (b.xmin, b.xmax) for y in (b.ymin, b.ymax)])
    proj = np.stack([corners @ ref.row_dir, corners @ ref.col_dir], axis=1)
    return proj.min(axis=0), proj.max(axis=0)


def group_boxes(items: list[tuple[Box, SliceRef]], slice_spacing: float) -> list[list[int]]:
    """Indices of ``items`` (boxes of one series) joined: consecutive slices and overlapping in plane."""
    n = len(items)
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    pos = [float(r.position @ r.normal) for _, r in items]
    iv = [_plane_interval(r, b) for b, r in items]
    for a in range(n):
        for b in range(a + 1, n):
            dz = abs(pos[a] - pos[b])
            if dz < 1e-3 or dz > 1.5 * slice_spacing:
                continue
            (lo_a, hi_a), (lo_b, hi_b) = iv[a], iv[b]
            if np.all(np.maximum(lo_a, lo_b) <= np.minimum(hi_a, hi_b)):
                parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: min(pos[i] for i in g))


def lesion_geometry(items: list[tuple[Box, SliceRef]], slice_spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre, extent) in mm (LPS) of boxes joined into one lesion (see the module text)."""
    pos = np.array([float(r.position @ r.normal) for _, r in items])
    mid = 0.5 * (pos.min() + pos.max())
    b, r = items[int(np.argmin(np.abs(pos - mid)))]
    centre = r.world(0.5 * (b.xmin + b.xmax), 0.5 * (b.ymin + b.ymax))
    pts = []
    for b, r in items:
        for x in (b.xmin, b.xmax):
            for y in (b.ymin, b.ymax):
                for h in (-0.5, 0.5):
                    pts.append(r.world(x, y) + h * slice_spacing * r.normal)
    pts = np.asarray(pts)
    return centre, pts.max(axis=0) - pts.min(axis=0)


# ----------------------------------------------------------------------------- the importer
def _read_boxes(ann: Path, res: ImportResult) -> list[Box]:
    boxes = []
    for dirpath, dirs, files in os.walk(ann):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(".xml"):
                continue
            try:
                boxes += read_voc(Path(dirpath) / name)
            except InputError as exc:
                res.notes.append(f"{exc}; skipped")
                res.count("box files unreadable (skipped)")
    if not boxes and not res.counts:
        raise InputError(ann, "no PASCAL-VOC box files (*.xml)")
    return boxes


def _pick_pet(ct: SeriesRef, series: dict[str, SeriesRef]) -> SeriesRef | None:
    pets = [s for s in series.values() if s.modality == "PT" and s.subject == ct.subject]
    if not pets:
        return None
    return max(pets, key=lambda s: (s.frame_uid == ct.frame_uid and bool(s.frame_uid), s.study_uid == ct.study_uid,
                                    len(s.files)))


def _pick_ct(pet: SeriesRef, series: dict[str, SeriesRef]) -> SeriesRef | None:
    cts = [s for s in series.values() if s.modality == "CT" and s.subject == pet.subject
           and s.frame_uid == pet.frame_uid and s.frame_uid]
    return max(cts, key=lambda s: len(s.files)) if cts else None


def _label(subject: str, boxes: list[Box]) -> tuple[str | None, str]:
    m = _SUBJECT.fullmatch(subject)
    letter = m.group(1).upper() if m else ""
    if letter not in HISTOLOGY:
        names = {b.name.strip().upper() for b in boxes} & set(HISTOLOGY)
        letter = names.pop() if len(names) == 1 else letter
    return HISTOLOGY.get(letter), letter


def import_lung_pet_ct_dx(root: str | os.PathLike, *, annotations: str | os.PathLike | None = None,
                          without_pet: str = "keep") -> ImportResult:
    """Lesion manifest rows for Lung-PET-CT-Dx under ``root`` (see the module text)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    if without_pet not in ("keep", "skip"):
        raise InputError("--without-pet", f"must be keep or skip, not {without_pet!r}")
    res = ImportResult(extra_columns=EXTRA_COLUMNS)
    ann = find_annotations(root, annotations)
    boxes = _read_boxes(ann, res)
    slices, series = scan_tree(root, skip=ann)
    if not series:
        raise InputError(root, "no DICOM image series under the folder")
    by_series: dict[str, list[tuple[Box, SliceRef]]] = {}
    for b in boxes:
        ref = slices.get(b.sop)
        if ref is None:
            res.count("boxes whose slice is not in the tree (skipped)")
            continue
        by_series.setdefault(ref.series_uid, []).append((b, ref))
    res.count("boxes matched to slices", sum(len(v) for v in by_series.values()))
    studies_of: dict[str, int] = {}
    no_pet_rows: list[int] = []
    no_pet_subjects: set[str] = set()
    for uid in sorted(by_series, key=lambda u: (series[u].subject, u)):
        s = series[uid]
        if s.modality not in ("CT", "PT"):
            res.count(f"boxes on {s.modality or 'unknown'} series (skipped)", len(by_series[uid]))
            continue
        label, letter = _label(s.subject, [b for b, _ in by_series[uid]])
        if label is None:
            res.count(f"boxes of subjects with histology letter '{letter}' (not A/B/E/G; skipped)",
                      len(by_series[uid]))
            continue
        ct, pet = (s, _pick_pet(s, series)) if s.modality == "CT" else (_pick_ct(s, series), s)
        if pet is None:
            no_pet_subjects.add(s.subject)
            if without_pet == "skip":
                res.count("boxes of patients without PET (skipped)", len(by_series[uid]))
                continue
        studies_of[s.subject] = studies_of.get(s.subject, 0) + 1
        k = studies_of[s.subject]
        items = by_series[uid]
        for n, group in enumerate(group_boxes(items, s.slice_spacing), start=1):
            centre, extent = lesion_geometry([items[i] for i in group], s.slice_spacing)
            if pet is None:
                no_pet_rows.append(len(res.rows) + 2)
            res.rows.append({
                "patient_id": s.subject, "ct": None if ct is None else ct.folder,
                "pet": None if pet is None else pet.folder, "lesion_id": f"S{k}-L{n:02d}",
                "x": float(centre[0]), "y": float(centre[1]), "z": float(centre[2]), "label": label,
                "study_id": str(k), "histology": letter, "boxes": len(group),
                "extent_x_mm": float(extent[0]), "extent_y_mm": float(extent[1]), "extent_z_mm": float(extent[2])})
            res.count("lesions")
    if no_pet_subjects:
        res.count("patients without a PET series", len(no_pet_subjects))
    if no_pet_rows:
        shown = ", ".join(map(str, no_pet_rows[:10])) + (", ..." if len(no_pet_rows) > 10 else "")
        res.notes.append(f"{len(no_pet_subjects)} patient(s) without a PET series: manifest "
                         f"rows {shown} have an empty pet (petcad needs a PET for every lesion; add it, or import "
                         "with --without-pet skip)")
    return res
