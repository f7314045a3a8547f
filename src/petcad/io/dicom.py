"""DICOM series: list every series under a folder, read one into a :class:`~petcad.study.Volume`.

Headers and pixels are read with pydicom (not SimpleITK's series reader, which
applies one RescaleSlope to a whole PET series whose slope varies per slice).

* :func:`list_series` walks a folder recursively and groups files by
  SeriesInstanceUID. Files that are not DICOM are skipped and counted; a DICOM
  file that is truncated raises :class:`~petcad.errors.InputError` naming it.
* :func:`read_series` reads one series: per-slice RescaleSlope / Intercept
  applied in float32, slices sorted by ImagePositionPatient projected on the
  slice normal (the cross product of the ImageOrientationPatient row and
  column cosines), direction from ImageOrientationPatient, spacing in mm.

Slice spacing checks (the gaps between consecutive slice positions, in mm):

* duplicate positions (two different images at the same place): always an error;
  exact copies of one image (same SOPInstanceUID) are dropped with a warning;
* a gap larger than 1.5 times the median spacing (missing slices): error,
  unless ``on_irregular="resample"`` (linearly interpolated onto a regular
  grid from the first to the last slice) or ``"stack"`` (stacked as they are);
  on the command line: ``--on-irregular resample|stack``;
* spacing varying by at most 5 % of the median (real scanners write this, e.g.
  3.19-3.29 mm on a GE Discovery ST): stacked as they are with the mean spacing
  and a warning;
* larger irregularity: error unless ``"resample"`` or ``"stack"``;
* a PET series (SeriesType STATIC or WHOLE BODY, or none) with fewer slices
  than its header's NumberOfSlices (0054,0081): a warning naming both counts
  (and the missing ImageIndex (0054,1330) values when the slices carry them);
  slices missing at either end leave no gap, so this is the only sign of them.

Messages never contain patient names or identifiers.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from petcad.errors import InputError
from petcad.io.options import ON_IRREGULAR
from petcad.study import Volume

#: Relative spacing variation accepted silently-but-warned when stacking (5 %).
SMALL_IRREGULARITY = 0.05
#: A gap larger than this multiple of the median spacing means missing slices.
GAP_FACTOR = 1.5
#: Relative spacing variation below which nothing is said (numerical noise).
NOISE_IRREGULARITY = 1e-3

_IMAGE_STORAGE_SKIP = {"RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO", "REG", "SEG", "RWV"}
_DICOMDIR_SOP = "1.2.840.10008.1.3.10"
_IMAGE_SOPS = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # enhanced CT
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # enhanced PET
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture
}


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder tree (no pixel data read).

    ``folder`` is the deepest folder holding all its files; ``files`` are the
    file paths (unsorted: the reader sorts by position).
    """

    series_uid: str
    modality: str
    description: str
    n_slices: int
    frame_of_reference_uid: str
    folder: Path
    files: tuple[Path, ...] = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "description": self.description,
            "n_slices": self.n_slices,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "folder": str(self.folder),
        }


class SeriesList(list):
    """A ``list[SeriesInfo]`` that also records how many non-DICOM files were skipped."""

    def __init__(self, items: Sequence[SeriesInfo] = (), n_skipped: int = 0, skipped: Sequence[Path] = ()):
        super().__init__(items)
        self.n_skipped = int(n_skipped)
        self.skipped = list(skipped)


@dataclass
class DicomSeries:
    """One series read from DICOM.

    Attributes
    ----------
    volume : the image, float32, values after per-slice rescale (HU for CT,
        the header's Units, e.g. Bq/mL, for PET).
    datasets : pydicom headers (pixel data removed) in slice order, one per
        slice of ``volume`` (for a resampled series: the original slices).
    info : the :class:`SeriesInfo` it was read from.
    slice_positions_mm : position of each original slice along the slice normal (mm).
    notes : warnings emitted while reading (irregular spacing, duplicates).
    resampled : whether the slices were interpolated onto a regular grid.
    """

    volume: Volume
    datasets: list
    info: SeriesInfo
    slice_positions_mm: np.ndarray
    notes: list[str] = field(default_factory=list)
    resampled: bool = False


# --------------------------------------------------------------------- listing
def _read_header(path: Path):
    """pydicom dataset of ``path`` with pixel data deferred, or None when not DICOM.

    The pixel data is read later from the file only for the chosen series
    (``defer_size``), so each header is parsed once. Raises InputError for a
    DICOM file that is truncated (header cut, or pixel data shorter than its
    declared length).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path), defer_size=256)
    except InvalidDicomError:
        return None
    except (EOFError, OSError, ValueError, KeyError, struct.error, TypeError, AttributeError) as exc:
        if _looks_like_dicom(path):
            raise InputError(path, f"truncated or corrupt DICOM file ({type(exc).__name__})") from None
        return None
    meta = getattr(ds, "file_meta", None)
    sop = str(ds.get("SOPClassUID", None) or getattr(meta, "MediaStorageSOPClassUID", "") or "")
    if sop == _DICOMDIR_SOP or (not sop and "SeriesInstanceUID" not in ds):
        return None  # DICOMDIR or not a composite object: not a series member
    is_image = sop in _IMAGE_SOPS or str(ds.get("Modality", "")) in ("CT", "PT", "MR", "NM") or "Rows" in ds
    raw = ds._dict.get(0x7FE00010)
    if "SeriesInstanceUID" not in ds or (is_image and raw is None):
        # pydicom returns what it could parse of a file cut short: a part-10 object
        # without SeriesInstanceUID, or an image without pixel data, is truncated
        raise InputError(path, f"truncated DICOM file: {len(ds)} elements read, "
                         + ("no SeriesInstanceUID" if "SeriesInstanceUID" not in ds else "no pixel data"))
    if is_image and raw is not None:
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is not None and length is not None and length != 0xFFFFFFFF:
            size = path.stat().st_size
            if size < tell + length:
                raise InputError(path, f"truncated DICOM file: {size} bytes, pixel data needs {tell + length}")
    return ds


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
    except OSError:
        return False
    return len(head) >= 132 and head[128:132] == b"DICM"


def _iter_files(folder: Path):
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield Path(root) / name


def _scan(folder: str | os.PathLike) -> tuple[dict, list[Path]]:
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such file or folder")
    files = [folder] if folder.is_file() else list(_iter_files(folder))
    if not files:
        raise InputError(folder, "folder is empty: no DICOM files")
    # serial on purpose: pydicom parsing holds the GIL; a thread pool measured
    # slower (267 GE slices: 1.64 s with 4 threads vs 0.91 s serial)
    headers = [_read_header(f) for f in files]
    groups: dict[str, list] = {}
    skipped: list[Path] = []
    for path, ds in zip(files, headers):
        if ds is None:
            skipped.append(path)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "")
        if not uid:
            skipped.append(path)
            continue
        groups.setdefault(uid, []).append((path, ds))
    return groups, skipped


def _info_from_group(uid: str, members: list) -> SeriesInfo:
    ds0 = members[0][1]
    paths = tuple(p for p, _ in members)
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return SeriesInfo(
        series_uid=uid,
        modality=str(getattr(ds0, "Modality", "") or ""),
        description=_redact(str(getattr(ds0, "SeriesDescription", "") or ""), ds0),
        n_slices=len(members),
        frame_of_reference_uid=str(getattr(ds0, "FrameOfReferenceUID", "") or ""),
        folder=common,
        files=paths,
    )


def _redact(text: str, ds) -> str:
    """``text`` with the patient's name parts and ID (as found in ``ds``) replaced by ``***``."""
    secrets = set()
    pid = str(getattr(ds, "PatientID", "") or "").strip()
    if len(pid) >= 3:
        secrets.add(pid)
    name = str(getattr(ds, "PatientName", "") or "")
    secrets.update(p.strip() for p in name.replace("^", " ").split() if len(p.strip()) >= 3)
    if name.strip() and len(name.strip()) >= 3:
        secrets.add(name.strip())
    for sec in sorted(secrets, key=len, reverse=True):
        if sec.lower() in text.lower():
            text = re.sub(re.escape(sec), "***", text, flags=re.IGNORECASE)
    return text


def list_series(folder: str | os.PathLike) -> SeriesList:
    """Every DICOM series under ``folder`` (recursive), sorted by modality then UID.

    Non-DICOM files are skipped; their number is ``result.n_skipped``. A
    truncated DICOM file raises :class:`InputError` naming it.
    """
    groups, skipped = _scan(folder)
    infos = [_info_from_group(uid, members) for uid, members in groups.items()]
    infos.sort(key=lambda s: (s.modality, s.series_uid))
    return SeriesList(infos, n_skipped=len(skipped), skipped=skipped)


def _describe(infos: Sequence[SeriesInfo]) -> str:
    return "; ".join(f"{s.modality} {s.series_uid} '{s.description}' ({s.n_slices} slices)" for s in infos)


def select_series(
    folder: str | os.PathLike,
    *,
    series_uid: str | None = None,
    modality: str | None = None,
    _groups: tuple[dict, list] | None = None,
) -> tuple[SeriesInfo, list]:
    """The one series matching ``series_uid`` / ``modality`` and its (path, header) pairs."""
    groups, _ = _groups if _groups is not None else _scan(folder)
    infos = {uid: _info_from_group(uid, m) for uid, m in groups.items()}
    cands = [
        s
        for s in infos.values()
        if (series_uid is None or s.series_uid == series_uid)
        and (modality is None or s.modality.upper() == modality.upper())
        and (series_uid is not None or modality is not None or s.modality.upper() not in _IMAGE_STORAGE_SKIP)
    ]
    cands.sort(key=lambda s: (s.modality, s.series_uid))
    what = " ".join(x for x in (modality and f"modality {modality}", series_uid and f"series {series_uid}") if x)
    if not cands:
        found = _describe(sorted(infos.values(), key=lambda s: s.series_uid)) or "none"
        raise InputError(folder, f"no DICOM image series{' with ' + what if what else ''} (found: {found})")
    if len(cands) > 1:
        raise InputError(
            folder,
            f"{len(cands)} series match{' ' + what if what else ''}: {_describe(cands)}; "
            "choose one with --series UID (or --ct-series / --pet-series UID)",
        )
    info = cands[0]
    return info, groups[info.series_uid]


# --------------------------------------------------------------------- reading
def _floats(ds, name: str, n: int, path) -> np.ndarray:
    v = getattr(ds, name, None)
    if v is None:
        raise InputError(path, f"missing {name}; cannot place the slice in space")
    try:
        arr = np.array([float(x) for x in v], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, f"unreadable {name}: {v!r}") from None
    if arr.size != n:
        raise InputError(path, f"{name} has {arr.size} values, expected {n}")
    return arr


def _pixels(path: Path, ds) -> tuple[np.ndarray, object]:
    """Pixels of one slice (pydicom decoding), per-slice rescale applied in float32."""
    try:
        arr = _native_pixels(ds)
        if arr is None:
            arr = ds.pixel_array  # compressed syntaxes: pydicom's decoders
    except InputError:
        raise
    except Exception as exc:  # pydicom raises many types for broken pixel data
        raise InputError(path, f"cannot decode pixel data ({type(exc).__name__}: {str(exc)[:120]})") from None
    if arr.ndim != 2:
        raise InputError(path, f"expected one 2D image per file, got pixel array of shape {arr.shape} "
                         "(multi-frame and colour images are not supported)")
    slope = _float_or(getattr(ds, "RescaleSlope", None), 1.0)
    inter = _float_or(getattr(ds, "RescaleIntercept", None), 0.0)
    out = arr.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if inter != 0.0:
        out += np.float32(inter)
    del ds.PixelData
    return out, ds


def _native_pixels(ds) -> np.ndarray | None:
    """Uncompressed single-frame greyscale pixels as a read-only view (pydicom's dtype rules).

    ``ds.pixel_array`` re-derives a dozen pixel attributes per call; for native
    little-endian data this direct view gives identical arrays in half the time
    (measured: 196 phantom slices 0.15 s vs 0.28 s). Returns None when not applicable.
    """
    from pydicom.pixels.utils import pixel_dtype

    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if ts not in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
        return None
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1 or int(getattr(ds, "NumberOfFrames", 1) or 1) != 1:
        return None
    bits = int(ds.BitsAllocated)
    if bits not in (8, 16, 32) or int(getattr(ds, "BitsStored", bits) or bits) != bits:
        return None  # masked high bits / sign extension: leave it to pydicom
    rows, cols = int(ds.Rows), int(ds.Columns)
    data = ds.PixelData
    n = rows * cols * bits // 8
    if len(data) < n:
        raise InputError(getattr(ds, "filename", None), f"pixel data has {len(data)} bytes, expected {n}")
    return np.frombuffer(data, dtype=pixel_dtype(ds), count=rows * cols).reshape(rows, cols)


def _float_or(v, default: float) -> float:
    try:
        return default if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return default


def read_series(
    folder: str | os.PathLike,
    *,
    series_uid: str | None = None,
    modality: str | None = None,
    on_irregular: Literal["error", "resample", "stack"] = "error",
) -> DicomSeries:
    """Read the one image series in ``folder`` matching ``series_uid`` / ``modality``.

    Several matching series or none raise :class:`InputError` (listing what was
    found). Returns a :class:`DicomSeries` whose volume is float32 with
    per-slice rescale applied, geometry in mm (LPS). See the module docstring
    for the slice-spacing rules and ``on_irregular``.
    """
    if on_irregular not in ON_IRREGULAR:
        raise InputError("--on-irregular", f"must be one of {', '.join(ON_IRREGULAR)}, not {on_irregular!r}")
    info, members = select_series(folder, series_uid=series_uid, modality=modality)
    notes: list[str] = []

    # geometry from headers
    paths = [p for p, _ in members]
    heads = [d for _, d in members]
    iop0 = _floats(heads[0], "ImageOrientationPatient", 6, paths[0])
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    nn = np.linalg.norm(normal)
    if nn < 1e-6:
        raise InputError(paths[0], "ImageOrientationPatient row and column cosines are parallel")
    normal /= nn
    pos = np.stack([_floats(d, "ImagePositionPatient", 3, p) for p, d in members])
    for p, d in zip(paths, heads):
        iop = _floats(d, "ImageOrientationPatient", 6, p)
        if np.max(np.abs(iop - iop0)) > 1e-3:
            raise InputError(p, "ImageOrientationPatient differs between slices of the series")
    rows_cols = {(int(d.Rows), int(d.Columns)) for d in heads}
    if len(rows_cols) != 1:
        raise InputError(folder, f"slices of series {info.series_uid} differ in size: {sorted(rows_cols)}")

    proj = pos @ normal
    order = np.argsort(proj, kind="stable")
    paths = [paths[i] for i in order]
    heads = [heads[i] for i in order]
    pos, proj = pos[order], proj[order]

    # exact duplicates (same instance twice) dropped; different images at one position: error
    keep = [0]
    for n in range(1, len(proj)):
        if abs(proj[n] - proj[keep[-1]]) < 1e-3:
            same = str(getattr(heads[n], "SOPInstanceUID", "a")) == str(getattr(heads[keep[-1]], "SOPInstanceUID", "b"))
            if same:
                notes.append(f"{paths[n]}: duplicate copy of an instance already read; ignored")
                continue
            raise InputError(
                paths[n],
                f"duplicate slice position {proj[n]:.3f} mm along the normal (also in {paths[keep[-1]].name}); "
                "the series holds two images at one place",
            )
        keep.append(n)
    paths = [paths[i] for i in keep]
    heads = [heads[i] for i in keep]
    pos, proj = pos[keep], proj[keep]

    # in-plane alignment: every slice origin must lie on the line origin + t * normal
    if len(proj) > 1:
        inplane = (pos - pos[0]) - np.outer(proj - proj[0], normal)
        if np.max(np.linalg.norm(inplane, axis=1)) > 1e-2 * max(1.0, float(np.median(np.diff(proj)))) + 1e-3:
            bad = int(np.argmax(np.linalg.norm(inplane, axis=1)))
            raise InputError(paths[bad], "slice origin is shifted in-plane from the others (tilted or sheared stack is not supported)")

    pixel_spacing = _floats(heads[0], "PixelSpacing", 2, paths[0])
    # PixelSpacing = [row spacing (between rows, along j), column spacing (along i)]
    sp_i, sp_j = float(pixel_spacing[1]), float(pixel_spacing[0])

    # spacing checks
    resample = False
    if len(proj) > 1:
        d = np.diff(proj)
        med = float(np.median(d))
        mean = float((proj[-1] - proj[0]) / (len(proj) - 1))
        dev = float(np.max(np.abs(d - med)) / med)
        gap = bool(np.any(d > GAP_FACTOR * med))
        where = Path(folder)
        if gap:
            k = int(np.argmax(d))
            msg = (f"missing slices: gap of {d[k]:.3f} mm between slices at {proj[k]:.3f} and {proj[k + 1]:.3f} mm "
                   f"(median spacing {med:.3f} mm)")
            if on_irregular == "error":
                raise InputError(where, msg + "; use --on-irregular resample to interpolate, or --on-irregular stack")
            notes.append(msg + ("; resampled onto a regular grid" if on_irregular == "resample" else "; stacked as they are"))
            resample = on_irregular == "resample"
        elif dev > SMALL_IRREGULARITY:
            msg = f"irregular slice spacing: {d.min():.3f} to {d.max():.3f} mm (median {med:.3f} mm)"
            if on_irregular == "error":
                raise InputError(where, msg + "; use --on-irregular resample or --on-irregular stack")
            notes.append(msg + ("; resampled onto a regular grid" if on_irregular == "resample" else "; stacked as they are"))
            resample = on_irregular == "resample"
        elif dev > NOISE_IRREGULARITY:
            notes.append(
                f"slice spacing varies between {d.min():.3f} and {d.max():.3f} mm; slices stacked as they are "
                f"with the mean spacing {mean:.4f} mm"
            )
        sp_k = med if resample else mean
    else:
        st = getattr(heads[0], "SpacingBetweenSlices", None) or getattr(heads[0], "SliceThickness", None) or 1.0
        sp_k = float(st)

    results = [_pixels(p, d) for p, d in zip(paths, heads)]
    arr = np.stack([r[0] for r in results])
    datasets = [r[1] for r in results]

    if resample:
        arr = resample_slices(arr, proj - proj[0], sp_k)
    count_note = _slice_count_note(heads, len(paths), info.modality)
    if count_note:
        notes.append(count_note)

    direction = np.stack([row / np.linalg.norm(row), col / np.linalg.norm(col), normal], axis=1)
    volume = Volume(array=np.ascontiguousarray(arr, dtype=np.float32), origin=pos[0],
                    spacing=np.array([sp_i, sp_j, sp_k]), direction=direction)
    where = str(Path(folder))
    for n in notes:  # the warning names the folder; DicomSeries.notes keep the bare text for the audit
        warnings.warn(n if n.startswith(where) else f"{where}: {n}", stacklevel=2)
    return DicomSeries(volume=volume, datasets=datasets, info=info, slice_positions_mm=proj - 0.0,
                       notes=notes, resampled=resample)



def resample_slices(arr: np.ndarray, z: np.ndarray, spacing: float) -> np.ndarray:
    """Slices ``arr`` (k, j, i) at increasing positions ``z`` (mm, z[0] = 0) linearly interpolated
    onto ``0, spacing, 2 spacing, ...`` up to the last slice.

    The last new position is clipped onto ``z[-1]``: ``floor(z[-1] / spacing)``
    steps can overshoot it by a rounding error, which scipy's ``interp1d``
    refused ("A value in x_new is above the interpolation range").
    """
    n_new = int(np.floor(z[-1] / spacing + 1e-6)) + 1
    z_new = np.minimum(spacing * np.arange(n_new), z[-1])
    hi = np.clip(np.searchsorted(z, z_new, side="right"), 1, len(z) - 1)
    lo = hi - 1
    w = ((z_new - z[lo]) / (z[hi] - z[lo])).astype(np.float32)[:, None, None]
    out = arr[lo] * (1.0 - w)
    out += arr[hi] * w
    return out.astype(np.float32, copy=False)


def _slice_count_note(heads: list, n_read: int, modality: str) -> str | None:
    """A warning when a static PET series holds fewer slices than its NumberOfSlices (0054,0081) says."""
    if modality != "PT":
        return None
    ds = heads[0]
    stype = getattr(ds, "SeriesType", None)
    kind = str(stype[0] if stype is not None and not isinstance(stype, str) and len(stype) else (stype or "")).upper()
    if kind not in ("", "STATIC", "WHOLE BODY"):
        return None  # dynamic and gated series hold NumberOfSlices per frame / gate
    try:
        expected = int(getattr(ds, "NumberOfSlices", None) or 0)
    except (TypeError, ValueError):
        return None
    if expected <= 0 or n_read >= expected:
        return None
    msg = (f"series has {n_read} slices but its NumberOfSlices (0054,0081) says {expected}: "
           f"{expected - n_read} slice(s) missing")
    try:
        have = {int(d.ImageIndex) for d in heads if getattr(d, "ImageIndex", None) is not None}
    except (TypeError, ValueError):
        have = set()
    if len(have) == n_read:
        missing = [i for i in range(1, expected + 1) if i not in have]
        if missing:
            shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
            msg += f" (ImageIndex {shown})"
    return msg
